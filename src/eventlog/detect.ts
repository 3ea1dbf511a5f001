/**
 * Recognises an event-log file by its content, for offline replay (`ratls eventlog replay`): a TCG
 * boot log (CCEL; raw, or as base64 or hex text), ratls-proxy's runtime log, the
 * /.well-known/ratls/eventlog document, dstack's JSON event log, GetQuote response, or V0
 * attestation (attestation.bin), or Confidential Containers' (trustee's) TDX evidence JSON.
 * Browser-safe.
 */
import { RatlsError } from '../core/errors.ts';
import { constantTimeEqual, fromBase64, fromHex } from '../core/bytes.ts';
import { parseEventLogDocument, type ServedLogs } from './document.ts';
import { decodeDstackAttestation, parseDstackEventLogJson, type DstackEvent } from './dstack.ts';
import { runtimeLogHeader } from './runtime.ts';
import { parseTcgLog } from './tcg.ts';
import { acpiCcelTableReason, foreignEvidenceJsonReason, legacySha1LogReason, missingSha384Reason, pcrIndexedLogReason } from './identify.ts';

/** What one file contributed. */
export interface EventLogFile {
  kind: 'tcg-boot' | 'ratls-runtime' | 'ratls-document' | 'dstack-json' | 'dstack-getquote' | 'dstack-attestation' | 'coco-tdx-evidence';
  logs: ServedLogs;
  dstack?: DstackEvent[];
  /** A quote the file carries (dstack attestation and GetQuote, CoCo evidence). */
  quote?: Uint8Array;
  /** What the file holds that is shown but not replayed, and why. */
  notReplayed?: string;
}

/** A text file holding one base64 or hex blob (how logs travel in JSON evidence and tickets). */
function decodeTextBlob(bytes: Uint8Array): Uint8Array | undefined {
  if (bytes.length < 64) return undefined;
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes).trim();
  } catch {
    return undefined;
  }
  if (/^[0-9a-fA-F\s]+$/.test(text)) return fromHex(text.replace(/\s+/g, ''));
  return fromBase64(text);
}

/**
 * Confidential Containers' TDX evidence (guest-components' attester, trustee's verifier):
 * `{"quote": base64, "cc_eventlog": base64 CCEL, "aa_eventlog": text}`. The attestation agent's
 * own log (AAEL) is shown as not replayed: its digest rules changed between releases and no
 * public pair of log and quote pins them down.
 */
function cocoTdxEvidence(o: Record<string, unknown>): EventLogFile {
  const quote = typeof o.quote === 'string' ? fromBase64(o.quote) : undefined;
  if (!quote) throw new RatlsError('EVENTLOG_MALFORMED', 'The TDX evidence JSON has no base64 "quote".');
  let bootLog: Uint8Array | undefined;
  if (o.cc_eventlog !== undefined && o.cc_eventlog !== null) {
    bootLog = typeof o.cc_eventlog === 'string' ? fromBase64(o.cc_eventlog) : undefined;
    if (!bootLog || !isTcg(bootLog)) throw new RatlsError('EVENTLOG_MALFORMED', 'The TDX evidence\'s "cc_eventlog" is not a base64 TCG event log (CCEL).');
  }
  const aa = typeof o.aa_eventlog === 'string' && o.aa_eventlog.trim() !== '' ? o.aa_eventlog : undefined;
  return {
    kind: 'coco-tdx-evidence',
    logs: bootLog ? { bootLog } : {},
    quote,
    ...(aa
      ? {
          notReplayed: `the attestation agent's event log (AAEL, ${aa.trim().split('\n').length} lines) is not replayed: RTMR3 is left to the quote and the policy`,
        }
      : {}),
  };
}

function isTcg(b: Uint8Array): boolean {
  const sig = 'Spec ID Event03';
  if (b.length < 48) return false;
  const type = b[4]! | (b[5]! << 8) | (b[6]! << 16) | (b[7]! << 24);
  if (type !== 3) return false;
  for (let i = 0; i < sig.length; i++) if (b[32 + i] !== sig.charCodeAt(i)) return false;
  return true;
}

/**
 * Why a well-formed TCG log is not a TDX log (a TPM log, no SHA-384 bank), or undefined. A log that
 * does not parse is left to the replay, which reports where it breaks.
 */
function notTdxLog(bytes: Uint8Array): string | undefined {
  let log;
  try {
    log = parseTcgLog(bytes);
  } catch {
    return undefined;
  }
  return pcrIndexedLogReason(log.events) ?? missingSha384Reason(log.specId);
}

/** Reads an event-log file of any supported kind. @throws RatlsError EVENTLOG_MALFORMED when it is none of them. */
export function readEventLogFile(bytes: Uint8Array): EventLogFile {
  if (isTcg(bytes)) {
    const header = runtimeLogHeader();
    if (bytes.length >= header.length && constantTimeEqual(bytes.subarray(0, header.length), header))
      return { kind: 'ratls-runtime', logs: { runtimeLog: bytes } };
    const notTdx = notTdxLog(bytes);
    if (notTdx) throw new RatlsError('EVENTLOG_MALFORMED', notTdx);
    return { kind: 'tcg-boot', logs: { bootLog: bytes } };
  }
  const table = acpiCcelTableReason(bytes);
  if (table) throw new RatlsError('EVENTLOG_MALFORMED', table);
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
    if (typeof o.quote === 'string' && ('cc_eventlog' in o || 'aa_eventlog' in o)) return cocoTdxEvidence(o);
    const foreign = foreignEvidenceJsonReason(o);
    if (foreign) throw new RatlsError('EVENTLOG_MALFORMED', foreign);
    if (typeof o.attestation === 'string') {
      const a = decodeDstackAttestation(fromHex(o.attestation) ?? new Uint8Array(0));
      return { kind: 'dstack-attestation', logs: {}, dstack: a.events, quote: a.quote };
    }
    throw new RatlsError(
      'EVENTLOG_MALFORMED',
      'The JSON file is neither a ratls event-log document, a dstack event log, GetQuote response or attestation, nor Confidential Containers TDX evidence.',
    );
  }
  const blob = decodeTextBlob(bytes);
  if (blob && isTcg(blob)) return readEventLogFile(blob);
  const sha1Log = legacySha1LogReason(bytes);
  if (sha1Log) throw new RatlsError('EVENTLOG_MALFORMED', sha1Log);
  if (bytes[0] === 0 && bytes[1] === 0) {
    const a = decodeDstackAttestation(bytes);
    return { kind: 'dstack-attestation', logs: {}, dstack: a.events, quote: a.quote };
  }
  throw new RatlsError(
    'EVENTLOG_MALFORMED',
    "The file is not an event log this tool reads: a TCG log (CCEL, raw or as base64/hex text), ratls-proxy's runtime log or /.well-known/ratls/eventlog document, dstack's event log or attestation, or Confidential Containers TDX evidence JSON.",
  );
}
