/**
 * A bounds-checked little-endian reader over hostile bytes: every read checks the remaining length
 * first and fails with EVENTLOG_MALFORMED naming what was being read and where. Browser-safe.
 */
import { RatlsError } from '../core/errors.ts';

/** Reads integers and byte runs from `bytes`, never past its end. */
export class ByteReader {
  offset = 0;

  constructor(
    readonly bytes: Uint8Array,
    /** Names the input in error messages ("the boot event log"). */
    private readonly what: string,
  ) {}

  get remaining(): number {
    return this.bytes.length - this.offset;
  }

  /** Throws EVENTLOG_MALFORMED unless `n` more bytes are there. */
  need(n: number, field: string): void {
    if (!Number.isSafeInteger(n) || n < 0 || n > this.remaining) {
      throw new RatlsError(
        'EVENTLOG_MALFORMED',
        `${this.what} is truncated or corrupt: ${field} at byte ${this.offset} needs ${n} bytes but only ${this.remaining} remain.`,
      );
    }
  }

  u8(field: string): number {
    this.need(1, field);
    return this.bytes[this.offset++]!;
  }

  u16(field: string): number {
    this.need(2, field);
    const b = this.bytes;
    const v = b[this.offset]! | (b[this.offset + 1]! << 8);
    this.offset += 2;
    return v;
  }

  u32(field: string): number {
    this.need(4, field);
    const b = this.bytes;
    const o = this.offset;
    const v = (b[o]! | (b[o + 1]! << 8) | (b[o + 2]! << 16) | (b[o + 3]! << 24)) >>> 0;
    this.offset += 4;
    return v;
  }

  /** A u64 that must fit a safe integer (lengths and counts); larger values are malformed. */
  u64(field: string): number {
    const lo = this.u32(field);
    const hi = this.u32(field);
    if (hi >= 0x200000) {
      throw new RatlsError(
        'EVENTLOG_MALFORMED',
        `${this.what}: ${field} at byte ${this.offset - 8} is too large to be a length or address this reader accepts.`,
      );
    }
    return hi * 0x1_0000_0000 + lo;
  }

  /** A view (not a copy) of the next `n` bytes. */
  take(n: number, field: string): Uint8Array {
    this.need(n, field);
    const out = this.bytes.subarray(this.offset, this.offset + n);
    this.offset += n;
    return out;
  }
}

/** Decodes UTF-8 strictly; malformed text is a malformed log. */
export function utf8Strict(b: Uint8Array, what: string): string {
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(b);
  } catch {
    throw new RatlsError('EVENTLOG_MALFORMED', `${what} is not valid UTF-8 text.`);
  }
}

/** Printable ASCII of `b` up to its first NUL, or undefined when it holds anything else. */
export function asciiText(b: Uint8Array): string | undefined {
  let end = b.indexOf(0);
  if (end < 0) end = b.length;
  // Only trailing NULs may follow the text; otherwise these are not a string.
  for (let i = end; i < b.length; i++) if (b[i] !== 0) return undefined;
  let s = '';
  for (let i = 0; i < end; i++) {
    const c = b[i]!;
    // Tabs and line breaks occur in GRUB's measured commands (a whole menuentry is one event).
    if ((c < 0x20 || c > 0x7e) && c !== 0x09 && c !== 0x0a && c !== 0x0d) return undefined;
    s += String.fromCharCode(c);
  }
  return s;
}

/** UTF-16LE text of `b` up to the first NUL code unit (lone surrogates replaced). */
export function utf16leText(b: Uint8Array): string {
  let s = '';
  for (let i = 0; i + 1 < b.length; i += 2) {
    const c = b[i]! | (b[i + 1]! << 8);
    if (c === 0) break;
    s += String.fromCharCode(c);
  }
  return s.replace(/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g, '\uFFFD');
}

/** Encodes text as UTF-16LE (what UEFI load options hold). */
export function utf16le(text: string, nul: boolean): Uint8Array {
  const out = new Uint8Array((text.length + (nul ? 1 : 0)) * 2);
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    out[2 * i] = c & 0xff;
    out[2 * i + 1] = c >> 8;
  }
  return out;
}

/** Little-endian u32 bytes. */
export function u32le(v: number): Uint8Array {
  return Uint8Array.of(v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, (v >>> 24) & 0xff);
}

/** Little-endian u64 bytes of a safe integer. */
export function u64le(v: number): Uint8Array {
  const out = new Uint8Array(8);
  out.set(u32le(v >>> 0), 0);
  out.set(u32le(Math.floor(v / 0x1_0000_0000)), 4);
  return out;
}
