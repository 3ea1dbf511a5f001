/**
 * The TCG PC Client crypto-agile event log (TCG PFP 1.05, section 10): the format of the TDX
 * guest's CCEL area and of ratls-proxy's runtime log. Hostile input: every length is checked
 * against what remains, the walk is bounded by the input size, and the only exception is
 * RatlsError EVENTLOG_MALFORMED. Browser-safe.
 *
 *   record 0: TCG_PCR_EVENT  { u32 mrIndex, u32 type = EV_NO_ACTION, u8 digest[20] = 0, u32 size,
 *                              TCG_EfiSpecIDEvent }
 *   then:     TCG_PCR_EVENT2 { u32 mrIndex, u32 type, u32 count, count x {u16 algId, digest},
 *                              u32 size, u8 data[size] }
 *   end:      the end of the input, or a header of 0xFFFFFFFF (OVMF's 0xFF fill) or all zeros
 *             (td-shim's zero fill); everything after it must be that same fill byte.
 */
import { RatlsError } from '../core/errors.ts';
import { ByteReader } from './reader.ts';
import { ALG_SHA384, DIGEST_ALGORITHMS, EV } from './tcg-types.ts';

/** One digest of a record. */
export interface TcgDigest {
  algId: number;
  digest: Uint8Array;
}

/** One record of the log. */
export interface TcgEvent {
  /** Record number: 0 is the Spec ID header, real events count from 1. */
  index: number;
  /** Byte offset of the record in the log. */
  offset: number;
  /** The log's register index: 1..4 = RTMR0..3 on TDX. */
  mrIndex: number;
  eventType: number;
  digests: TcgDigest[];
  data: Uint8Array;
}

/** The Spec ID event of the first record. */
export interface SpecIdEvent {
  platformClass: number;
  specVersion: string;
  specErrata: number;
  uintnSize: number;
  algorithms: Array<{ algId: number; digestSize: number }>;
  vendorInfo: Uint8Array;
}

/** A parsed log. */
export interface TcgLog {
  specId: SpecIdEvent;
  /** Every record after the Spec ID header, in log order. */
  events: TcgEvent[];
  /** Bytes up to the end of the last record (a served log trims the fill after it). */
  usedBytes: number;
  /** What followed the last record: nothing, OVMF's 0xFF fill or td-shim's zero fill. */
  fill: 'none' | 'ff' | '00';
}

/** Limits that keep a hostile log from costing more than a real one. */
export interface TcgParseLimits {
  /** Largest input accepted (default 16 MiB; real CCEL areas are 64 KiB to 1 MiB). */
  maxBytes?: number;
  /** Most records accepted (default 65536). */
  maxEvents?: number;
}

const SPEC_ID_SIGNATURE = 'Spec ID Event03';
const MAX_ALGORITHMS = 16;

/** Parses a TCG crypto-agile event log. Throws RatlsError EVENTLOG_MALFORMED. */
export function parseTcgLog(bytes: Uint8Array, what = 'The event log', limits: TcgParseLimits = {}): TcgLog {
  const maxBytes = limits.maxBytes ?? 16 * 1024 * 1024;
  const maxEvents = limits.maxEvents ?? 65536;
  if (!(bytes instanceof Uint8Array)) throw new RatlsError('EVENTLOG_MALFORMED', `${what} is not a byte array.`);
  if (bytes.length > maxBytes) throw new RatlsError('EVENTLOG_MALFORMED', `${what} is ${bytes.length} bytes; at most ${maxBytes} are accepted.`);
  const r = new ByteReader(bytes, what);
  const specId = readSpecIdRecord(r, what);
  const sizes = new Map(specId.algorithms.map((a) => [a.algId, a.digestSize]));
  const events: TcgEvent[] = [];
  let fill: TcgLog['fill'] = 'none';
  let usedBytes = r.offset;
  while (r.remaining > 0) {
    const offset = r.offset;
    // A header that cannot even hold mrIndex + type is fill, or garbage: decided by the fill check.
    if (r.remaining < 8) {
      fill = fillAfter(bytes, offset, what);
      break;
    }
    const head = bytes.subarray(offset, offset + 8);
    if (head.every((b) => b === 0xff)) {
      fill = fillAfter(bytes, offset, what, 0xff);
      break;
    }
    if (head.every((b) => b === 0)) {
      fill = fillAfter(bytes, offset, what, 0);
      break;
    }
    if (events.length >= maxEvents) throw new RatlsError('EVENTLOG_MALFORMED', `${what} has more than ${maxEvents} records.`);
    const index = events.length + 1;
    const field = (f: string) => `record #${index} ${f}`;
    const mrIndex = r.u32(field('register index'));
    const eventType = r.u32(field('event type'));
    const count = r.u32(field('digest count'));
    // TCG: a record carries one digest per bank of the Spec ID event, each bank once.
    if (count !== specId.algorithms.length) {
      throw new RatlsError(
        'EVENTLOG_MALFORMED',
        `${what}: record #${index} at byte ${offset} has ${count} digests, but the log declares ${specId.algorithms.length} digest algorithm(s).`,
      );
    }
    const digests: TcgDigest[] = [];
    for (let i = 0; i < count; i++) {
      const algId = r.u16(field('digest algorithm'));
      const size = sizes.get(algId);
      if (size === undefined) {
        throw new RatlsError(
          'EVENTLOG_MALFORMED',
          `${what}: record #${index} at byte ${offset} uses digest algorithm 0x${algId.toString(16)}, which the log does not declare.`,
        );
      }
      if (digests.some((d) => d.algId === algId)) {
        throw new RatlsError('EVENTLOG_MALFORMED', `${what}: record #${index} at byte ${offset} carries digest algorithm 0x${algId.toString(16)} twice.`);
      }
      digests.push({ algId, digest: r.take(size, field('digest')) });
    }
    const size = r.u32(field('event size'));
    const data = r.take(size, field('event data'));
    events.push({ index, offset, mrIndex, eventType, digests, data });
    usedBytes = r.offset;
  }
  return { specId, events, usedBytes, fill };
}

function readSpecIdRecord(r: ByteReader, what: string): SpecIdEvent {
  r.u32('the Spec ID record register index'); // OVMF writes 1, td-shim 0: meaningless here
  const type = r.u32('the Spec ID record event type');
  if (type !== EV.NO_ACTION) {
    throw new RatlsError(
      'EVENTLOG_MALFORMED',
      `${what} does not start with a TCG Spec ID event (first record type 0x${type.toString(16)}, expected EV_NO_ACTION).`,
    );
  }
  const sha1 = r.take(20, 'the Spec ID record digest');
  if (sha1.some((b) => b !== 0)) throw new RatlsError('EVENTLOG_MALFORMED', `${what}: the Spec ID record's digest must be zero.`);
  const size = r.u32('the Spec ID event size');
  const body = new ByteReader(r.take(size, 'the Spec ID event'), `${what} (Spec ID event)`);
  const sig = body.take(16, 'signature');
  const sigText = String.fromCharCode(...sig.subarray(0, 15));
  if (sigText !== SPEC_ID_SIGNATURE || sig[15] !== 0) {
    throw new RatlsError('EVENTLOG_MALFORMED', `${what} is not a TCG crypto-agile log (no "${SPEC_ID_SIGNATURE}" signature).`);
  }
  const platformClass = body.u32('platform class');
  const minor = body.u8('spec version minor');
  const major = body.u8('spec version major');
  const specErrata = body.u8('spec errata');
  const uintnSize = body.u8('uintn size');
  const n = body.u32('number of algorithms');
  if (n === 0 || n > MAX_ALGORITHMS)
    throw new RatlsError('EVENTLOG_MALFORMED', `${what} declares ${n} digest algorithms; 1 to ${MAX_ALGORITHMS} are accepted.`);
  const algorithms: SpecIdEvent['algorithms'] = [];
  for (let i = 0; i < n; i++) {
    const algId = body.u16('algorithm id');
    const digestSize = body.u16('digest size');
    const known = DIGEST_ALGORITHMS.get(algId);
    if (known && known.size !== digestSize) {
      throw new RatlsError('EVENTLOG_MALFORMED', `${what} declares ${known.name} with ${digestSize}-byte digests; it has ${known.size}.`);
    }
    if (digestSize === 0 || digestSize > 128) throw new RatlsError('EVENTLOG_MALFORMED', `${what} declares an implausible digest size ${digestSize}.`);
    if (algorithms.some((a) => a.algId === algId)) throw new RatlsError('EVENTLOG_MALFORMED', `${what} declares algorithm 0x${algId.toString(16)} twice.`);
    algorithms.push({ algId, digestSize });
  }
  const vendorSize = body.u8('vendor info size');
  const vendorInfo = body.take(vendorSize, 'vendor info');
  if (body.remaining !== 0) throw new RatlsError('EVENTLOG_MALFORMED', `${what}: ${body.remaining} stray bytes follow the Spec ID event.`);
  return { platformClass, specVersion: `${major}.${minor}`, specErrata, uintnSize, algorithms, vendorInfo };
}

/** Checks that everything from `offset` is one fill byte; returns which. */
function fillAfter(bytes: Uint8Array, offset: number, what: string, expected?: number): TcgLog['fill'] {
  const b = expected ?? bytes[offset]!;
  if (b !== 0xff && b !== 0) {
    throw new RatlsError('EVENTLOG_MALFORMED', `${what}: ${bytes.length - offset} bytes at byte ${offset} are neither a whole record nor fill.`);
  }
  for (let i = offset; i < bytes.length; i++) {
    if (bytes[i] !== b) {
      throw new RatlsError(
        'EVENTLOG_MALFORMED',
        `${what}: the log ends at byte ${offset}, but byte ${i} after it is 0x${bytes[i]!.toString(16).padStart(2, '0')}, not fill; records after the end marker are hidden from replay.`,
      );
    }
  }
  return b === 0xff ? 'ff' : '00';
}

/** The SHA-384 digest of a record, or undefined when the log has no SHA-384 bank. */
export function sha384Of(e: TcgEvent): Uint8Array | undefined {
  return e.digests.find((d) => d.algId === ALG_SHA384)?.digest;
}

/** True when the log carries SHA-384 digests (the bank TDX registers use). */
export function hasSha384(log: TcgLog): boolean {
  return log.specId.algorithms.some((a) => a.algId === ALG_SHA384);
}
