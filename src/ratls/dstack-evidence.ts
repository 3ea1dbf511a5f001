/**
 * The evidence in dstack's RA-TLS certificates (Dstack-TEE/dstack ra-tls): since dstack 0.5.9 the
 * quote and its event log travel together in 1.3.6.1.4.1.62397.1.8 as a versioned attestation
 * (V0 = SCALE, src/eventlog/dstack.ts); older certificates carry the raw quote in .1.1 and a JSON
 * event log in .1.2 (optionally "ELGZv1" + gzip). Every value is DER OCTET STRING-wrapped inside
 * extnValue. Certificates strip the log to the RTMR3 runtime events (payload kept, digest emptied),
 * so only RTMR3 can be replayed from a certificate. Browser-safe (DecompressionStream for gzip).
 */
import { RatlsError } from '../core/errors.ts';
import { decodeDstackAttestation, parseDstackEventLogJson, type DstackEvent } from '../eventlog/dstack.ts';
import type { RatlsCertificateView } from './certificate.ts';
import { OID_DSTACK_EVENT_LOG, OID_DSTACK_QUOTE } from './extension.ts';

/** dstack's versioned attestation extension (quote and event log together). */
export const OID_DSTACK_ATTESTATION = '1.3.6.1.4.1.62397.1.8';

/** What a dstack certificate carries. */
export interface DstackCertEvidence {
  /** Which extension held the quote. */
  source: typeof OID_DSTACK_ATTESTATION | typeof OID_DSTACK_QUOTE;
  quote: Uint8Array;
  /** The event log; undefined when an old certificate carries none. */
  events?: DstackEvent[];
}

const ELGZ_MAGIC = 'ELGZv1';
const MAX_INFLATED_LOG = 16 * 1024;

/** Unwraps a DER OCTET STRING when `b` is exactly one; undefined otherwise. */
export function unwrapOctetString(b: Uint8Array): Uint8Array | undefined {
  if (b[0] !== 0x04 || b.length < 2) return undefined;
  let len = b[1]!;
  let off = 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n < 1 || n > 3 || b.length < 2 + n) return undefined;
    len = 0;
    for (let i = 0; i < n; i++) len = (len << 8) | b[2 + i]!;
    off = 2 + n;
  }
  return off + len === b.length ? b.subarray(off) : undefined;
}

async function gunzip(b: Uint8Array): Promise<Uint8Array> {
  const stream = new Blob([b.slice().buffer as ArrayBuffer]).stream().pipeThrough(new DecompressionStream('gzip'));
  const reader = stream.getReader();
  const parts: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    size += value.length;
    // dstack's own reader caps the inflated log at 16 KiB; a bigger one is a decompression bomb
    if (size > MAX_INFLATED_LOG) {
      await reader.cancel();
      throw new RatlsError('EVENTLOG_MALFORMED', `dstack's compressed event log inflates to more than ${MAX_INFLATED_LOG} bytes.`);
    }
    parts.push(value);
  }
  const out = new Uint8Array(size);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/** The .1.2 JSON event log, plain or "ELGZv1" + gzip. */
async function eventLogExtension(value: Uint8Array): Promise<DstackEvent[]> {
  let b = unwrapOctetString(value) ?? value;
  if (b.length >= ELGZ_MAGIC.length && String.fromCharCode(...b.subarray(0, ELGZ_MAGIC.length)) === ELGZ_MAGIC) {
    try {
      b = await gunzip(b.subarray(ELGZ_MAGIC.length));
    } catch (err) {
      if (err instanceof RatlsError) throw err;
      throw new RatlsError('EVENTLOG_MALFORMED', "dstack's compressed event log is not valid gzip.");
    }
  }
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(b);
  } catch {
    throw new RatlsError('EVENTLOG_MALFORMED', "dstack's event log extension is not UTF-8 JSON.");
  }
  return parseDstackEventLogJson(text);
}

/**
 * Reads a dstack certificate's evidence: .1.8 when present (as dstack's own verifier prefers it),
 * else .1.1 with .1.2. Returns undefined when the certificate has neither.
 * @throws RatlsError EVIDENCE_MALFORMED or EVENTLOG_MALFORMED with the reason.
 */
export async function extractDstackEvidence(cert: Pick<RatlsCertificateView, 'extensionsOf'>): Promise<DstackCertEvidence | undefined> {
  const att = cert.extensionsOf(OID_DSTACK_ATTESTATION)[0];
  if (att) {
    const raw = att.value;
    const inner = unwrapOctetString(raw);
    if (!inner) throw new RatlsError('EVIDENCE_MALFORMED', `dstack's attestation extension ${OID_DSTACK_ATTESTATION} is not a DER OCTET STRING.`);
    const a = decodeDstackAttestation(inner);
    return { source: OID_DSTACK_ATTESTATION, quote: a.quote, events: a.events };
  }
  const q = cert.extensionsOf(OID_DSTACK_QUOTE)[0];
  if (!q) return undefined;
  // An unwrapped v4 quote also starts with 0x04, so the wrapping is taken only when its length fits exactly.
  let quote: Uint8Array = q.value;
  if (quote[0] === 0x04 && quote.length > 4) quote = unwrapOctetString(quote) ?? quote;
  const log = cert.extensionsOf(OID_DSTACK_EVENT_LOG)[0];
  return { source: OID_DSTACK_QUOTE, quote, ...(log ? { events: await eventLogExtension(log.value) } : {}) };
}
