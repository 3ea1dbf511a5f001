/** HTML and JSON bodies of `ratls connect`: the refusal page and the status page. */
import { checkMark } from '../core/checks.ts';
import { allAdvisoryIds, type AppraisalPolicy } from '../core/types.ts';
import { comparePolicy } from '../verify/report.ts';
import type { AttestationEvent } from './attestor.ts';
import { policyCheckJson, verdictText } from './report.ts';

/** Escapes text for HTML element and attribute content. */
export function esc(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

/** Snapshot of the proxy's view of the upstream, shown on /.ratls/status. */
export interface ConnectStatus {
  upstream: string;
  /** 'verified' when the last attestation passed, 'refused' when it failed, 'unknown' before any. */
  state: 'verified' | 'refused' | 'unknown';
  lastVerified: AttestationEvent | null;
  lastFailure: AttestationEvent | null;
  /** Connections attested so far (passed / refused). */
  verifications: number;
  refusals: number;
  /** How many times a newly verified connection presented a different certificate. */
  certificateChanges: number;
  lastCertificateChangeAt: string | null;
  /** The appraisal policy the upstream is judged by (shown next to what it presented). */
  policy?: AppraisalPolicy;
}

/** "What the policy expects / what the server presented" rows, mismatches marked. */
function expectationTable(e: AttestationEvent, policy: AppraisalPolicy): string {
  const cmp = comparePolicy(policy, e.result.quote, e.result.tcbStatus, allAdvisoryIds(e.result));
  const rows = cmp.rows
    .map((x) => {
      const expected = x.pinned ? x.expected.map(esc).join('<br>') : '<em>not pinned</em>';
      const cls = x.ok ? '' : ' class="bad"';
      return `<tr${cls}><td>${esc(x.what)}</td><td class="h">${expected}</td><td class="h">${esc(x.actual)}</td><td>${x.ok ? 'ok' : 'MISMATCH'}</td></tr>`;
    })
    .join('');
  const note = cmp.softwarePinned ? '' : '<p id="ratls-unpinned">This policy pins no software (MRTD, RTMR0-3): any TD on a genuine platform would pass it.</p>';
  return `<h2>Expected and presented</h2><table id="ratls-expectations"><tr><th>what</th><th>policy expects</th><th>server presented</th><th></th></tr>${rows}</table>${note}`;
}

const STYLE = `body{font:15px/1.45 system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#222}
h1{font-size:1.5rem}.bad{color:#a00}.ok{color:#070}.sim{background:#fc0;color:#000;padding:.6rem 1rem;font-weight:bold;border-radius:4px}
code,td.h{font-family:ui-monospace,monospace;font-size:13px;word-break:break-all}table{border-collapse:collapse}td{padding:.2rem .6rem;border-bottom:1px solid #ddd;vertical-align:top}`;

function page(title: string, body: string): string {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1"><title>${esc(title)}</title><style>${STYLE}</style></head><body>${body}</body></html>\n`;
}

function eventJson(e: AttestationEvent | null): unknown {
  if (!e) return null;
  return {
    at: e.at.toISOString(),
    peer: e.peer,
    certificateSha256: e.certSha256 ?? null,
    binding: e.binding ?? null,
    sessionBound: e.sessionBound === true,
    nonceVerified: e.nonceVerified,
    platform: e.result.quote?.ppid ? { ppid: e.result.quote.ppid, fmspc: e.result.quote.fmspc ?? null, pceId: e.result.quote.pceId ?? null } : null,
    result: e.result,
  };
}

/** JSON body of the refusal. */
export function refusalJson(upstream: string, e: AttestationEvent | null, fallback?: { code: string; message: string }, policy?: AppraisalPolicy): string {
  const errors = e?.result.errors ?? (fallback ? [fallback] : []);
  return (
    JSON.stringify(
      {
        error: 'ATTESTATION_FAILED',
        message: `ratls connect refused to forward to ${upstream}: the server did not pass attestation.`,
        upstream,
        errors,
        attestation: eventJson(e),
        ...(e && policy ? { policyCheck: policyCheckJson(e.result, policy) } : {}),
      },
      null,
      2,
    ) + '\n'
  );
}

/** HTML refusal page: why the server was refused, with codes and messages. */
export function refusalHtml(upstream: string, e: AttestationEvent | null, fallback?: { code: string; message: string }, policy?: AppraisalPolicy): string {
  const errors = e?.result.errors ?? (fallback ? [fallback] : []);
  const items = errors.map((x) => `<li><code>${esc(x.code)}</code>: ${esc(x.message)}</li>`).join('');
  const checks = (e?.result.checks ?? [])
    .map((c) => `<tr><td class="${c.ok ? 'ok' : 'bad'}">${checkMark(c)}</td><td>${esc(c.name)}</td><td>${esc(c.detail ?? '')}</td></tr>`)
    .join('');
  return page(
    'Refused: attestation failed',
    `${e?.result.nonIntelRoot ? '<p class="sim" id="ratls-simulated">SIMULATED: this server chains to a simulated (non-Intel) root.</p>' : ''}<h1 class="bad" id="ratls-refused">Refused: ${esc(upstream)} did not pass attestation</h1>
<p>ratls connect verified the server's RA-TLS evidence and it does not meet the policy, so <strong>nothing was sent to it</strong>: not this request, not your cookies, not your prompt.</p>
<h2>Why</h2><ul id="ratls-reasons">${items || '<li>No reason recorded.</li>'}</ul>
${e?.result.quote ? expectationTable(e, policy ?? {}) : ''}
${checks ? `<h2>Checks</h2><table>${checks}</table>` : ''}
<p>${e ? `Checked ${esc(e.at.toISOString())} (peer ${esc(e.peer)}${e.certSha256 ? `, certificate sha256 <code>${esc(e.certSha256)}</code>` : ''}).` : ''} Details: <a href="/.ratls/status">/.ratls/status</a>. If you expected this server to pass, ask its operator for the current policy (<code>ratls policy from --url ${esc(upstream)}</code>) and compare.</p>`,
  );
}

/** JSON body of the status page. */
export function statusJson(s: ConnectStatus): string {
  return JSON.stringify({ ...s, lastVerified: eventJson(s.lastVerified), lastFailure: eventJson(s.lastFailure) }, null, 2) + '\n';
}

/** HTML status page. */
export function statusHtml(s: ConnectStatus): string {
  const v = s.lastVerified;
  const q = v?.result.quote;
  const sim = (v ?? s.lastFailure)?.result.nonIntelRoot;
  const rows: Array<[string, string]> = [];
  if (v) {
    rows.push(['Last verified', v.at.toISOString()]);
    rows.push(['TCB status', v.result.tcbStatus ?? 'unknown']);
    rows.push(['Advisories', allAdvisoryIds(v.result).join(', ') || 'none']);
    rows.push(['Certificate sha256', v.certSha256 ?? '']);
    rows.push([
      'Binding',
      v.sessionBound
        ? 'session: evidence bound to each upstream TLS session (RFC 9266 exporter); a leaked key cannot relay it'
        : 'certificate only: bound to the TLS key, not the session; relayable if the TLS key leaks',
    ]);
    rows.push(['Fresh evidence', v.nonceVerified ? 'passed (quoted after our nonce)' : 'not required by policy']);
  }
  if (q) {
    for (const [k, f] of [
      ['MRTD', q.mrTd],
      ['RTMR0', q.rtmr0],
      ['RTMR1', q.rtmr1],
      ['RTMR2', q.rtmr2],
      ['RTMR3', q.rtmr3],
      ['MRSEAM', q.mrSeam],
      ['XFAM', q.xfam],
      ['TDATTRIBUTES', q.tdAttributes],
    ] as const)
      rows.push([k, f]);
    rows.push(['DEBUG', q.debug ? 'yes' : 'no']);
    rows.push(['Platform (PCK)', q.ppid ? `PPID ${q.ppid}, FMSPC ${q.fmspc ?? '?'}, PCE ID ${q.pceId ?? '?'}` : 'unknown']);
  }
  rows.push(['Connections verified / refused', `${s.verifications} / ${s.refusals}`]);
  rows.push(['Certificate changes seen', `${s.certificateChanges}${s.lastCertificateChangeAt ? ` (last ${s.lastCertificateChangeAt})` : ''}`]);
  const table = rows.map(([k, val]) => `<tr><td>${esc(k)}</td><td class="h">${esc(val)}</td></tr>`).join('');
  const stateLine =
    s.state === 'verified' && v
      ? `<p class="ok" id="ratls-state">VERIFIED: ${esc(s.upstream)} passed attestation. ${esc(verdictText(v.result, comparePolicy(s.policy ?? {}, v.result.quote, v.result.tcbStatus, allAdvisoryIds(v.result))))}</p>`
      : s.state === 'refused'
        ? `<p class="bad" id="ratls-state">REFUSED: ${esc(s.upstream)} failed attestation; nothing is forwarded. ${esc(s.lastFailure?.result.errors.map((e) => `${e.code}: ${e.message}`).join(' ') ?? '')}</p>`
        : `<p id="ratls-state">Not verified yet.</p>`;
  return page(
    'ratls connect: attestation status',
    `${sim ? '<p class="sim" id="ratls-simulated">SIMULATED: this server chains to a simulated (non-Intel) root. It proves nothing about real TDX hardware.</p>' : ''}
<h1>Attestation status of ${esc(s.upstream)}</h1>${stateLine}<table>${table}</table>
${v?.result.quote ? expectationTable(v, s.policy ?? {}) : s.lastFailure?.result.quote ? expectationTable(s.lastFailure, s.policy ?? {}) : ''}
<p><a href="/.ratls/status?format=json">JSON</a></p>`,
  );
}
