/**
 * The one readable verification report of the CLI (`ratls verify`, `ratls cert verify`,
 * `ratls quote verify`): plain text, ANSI colours on a TTY. The verdict says what was proved: with
 * no MRTD/RTMR pinned, a pass only shows a genuine platform, so it says so and how to pin; every
 * measurement is shown with what the policy expects next to it.
 */
import { checkMark } from '../core/checks.ts';
import type { VerifyError } from '../core/errors.ts';
import { allAdvisoryIds, type AppraisalPolicy, type CheckRecord, type VerificationResult } from '../core/types.ts';
import type { RatlsVerificationResult } from '../ratls/verify-cert.ts';
import { clean, comparePolicy, PLATFORM_FIELDS, type PolicyComparison } from '../verify/report.ts';
import { workloadLines } from './workload-view.ts';

const PLATFORM_LABELS = PLATFORM_FIELDS.map(([, label]) => label);

export { clean };

/** What the report shows besides the result. */
export interface ReportContext {
  /** What was verified: https://host:port, or a file name. */
  target: string;
  /** 'server' (default): a TLS peer; 'certificate': a certificate file; 'quote': a raw quote file. */
  kind?: 'server' | 'certificate' | 'quote';
  nonceRequested: boolean;
  nonceVerified: boolean;
  colour: boolean;
  /** The appraisal policy the result was judged by (default: the built-in default policy). */
  policy?: AppraisalPolicy;
  /** Verification time, shown for offline checks (quote and certificate files). */
  at?: Date;
  /** Commands that pin the measurements, shown when a pass pinned no software. */
  pinCommands?: string[];
  /** The policy's freshness.binding (default session). */
  binding?: 'session' | 'certificate';
  /** True when session-bound evidence passed on this connection. */
  sessionBound?: boolean;
  /** True when the policy pins the platform (PPID, FMSPC or PCE ID). */
  platformPinned?: boolean;
}

const TITLES = { server: 'RA-TLS verification of', certificate: 'RA-TLS certificate verification of', quote: 'TDX quote verification of' } as const;

/**
 * The verdict sentence. A pass with no MRTD/RTMR pinned proves the platform only; say so rather
 * than "the TD the policy expects".
 */
export function verdictText(result: VerificationResult, cmp: PolicyComparison): string {
  if (!result.ok) return 'REJECTED';
  const platform = result.nonIntelRoot ? 'platform verified under a SIMULATED / non-Intel root' : 'genuine Intel TDX platform';
  const tcb = result.tcbStatus ? ` (TCB ${result.tcbStatus})` : '';
  // the workload pins passed when the result carries their check (src/eventlog/appraise.ts)
  const workload = result.checks.some((c) => c.name === 'workload policy' && c.ok)
    ? ', and the workload the policy pins (models, versions, configuration)'
    : '';
  if (!cmp.softwarePinned) return `PASS: ${platform}${tcb}, but no software is pinned: any TD on it passes${workload}`;
  return `PASS: ${platform}${tcb}, and the TD matches the pinned ${cmp.pinned.join(', ')}${workload}`;
}

/** Renders the report; ends with a newline. */
export function renderReport(result: VerificationResult | RatlsVerificationResult, ctx: ReportContext): string {
  const palette = paletteFor(ctx.colour);
  const { ok, bad, warn } = palette;
  const r = result as Partial<RatlsVerificationResult>;
  const kind = ctx.kind ?? 'server';
  const cmp = comparePolicy(ctx.policy ?? {}, result.quote, result.tcbStatus, allAdvisoryIds(result));
  const lines: string[] = [];
  const row = (k: string, v: string) => lines.push(`  ${(k + ':').padEnd(16)}${v}`);
  const more = (v: string) => lines.push(`  ${''.padEnd(16)}${v}`);

  lines.push(`${TITLES[kind]} ${clean(ctx.target)}`);
  const verdict = verdictText(result, cmp);
  row('Verdict', result.ok ? (cmp.softwarePinned ? ok(verdict) : warn(verdict)) : bad(verdict));
  if (result.ok && !cmp.softwarePinned) {
    const cmds = ctx.pinCommands ?? ['put the MRTD and RTMR0-3 you expect in a policy file (docs/policy.md) and pass --policy FILE'];
    row('Pin it', clean(cmds[0]!));
    for (const cmd of cmds.slice(1)) more(clean(cmd));
  }
  if (result.nonIntelRoot) row('Root', warn('SIMULATED / non-Intel root: not evidence of real TDX hardware'));
  if (ctx.at) row('Verified at', ctx.at.toISOString());
  const tcbRow = cmp.rows.find((x) => x.what === 'TCB status')!;
  // Intel's own result name adds what tcbStatus cannot say (TD relaunch advised).
  const qvl = result.qvlStatus?.includes('RELAUNCH') ? ` (Intel QVL result ${clean(result.qvlStatus)})` : '';
  const tcbText = `${clean(tcbRow.actual)}${qvl}   (policy allows: ${clean(tcbRow.expected.join(', '))})`;
  row('TCB status', tcbRow.ok ? (result.tcbStatus === 'UpToDate' ? ok(tcbText) : warn(tcbText)) : bad(tcbText));
  const adv = cmp.rows.find((x) => x.what === 'advisories');
  const advisories = allAdvisoryIds(result);
  const advText = advisories.length > 0 ? clean(advisories.join(', ')) : 'none';
  row('Advisories', adv ? `${adv.ok ? advText : bad(advText)}   (policy allows: ${clean(adv.expected.join(', ') || 'none')})` : advText);
  if (r.certificate) {
    row('Certificate', clean(r.certificate.subject));
    more(clean(`valid ${r.certificate.notBefore} .. ${r.certificate.notAfter}`));
    more(clean(`sha256 ${r.certificate.fingerprintSha256}`));
  }
  if (r.ratls) row('Evidence', clean(`${r.ratls.profile} profile, pubkey-hash ${r.ratls.pubkeyHashAlg}${r.ratls.nonce ? `, nonce ${r.ratls.nonce}` : ''}`));
  if (kind !== 'quote') {
    const binding = result.checks.find((x) => x.name === 'public key binding') ?? result.checks.find((x) => x.name === 'REPORTDATA binding');
    row(
      'Key binding',
      binding
        ? binding.ok
          ? ok(`bound to this ${kind === 'server' ? 'TLS' : "certificate's"} key (${clean(binding.detail ?? 'ok')})`)
          : bad(clean(binding.detail ?? 'failed'))
        : 'not checked',
    );
  }
  if (kind === 'server') {
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
          : 'no nonce requested (certificate binding; --nonce adds one, the default session binding includes one)',
    );
  }
  if (result.quote) {
    const q = result.quote;
    const pinned = ctx.platformPinned ?? cmp.rows.some((x) => PLATFORM_LABELS.includes(x.what) && x.pinned);
    const ids = q.ppid ? `PPID ${q.ppid}, FMSPC ${q.fmspc ?? '?'}, PCE ID ${q.pceId ?? '?'}` : 'unknown (PCK certificate not read)';
    row('Platform', clean(ids) + (pinned ? ' (pinned)' : ' (not pinned: the same image on any machine passes)'));
  }
  if (result.quote) lines.push(...measurementLines(cmp, 'the value in the quote', palette));
  if (r.workload) lines.push(...workloadLines(r.workload));
  lines.push(...checkLines(result.checks, result.errors, palette));
  return lines.join('\n') + '\n';
}

/** Colours for report text: green, red and yellow on a terminal, nothing otherwise. */
export interface Palette {
  ok(s: string): string;
  bad(s: string): string;
  warn(s: string): string;
}

export function paletteFor(colour: boolean): Palette {
  const c = (code: string) => (s: string) => (colour ? `\x1b[${code}m${s}\x1b[0m` : s);
  return { ok: c('32'), bad: c('31'), warn: c('33') };
}

/**
 * The measurements table: the policy's verdict first (fixed width), then the value, because 96 hex
 * digits leave no room after it. `source` says where the values come from.
 */
export function measurementLines(cmp: PolicyComparison, source: string, { ok, bad }: Palette): string[] {
  const lines = [`  Measurements:   (what the policy says, then ${source})`];
  const meas = (label: string, note: string, colourNote: (s: string) => string, value: string) =>
    lines.push(`    ${label.padEnd(13)}${colourNote(note.padEnd(12))}${clean(value)}`);
  const plain = (s: string) => s;
  for (const x of cmp.rows) {
    if (x.what === 'TCB status' || x.what === 'advisories') continue;
    if (x.what === 'DEBUG') {
      meas('DEBUG', x.expected.includes('yes') ? 'allowed' : 'not allowed', x.ok ? plain : bad, x.actual);
      continue;
    }
    if (!x.pinned) meas(x.what, 'not pinned', plain, x.actual);
    else if (x.ok) meas(x.what, 'matches', ok, x.actual);
    else {
      meas(x.what, 'MISMATCH', bad, x.actual);
      for (const e of x.expected) meas('', 'expected', plain, e);
    }
  }
  return lines;
}

/** Every check with its mark, then the reasons of a rejection with their codes. */
export function checkLines(checks: readonly CheckRecord[], errors: readonly VerifyError[], { ok, bad, warn }: Palette): string[] {
  const lines = ['  Checks:'];
  for (const ch of checks) {
    const mark = checkMark(ch);
    lines.push(`    ${mark === 'ok' ? ok('ok  ') : mark === 'WARN' ? warn('WARN') : bad('FAIL')} ${clean(ch.name)}${ch.detail ? `: ${clean(ch.detail)}` : ''}`);
  }
  if (errors.length > 0) {
    lines.push('  Reasons:');
    for (const e of errors) lines.push(`    ${bad(clean(e.code))}: ${clean(e.message)}`);
  }
  return lines;
}

/** The JSON form of the same comparison, added to `--json` output as `policyCheck`. */
export function policyCheckJson(result: VerificationResult, policy: AppraisalPolicy = {}): PolicyComparison & { verdict: string } {
  const cmp = comparePolicy(policy, result.quote, result.tcbStatus, allAdvisoryIds(result));
  return { verdict: verdictText(result, cmp), ...cmp };
}
