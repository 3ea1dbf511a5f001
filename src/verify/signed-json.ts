/**
 * Intel's signed JSON documents (TCB info, QE identity), read the way Intel's QVL reads them: the
 * signed inner object ("tcbInfo" / "enclaveIdentity") cut out verbatim with its detached signature,
 * and typed readers for its fields. The documents themselves are read in tcb-info.ts and
 * qe-identity.ts.
 *
 * Intel signs the exact bytes of the inner object as served, so the signed text is cut out of the
 * document verbatim and the fields used are parsed from that same text: what is checked is always
 * what was signed, even if the outer document repeats a key.
 */
import { fromHex } from '../core/bytes.ts';
import { RatlsError } from '../core/errors.ts';
import { TCB_STATUSES, type TcbStatus } from '../core/types.ts';

/** The signed inner object's exact text, its parsed value and the detached signature. */
export interface SignedJson {
  signedText: string;
  body: Record<string, unknown>;
  /** 64 bytes r||s (P-256). */
  signature: Uint8Array;
}

/** Throws COLLATERAL_MALFORMED naming the document and what is wrong with it. */
export function malformed(what: string, detail: string): never {
  throw new RatlsError('COLLATERAL_MALFORMED', `${what} is malformed: ${detail}.`);
}

/** Index just past the JSON string starting at `i` (which holds the opening quote). */
function skipString(text: string, i: number, what: string): number {
  for (let j = i + 1; j < text.length; j++) {
    const c = text.charCodeAt(j);
    if (c === 0x5c)
      j++; // backslash escapes the next char
    else if (c === 0x22) return j + 1;
  }
  return malformed(what, 'unterminated string');
}

function skipWs(text: string, i: number): number {
  while (i < text.length) {
    const c = text.charCodeAt(i);
    if (c !== 0x20 && c !== 0x0a && c !== 0x0d && c !== 0x09) break;
    i++;
  }
  return i;
}

/** Index just past the JSON value starting at `i`; linear time, never recursive. */
function skipValue(text: string, i: number, what: string): number {
  const c = text[i];
  if (c === '"') return skipString(text, i, what);
  if (c === '{' || c === '[') {
    let depth = 0;
    for (let j = i; j < text.length; j++) {
      const d = text[j];
      if (d === '"') j = skipString(text, j, what) - 1;
      else if (d === '{' || d === '[') depth++;
      else if (d === '}' || d === ']') {
        depth--;
        if (depth === 0) return j + 1;
      }
    }
    return malformed(what, 'unbalanced brackets');
  }
  let j = i;
  while (j < text.length && !',}] \n\r\t'.includes(text[j]!)) j++;
  if (j === i) malformed(what, `unexpected character at offset ${i}`);
  return j;
}

/** The member name of the JSON string text[start..end), decoded; typed error on a bad escape. */
function decodeKey(text: string, start: number, end: number, what: string): string {
  const raw = text.slice(start, end);
  if (!raw.includes('\\')) return raw.slice(1, -1);
  try {
    return JSON.parse(raw) as string;
  } catch {
    return malformed(what, `member name ${raw.slice(0, 40)} is not a valid JSON string`);
  }
}

/**
 * Rejects a member name that appears twice in one object, at any depth. JSON.parse keeps the last
 * duplicate while Intel's parser (rapidjson) reads the first, so a document with duplicates could
 * be read differently here than by Intel; signed data never has them. `text` must be valid JSON.
 * Linear time, no recursion (hostile nesting depth cannot overflow the stack).
 */
export function assertNoDuplicateKeys(text: string, what: string): void {
  const stack: Array<Set<string> | null> = [];
  let expectKey = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22) {
      const end = skipString(text, i, what);
      const top = stack[stack.length - 1];
      if (expectKey && top) {
        const key = decodeKey(text, i, end, what);
        if (top.has(key)) malformed(what, `member "${key.slice(0, 40)}" appears twice in one object`);
        top.add(key);
      }
      expectKey = false;
      i = end - 1;
    } else if (c === 0x7b) {
      stack.push(new Set());
      expectKey = true;
    } else if (c === 0x5b) {
      stack.push(null);
      expectKey = false;
    } else if (c === 0x7d || c === 0x5d) {
      stack.pop();
      expectKey = false;
    } else if (c === 0x2c) {
      expectKey = stack[stack.length - 1] != null;
    }
  }
}

/**
 * The verbatim text of each top-level member of a JSON object. Duplicate keys are rejected, so
 * there is exactly one candidate for the signed object.
 */
export function topLevelMembers(text: string, what: string): Map<string, string> {
  const out = new Map<string, string>();
  let i = skipWs(text, 0);
  if (text[i] !== '{') malformed(what, 'not a JSON object');
  i = skipWs(text, i + 1);
  if (text[i] === '}') return out;
  for (;;) {
    if (text[i] !== '"') malformed(what, 'expected a member name');
    const keyEnd = skipString(text, i, what);
    const key = decodeKey(text, i, keyEnd, what);
    i = skipWs(text, keyEnd);
    if (text[i] !== ':') malformed(what, 'expected ":"');
    i = skipWs(text, i + 1);
    const end = skipValue(text, i, what);
    if (out.has(key)) malformed(what, `member "${key}" appears twice`);
    out.set(key, text.slice(i, end));
    i = skipWs(text, end);
    if (text[i] === ',') {
      i = skipWs(text, i + 1);
      continue;
    }
    if (text[i] === '}') break;
    malformed(what, 'expected "," or "}"');
  }
  if (skipWs(text, i + 1) !== text.length) malformed(what, 'trailing data after the object');
  return out;
}

/** Splits a PCS document into the signed inner object's exact text and its signature. */
export function splitSignedJson(text: string, member: 'tcbInfo' | 'enclaveIdentity', what: string): SignedJson {
  if (typeof text !== 'string') malformed(what, 'not JSON text');
  // The whole document must be valid JSON (as Intel's parser requires), not just the two members read.
  try {
    JSON.parse(text);
  } catch {
    malformed(what, 'not valid JSON');
  }
  assertNoDuplicateKeys(text, what);
  const members = topLevelMembers(text, what);
  const signedText = members.get(member);
  const sigText = members.get('signature');
  if (signedText === undefined) malformed(what, `no "${member}" object`);
  if (sigText === undefined) malformed(what, 'no "signature"');
  let body: unknown;
  let sigHex: unknown;
  try {
    body = JSON.parse(signedText);
    sigHex = JSON.parse(sigText);
  } catch {
    malformed(what, 'not valid JSON');
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body)) malformed(what, `"${member}" is not an object`);
  const signature = typeof sigHex === 'string' && sigHex.length === 128 ? fromHex(sigHex) : undefined;
  if (!signature) malformed(what, 'the signature is not 64 bytes of hex (r||s)');
  return { signedText, body: body as Record<string, unknown>, signature };
}

// ---- typed field readers -------------------------------------------------------------------
// Each takes the value, the document's name and the field's path, and throws COLLATERAL_MALFORMED
// naming both when the value is not what Intel's schema says.

type Obj = Record<string, unknown>;

export function obj(v: unknown, what: string, field: string): Obj {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) malformed(what, `${field} is not an object`);
  return v as Obj;
}
export function arr(v: unknown, what: string, field: string): unknown[] {
  if (!Array.isArray(v)) malformed(what, `${field} is not an array`);
  return v;
}
export function int(v: unknown, what: string, field: string, max = 0xffff): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > max) malformed(what, `${field} is not an integer in 0..${max}`);
  return v;
}
export function str(v: unknown, what: string, field: string): string {
  if (typeof v !== 'string') malformed(what, `${field} is not a string`);
  return v;
}
export function hex(v: unknown, what: string, field: string, len: number): Uint8Array {
  const b = typeof v === 'string' ? fromHex(v) : undefined;
  if (!b || b.length !== len) malformed(what, `${field} is not ${len} bytes of hex`);
  return b;
}
const ISO_SECONDS_Z = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})Z$/;

/**
 * Intel's QVL accepts exactly YYYY-MM-DDTHH:MM:SSZ naming a real calendar time (no offsets, no
 * fractions, no 31 February); Date.parse alone would accept many other forms and roll over.
 */
export function date(v: unknown, what: string, field: string): Date {
  const m = typeof v === 'string' ? ISO_SECONDS_Z.exec(v) : null;
  if (!m) return malformed(what, `${field} is not a date of the form YYYY-MM-DDTHH:MM:SSZ`);
  const [y, mo, d, h, mi, s] = m.slice(1).map(Number) as [number, number, number, number, number, number];
  const t = new Date(Date.UTC(y, mo - 1, d, h, mi, s));
  if (
    t.getUTCFullYear() !== y ||
    t.getUTCMonth() !== mo - 1 ||
    t.getUTCDate() !== d ||
    t.getUTCHours() !== h ||
    t.getUTCMinutes() !== mi ||
    t.getUTCSeconds() !== s
  ) {
    malformed(what, `${field} "${String(v)}" is not a calendar time`);
  }
  return t;
}
/** A validated date field kept as its text (TCB dates are only reported). */
export function dateText(v: unknown, what: string, field: string): string {
  date(v, what, field);
  return v as string;
}

export function status(v: unknown, what: string, field: string): TcbStatus {
  if (typeof v !== 'string' || !(TCB_STATUSES as readonly string[]).includes(v)) malformed(what, `${field} "${String(v)}" is not a known TCB status`);
  return v as TcbStatus;
}
export function advisories(v: unknown, what: string, field: string): string[] {
  if (v === undefined) return [];
  return arr(v, what, field).map((x, i) => str(x, what, `${field}[${i}]`));
}
