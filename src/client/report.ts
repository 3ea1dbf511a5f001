/** Human-readable verification report for `ratls verify` (plain text; ANSI colours on a TTY). */
import { checkMark } from '../core/checks.ts';
import { allAdvisoryIds, type VerificationResult } from '../core/types.ts';
import type { RatlsVerificationResult } from '../ratls/verify-cert.ts';
import { clean } from '../verify/report.ts';

export { clean };

/** What the report shows besides the result. */
export interface ReportContext {
  target: string;
  nonceRequested: boolean;
  nonceVerified: boolean;
  colour: boolean;
}

const MEASUREMENT_ROWS: Array<[string, keyof NonNullable<VerificationResult['quote']>]> = [
  ['MRTD', 'mrTd'],
  ['RTMR0', 'rtmr0'],
  ['RTMR1', 'rtmr1'],
  ['RTMR2', 'rtmr2'],
  ['RTMR3', 'rtmr3'],
  ['MRSEAM', 'mrSeam'],
  ['XFAM', 'xfam'],
  ['TDATTRIBUTES', 'tdAttributes'],
];

/** Renders the report; ends with a newline. */
export function renderReport(result: VerificationResult | RatlsVerificationResult, ctx: ReportContext): string {
  const c = (code: string, s: string) => (ctx.colour ? `\x1b[${code}m${s}\x1b[0m` : s);
  const ok = (s: string) => c('32', s);
  const bad = (s: string) => c('31', s);
  const warn = (s: string) => c('33', s);
  const r = result as RatlsVerificationResult;
  const lines: string[] = [];
  const row = (k: string, v: string) => lines.push(`  ${(k + ':').padEnd(16)}${v}`);

  lines.push(`RA-TLS verification of ${clean(ctx.target)}`);
  row('Verdict', result.ok ? ok('PASS: the server is the attested TD the policy expects') : bad('REJECTED'));
  if (result.nonIntelRoot) row('Root', warn('SIMULATED / non-Intel root: not evidence of real TDX hardware'));
  row('TCB status', result.tcbStatus ? (result.tcbStatus === 'UpToDate' ? ok(result.tcbStatus) : warn(clean(result.tcbStatus))) : 'unknown');
  const advisories = allAdvisoryIds(result);
  row('Advisories', advisories.length > 0 ? warn(clean(advisories.join(', '))) : 'none');
  if (r.certificate) {
    row('Certificate', clean(r.certificate.subject));
    row('  valid', clean(`${r.certificate.notBefore} .. ${r.certificate.notAfter}`));
    row('  sha256', clean(r.certificate.fingerprintSha256));
  }
  if (r.ratls) row('Evidence', clean(`${r.ratls.profile} profile, pubkey-hash ${r.ratls.pubkeyHashAlg}`));
  const binding = result.checks.find((x) => x.name === 'public key binding') ?? result.checks.find((x) => x.name === 'REPORTDATA binding');
  row(
    'Key binding',
    binding ? (binding.ok ? ok(`bound to this TLS key (${clean(binding.detail ?? 'ok')})`) : bad(clean(binding.detail ?? 'failed'))) : 'not checked',
  );
  row(
    'Freshness',
    ctx.nonceVerified
      ? ok('nonce round trip passed on this connection')
      : ctx.nonceRequested
        ? bad('nonce round trip failed')
        : 'no nonce requested (use --nonce)',
  );
  if (result.quote) {
    lines.push('  Measurements:');
    for (const [label, key] of MEASUREMENT_ROWS) lines.push(`    ${label.padEnd(13)}${clean(String(result.quote[key]))}`);
    lines.push(`    ${'DEBUG'.padEnd(13)}${result.quote.debug ? bad('yes') : 'no'}`);
    if (result.quote.fmspc) lines.push(`    ${'FMSPC'.padEnd(13)}${clean(result.quote.fmspc)}`);
  }
  lines.push('  Checks:');
  for (const ch of result.checks) {
    const mark = checkMark(ch);
    lines.push(`    ${mark === 'ok' ? ok('ok  ') : mark === 'WARN' ? warn('WARN') : bad('FAIL')} ${clean(ch.name)}${ch.detail ? `: ${clean(ch.detail)}` : ''}`);
  }
  if (result.errors.length > 0) {
    lines.push('  Reasons:');
    for (const e of result.errors) lines.push(`    ${bad(clean(e.code))}: ${clean(e.message)}`);
  }
  return lines.join('\n') + '\n';
}
