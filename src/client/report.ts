/** Human-readable verification report for `ratls verify` (plain text; ANSI colours on a TTY). */
import type { VerificationResult } from '../core/types.ts';
import type { RatlsVerificationResult } from '../ratls/verify-cert.ts';
import { clean } from '../verify/report.ts';

export { clean };

/** What the report shows besides the result. */
export interface ReportContext {
  target: string;
  nonceRequested: boolean;
  nonceVerified: boolean;
  colour: boolean;
  /** The policy's freshness.binding (default session). */
  binding?: 'session' | 'certificate';
  /** True when session-bound evidence passed on this connection. */
  sessionBound?: boolean;
  /** True when the policy pins the platform (PPID, FMSPC or PCE ID). */
  platformPinned?: boolean;
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
  row('Advisories', result.advisoryIds.length > 0 ? warn(clean(result.advisoryIds.join(', '))) : 'none');
  if (r.certificate) {
    row('Certificate', clean(r.certificate.subject));
    row('  valid', clean(`${r.certificate.notBefore} .. ${r.certificate.notAfter}`));
    row('  sha256', clean(r.certificate.fingerprintSha256));
  }
  if (r.ratls) row('Evidence', clean(`${r.ratls.profile} profile, pubkey-hash ${r.ratls.pubkeyHashAlg}`));
  const keyBinding = result.checks.find((x) => x.name === 'public key binding') ?? result.checks.find((x) => x.name === 'REPORTDATA binding');
  row(
    'Key binding',
    keyBinding
      ? keyBinding.ok
        ? ok(`bound to this TLS key (${clean(keyBinding.detail ?? 'ok')})`)
        : bad(clean(keyBinding.detail ?? 'failed'))
      : 'not checked',
  );
  const binding = ctx.binding ?? 'session';
  row(
    'Binding',
    binding === 'session'
      ? ctx.sessionBound
        ? ok('session: evidence bound to this TLS session (RFC 9266 exporter), this key and our nonce; a leaked key cannot relay it')
        : bad('session binding did not pass')
      : warn('certificate only: evidence bound to the TLS key, not to this session; relayable if the TLS key leaks'),
  );
  row(
    'Freshness',
    ctx.nonceVerified
      ? ok(binding === 'session' ? 'fresh: quoted after our nonce, on this connection' : 'nonce round trip passed on this connection')
      : ctx.nonceRequested || binding === 'session'
        ? bad(binding === 'session' ? 'no fresh evidence' : 'nonce round trip failed')
        : 'no nonce requested (use --nonce, or the default session binding)',
  );
  if (result.quote) {
    const q = result.quote;
    const ids = q.ppid ? `PPID ${q.ppid}, FMSPC ${q.fmspc ?? '?'}, PCE ID ${q.pceId ?? '?'}` : 'unknown (PCK certificate not read)';
    row('Platform', clean(ids) + (ctx.platformPinned ? ok(' (pinned)') : ' (not pinned: the same image on any machine passes)'));
  }
  if (result.quote) {
    lines.push('  Measurements:');
    for (const [label, key] of MEASUREMENT_ROWS) lines.push(`    ${label.padEnd(13)}${clean(String(result.quote[key]))}`);
    lines.push(`    ${'DEBUG'.padEnd(13)}${result.quote.debug ? bad('yes') : 'no'}`);
    if (result.quote.fmspc) lines.push(`    ${'FMSPC'.padEnd(13)}${clean(result.quote.fmspc)}`);
  }
  lines.push('  Checks:');
  for (const ch of result.checks) {
    lines.push(`    ${ch.ok ? ok('ok  ') : bad('FAIL')} ${clean(ch.name)}${ch.detail ? `: ${clean(ch.detail)}` : ''}`);
  }
  if (result.errors.length > 0) {
    lines.push('  Reasons:');
    for (const e of result.errors) lines.push(`    ${bad(clean(e.code))}: ${clean(e.message)}`);
  }
  return lines.join('\n') + '\n';
}
