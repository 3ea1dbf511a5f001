/**
 * Replay: what the TDX registers hold after the logged extends. An extend is
 * RTMR := SHA-384(RTMR || digest), starting from 48 zero bytes; EV_NO_ACTION records are never
 * extended. Browser-safe (WebCrypto).
 */
import { RatlsError } from '../core/errors.ts';
import { toHex } from '../core/bytes.ts';
import { EV, RTMR_NAMES, registerName, type RtmrName } from './tcg-types.ts';
import { sha384Of, type TcgEvent } from './tcg.ts';
import { sha384 } from './sha384.ts';
import { pcrIndexedLogReason } from './identify.ts';

/** The value of an RTMR after one more extend. */
export async function extend(rtmr: Uint8Array, measurement: Uint8Array): Promise<Uint8Array> {
  if (rtmr.length !== 48 || measurement.length !== 48) throw new RatlsError('INTERNAL', 'An RTMR extend takes a 48-byte register and a 48-byte digest.');
  return sha384(rtmr, measurement);
}

/** Replays `digests` onto `initial` (default 48 zero bytes). */
export async function replayDigests(digests: Uint8Array[], initial: Uint8Array = new Uint8Array(48)): Promise<Uint8Array> {
  let v = initial;
  for (const d of digests) v = await extend(v, d);
  return v;
}

/** What replaying a log found per register. */
export interface RtmrReplay {
  /** Lower-case hex of RTMR0..3 after replay. */
  rtmrs: [string, string, string, string];
  /** Record indexes extended into each register, in order. */
  eventsByRegister: [number[], number[], number[], number[]];
}

/**
 * Replays a TCG log's SHA-384 digests into RTMR0..3 (MR index 1..4). Records of other registers
 * (MR index 0 = MRTD, which nothing can extend, or beyond 4) make the log malformed.
 */
export async function replayTcgEvents(events: TcgEvent[], what = 'The event log'): Promise<RtmrReplay> {
  const regs: Uint8Array[] = RTMR_NAMES.map(() => new Uint8Array(48));
  const byReg: [number[], number[], number[], number[]] = [[], [], [], []];
  for (const e of events) {
    if (e.eventType === EV.NO_ACTION) continue;
    if (e.mrIndex < 1 || e.mrIndex > 4) {
      // A TPM log reaches here (PCR indexes); say so rather than only naming the first odd record.
      const tpm = pcrIndexedLogReason(events, what);
      throw new RatlsError(
        'EVENTLOG_MALFORMED',
        tpm ?? `${what}: record #${e.index} extends ${registerName(e.mrIndex)} (MR index ${e.mrIndex}); only RTMR0-3 (MR index 1-4) can be extended.`,
      );
    }
    const d = sha384Of(e);
    if (!d) throw new RatlsError('EVENTLOG_MALFORMED', `${what} has no SHA-384 digests, so it cannot be replayed into TDX registers.`);
    const i = e.mrIndex - 1;
    regs[i] = await extend(regs[i]!, d);
    byReg[i]!.push(e.index);
  }
  return { rtmrs: regs.map(toHex) as RtmrReplay['rtmrs'], eventsByRegister: byReg };
}

/** "RTMR0".."RTMR3" by zero-based register number. */
export function rtmrName(i: number): RtmrName {
  return RTMR_NAMES[i]!;
}
