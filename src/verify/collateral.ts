/**
 * Intel's signed collateral documents: TCB info v3 (TDX) and QE identity v2 (TD_QE).
 *
 * Intel signs the exact bytes of the inner object ("tcbInfo" / "enclaveIdentity") as served, so the
 * signed text is cut out of the document verbatim and the fields used are parsed from that same
 * text: what is checked is always what was signed, even if the outer document repeats a key.
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

function malformed(what: string, detail: string): never {
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

type Obj = Record<string, unknown>;

function obj(v: unknown, what: string, field: string): Obj {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) malformed(what, `${field} is not an object`);
  return v as Obj;
}
function arr(v: unknown, what: string, field: string): unknown[] {
  if (!Array.isArray(v)) malformed(what, `${field} is not an array`);
  return v;
}
function int(v: unknown, what: string, field: string, max = 0xffff): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > max) malformed(what, `${field} is not an integer in 0..${max}`);
  return v;
}
function str(v: unknown, what: string, field: string): string {
  if (typeof v !== 'string') malformed(what, `${field} is not a string`);
  return v;
}
function hex(v: unknown, what: string, field: string, len: number): Uint8Array {
  const b = typeof v === 'string' ? fromHex(v) : undefined;
  if (!b || b.length !== len) malformed(what, `${field} is not ${len} bytes of hex`);
  return b;
}
const ISO_SECONDS_Z = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})Z$/;

/**
 * Intel's QVL accepts exactly YYYY-MM-DDTHH:MM:SSZ naming a real calendar time (no offsets, no
 * fractions, no 31 February); Date.parse alone would accept many other forms and roll over.
 */
function date(v: unknown, what: string, field: string): Date {
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
function dateText(v: unknown, what: string, field: string): string {
  date(v, what, field);
  return v as string;
}

function status(v: unknown, what: string, field: string): TcbStatus {
  if (typeof v !== 'string' || !(TCB_STATUSES as readonly string[]).includes(v)) malformed(what, `${field} "${String(v)}" is not a known TCB status`);
  return v as TcbStatus;
}
function advisories(v: unknown, what: string, field: string): string[] {
  if (v === undefined) return [];
  return arr(v, what, field).map((x, i) => str(x, what, `${field}[${i}]`));
}

// ---- TCB info v3 ----------------------------------------------------------------------------

export interface TdxTcbLevel {
  sgxComponents: number[];
  pceSvn: number;
  tdxComponents: number[];
  tcbDate: string;
  status: TcbStatus;
  advisoryIds: string[];
}

export interface ModuleTcbLevel {
  isvSvn: number;
  tcbDate: string;
  status: TcbStatus;
  advisoryIds: string[];
}

export interface TdxModuleIdentity {
  id: string;
  mrSigner: Uint8Array;
  attributes: Uint8Array;
  attributesMask: Uint8Array;
  tcbLevels: ModuleTcbLevel[];
}

export interface TcbInfo {
  id: string;
  version: number;
  issueDate: Date;
  nextUpdate: Date;
  fmspc: string;
  pceId: string;
  tcbEvaluationDataNumber: number;
  tdxModule?: { mrSigner: Uint8Array; attributes: Uint8Array; attributesMask: Uint8Array };
  tdxModuleIdentities?: TdxModuleIdentity[];
  tcbLevels: TdxTcbLevel[];
}

function components(v: unknown, what: string, field: string): number[] {
  const a = arr(v, what, field);
  if (a.length !== 16) malformed(what, `${field} does not have 16 entries`);
  return a.map((c, i) => int(obj(c, what, `${field}[${i}]`).svn, what, `${field}[${i}].svn`, 255));
}

/** Highest ISVSVN first, as Intel's QVL keeps them (it never relies on wire order). */
function byIsvSvnDesc(levels: ModuleTcbLevel[]): ModuleTcbLevel[] {
  return levels.sort((a, b) => b.isvSvn - a.isvSvn);
}

function compareSvns(a: number[], b: number[]): number {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
  return 0;
}

/**
 * Intel's canonical TCB level order, highest first: SGX components, then PCESVN, then TDX
 * components (QVL keeps levels in a set ordered this way; the wire order is not trusted).
 */
export function canonicalTcbLevelOrder(a: TdxTcbLevel, b: TdxTcbLevel): number {
  return compareSvns(b.sgxComponents, a.sgxComponents) || b.pceSvn - a.pceSvn || compareSvns(b.tdxComponents, a.tdxComponents);
}

/**
 * Levels graded by ISVSVN. `sorted` (TDX module identities) keeps them highest first and rejects two
 * levels with one ISVSVN, as Intel's ordered set does; QE identity levels keep the wire order, which
 * Intel's QVL walks as served. Either way an empty list is malformed (Intel rejects it).
 */
function moduleLevels(v: unknown, what: string, field: string, sorted = true): ModuleTcbLevel[] {
  const a = arr(v, what, field);
  if (a.length === 0) malformed(what, `${field} is empty`);
  const levels = a.map((l, i) => {
    const o = obj(l, what, `${field}[${i}]`);
    return {
      isvSvn: int(obj(o.tcb, what, `${field}[${i}].tcb`).isvsvn, what, `${field}[${i}].tcb.isvsvn`),
      tcbDate: dateText(o.tcbDate, what, `${field}[${i}].tcbDate`),
      status: status(o.tcbStatus, what, `${field}[${i}].tcbStatus`),
      advisoryIds: advisories(o.advisoryIDs, what, `${field}[${i}].advisoryIDs`),
    };
  });
  if (!sorted) return levels;
  const out = byIsvSvnDesc(levels);
  for (let i = 1; i < out.length; i++) {
    if (out[i]!.isvSvn === out[i - 1]!.isvSvn) malformed(what, `${field} has two levels for ISVSVN ${out[i]!.isvSvn}`);
  }
  return out;
}

/** Reads a TCB info body (the signed "tcbInfo" object). Only TDX v3 documents are accepted. */
export function parseTcbInfo(body: Record<string, unknown>): TcbInfo {
  const what = 'TCB info';
  const id = str(body.id, what, 'id');
  const version = int(body.version, what, 'version');
  if (id !== 'TDX' || version !== 3) {
    throw new RatlsError(
      'COLLATERAL_MISMATCH',
      `TCB info is "${id}" version ${version}; TDX quotes need TDX TCB info version 3 (fetch it from /tdx/certification/v4/tcb).`,
    );
  }
  const info: TcbInfo = {
    id,
    version,
    issueDate: date(body.issueDate, what, 'issueDate'),
    nextUpdate: date(body.nextUpdate, what, 'nextUpdate'),
    fmspc: str(body.fmspc, what, 'fmspc').toLowerCase(),
    pceId: str(body.pceId, what, 'pceId').toLowerCase(),
    tcbEvaluationDataNumber: int(body.tcbEvaluationDataNumber, what, 'tcbEvaluationDataNumber', 0xffffffff),
    tcbLevels: arr(body.tcbLevels, what, 'tcbLevels')
      .map((l, i) => {
        const o = obj(l, what, `tcbLevels[${i}]`);
        const tcb = obj(o.tcb, what, `tcbLevels[${i}].tcb`);
        return {
          sgxComponents: components(tcb.sgxtcbcomponents, what, `tcbLevels[${i}].tcb.sgxtcbcomponents`),
          pceSvn: int(tcb.pcesvn, what, `tcbLevels[${i}].tcb.pcesvn`),
          tdxComponents: components(tcb.tdxtcbcomponents, what, `tcbLevels[${i}].tcb.tdxtcbcomponents`),
          tcbDate: dateText(o.tcbDate, what, `tcbLevels[${i}].tcbDate`),
          status: status(o.tcbStatus, what, `tcbLevels[${i}].tcbStatus`),
          advisoryIds: advisories(o.advisoryIDs, what, `tcbLevels[${i}].advisoryIDs`),
        };
      })
      .sort(canonicalTcbLevelOrder),
  };
  // Intel's QVL (TcbInfo.cpp) requires tcbType 0, a non-empty tcbLevels without two equal levels,
  // and a tdxModule in every TDX TCB info; it refuses the document otherwise.
  if (int(body.tcbType, what, 'tcbType') !== 0) malformed(what, `tcbType ${String(body.tcbType)} is not supported (only 0 is)`);
  if (info.tcbLevels.length === 0) malformed(what, 'tcbLevels is empty');
  for (let i = 1; i < info.tcbLevels.length; i++) {
    if (canonicalTcbLevelOrder(info.tcbLevels[i - 1]!, info.tcbLevels[i]!) === 0) malformed(what, 'tcbLevels holds the same TCB level twice');
  }
  if (body.tdxModule === undefined) malformed(what, 'a TDX TCB info must have a tdxModule');
  if (!/^[0-9a-f]{12}$/.test(info.fmspc)) malformed(what, 'fmspc is not 6 bytes of hex');
  if (!/^[0-9a-f]{4}$/.test(info.pceId)) malformed(what, 'pceId is not 2 bytes of hex');
  if (body.tdxModule !== undefined) {
    const m = obj(body.tdxModule, what, 'tdxModule');
    info.tdxModule = {
      mrSigner: hex(m.mrsigner, what, 'tdxModule.mrsigner', 48),
      attributes: hex(m.attributes, what, 'tdxModule.attributes', 8),
      attributesMask: hex(m.attributesMask, what, 'tdxModule.attributesMask', 8),
    };
  }
  if (body.tdxModuleIdentities !== undefined) {
    const ids = arr(body.tdxModuleIdentities, what, 'tdxModuleIdentities');
    if (ids.length === 0) malformed(what, 'tdxModuleIdentities is empty');
    info.tdxModuleIdentities = ids.map((x, i) => {
      const m = obj(x, what, `tdxModuleIdentities[${i}]`);
      const f = `tdxModuleIdentities[${i}]`;
      return {
        id: str(m.id, what, `${f}.id`),
        mrSigner: hex(m.mrsigner, what, `${f}.mrsigner`, 48),
        attributes: hex(m.attributes, what, `${f}.attributes`, 8),
        attributesMask: hex(m.attributesMask, what, `${f}.attributesMask`, 8),
        tcbLevels: moduleLevels(m.tcbLevels, what, `${f}.tcbLevels`),
      };
    });
  }
  return info;
}

// ---- QE identity v2 -------------------------------------------------------------------------

export interface QeIdentity {
  id: string;
  version: number;
  issueDate: Date;
  nextUpdate: Date;
  tcbEvaluationDataNumber: number;
  miscselect: number;
  miscselectMask: number;
  attributes: Uint8Array;
  attributesMask: Uint8Array;
  mrSigner: Uint8Array;
  isvProdId: number;
  tcbLevels: ModuleTcbLevel[];
}

/**
 * Intel's QVL reads the 4 hex bytes and byte-swaps them, i.e. the hex is the report's
 * in-memory (little-endian) byte order; read it the same way as the report's MISCSELECT.
 */
function u32MemoryOrderHex(v: unknown, what: string, field: string): number {
  const b = hex(v, what, field, 4);
  return (b[0]! | (b[1]! << 8) | (b[2]! << 16) | (b[3]! << 24)) >>> 0;
}

/** Reads a QE identity body (the signed "enclaveIdentity" object). Only TD_QE v2 is accepted. */
export function parseQeIdentity(body: Record<string, unknown>): QeIdentity {
  const what = 'QE identity';
  const id = str(body.id, what, 'id');
  const version = int(body.version, what, 'version');
  if (id !== 'TD_QE' || version !== 2) {
    throw new RatlsError(
      'COLLATERAL_MISMATCH',
      `QE identity is "${id}" version ${version}; TDX quotes need the TD_QE identity version 2 (/tdx/certification/v4/qe/identity).`,
    );
  }
  return {
    id,
    version,
    issueDate: date(body.issueDate, what, 'issueDate'),
    nextUpdate: date(body.nextUpdate, what, 'nextUpdate'),
    tcbEvaluationDataNumber: int(body.tcbEvaluationDataNumber, what, 'tcbEvaluationDataNumber', 0xffffffff),
    miscselect: u32MemoryOrderHex(body.miscselect, what, 'miscselect'),
    miscselectMask: u32MemoryOrderHex(body.miscselectMask, what, 'miscselectMask'),
    attributes: hex(body.attributes, what, 'attributes', 16),
    attributesMask: hex(body.attributesMask, what, 'attributesMask', 16),
    mrSigner: hex(body.mrsigner, what, 'mrsigner', 32),
    isvProdId: int(body.isvprodid, what, 'isvprodid'),
    tcbLevels: qeLevels(body.tcbLevels, what),
  };
}

/** Statuses Intel's QVL accepts in a QE identity level (EnclaveIdentityV2 / TcbStatus.h). */
const QE_LEVEL_STATUSES: readonly TcbStatus[] = ['UpToDate', 'ConfigurationNeeded', 'OutOfDate', 'OutOfDateConfigurationNeeded', 'Revoked'];

function qeLevels(v: unknown, what: string): ModuleTcbLevel[] {
  const levels = moduleLevels(v, what, 'tcbLevels', false);
  levels.forEach((l, i) => {
    if (!QE_LEVEL_STATUSES.includes(l.status)) malformed(what, `tcbLevels[${i}].tcbStatus "${l.status}" is not a QE identity status`);
  });
  return levels;
}
