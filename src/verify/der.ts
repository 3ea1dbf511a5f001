/**
 * Minimal bounded DER reader for the few X.509 structures DCAP needs.
 *
 * Why not a general ASN.1 library: asn1js/pkijs/@peculiar/x509 each take 0.3-1.2 ms per
 * certificate on the target machines, which alone would exceed the whole 2 ms verification budget.
 * This reader only walks tag-length-value triples, never allocates copies, and rejects anything
 * that is not strict DER (indefinite lengths, multi-byte tags, lengths past the end).
 */
import { RatlsError, type ErrorCode } from '../core/errors.ts';

export const TAG = {
  BOOLEAN: 0x01,
  INTEGER: 0x02,
  BIT_STRING: 0x03,
  OCTET_STRING: 0x04,
  NULL: 0x05,
  OID: 0x06,
  ENUMERATED: 0x0a,
  UTF8_STRING: 0x0c,
  PRINTABLE_STRING: 0x13,
  IA5_STRING: 0x16,
  UTC_TIME: 0x17,
  GENERALIZED_TIME: 0x18,
  SEQUENCE: 0x30,
  SET: 0x31,
} as const;

/** One tag-length-value element: `value` is its contents, `full` the whole encoding. */
export interface Tlv {
  tag: number;
  value: Uint8Array;
  full: Uint8Array;
}

/** Sequential reader over the contents of one constructed element. */
export class DerReader {
  private pos = 0;
  constructor(
    private readonly buf: Uint8Array,
    private readonly code: ErrorCode,
    private readonly what: string,
  ) {}

  private fail(detail: string): never {
    throw new RatlsError(this.code, `${this.what} is not valid DER: ${detail}.`);
  }

  get done(): boolean {
    return this.pos >= this.buf.length;
  }

  peekTag(): number | undefined {
    return this.done ? undefined : this.buf[this.pos];
  }

  /** Reads the next element; when `tag` is given it must match. */
  next(tag?: number): Tlv {
    const b = this.buf;
    const start = this.pos;
    if (start + 2 > b.length) this.fail('unexpected end of data');
    const t = b[start]!;
    if ((t & 0x1f) === 0x1f) this.fail('multi-byte tags are not supported');
    if (tag !== undefined && t !== tag) this.fail(`expected tag 0x${tag.toString(16)} but found 0x${t.toString(16)}`);
    let len = b[start + 1]!;
    let off = start + 2;
    if (len & 0x80) {
      const n = len & 0x7f;
      if (n === 0 || n > 4) this.fail('unsupported length encoding');
      if (off + n > b.length) this.fail('length runs past the end');
      len = 0;
      for (let i = 0; i < n; i++) len = len * 256 + b[off + i]!;
      // DER requires the shortest length form: no leading zero octets, long form only from 128.
      if (b[off] === 0 || len < 0x80) this.fail('non-minimal length encoding');
      off += n;
    }
    if (off + len > b.length) this.fail('element runs past the end');
    this.pos = off + len;
    return { tag: t, value: b.subarray(off, off + len), full: b.subarray(start, off + len) };
  }

  /** Reads the next element only if it has `tag`. */
  optional(tag: number): Tlv | undefined {
    return this.peekTag() === tag ? this.next(tag) : undefined;
  }

  /** Reader over the contents of the next element, which must have `tag`. */
  enter(tag: number): DerReader {
    return new DerReader(this.next(tag).value, this.code, this.what);
  }
}

/** Reader over the contents of the single top-level element of `der` (which must be all of it). */
export function derRoot(der: Uint8Array, tag: number, code: ErrorCode, what: string): { tlv: Tlv; reader: DerReader } {
  const r = new DerReader(der, code, what);
  const tlv = r.next(tag);
  if (!r.done) throw new RatlsError(code, `${what} is not valid DER: trailing bytes after the top-level element.`);
  return { tlv, reader: new DerReader(tlv.value, code, what) };
}

/** Dotted-decimal form of an OBJECT IDENTIFIER's contents. */
export function oidToString(v: Uint8Array): string {
  if (v.length === 0) return '';
  const parts: number[] = [];
  let acc = 0;
  for (let i = 0; i < v.length; i++) {
    const byte = v[i]!;
    acc = acc * 128 + (byte & 0x7f);
    if (acc > Number.MAX_SAFE_INTEGER / 128) return '';
    if ((byte & 0x80) === 0) {
      if (parts.length === 0) {
        const first = acc < 80 ? Math.floor(acc / 40) : 2;
        parts.push(first, acc - first * 40);
      } else {
        parts.push(acc);
      }
      acc = 0;
    }
  }
  return parts.join('.');
}

/** Unsigned value of a DER INTEGER up to 2^53; undefined when negative or too large. */
export function intValue(v: Uint8Array): number | undefined {
  if (v.length === 0 || (v[0]! & 0x80) !== 0) return undefined;
  let n = 0;
  for (let i = 0; i < v.length; i++) {
    n = n * 256 + v[i]!;
    if (n > Number.MAX_SAFE_INTEGER) return undefined;
  }
  return n;
}

/** DER INTEGER contents without sign padding (for comparing serial numbers). */
export function stripIntegerPadding(v: Uint8Array): Uint8Array {
  let i = 0;
  while (i < v.length - 1 && v[i] === 0) i++;
  return v.subarray(i);
}

function digits(s: string, at: number, n: number): number {
  let out = 0;
  for (let i = at; i < at + n; i++) {
    const c = s.charCodeAt(i) - 48;
    if (c < 0 || c > 9) return NaN;
    out = out * 10 + c;
  }
  return out;
}

/** Parses UTCTime / GeneralizedTime in the Z-terminated seconds form X.509 requires. */
export function parseTime(t: Tlv, code: ErrorCode, what: string): Date {
  let s = '';
  for (let i = 0; i < t.value.length; i++) s += String.fromCharCode(t.value[i]!);
  let y: number;
  let rest: number;
  if (t.tag === TAG.UTC_TIME && s.length === 13) {
    const yy = digits(s, 0, 2);
    y = yy >= 50 ? 1900 + yy : 2000 + yy;
    rest = 2;
  } else if (t.tag === TAG.GENERALIZED_TIME && s.length === 15) {
    y = digits(s, 0, 4);
    rest = 4;
  } else {
    throw new RatlsError(code, `${what} has a time that is not in X.509 DER form.`);
  }
  if (s[s.length - 1] !== 'Z') throw new RatlsError(code, `${what} has a time that is not UTC.`);
  const mo = digits(s, rest, 2);
  const d = digits(s, rest + 2, 2);
  const h = digits(s, rest + 4, 2);
  const mi = digits(s, rest + 6, 2);
  const sec = digits(s, rest + 8, 2);
  const ms = Date.UTC(y, mo - 1, d, h, mi, sec);
  const date = new Date(ms);
  // Date.UTC rolls month 13 or 31 February over instead of failing; a real time reads back unchanged.
  if (
    Number.isNaN(ms) ||
    date.getUTCMonth() !== mo - 1 ||
    date.getUTCDate() !== d ||
    date.getUTCHours() !== h ||
    date.getUTCMinutes() !== mi ||
    date.getUTCSeconds() !== sec
  ) {
    throw new RatlsError(code, `${what} has an unreadable time.`);
  }
  return date;
}
