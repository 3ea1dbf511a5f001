/**
 * ratls-proxy's runtime event log: what `ratls serve` measured after boot (its own version and
 * configuration, pinned images, open-webui and Ollama versions, every model added or removed).
 * Format (docs/eventlog.md): a TCG crypto-agile log, SHA-384 only, whose records are
 *
 *   mrIndex 4 (RTMR3), EV_EVENT_TAG, digest = SHA-384(data),
 *   data = TCG_PCClientTaggedEvent { u32 id = 0x534C5452 ("RTLS"), u32 size, RFC 8785 JSON }
 *
 * and whose JSON carries "seq" (1, 2, ... in log order) and "kind", and no time, so the same stack
 * started the same way always replays to the same RTMR3. An optional first record of
 * type EV_NO_ACTION states RTMR3's value before the log began (extends by other software).
 * Browser-safe (WebCrypto).
 */
import { RatlsError } from '../core/errors.ts';
import { concatBytes, constantTimeEqual, fromHex, toHex } from '../core/bytes.ts';
import { canonicalJson } from './jcs.ts';
import { utf8Strict } from './reader.ts';
import { specIdHeader, taggedEvent, tcgRecord } from './tcg-encode.ts';
import { extend } from './replay.ts';
import { EV, TAGGED_EVENT } from './tcg-types.ts';
import { parseTcgLog, sha384Of, type TcgEvent } from './tcg.ts';
import { sha384 } from './sha384.ts';

/** A model as Ollama's /api/tags lists it. */
export interface ModelRecord {
  /** e.g. "llama3.2:latest". */
  name: string;
  /** Lower-case hex SHA-256 of the model's manifest (pins the weights transitively). */
  digest: string;
  /** Bytes of all layers and the config. */
  size: number;
  format?: string;
  family?: string;
  families?: string[];
  parameterSize?: string;
  quantization?: string;
}

/** The measured facts, one per event. */
export type RuntimeEvent =
  | { kind: 'proxy'; version: string; configDigest: string }
  | { kind: 'image'; role: string; image: string; digest: string }
  | { kind: 'open-webui'; version: string }
  | { kind: 'ollama'; version: string }
  | ({ kind: 'model-added' } & ModelRecord)
  | { kind: 'model-removed'; name: string; digest: string };

/** A record of the runtime log, decoded and its digest checked. */
export interface RuntimeLogEvent {
  /** Record number in the log (the Spec ID header is 0). */
  index: number;
  seq: number;
  /** Known kinds decoded; others kept as `{ kind, ...fields }` for display only. */
  event: RuntimeEvent | { kind: string; [k: string]: unknown };
  /** Lower-case hex SHA-384 digest extended into RTMR3. */
  digest: string;
}

/** A decoded runtime log. */
export interface RuntimeLog {
  /** RTMR3 before this log began (hex), when other software extended it first. */
  initial?: string;
  events: RuntimeLogEvent[];
}

export const RUNTIME_LOG_VENDOR = 'ratls-proxy runtime log';
const RTMR3_MR_INDEX = 4;
const MAX_EVENT_JSON = 16 * 1024;
const enc = new TextEncoder();

/** The Spec ID header every runtime log starts with (SHA-384 only, our vendor string). */
export function runtimeLogHeader(): Uint8Array {
  return specIdHeader(RUNTIME_LOG_VENDOR);
}

function taggedJson(json: string): Uint8Array {
  const body = enc.encode(json);
  if (body.length > MAX_EVENT_JSON)
    throw new RatlsError('EVENTLOG_MALFORMED', `A runtime event is ${body.length} bytes of JSON; at most ${MAX_EVENT_JSON} are allowed.`);
  return taggedEvent(TAGGED_EVENT.RATLS_RUNTIME, body);
}

function record(eventType: number, digest48: Uint8Array, data: Uint8Array): Uint8Array {
  return tcgRecord(RTMR3_MR_INDEX, eventType, digest48, data);
}

/** The EV_NO_ACTION record that states RTMR3's value before the log began. */
export function initialValueRecord(rtmr3: Uint8Array): Uint8Array {
  if (rtmr3.length !== 48) throw new RatlsError('INTERNAL', 'RTMR3 is 48 bytes.');
  return record(EV.NO_ACTION, new Uint8Array(48), taggedJson(canonicalJson({ kind: 'rtmr3-initial', seq: 0, value: toHex(rtmr3) })));
}

/** One measured record: its bytes and the digest to extend RTMR3 with. */
export async function encodeRuntimeRecord(seq: number, event: RuntimeEvent): Promise<{ record: Uint8Array; digest: Uint8Array; json: string }> {
  if (!Number.isSafeInteger(seq) || seq < 1) throw new RatlsError('INTERNAL', 'Runtime events are numbered from 1.');
  const json = canonicalJson({ ...event, seq });
  const data = taggedJson(json);
  const d = await sha384(data);
  return { record: record(EV.EVENT_TAG, d, data), digest: d, json };
}

function malformed(index: number, why: string): never {
  throw new RatlsError('EVENTLOG_MALFORMED', `The runtime log's RTMR3 event #${index} ${why}`);
}

function tagBody(e: TcgEvent): string {
  const d = e.data;
  if (d.length < 8) malformed(e.index, 'is too short for a tagged event.');
  const id = (d[0]! | (d[1]! << 8) | (d[2]! << 16) | (d[3]! << 24)) >>> 0;
  const size = (d[4]! | (d[5]! << 8) | (d[6]! << 16) | (d[7]! << 24)) >>> 0;
  if (id !== TAGGED_EVENT.RATLS_RUNTIME) malformed(e.index, `has tag 0x${id.toString(16)}, not ratls-proxy's 0x${TAGGED_EVENT.RATLS_RUNTIME.toString(16)}.`);
  if (size !== d.length - 8) malformed(e.index, `declares ${size} bytes of data but carries ${d.length - 8}.`);
  return utf8Strict(d.subarray(8), `The runtime log's RTMR3 event #${e.index}`);
}

function parseCanonical(e: TcgEvent, text: string): Record<string, unknown> {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    malformed(e.index, 'does not hold JSON.');
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) malformed(e.index, 'does not hold a JSON object.');
  // One reading only: the bytes must be the canonical form of what they say.
  if (canonicalJson(v) !== text) malformed(e.index, 'is not in canonical (RFC 8785) form.');
  return v as Record<string, unknown>;
}

const str = (o: Record<string, unknown>, k: string, e: TcgEvent, max = 512): string => {
  const v = o[k];
  if (typeof v !== 'string' || v.length === 0 || v.length > max) malformed(e.index, `has no valid "${k}" (a string of 1 to ${max} characters).`);
  return v;
};
const optStr = (o: Record<string, unknown>, k: string, e: TcgEvent): string | undefined => (o[k] === undefined ? undefined : str(o, k, e));
const HEX64 = /^[0-9a-f]{64}$/;
const HEX96 = /^[0-9a-f]{96}$/;

function decodeEvent(e: TcgEvent, o: Record<string, unknown>): RuntimeLogEvent['event'] {
  const kind = str(o, 'kind', e, 64);
  switch (kind) {
    case 'proxy': {
      const configDigest = str(o, 'configDigest', e);
      if (!HEX96.test(configDigest)) malformed(e.index, 'has a configDigest that is not 96 lower-case hex digits (SHA-384).');
      return { kind, version: str(o, 'version', e), configDigest };
    }
    case 'image': {
      const d = str(o, 'digest', e);
      if (!/^sha256:[0-9a-f]{64}$/.test(d)) malformed(e.index, 'has an image digest that is not "sha256:" and 64 lower-case hex digits.');
      return { kind, role: str(o, 'role', e, 64), image: str(o, 'image', e), digest: d };
    }
    case 'open-webui':
    case 'ollama':
      return { kind, version: str(o, 'version', e, 128) };
    case 'model-added': {
      const d = str(o, 'digest', e);
      if (!HEX64.test(d)) malformed(e.index, 'has a model digest that is not 64 lower-case hex digits.');
      const size = o.size;
      if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0) malformed(e.index, 'has no valid model size.');
      const families = o.families;
      if (families !== undefined && (!Array.isArray(families) || families.length > 32 || !families.every((f) => typeof f === 'string' && f.length <= 128))) {
        malformed(e.index, 'has invalid model families.');
      }
      const m: ModelRecord = { name: str(o, 'name', e), digest: d, size };
      for (const k of ['format', 'family', 'parameterSize', 'quantization'] as const) {
        const v = optStr(o, k, e);
        if (v !== undefined) m[k] = v;
      }
      if (families !== undefined) m.families = families as string[];
      return { kind, ...m };
    }
    case 'model-removed': {
      const d = str(o, 'digest', e);
      if (!HEX64.test(d)) malformed(e.index, 'has a model digest that is not 64 lower-case hex digits.');
      return { kind, name: str(o, 'name', e), digest: d };
    }
    default: {
      const { seq: _s, ...rest } = o;
      return { ...rest, kind };
    }
  }
}

/**
 * Parses a runtime log and checks each record: RTMR3 only, ratls-proxy's tag, canonical JSON, "seq"
 * in order, and digest = SHA-384 of the data.
 * @throws RatlsError EVENTLOG_MALFORMED, or EVENTLOG_DIGEST_MISMATCH naming the event.
 */
export async function parseRuntimeLog(bytes: Uint8Array): Promise<RuntimeLog> {
  const header = runtimeLogHeader();
  // The header is fixed (SHA-384 only, our vendor string), so no byte of the log goes unchecked.
  if (bytes.length < header.length || !constantTimeEqual(bytes.subarray(0, header.length), header)) {
    throw new RatlsError(
      'EVENTLOG_MALFORMED',
      `The runtime log does not start with ratls-proxy's header (a TCG Spec ID event, SHA-384 only, vendor "${RUNTIME_LOG_VENDOR}").`,
    );
  }
  const log = parseTcgLog(bytes, 'The runtime log');
  const out: RuntimeLog = { events: [] };
  for (const [i, e] of log.events.entries()) {
    if (e.mrIndex !== RTMR3_MR_INDEX) malformed(e.index, `targets MR index ${e.mrIndex}; runtime events extend RTMR3 (MR index 4) only.`);
    const d = sha384Of(e);
    if (!d) malformed(e.index, 'has no SHA-384 digest.');
    const o = parseCanonical(e, tagBody(e));
    if (e.eventType === EV.NO_ACTION) {
      if (i !== 0 || o.kind !== 'rtmr3-initial') malformed(e.index, 'is an EV_NO_ACTION record other than the initial-value record at the start.');
      const value = o.value;
      if (typeof value !== 'string' || !HEX96.test(value)) malformed(e.index, 'states an initial RTMR3 value that is not 96 lower-case hex digits.');
      out.initial = value;
      continue;
    }
    if (e.eventType !== EV.EVENT_TAG) malformed(e.index, `has event type 0x${e.eventType.toString(16)}; runtime events are EV_EVENT_TAG.`);
    const computed = await sha384(e.data);
    if (!constantTimeEqual(computed, d)) {
      const kind = typeof o.kind === 'string' ? o.kind.slice(0, 40) : '?';
      throw new RatlsError(
        'EVENTLOG_DIGEST_MISMATCH',
        `RTMR3 event #${e.index} of the runtime log (${kind}): its data does not hash to the logged digest ${toHex(d).slice(0, 16)}…; the event was altered.`,
      );
    }
    const seq = o.seq;
    const expected = out.events.length + 1;
    if (seq !== expected) {
      malformed(e.index, `carries sequence number ${String(seq).slice(0, 20)} where ${expected} belongs: events were reordered, removed or inserted.`);
    }
    out.events.push({ index: e.index, seq: expected, event: decodeEvent(e, o), digest: toHex(d) });
  }
  return out;
}

/**
 * RTMR3 (or the claim value) after 0, 1, ..., n events, starting from `initial` (48 zero bytes by
 * default): entry k is the value once the first k events are extended.
 */
export async function runtimeReplayValues(events: RuntimeLogEvent[], initial?: string): Promise<string[]> {
  let v = initial ? fromHex(initial)! : new Uint8Array(48);
  const out = [toHex(v)];
  for (const e of events) {
    v = await extend(v, fromHex(e.digest)!);
    out.push(toHex(v));
  }
  return out;
}

/** What the runtime events say the stack is, after folding them in order. */
export interface WorkloadState {
  proxy?: { version: string; configDigest: string; seq: number };
  openWebui?: { version: string; seq: number };
  ollama?: { version: string; seq: number };
  images: Array<{ role: string; image: string; digest: string; seq: number }>;
  /** Models held now, by name. */
  models: Array<ModelRecord & { seq: number }>;
  /** Models that were added and later removed (history stays in the log). */
  removed: Array<{ name: string; digest: string; seq: number; addedSeq?: number }>;
}

/** Folds runtime events into the current state; the latest event of a kind wins. */
export function foldWorkload(events: RuntimeLogEvent[]): WorkloadState {
  const s: WorkloadState = { images: [], models: [], removed: [] };
  const models = new Map<string, ModelRecord & { seq: number }>();
  for (const { seq, event } of events) {
    switch (event.kind) {
      case 'proxy': {
        const p = event as Extract<RuntimeEvent, { kind: 'proxy' }>;
        s.proxy = { version: p.version, configDigest: p.configDigest, seq };
        break;
      }
      case 'open-webui':
        s.openWebui = { version: (event as { version: string }).version, seq };
        break;
      case 'ollama':
        s.ollama = { version: (event as { version: string }).version, seq };
        break;
      case 'image': {
        const i = event as Extract<RuntimeEvent, { kind: 'image' }>;
        s.images = s.images.filter((x) => x.role !== i.role || x.image !== i.image);
        s.images.push({ role: i.role, image: i.image, digest: i.digest, seq });
        break;
      }
      case 'model-added': {
        const { kind: _k, ...m } = event as Extract<RuntimeEvent, { kind: 'model-added' }>;
        models.set(m.name, { ...m, seq });
        break;
      }
      case 'model-removed': {
        const r = event as Extract<RuntimeEvent, { kind: 'model-removed' }>;
        const held = models.get(r.name);
        if (held && held.digest === r.digest) models.delete(r.name);
        s.removed.push({ name: r.name, digest: r.digest, seq, ...(held ? { addedSeq: held.seq } : {}) });
        break;
      }
      default:
        break;
    }
  }
  s.models = [...models.values()].sort((a, b) => a.name.localeCompare(b.name));
  return s;
}

/**
 * Builds a runtime log in memory, record by record, and keeps its replay value: the server's side.
 * Persisting the bytes and extending RTMR3 are the caller's (src/proxy/workload-measurer.ts).
 */
export class RuntimeLogBuilder {
  private readonly chunks: Uint8Array[] = [runtimeLogHeader()];
  private value: Uint8Array;
  private seq = 0;
  readonly initial: Uint8Array;

  /** @param initial RTMR3 before the log began (default: 48 zero bytes, nothing extended yet). */
  constructor(initial?: Uint8Array) {
    this.initial = initial ?? new Uint8Array(48);
    this.value = this.initial;
    if (initial && initial.some((b) => b !== 0)) this.chunks.push(initialValueRecord(initial));
  }

  /** Continues a log written earlier (parsed and checked first). */
  static async resume(bytes: Uint8Array): Promise<RuntimeLogBuilder> {
    const log = await parseRuntimeLog(bytes);
    const values = await runtimeReplayValues(log.events, log.initial);
    const b = new RuntimeLogBuilder(log.initial ? fromHex(log.initial) : undefined);
    b.chunks.length = 0;
    b.chunks.push(bytes.slice());
    b.value = fromHex(values[values.length - 1]!)!;
    b.seq = log.events.length;
    return b;
  }

  /** Number of measured events. */
  get length(): number {
    return this.seq;
  }

  /** The replay value now: RTMR3 in rtmr3 mode, the "runtime-log" claim in claims mode. */
  get replayValue(): Uint8Array {
    return this.value;
  }

  /** Appends an event; returns the digest that must be extended into RTMR3 and the record bytes. */
  async append(event: RuntimeEvent): Promise<{ digest: Uint8Array; record: Uint8Array; seq: number }> {
    const seq = this.seq + 1;
    const r = await encodeRuntimeRecord(seq, event);
    this.chunks.push(r.record);
    this.value = await extend(this.value, r.digest);
    this.seq = seq;
    return { digest: r.digest, record: r.record, seq };
  }

  /** Size of the whole log in bytes, without concatenating it. */
  get byteLength(): number {
    let n = 0;
    for (const c of this.chunks) n += c.length;
    return n;
  }

  /** The whole log. */
  bytes(): Uint8Array {
    return concatBytes(...this.chunks);
  }
}
