/**
 * The readable report of `ratls attest`, laid out like the `ratls verify` report (src/client/report.ts):
 * verdict first, what the service and its token proved, then every measurement with what your
 * policy expects next to what the token states, the checks, and the reasons.
 */
import type { AppraisalPolicy, VerificationResult } from '../core/types.ts';
import { comparePolicy, type PolicyComparison } from '../verify/report.ts';
import type { ServiceAttestation } from './attest-via-service.ts';
import { checkLines, clean, measurementLines, paletteFor, verdictText } from './report.ts';

/** What the report shows besides the attestation. */
export interface AttestReportContext {
  colour: boolean;
  /** Your policy (default: the built-in default policy). */
  policy?: AppraisalPolicy;
  /** Commands that pin the measurements, shown when a pass pinned no software. */
  pinCommands?: string[];
}

function asResult(a: ServiceAttestation): VerificationResult {
  return { ok: a.ok, tcbStatus: a.tcbStatus, advisoryIds: a.advisoryIds, errors: a.errors, quote: null, checks: a.checks, nonIntelRoot: a.nonIntelRoot };
}

/** The comparison of your policy with the token's measurements. */
export function attestPolicyComparison(a: ServiceAttestation, policy: AppraisalPolicy = {}): PolicyComparison & { verdict: string } {
  const cmp = comparePolicy(policy, a.quote, a.tcbStatus, a.advisoryIds);
  return { verdict: verdictText(asResult(a), cmp), ...cmp };
}

/** Renders the report; ends with a newline. */
export function renderAttestReport(a: ServiceAttestation, ctx: AttestReportContext): string {
  const palette = paletteFor(ctx.colour);
  const { ok, bad, warn } = palette;
  const cmp = comparePolicy(ctx.policy ?? {}, a.quote, a.tcbStatus, a.advisoryIds);
  const lines: string[] = [];
  const row = (k: string, v: string) => lines.push(`  ${(k + ':').padEnd(16)}${v}`);
  const more = (v: string) => lines.push(`  ${''.padEnd(16)}${v}`);
  const claims = a.claims;

  lines.push(`Attestation of ${clean(a.target)} by the service ${clean(a.service)}`);
  const verdict = verdictText(asResult(a), cmp);
  row('Verdict', a.ok ? (cmp.softwarePinned ? ok(verdict) : warn(verdict)) : bad(verdict));
  if (a.ok && !cmp.softwarePinned) {
    const cmds = ctx.pinCommands ?? ['put the MRTD and RTMR0-3 you expect in a policy file (docs/policy.md) and pass --policy FILE'];
    row('Pin it', clean(cmds[0]!));
    for (const cmd of cmds.slice(1)) more(clean(cmd));
  }
  if (a.nonIntelRoot) row('Root', warn('SIMULATED / non-Intel root: not evidence of real TDX hardware'));
  if (claims) {
    const policy = a.servicePolicy ? `policy "${a.servicePolicy.name}" (sha256 ${a.servicePolicy.hash.slice(0, 16)}…)` : 'no policy named';
    const said = claims['x-ratls-ok'] === true ? ok(`${String(claims['ear.status'])}`) : bad('contraindicated (rejected)');
    row('Service', `${said} under its ${clean(policy)}`);
    row('Token', clean(`signed by key ${a.kid ?? '?'}, issuer ${String(claims.iss)}, expires ${new Date((claims.exp ?? 0) * 1000).toISOString()}`));
  } else row('Token', a.token ? bad('not accepted (see the reasons)') : 'none (the service did not appraise the evidence)');
  const tcbRow = cmp.rows.find((x) => x.what === 'TCB status')!;
  const tcbText = `${clean(tcbRow.actual)}   (policy allows: ${clean(tcbRow.expected.join(', '))})`;
  row('TCB status', tcbRow.ok ? (a.tcbStatus === 'UpToDate' ? ok(tcbText) : warn(tcbText)) : bad(tcbText));
  const adv = cmp.rows.find((x) => x.what === 'advisories');
  const advText = a.advisoryIds.length > 0 ? clean(a.advisoryIds.join(', ')) : 'none';
  row('Advisories', adv ? `${adv.ok ? advText : bad(advText)}   (policy allows: ${clean(adv.expected.join(', ') || 'none')})` : advText);
  if (a.certSha256) row('Certificate', `sha256 ${a.certSha256} (presented on the evidence connection)`);
  if (claims?.['x-ratls-pubkey-hash']) row('Evidence', clean(`CCC evidence, pubkey-hash ${String(claims['x-ratls-pubkey-hash'])}`));
  const fresh = a.checks.find((x) => x.name === 'token subject');
  row(
    'Freshness',
    fresh?.ok
      ? ok(`fresh: the evidence carries our nonce ${a.nonce.slice(0, 16)}…, and so does the token`)
      : claims
        ? bad('not confirmed')
        : `nonce ${a.nonce.slice(0, 16)}… sent; no verified token`,
  );
  if (a.quote) lines.push(...measurementLines(cmp, 'the value in the token', palette));
  lines.push(...checkLines(a.checks, a.errors, palette));
  return lines.join('\n') + '\n';
}
