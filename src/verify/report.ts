/** Plain-text rendering of quote summaries and verification results (CLI and logs). */
import { checkMark } from '../core/checks.ts';
import type { AppraisalPolicy, QuoteSummary, TcbStatus, VerificationResult } from '../core/types.ts';
import { DEFAULT_ALLOWED_TCB_STATUSES, type AppraisedQuote } from './policy.ts';

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
 * Makes text safe for a terminal: C0/C1 controls (ESC, CR, BEL, CSI...) and bidirectional
 * formatting characters (RLO, LRI, ... which reorder the rest of a line in terminals and pages
 * that apply the Unicode bidi algorithm) become U+FFFD. Much of a report is chosen by the server
 * or the file being checked (certificate subject, error text, model names); raw, it could clear
 * lines, print a fake verdict or show a digest or name reversed.
 */
export function clean(s: string): string {
  return s.replace(/[\x00-\x1f\x7f-\x9f\u2028\u2029\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/g, '\uFFFD');
}

/** One "name: value" line per quote field, aligned. */
export function formatQuoteFields(s: Partial<QuoteSummary>, indent = '  '): string {
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
  for (const c of r.checks) out += `  [${checkMark(c) === 'ok' ? ' ok ' : checkMark(c)}] ${clean(c.name)}${c.detail ? `: ${clean(c.detail)}` : ''}\n`;
  out += `\nIntel TCB status: ${clean(r.tcbStatus ?? 'none')}`;
  // Intel's own result name only where it says more than the status (the TD relaunch results).
  if (r.qvlStatus?.includes('RELAUNCH')) out += ` (Intel QVL result ${clean(r.qvlStatus)})`;
  out += r.advisoryIds.length ? ` (advisories: ${clean(r.advisoryIds.join(', '))})\n` : '\n';
  const more = [
    r.tdxModuleAdvisoryIds?.length ? `TDX module ${r.tdxModuleAdvisoryIds.join(', ')}` : '',
    r.qeAdvisoryIds?.length ? `QE ${r.qeAdvisoryIds.join(', ')}` : '',
  ].filter(Boolean);
  if (more.length) out += `Other advisories (checked by the policy too): ${clean(more.join('; '))}\n`;
  if (r.nonIntelRoot) out += 'Root: NOT Intel SGX Root CA (explicitly trusted root; e.g. SIMULATED evidence)\n';
  if (r.ok) out += 'Verdict: OK\n';
  else {
    out += 'Verdict: REJECTED\n';
    for (const e of r.errors) out += `  ${clean(e.code)}: ${clean(e.message)}\n`;
  }
  return out;
}

/** A quote field a policy can pin, with its label. */
export type PinnableField = 'mrTd' | 'rtmr0' | 'rtmr1' | 'rtmr2' | 'rtmr3' | 'mrSeam' | 'xfam' | 'tdAttributes';

export const PINNABLE_FIELDS: ReadonlyArray<[PinnableField, string]> = [
  ['mrTd', 'MRTD'],
  ['rtmr0', 'RTMR0'],
  ['rtmr1', 'RTMR1'],
  ['rtmr2', 'RTMR2'],
  ['rtmr3', 'RTMR3'],
  ['mrSeam', 'MRSEAM'],
  ['xfam', 'XFAM'],
  ['tdAttributes', 'TDATTRIBUTES'],
];

/** Platform identity from the PCK certificate, pinnable by `platform:` in a policy. */
export const PLATFORM_FIELDS: ReadonlyArray<['ppid' | 'fmspc' | 'pceId', string]> = [
  ['ppid', 'PPID'],
  ['fmspc', 'FMSPC'],
  ['pceId', 'PCE ID'],
];

/** The fields that identify the TD's software (firmware, kernel, command line, runtime). */
const SOFTWARE_FIELDS: readonly PinnableField[] = ['mrTd', 'rtmr0', 'rtmr1', 'rtmr2', 'rtmr3'];

/** One line of "what the policy expects next to what the evidence shows". */
export interface Expectation {
  /** "TCB status", "DEBUG", "advisories" or a measurement label (MRTD, RTMR0...). */
  what: string;
  /** The accepted values; empty for a measurement the policy does not pin. */
  expected: string[];
  actual: string;
  /** Whether the actual value is accepted (true for anything not pinned). */
  ok: boolean;
  /** For measurements: whether the policy pins it at all. */
  pinned: boolean;
}

/** What a policy pins and how the evidence compares, for reports and refusal pages. */
export interface PolicyComparison {
  /** Labels of the measurements the policy pins. */
  pinned: string[];
  /** True when at least one of MRTD and RTMR0-3 is pinned: only then is the TD's software identified. */
  softwarePinned: boolean;
  rows: Expectation[];
}

const norm = (v: string): string => v.trim().toLowerCase().replace(/^0x/, '');

/**
 * Compares the evidence with the policy, field by field: TCB status, advisories, DEBUG and every
 * measurement (pinned or not). Works without a quote (rows then show "unknown").
 */
export function comparePolicy(policy: AppraisalPolicy, quote: AppraisedQuote | null, tcbStatus: TcbStatus | null, advisoryIds: string[]): PolicyComparison {
  const rows: Expectation[] = [];
  const allowed = policy.allowedTcbStatuses ?? [...DEFAULT_ALLOWED_TCB_STATUSES];
  rows.push({
    what: 'TCB status',
    expected: [...allowed],
    actual: tcbStatus ?? 'unknown',
    ok: tcbStatus !== null && tcbStatus !== 'Revoked' && allowed.includes(tcbStatus),
    pinned: true,
  });
  if (policy.allowedAdvisoryIds) {
    const ok = new Set(policy.allowedAdvisoryIds.map((a) => a.toUpperCase()));
    rows.push({
      what: 'advisories',
      expected: [...policy.allowedAdvisoryIds],
      actual: advisoryIds.join(', ') || 'none',
      ok: advisoryIds.every((a) => ok.has(a.toUpperCase())),
      pinned: true,
    });
  }
  rows.push({
    what: 'DEBUG',
    expected: policy.allowDebug === true ? ['no', 'yes'] : ['no'],
    actual: quote ? (quote.debug ? 'yes' : 'no') : 'unknown',
    ok: quote !== null && (!quote.debug || policy.allowDebug === true),
    pinned: true,
  });
  const pinned: string[] = [];
  for (const [field, label] of PINNABLE_FIELDS) {
    const want = policy[field];
    const actual = quote ? quote[field] : 'unknown';
    if (want === undefined) {
      rows.push({ what: label, expected: [], actual, ok: true, pinned: false });
      continue;
    }
    pinned.push(label);
    const list = want.map((v) => (typeof v === 'string' ? norm(v) : String(v)));
    rows.push({ what: label, expected: list, actual, ok: quote !== null && list.includes(actual), pinned: true });
  }
  for (const [field, label] of PLATFORM_FIELDS) {
    const want = policy[field];
    const actual = quote?.[field] ?? 'unknown';
    if (want === undefined) {
      rows.push({ what: label, expected: [], actual, ok: true, pinned: false });
      continue;
    }
    pinned.push(label);
    const list = want.map(norm);
    rows.push({ what: label, expected: list, actual, ok: list.includes(actual), pinned: true });
  }
  return { pinned, softwarePinned: SOFTWARE_FIELDS.some((f) => policy[f] !== undefined), rows };
}
