/**
 * How reports show the replayed workload (`ratls verify`, `ratls connect`'s /.ratls/status): how the
 * runtime log is bound, the models with their digests, the versions, the configuration digest, the
 * pinned images, dstack's runtime events and the named boot events. Text from the server is
 * cleaned of control characters and escaped for HTML.
 */
import type { WorkloadReport } from '../eventlog/workload-report.ts';
import { clean } from '../verify/report.ts';

/** One row: a label and its value, for text and HTML alike. */
type Row = [string, string];

function size(bytes: number): string {
  if (bytes >= 1e9) return `${(bytes / 1e9).toFixed(1)} GB`;
  if (bytes >= 1e6) return `${(bytes / 1e6).toFixed(0)} MB`;
  return `${bytes} B`;
}

/** A sentence saying how the runtime log is bound and how much of it the evidence covers. */
export function bindingText(w: WorkloadReport): string {
  const rt = w.runtime;
  if (!rt) return w.unavailable ? `no runtime event log (${w.unavailable})` : 'no runtime event log';
  const how = w.binding === 'rtmr3' ? 'extended into RTMR3' : 'bound by the runtime-log claim (the kernel could not extend RTMR3)';
  const total = rt.covered + rt.pending;
  const cov = rt.coveredBy ? `${rt.covered} of ${total} events covered by the ${rt.coveredBy}` : `NOT covered by the evidence (${total} events)`;
  return `runtime log ${how}; ${cov}${rt.pending > 0 && rt.coveredBy ? `, ${rt.pending} recorded since (pending)` : ''}`;
}

/** The rows of the workload, most important first. */
export function workloadRows(w: WorkloadReport): Row[] {
  const rows: Row[] = [['Binding', bindingText(w)]];
  const rt = w.runtime;
  if (rt) {
    if (rt.proxy) rows.push(['ratls-proxy', `${rt.proxy.version}, config SHA-384 ${rt.proxy.configDigest}`]);
    rows.push(['open-webui', rt.openWebui ? rt.openWebui.version : 'not recorded']);
    rows.push(['Ollama', rt.ollama ? rt.ollama.version : 'not recorded']);
    if (rt.models.length === 0) rows.push(['Models', 'none']);
    for (const [i, m] of rt.models.entries()) {
      const details = [m.family, m.parameterSize, m.quantization, size(m.size)].filter(Boolean).join(' ');
      rows.push([i === 0 ? 'Models' : '', `${m.name}  digest ${m.digest}  ${details}${m.pending ? '  (pending: recorded after the evidence)' : ''}`]);
    }
    for (const r of rt.removed) rows.push(['Removed', `${r.name}  digest ${r.digest}  (event #${r.seq})`]);
    for (const i of rt.images) rows.push([`Image ${i.role}`, `${i.image}@${i.digest}`]);
  }
  if (w.dstack) {
    const replayed = Object.entries(w.dstack.replayed)
      .filter(([, v]) => v !== 'not checked')
      .map(([k, v]) => `${k} ${v}`)
      .join(', ');
    rows.push(['dstack log', replayed || 'not replayed']);
    for (const e of w.dstack.events.filter((x) => x.register === 'RTMR3')) rows.push([`  ${e.name}`, e.value || '(empty)']);
  }
  if (w.boot) {
    const replayed = Object.entries(w.boot.replayed)
      .map(([k, v]) => `${k} ${v}`)
      .join(', ');
    rows.push(['Boot log', `${w.boot.eventCount} events; ${replayed}`]);
    for (const e of w.boot.events) {
      const what = e.text !== undefined && e.kind === 'kernel-cmdline' ? e.text : e.label;
      rows.push([`  ${e.kind}`, `${e.register} #${e.index} ${what.split('\n')[0]!.slice(0, 160)}  (${e.digest.slice(0, 16)}…)`]);
    }
  } else if (!w.dstack) rows.push(['Boot log', w.unavailable && !w.runtime ? 'not served' : 'not served by this server']);
  return rows.map(([k, v]) => [clean(k), clean(v)]);
}

/** Text lines for the CLI report (indented like its other sections). */
export function workloadLines(w: WorkloadReport): string[] {
  return ['  Workload:       (what answers, replayed from the event logs)', ...workloadRows(w).map(([k, v]) => `    ${k.padEnd(22)} ${v}`)];
}
