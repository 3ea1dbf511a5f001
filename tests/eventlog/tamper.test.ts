/**
 * Every tampered event of a real log fails with a code naming its register and the event: a
 * changed digest, changed data (where the digest covers the data), two events swapped, an event
 * removed. Data the digest does not cover (a firmware volume's description) is reported as
 * "external", never as checked.
 */
import { describe, expect, it } from 'vitest';
import { parseTcgLog } from '../../src/eventlog/tcg.ts';
import { describeBootEvent } from '../../src/eventlog/boot-events.ts';
import { appraiseWorkload, type WorkloadAppraisal } from '../../src/eventlog/appraise.ts';
import { registerName } from '../../src/eventlog/tcg-types.ts';
import { decodeDstackAttestation } from '../../src/eventlog/dstack.ts';
import { parseQuote } from '../../src/quote/parse.ts';
import { toHex } from '../../src/core/bytes.ts';
import { readTestFile } from '../helpers/testdata.ts';
import { eventlogFixture } from '../helpers/eventlog.ts';

const log = eventlogFixture('gcp-cos113-ccel-data.bin').slice(0, 18101);
const q = parseQuote(readTestFile('quotes/v4-gcp-cos113-00806f050000-gotdxguest.dat')).body;
const rtmrs: [string, string, string, string] = [toHex(q.rtmr0), toHex(q.rtmr1), toHex(q.rtmr2), toHex(q.rtmr3)];
const events = parseTcgLog(log).events;
const HEADER = 4 + 4 + 4 + 2 + 48 + 4;

async function appraise(bytes: Uint8Array): Promise<WorkloadAppraisal> {
  return appraiseWorkload({ rtmrs, evidence: [], bootLog: bytes });
}

/** The failure names `register` and event `#index` in one message. */
function namesEvent(r: WorkloadAppraisal, register: string, index: number): boolean {
  return r.errors.some(
    (e) =>
      ['EVENTLOG_DIGEST_MISMATCH', 'EVENTLOG_REPLAY_MISMATCH', 'EVENTLOG_MALFORMED'].includes(e.code) &&
      e.message.includes(register) &&
      e.message.includes(`#${index} `),
  );
}

describe('tampered events of the GCP COS 113 boot log', () => {
  it('the untouched log passes', async () => {
    expect((await appraise(log)).errors).toEqual([]);
  });

  it('a changed digest fails, naming register and event, for every event', async () => {
    const missed: number[] = [];
    for (const e of events) {
      const t = log.slice();
      t[e.offset + 14 + 7]! ^= 0x01;
      const r = await appraise(t);
      if (!namesEvent(r, registerName(e.mrIndex), e.index)) missed.push(e.index);
    }
    expect(missed).toEqual([]);
  });

  it('changed data fails, naming register and event, for every event whose digest covers its data', async () => {
    const described = await Promise.all(events.map((e) => describeBootEvent(e)));
    const checked = events.filter((_, i) => described[i]!.digestCheck === 'data');
    expect(checked.length).toBeGreaterThan(20);
    const missed: number[] = [];
    for (const e of checked) {
      const t = log.slice();
      t[e.offset + HEADER + Math.floor(e.data.length / 2)]! ^= 0x20;
      const r = await appraise(t);
      if (!namesEvent(r, registerName(e.mrIndex), e.index)) missed.push(e.index);
    }
    expect(missed).toEqual([]);
  });

  it('two neighbouring events of one register swapped fail, naming both', async () => {
    let swaps = 0;
    for (let i = 0; i + 1 < events.length; i++) {
      const a = events[i]!;
      const b = events[i + 1]!;
      if (a.mrIndex !== b.mrIndex || toHex(a.digests[0]!.digest) === toHex(b.digests[0]!.digest)) continue;
      const bytesA = log.slice(a.offset, b.offset);
      const end = events[i + 2]?.offset ?? log.length;
      const bytesB = log.slice(b.offset, end);
      const t = new Uint8Array([...log.subarray(0, a.offset), ...bytesB, ...bytesA, ...log.subarray(end)]);
      const r = await appraise(t);
      const reg = registerName(a.mrIndex);
      // after the swap the records are renumbered: b is #i+1, a is #i+2
      expect(
        r.errors.some((e) => e.code === 'EVENTLOG_REPLAY_MISMATCH' && e.message.includes(`${reg}:`) && e.message.includes(`#${a.index} and #${b.index}`)),
      ).toBe(true);
      swaps++;
    }
    expect(swaps).toBeGreaterThan(15);
  });

  it('a removed event fails, naming its register', async () => {
    for (const e of events) {
      const next = events[e.index]?.offset ?? log.length;
      const t = new Uint8Array([...log.subarray(0, e.offset), ...log.subarray(next)]);
      const r = await appraise(t);
      expect(r.errors.some((x) => x.code === 'EVENTLOG_REPLAY_MISMATCH' && x.message.startsWith(`${registerName(e.mrIndex)}:`))).toBe(true);
    }
  });
});

describe("tampered events of dstack's attestation", () => {
  const a = decodeDstackAttestation(eventlogFixture('dstack-attestation.bin'));
  const b = parseQuote(a.quote).body;
  const drtmrs: [string, string, string, string] = [toHex(b.rtmr0), toHex(b.rtmr1), toHex(b.rtmr2), toHex(b.rtmr3)];
  const run = (events: typeof a.events) => appraiseWorkload({ rtmrs: drtmrs, evidence: [], dstack: { events, registers: [0, 1, 2, 3] } });

  it('untouched: all four registers match', async () => {
    const r = await run(a.events);
    expect(r.errors).toEqual([]);
    expect(r.report.dstack!.replayed).toEqual({ RTMR0: 'match', RTMR1: 'match', RTMR2: 'match', RTMR3: 'match' });
  });

  it('every runtime event with a changed payload fails, naming RTMR3 and the event', async () => {
    for (const [i, e] of a.events.entries()) {
      if (e.imr !== 3) continue;
      const events = a.events.map((x, j) => (j === i ? { ...x, payload: Uint8Array.from([...x.payload, 0x21]) } : x));
      const r = await run(events);
      expect(r.errors.some((x) => x.message.includes('RTMR3') && x.message.includes(`#${i + 1} `))).toBe(true);
    }
  });

  it('every event with a changed digest fails, naming its register', async () => {
    for (const [i, e] of a.events.entries()) {
      const d = e.digest.slice(0, -2) + (e.digest.endsWith('00') ? '01' : '00');
      const r = await run(a.events.map((x, j) => (j === i ? { ...x, digest: d } : x)));
      const reg = `RTMR${e.imr}`;
      expect(
        r.errors.some(
          (x) => x.message.includes(reg) && (x.message.includes(`#${i + 1} `) || x.message.includes(`#${i + 1},`) || x.message.includes(`#${i + 1})`)),
        ),
      ).toBe(true);
    }
  });
});
