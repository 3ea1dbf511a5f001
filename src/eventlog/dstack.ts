/**
 * dstack's event logs (Dstack-TEE/dstack): the versioned attestation its RA-TLS certificates carry
 * in 1.3.6.1.4.1.62397.1.8 (V0 = SCALE), its JSON event log (GetQuote `event_log`, the older
 * 1.3.6.1.4.1.62397.1.2), and the replay of its RTMR3 runtime events (app-id, compose-hash,
 * os-image-hash, key-provider, ...). Layouts are restated in docs/eventlog.md. Hostile input: every
 * length is bounded by what remains; errors are RatlsError EVENTLOG_MALFORMED. Browser-safe.
 */
import { RatlsError } from '../core/errors.ts';
import { constantTimeEqual, fromHex, toHex } from '../core/bytes.ts';
import { canonicalJson } from './jcs.ts';
import { ByteReader, asciiText, u32le, utf8Strict } from './reader.ts';
import { extend } from './replay.ts';
import { DSTACK_RUNTIME_EVENT_TYPE, RTMR_NAMES, eventTypeName } from './tcg-types.ts';
import { describeBootEvent, type DescribedEvent } from './boot-events.ts';
import { sha384 } from './sha384.ts';

/** One event of a dstack event log (its TdxEvent). */
export interface DstackEvent {
  /** Zero-based RTMR index (dstack's "imr"): 0..3. */
  imr: number;
  eventType: number;
  /** Lower-case hex digest; "" where dstack stripped it (runtime events in certificates). */
  digest: string;
  /** Runtime event name ("app-id", "compose-hash", ...); "" for boot events. */
  event: string;
  payload: Uint8Array;
  /** Runtime-event digest scheme: 1 = binary, 2 = canonical JSON (dstack after 0.5.11). */
  version: 1 | 2;
}

/** A decoded dstack attestation (V0, platform dstack-tdx). */
export interface DstackAttestation {
  quote: Uint8Array;
  events: DstackEvent[];
  /** Runtime events carried beside the quote (used by non-TDX platforms; normally empty for TDX). */
  runtimeEvents: Array<{ event: string; payload: Uint8Array }>;
  reportData: Uint8Array;
  /** dstack's VM configuration JSON, as text. */
  config: string;
}

const MAX_ATTESTATION_BYTES = 10 * 1024 * 1024;
const WHAT = "dstack's attestation";

/** SCALE compact integer (parity-scale-codec), bounded to safe integers. */
function compact(r: ByteReader, field: string): number {
  const b0 = r.u8(field);
  switch (b0 & 3) {
    case 0:
      return b0 >> 2;
    case 1:
      return (b0 | (r.u8(field) << 8)) >> 2;
    case 2: {
      const rest = r.u8(field) | (r.u8(field) << 8) | (r.u8(field) << 16);
      return ((b0 | (rest << 8)) >>> 0) >>> 2;
    }
    default: {
      const n = (b0 >> 2) + 4;
      if (n > 7) throw new RatlsError('EVENTLOG_MALFORMED', `${WHAT}: ${field} at byte ${r.offset - 1} is a ${n}-byte integer, too large for a length.`);
      let v = 0;
      for (let i = 0; i < n; i++) v += r.u8(field) * 2 ** (8 * i);
      if (!Number.isSafeInteger(v)) throw new RatlsError('EVENTLOG_MALFORMED', `${WHAT}: ${field} is too large.`);
      return v;
    }
  }
}

function bytesField(r: ByteReader, field: string): Uint8Array {
  const n = compact(r, `${field} length`);
  return r.take(n, field);
}

function stringField(r: ByteReader, field: string): string {
  return utf8Strict(bytesField(r, field), `${WHAT}: ${field}`);
}

/** A SCALE Vec count: each item takes at least `minItemBytes`, so the count is bounded by the input. */
function count(r: ByteReader, field: string, minItemBytes: number): number {
  const n = compact(r, `${field} count`);
  if (n * minItemBytes > r.remaining) throw new RatlsError('EVENTLOG_MALFORMED', `${WHAT}: ${field} claims ${n} items but only ${r.remaining} bytes remain.`);
  return n;
}

/**
 * Decodes dstack's VersionedAttestation bytes (the value of certificate extension
 * 1.3.6.1.4.1.62397.1.8, or a guest agent's attestation.bin). V0 (SCALE) with platform dstack-tdx is
 * read; V1 (MessagePack) and other platforms are refused with a message saying so.
 */
export function decodeDstackAttestation(bytes: Uint8Array): DstackAttestation {
  if (bytes.length === 0) throw new RatlsError('EVENTLOG_MALFORMED', `${WHAT} is empty.`);
  if (bytes.length > MAX_ATTESTATION_BYTES) throw new RatlsError('EVENTLOG_MALFORMED', `${WHAT} is ${bytes.length} bytes; at most 10 MiB are accepted.`);
  const first = bytes[0]!;
  if ((first >= 0x80 && first <= 0x8f) || first === 0xde || first === 0xdf) {
    throw new RatlsError(
      'EVENTLOG_MALFORMED',
      `${WHAT} is in dstack's V1 (MessagePack) form, which this verifier does not read yet. dstack writes it only for apps whose compose sets event_log_version 2; ` +
        'with the default (1) its guest agent and certificates use V0 (SCALE), which is read.',
    );
  }
  if (first !== 0) throw new RatlsError('EVENTLOG_MALFORMED', `${WHAT} starts with 0x${first.toString(16)}, which is no known dstack attestation version.`);
  const r = new ByteReader(bytes, WHAT);
  r.u8('version');
  const platform = r.u8('platform');
  if (platform !== 0) {
    const names = ['dstack-tdx', 'dstack-gcp-tdx', 'dstack-nitro-enclave', 'dstack-amd-sev-snp', 'dstack-aws-nitro-tpm'];
    throw new RatlsError('EVENTLOG_MALFORMED', `${WHAT} is for platform ${names[platform] ?? `#${platform}`}; only dstack-tdx attestations are read.`);
  }
  const quote = bytesField(r, 'quote');
  const n = count(r, 'event log', 11);
  const events: DstackEvent[] = [];
  for (let i = 0; i < n; i++) {
    const imr = r.u32('event imr');
    const eventType = r.u32('event type');
    const d = bytesField(r, 'event digest');
    const event = stringField(r, 'event name');
    const payload = bytesField(r, 'event payload');
    events.push(checkedEvent({ imr, eventType, digest: toHex(d), event, payload, version: 1 }, i));
  }
  const m = count(r, 'runtime events', 2);
  const runtimeEvents: DstackAttestation['runtimeEvents'] = [];
  for (let i = 0; i < m; i++) runtimeEvents.push({ event: stringField(r, 'runtime event name'), payload: bytesField(r, 'runtime event payload') });
  const reportData = r.take(64, 'report data');
  const config = stringField(r, 'config');
  if (r.remaining !== 0) throw new RatlsError('EVENTLOG_MALFORMED', `${WHAT}: ${r.remaining} stray bytes follow the attestation.`);
  return { quote, events, runtimeEvents, reportData, config };
}

function checkedEvent(e: DstackEvent, i: number): DstackEvent {
  if (e.imr > 3) throw new RatlsError('EVENTLOG_MALFORMED', `${WHAT}: event #${i + 1} names IMR ${e.imr}; TDX has RTMR0-3 (imr 0-3).`);
  if (e.digest !== '' && e.digest.length !== 96)
    throw new RatlsError('EVENTLOG_MALFORMED', `${WHAT}: event #${i + 1} has a ${e.digest.length / 2}-byte digest; SHA-384 digests are 48 bytes.`);
  if (e.event.length > 1024) throw new RatlsError('EVENTLOG_MALFORMED', `${WHAT}: event #${i + 1} has an implausibly long name.`);
  return e;
}

/** Parses dstack's JSON event log: an array of {imr, event_type, digest, event, event_payload[, version]}. */
export function parseDstackEventLogJson(input: string | unknown): DstackEvent[] {
  let v: unknown = input;
  if (typeof input === 'string') {
    if (input.length > MAX_ATTESTATION_BYTES) throw new RatlsError('EVENTLOG_MALFORMED', "dstack's event log is larger than 10 MiB.");
    try {
      v = JSON.parse(input);
    } catch {
      throw new RatlsError('EVENTLOG_MALFORMED', "dstack's event log is not JSON.");
    }
  }
  if (!Array.isArray(v)) throw new RatlsError('EVENTLOG_MALFORMED', "dstack's event log must be a JSON array of events.");
  if (v.length > 65536) throw new RatlsError('EVENTLOG_MALFORMED', "dstack's event log has more than 65536 events.");
  return v.map((x, i) => {
    const bad = (why: string): never => {
      throw new RatlsError('EVENTLOG_MALFORMED', `dstack's event log: event #${i + 1} ${why}`);
    };
    if (typeof x !== 'object' || x === null || Array.isArray(x)) bad('is not an object.');
    const o = x as Record<string, unknown>;
    const u32 = (k: string) => {
      const n = o[k];
      if (typeof n !== 'number' || !Number.isInteger(n) || n < 0 || n > 0xffffffff) bad(`has no valid "${k}".`);
      return n as number;
    };
    const hex = (k: string, required: boolean) => {
      const s = o[k];
      if (s === undefined && !required) return '';
      if (typeof s !== 'string' || !/^(?:[0-9a-fA-F]{2})*$/.test(s)) bad(`has a "${k}" that is not hex.`);
      return (s as string).toLowerCase();
    };
    const event = o.event ?? '';
    if (typeof event !== 'string') bad('has a non-string "event".');
    const version = o.version === undefined ? 1 : o.version;
    if (version !== 1 && version !== 2) bad(`has unknown digest version ${String(version).slice(0, 10)}.`);
    return checkedEvent(
      {
        imr: u32('imr'),
        eventType: u32('event_type'),
        digest: hex('digest', false),
        event: event as string,
        payload: fromHex(hex('event_payload', true))!,
        version: version as 1 | 2,
      },
      i,
    );
  });
}

/** The RTMR3 digest dstack extends for a runtime event (cc-eventlog runtime_events.rs). */
export async function dstackRuntimeDigest(e: Pick<DstackEvent, 'event' | 'payload' | 'version'>): Promise<Uint8Array> {
  const enc = new TextEncoder();
  if (e.version === 2) {
    return sha384(enc.encode(canonicalJson({ name: e.event, payload: toHex(e.payload), type: DSTACK_RUNTIME_EVENT_TYPE })));
  }
  const colon = Uint8Array.of(0x3a);
  return sha384(u32le(DSTACK_RUNTIME_EVENT_TYPE), colon, enc.encode(e.event), colon, e.payload);
}

/** A dstack event as reports show it. */
export interface DescribedDstackEvent {
  index: number;
  register: string;
  type: string;
  /** The runtime event's name ("compose-hash"), or the boot event's kind. */
  name: string;
  /** Human form of the payload: hex for hashes and ids, text for text. */
  value: string;
  digest: string;
}

/** What replaying a dstack event log found. */
export interface DstackReplay {
  /** RTMR0..3 after replay (hex). */
  rtmrs: [string, string, string, string];
  /** Events per register. */
  counts: [number, number, number, number];
  events: DescribedDstackEvent[];
}

function payloadText(name: string, p: Uint8Array): string {
  if (/(hash|id)$/.test(name) || name === 'mr-kms') return toHex(p);
  const t = asciiText(p);
  return t !== undefined ? t.slice(0, 200) : toHex(p.subarray(0, 64)) + (p.length > 64 ? '…' : '');
}

/**
 * Replays a dstack event log into RTMR0..3. Runtime events (type 0x08000001) get their digest
 * recomputed from name and payload; a logged digest that differs is EVENTLOG_DIGEST_MISMATCH.
 * Boot events with a payload are checked like CCEL events where the rule is known.
 */
export async function replayDstackEvents(events: DstackEvent[]): Promise<DstackReplay> {
  const regs: Uint8Array[] = [0, 1, 2, 3].map(() => new Uint8Array(48));
  const counts: DstackReplay['counts'] = [0, 0, 0, 0];
  const described: DescribedDstackEvent[] = [];
  for (const [i, e] of events.entries()) {
    const index = i + 1;
    const register = RTMR_NAMES[e.imr]!;
    let d: Uint8Array;
    if (e.eventType === DSTACK_RUNTIME_EVENT_TYPE) {
      d = await dstackRuntimeDigest(e);
      if (e.digest !== '' && !constantTimeEqual(d, fromHex(e.digest)!)) {
        throw new RatlsError(
          'EVENTLOG_DIGEST_MISMATCH',
          `${register} event #${index} of dstack's event log (${e.event.slice(0, 40)}): its name and payload do not hash to the logged digest; the event was altered.`,
        );
      }
      described.push({ index, register, type: eventTypeName(e.eventType), name: e.event, value: payloadText(e.event, e.payload), digest: toHex(d) });
    } else {
      if (e.digest === '') throw new RatlsError('EVENTLOG_MALFORMED', `${register} event #${index} of dstack's event log is a boot event without a digest.`);
      d = fromHex(e.digest)!;
      let desc: DescribedEvent | undefined;
      if (e.payload.length > 0) {
        // The same checks as for a CCEL record: dstack keeps the raw TCG event data as the payload.
        desc = await describeBootEvent(
          { index, offset: 0, mrIndex: e.imr + 1, eventType: e.eventType, digests: [{ algId: 0x0c, digest: d }], data: e.payload },
          "dstack's event log",
        );
      }
      described.push({ index, register, type: eventTypeName(e.eventType), name: e.event || desc?.kind || 'boot', value: desc?.label ?? '', digest: e.digest });
    }
    regs[e.imr] = await extend(regs[e.imr]!, d);
    counts[e.imr]!++;
  }
  return { rtmrs: regs.map(toHex) as DstackReplay['rtmrs'], counts, events: described };
}

/** dstack's marker payload of its three RTMR0 "ACPI DATA" events (acpi-loader, acpi-rsdp, acpi-tables). */
const ACPI_DATA_MARKER = 'ACPI DATA';

function isAcpiDataMarker(e: DstackEvent): boolean {
  return e.imr === 0 && e.eventType === 0xa && e.payload.length === ACPI_DATA_MARKER.length && asciiText(e.payload) === ACPI_DATA_MARKER;
}

/** Which registers a dstack event log can be replayed for, and why the others cannot. */
export interface DstackReplayScope {
  /** Zero-based RTMR numbers to replay. */
  registers: number[];
  /** Why RTMR0-2 are left out, when they are. */
  stripped?: string;
}

/**
 * The registers a dstack log is complete for. dstack's attestations (and certificates since 0.6)
 * drop the boot events of RTMR0-2 except the three RTMR0 "ACPI DATA" markers its "lite" verifier
 * uses, so such a log replays RTMR3 only; a GetQuote response keeps every boot event.
 */
export function dstackReplayScope(events: readonly DstackEvent[]): DstackReplayScope {
  const boot = events.filter((e) => e.imr < 3);
  if (boot.length > 0 && boot.every(isAcpiDataMarker)) {
    return {
      registers: [3],
      stripped:
        `RTMR0-2 are not replayed: dstack stripped this log's boot events, keeping only its ${boot.length} RTMR0 "ACPI DATA" markers ` +
        "(for dstack's own image-based check); replay its GetQuote event log to check RTMR0-2, or pin them in a policy",
    };
  }
  return { registers: [0, 1, 2, 3].filter((i) => events.some((e) => e.imr === i)) };
}
