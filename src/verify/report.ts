/** Plain-text rendering of quote summaries and verification results (CLI and logs). */
import type { QuoteSummary, VerificationResult } from '../core/types.ts';

const FIELD_ORDER: Array<[keyof QuoteSummary, string]> = [
  ['version', 'version'],
  ['bodyType', 'body type'],
  ['teeType', 'TEE type'],
  ['attestationKeyType', 'attestation key type'],
  ['qeSvn', 'QE SVN'],
  ['pceSvn', 'PCE SVN'],
  ['qeVendorId', 'QE vendor ID'],
  ['userData', 'user data'],
  ['fmspc', 'FMSPC'],
  ['pceId', 'PCE ID'],
  ['ppid', 'PPID'],
  ['teeTcbSvn', 'TEE_TCB_SVN'],
  ['teeTcbSvn2', 'TEE_TCB_SVN2'],
  ['mrSeam', 'MRSEAM'],
  ['mrSignerSeam', 'MRSIGNERSEAM'],
  ['seamAttributes', 'SEAMATTRIBUTES'],
  ['tdAttributes', 'TDATTRIBUTES'],
  ['debug', 'DEBUG'],
  ['xfam', 'XFAM'],
  ['mrTd', 'MRTD'],
  ['mrConfigId', 'MRCONFIGID'],
  ['mrOwner', 'MROWNER'],
  ['mrOwnerConfig', 'MROWNERCONFIG'],
  ['rtmr0', 'RTMR0'],
  ['rtmr1', 'RTMR1'],
  ['rtmr2', 'RTMR2'],
  ['rtmr3', 'RTMR3'],
  ['reportData', 'REPORTDATA'],
  ['mrServiceTd', 'MRSERVICETD'],
];

/**
 * Makes text safe for a terminal: C0/C1 controls (ESC, CR, BEL, CSI...) become U+FFFD. Much of a
 * report is chosen by the server or the file being checked (certificate subject, error text); raw,
 * it could clear lines and print a fake verdict.
 */
export function clean(s: string): string {
  return s.replace(/[\x00-\x1f\x7f-\x9f\u2028\u2029]/g, '\uFFFD');
}

/** One "name: value" line per quote field, aligned. */
export function formatQuoteFields(s: QuoteSummary, indent = '  '): string {
  const width = Math.max(...FIELD_ORDER.map(([, l]) => l.length));
  let out = '';
  for (const [k, label] of FIELD_ORDER) {
    const v = s[k];
    if (v === undefined) continue;
    out += `${indent}${label.padEnd(width)}  ${clean(String(v))}\n`;
  }
  return out;
}

/** The readable report: fields, each check, verdict. */
export function formatVerificationReport(r: VerificationResult): string {
  let out = '';
  if (r.quote) out += `Quote\n${formatQuoteFields(r.quote)}\n`;
  out += 'Checks\n';
  for (const c of r.checks) out += `  [${c.ok ? ' ok ' : 'FAIL'}] ${clean(c.name)}${c.detail ? `: ${clean(c.detail)}` : ''}\n`;
  out += `\nIntel TCB status: ${clean(r.tcbStatus ?? 'none')}`;
  out += r.advisoryIds.length ? ` (advisories: ${clean(r.advisoryIds.join(', '))})\n` : '\n';
  if (r.nonIntelRoot) out += 'Root: NOT Intel SGX Root CA (explicitly trusted root; e.g. SIMULATED evidence)\n';
  if (r.ok) out += 'Verdict: OK\n';
  else {
    out += 'Verdict: REJECTED\n';
    for (const e of r.errors) out += `  ${clean(e.code)}: ${clean(e.message)}\n`;
  }
  return out;
}
