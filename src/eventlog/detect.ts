/**
 * Recognises an event-log file by its content, for offline replay (`ratls eventlog replay`): a TCG
 * boot log (CCEL), ratls-proxy's runtime log, the /.well-known/ratls/eventlog document, dstack's
 * JSON event log, GetQuote response, or V0 attestation (attestation.bin). Browser-safe.
 */
import { RatlsError } from '../core/errors.ts';
import { constantTimeEqual, fromHex } from '../core/bytes.ts';
import { parseEventLogDocument, type ServedLogs } from './document.ts';
import { decodeDstackAttestation, parseDstackEventLogJson, type DstackEvent } from './dstack.ts';
import { runtimeLogHeader } from './runtime.ts';

/** What one file contributed. */
export interface EventLogFile {
  kind: 'tcg-boot' | 'ratls-runtime' | 'ratls-document' | 'dstack-json' | 'dstack-getquote' | 'dstack-attestation';
  logs: ServedLogs;
  dstack?: DstackEvent[];
  /** A quote the file carries (dstack attestation and GetQuote). */
  quote?: Uint8Array;
}

function isTcg(b: Uint8Array): boolean {
  const sig = 'Spec ID Event03';
  if (b.length < 48) return false;
  const type = b[4]! | (b[5]! << 8) | (b[6]! << 16) | (b[7]! << 24);
  if (type !== 3) return false;
  for (let i = 0; i < sig.length; i++) if (b[32 + i] !== sig.charCodeAt(i)) return false;
  return true;
}

/** Reads an event-log file of any supported kind. @throws RatlsError EVENTLOG_MALFORMED when it is none of them. */
export function readEventLogFile(bytes: Uint8Array): EventLogFile {
  if (isTcg(bytes)) {
    const header = runtimeLogHeader();
    if (bytes.length >= header.length && constantTimeEqual(bytes.subarray(0, header.length), header))
      return { kind: 'ratls-runtime', logs: { runtimeLog: bytes } };
    return { kind: 'tcg-boot', logs: { bootLog: bytes } };
  }
  const first = bytes.find((c) => c !== 0x20 && c !== 0x0a && c !== 0x0d && c !== 0x09);
  if (first === 0x7b || first === 0x5b) {
    let text: string;
    try {
      text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
    } catch {
      throw new RatlsError('EVENTLOG_MALFORMED', 'The event log file looks like JSON but is not UTF-8.');
    }
    if (first === 0x5b) return { kind: 'dstack-json', logs: {}, dstack: parseDstackEventLogJson(text) };
    let doc: unknown;
    try {
      doc = JSON.parse(text);
    } catch {
      throw new RatlsError('EVENTLOG_MALFORMED', 'The event log file is not valid JSON.');
    }
    const o = doc as Record<string, unknown>;
    if (o.format !== undefined) return { kind: 'ratls-document', logs: parseEventLogDocument(text) };
    if (typeof o.event_log === 'string' || Array.isArray(o.event_log)) {
      const events = parseDstackEventLogJson(o.event_log);
      const quote = typeof o.quote === 'string' ? fromHex(o.quote) : undefined;
      return { kind: 'dstack-getquote', logs: {}, dstack: events, ...(quote ? { quote } : {}) };
    }
    if (typeof o.attestation === 'string') {
      const a = decodeDstackAttestation(fromHex(o.attestation) ?? new Uint8Array(0));
      return { kind: 'dstack-attestation', logs: {}, dstack: a.events, quote: a.quote };
    }
    throw new RatlsError('EVENTLOG_MALFORMED', 'The JSON file is neither a ratls event-log document nor a dstack event log, GetQuote response or attestation.');
  }
  if (bytes[0] === 0 && bytes[1] === 0) {
    const a = decodeDstackAttestation(bytes);
    return { kind: 'dstack-attestation', logs: {}, dstack: a.events, quote: a.quote };
  }
  throw new RatlsError(
    'EVENTLOG_MALFORMED',
    "The file is not an event log this tool reads: a TCG log (CCEL), ratls-proxy's runtime log or /.well-known/ratls/eventlog document, or dstack's event log or attestation.",
  );
}
