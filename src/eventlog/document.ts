/**
 * The document `ratls serve` answers at /.well-known/ratls/eventlog (docs/eventlog.md): the raw
 * boot and runtime logs in base64, plus the server's own decoding for people. Verifiers use only
 * the raw logs and decode them themselves. Browser-safe.
 */
import { RatlsError } from '../core/errors.ts';
import { fromBase64 } from '../core/bytes.ts';

/** Format name and version of the document. */
export const EVENTLOG_DOCUMENT_FORMAT = 'ratls-eventlog';
export const EVENTLOG_DOCUMENT_VERSION = 1;
/** Largest log accepted from a server (a CCEL area is at most a few MiB; padding is trimmed before serving). */
export const MAX_SERVED_LOG_BYTES = 4 * 1024 * 1024;
/**
 * Largest document a verifier reads (`?decoded=false`): both logs at their largest in base64, and
 * room for the rest of the JSON. A server's runtime log may grow to {@link MAX_SERVED_LOG_BYTES}.
 */
export const MAX_EVENTLOG_DOCUMENT_BYTES = Math.ceil((2 * MAX_SERVED_LOG_BYTES * 4) / 3) + 64 * 1024;

/** The served document. */
export interface EventLogDocument {
  format: typeof EVENTLOG_DOCUMENT_FORMAT;
  version: typeof EVENTLOG_DOCUMENT_VERSION;
  /** The TDX boot log (CCEL area up to its last event), or null with the reason. */
  boot: { source: 'ccel' | 'simulated'; log: string; events?: unknown[] } | null;
  bootUnavailable?: string;
  /** ratls-proxy's runtime log, or null when measurement is off or the log is incomplete. */
  runtime: { binding: 'rtmr3' | 'claims'; log: string; replay: string; events?: unknown[] } | null;
  /** Why a measuring server serves no runtime log (it could not record a change). */
  runtimeUnavailable?: string;
}

/** The raw logs of a served document. */
export interface ServedLogs {
  bootLog?: Uint8Array;
  runtimeLog?: Uint8Array;
  /** How the server says the runtime log is bound (the verifier decides from the evidence itself). */
  binding?: 'rtmr3' | 'claims';
  bootUnavailable?: string;
  /** Why the server serves no runtime log although it measures (its own words, at most 300 characters). */
  runtimeUnavailable?: string;
}

function log(v: unknown, what: string): Uint8Array {
  if (typeof v !== 'string' || v.length > (MAX_SERVED_LOG_BYTES * 4) / 3 + 4) {
    throw new RatlsError('EVENTLOG_MALFORMED', `The event log document's ${what} log is not base64 text of at most ${MAX_SERVED_LOG_BYTES} bytes.`);
  }
  const b = fromBase64(v);
  if (!b) throw new RatlsError('EVENTLOG_MALFORMED', `The event log document's ${what} log is not valid base64.`);
  return b;
}

/** Reads the served document (hostile input). Throws RatlsError EVENTLOG_MALFORMED. */
export function parseEventLogDocument(text: string): ServedLogs {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    throw new RatlsError('EVENTLOG_MALFORMED', 'The event log document is not JSON.');
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw new RatlsError('EVENTLOG_MALFORMED', 'The event log document is not a JSON object.');
  const d = doc as Record<string, unknown>;
  if (d.format !== EVENTLOG_DOCUMENT_FORMAT || d.version !== EVENTLOG_DOCUMENT_VERSION) {
    throw new RatlsError('EVENTLOG_MALFORMED', `The event log document is not ${EVENTLOG_DOCUMENT_FORMAT} version ${EVENTLOG_DOCUMENT_VERSION}.`);
  }
  const out: ServedLogs = {};
  const boot = d.boot;
  if (boot !== null && boot !== undefined) {
    if (typeof boot !== 'object') throw new RatlsError('EVENTLOG_MALFORMED', 'The event log document\'s "boot" is not an object.');
    out.bootLog = log((boot as Record<string, unknown>).log, 'boot');
  } else if (typeof d.bootUnavailable === 'string') out.bootUnavailable = d.bootUnavailable.slice(0, 300);
  const rt = d.runtime;
  if (rt !== null && rt !== undefined) {
    if (typeof rt !== 'object') throw new RatlsError('EVENTLOG_MALFORMED', 'The event log document\'s "runtime" is not an object.');
    const r = rt as Record<string, unknown>;
    out.runtimeLog = log(r.log, 'runtime');
    if (r.binding === 'rtmr3' || r.binding === 'claims') out.binding = r.binding;
  } else if (typeof d.runtimeUnavailable === 'string') out.runtimeUnavailable = d.runtimeUnavailable.slice(0, 300);
  return out;
}
