/**
 * Hostile input: truncations at every byte, bit flips and random bytes make the event-log parsers
 * and the appraisal fail only with typed errors (RatlsError EVENTLOG_*), never another exception,
 * never a hang, and never a passing appraisal of an altered measured byte.
 */
import { describe, expect, it } from 'vitest';
import { RatlsError } from '../../src/core/errors.ts';
import { parseTcgLog } from '../../src/eventlog/tcg.ts';
import { appraiseWorkload } from '../../src/eventlog/appraise.ts';
import { parseRuntimeLog, RuntimeLogBuilder } from '../../src/eventlog/runtime.ts';
import { decodeDstackAttestation, parseDstackEventLogJson } from '../../src/eventlog/dstack.ts';
import { describeBootEvent } from '../../src/eventlog/boot-events.ts';
import { parseQuote } from '../../src/quote/parse.ts';
import { toHex } from '../../src/core/bytes.ts';
import { readTestFile } from '../helpers/testdata.ts';
import { eventlogFixture } from '../helpers/eventlog.ts';

/** Deterministic pseudo-random numbers (xorshift32), so failures reproduce. */
function rng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 0x1_0000_0000;
  };
}

async function typedOnly(f: () => unknown): Promise<'ok' | string> {
  try {
    await f();
    return 'ok';
  } catch (err) {
    if (err instanceof RatlsError) return err.code;
    throw err;
  }
}

const cos = eventlogFixture('gcp-cos113-ccel-data.bin').slice(0, 18101);
const q = parseQuote(readTestFile('quotes/v4-gcp-cos113-00806f050000-gotdxguest.dat')).body;
const rtmrs: [string, string, string, string] = [toHex(q.rtmr0), toHex(q.rtmr1), toHex(q.rtmr2), toHex(q.rtmr3)];
const boundaries = new Set([...parseTcgLog(cos).events.map((e) => e.offset), cos.length, 65]);

describe('boot log (TCG crypto-agile) parser', () => {
  it('every truncation is malformed, or a shorter log that no longer replays to the quote', async () => {
    for (let n = 0; n < cos.length; n++) {
      const cut = cos.subarray(0, n);
      const code = await typedOnly(() => parseTcgLog(cut));
      if (boundaries.has(n)) {
        expect(code).toBe('ok');
        if (n < cos.length) expect((await appraiseWorkload({ rtmrs, evidence: [], bootLog: cut })).errors.length).toBeGreaterThan(0);
      } else expect(code).toBe('EVENTLOG_MALFORMED');
    }
  });

  it('bit flips: typed errors only; a flip passes only in bytes no digest covers', async () => {
    const events = parseTcgLog(cos).events;
    const described = await Promise.all(events.map((e) => describeBootEvent(e)));
    // Not measured by design (docs/eventlog.md): the event type field; the data of events whose digest
    // covers something else; the GUID and name of EV_EFI_VARIABLE_BOOT (edk2 hashes VariableData only);
    // GRUB's text prefix ("grub_cmd: ").
    const unmeasured = (pos: number) =>
      events.some((e, i) => {
        const rel = pos - e.offset;
        if (rel < 0 || rel >= 66 + e.data.length) return false;
        if (rel >= 4 && rel < 8) return true;
        const at = rel - 66;
        if (at < 0) return false;
        if (described[i]!.digestCheck === 'external') return true;
        if (e.eventType === 0x80000002) return at < 32 + 2 * new DataView(e.data.buffer, e.data.byteOffset).getUint32(16, true);
        if (e.eventType === 0xd) return at < 20;
        return false;
      });
    const rand = rng(7);
    for (let i = 0; i < 200; i++) {
      const pos = Math.floor(rand() * cos.length);
      const t = cos.slice();
      t[pos]! ^= 1 << Math.floor(rand() * 8);
      await typedOnly(() => parseTcgLog(t));
      const r = await appraiseWorkload({ rtmrs, evidence: [], bootLog: t });
      if (r.errors.length === 0) expect(unmeasured(pos) || pos < 65).toBe(true);
      for (const e of r.errors) expect(e.code).toMatch(/^EVENTLOG_/);
    }
  });

  it('random bytes, with and without a valid Spec ID header, fail typed', async () => {
    const rand = rng(11);
    const header = cos.subarray(0, 65);
    for (let i = 0; i < 400; i++) {
      const body = Uint8Array.from({ length: Math.floor(rand() * 600) }, () => Math.floor(rand() * 256));
      expect(await typedOnly(() => parseTcgLog(body))).toMatch(/^(ok|EVENTLOG_MALFORMED)$/);
      const withHeader = new Uint8Array([...header, ...body]);
      expect(await typedOnly(() => parseTcgLog(withHeader))).toMatch(/^(ok|EVENTLOG_MALFORMED)$/);
      const r = await appraiseWorkload({ rtmrs, evidence: [], bootLog: withHeader, runtimeLog: withHeader });
      expect(r.errors.length).toBeGreaterThan(0);
    }
  });

  it('huge declared sizes and counts are refused without allocating them', async () => {
    const t = cos.slice();
    new DataView(t.buffer).setUint32(65 + 4 + 4 + 4 + 2 + 48, 0xfffffff0, true); // first record's event size
    expect(await typedOnly(() => parseTcgLog(t))).toBe('EVENTLOG_MALFORMED');
    const c = cos.slice();
    new DataView(c.buffer).setUint32(65 + 8, 0xffffffff, true); // digest count
    expect(await typedOnly(() => parseTcgLog(c))).toBe('EVENTLOG_MALFORMED');
    expect(await typedOnly(() => parseTcgLog(new Uint8Array(17 * 1024 * 1024)))).toBe('EVENTLOG_MALFORMED');
  });

  it('bytes after the end marker that are not fill are refused (they would hide events from replay)', async () => {
    const t = eventlogFixture('gcp-cos113-ccel-data.bin').slice();
    t[20000] = 0x00;
    expect(await typedOnly(() => parseTcgLog(t))).toBe('EVENTLOG_MALFORMED');
  });
});

describe('runtime log parser', () => {
  it('truncations, flips and random bytes fail typed; a flip never passes', async () => {
    const b = new RuntimeLogBuilder();
    await b.append({ kind: 'proxy', version: '1.0.0', configDigest: 'ab'.repeat(48) });
    await b.append({ kind: 'model-added', name: 'm:latest', digest: 'cd'.repeat(32), size: 5 });
    const log = b.bytes();
    const value = toHex(b.replayValue);
    for (let n = 0; n < log.length; n++) await typedOnly(() => parseRuntimeLog(log.subarray(0, n)));
    const rand = rng(3);
    for (let i = 0; i < 400; i++) {
      const t = log.slice();
      const pos = 65 + Math.floor(rand() * (log.length - 65));
      t[pos]! ^= 1 << Math.floor(rand() * 8);
      expect(await typedOnly(() => parseRuntimeLog(t))).toMatch(/^(ok|EVENTLOG_MALFORMED|EVENTLOG_DIGEST_MISMATCH)$/);
      const r = await appraiseWorkload({ rtmrs: ['', '', '', value], evidence: [{ source: 'certificate', rtmr3: value }], runtimeLog: t });
      expect(r.errors.length).toBeGreaterThan(0);
    }
  });
});

describe("dstack's formats", () => {
  const att = eventlogFixture('dstack-attestation.bin');

  it('every truncation of attestation.bin is malformed; flips fail typed', async () => {
    for (let n = 0; n < att.length; n += 7) expect(await typedOnly(() => decodeDstackAttestation(att.subarray(0, n)))).toBe('EVENTLOG_MALFORMED');
    const rand = rng(5);
    for (let i = 0; i < 400; i++) {
      const t = att.slice();
      t[Math.floor(rand() * t.length)]! ^= 1 << Math.floor(rand() * 8);
      expect(await typedOnly(() => decodeDstackAttestation(t))).toMatch(/^(ok|EVENTLOG_MALFORMED)$/);
    }
  });

  it('V1 (MessagePack), other platforms and trailing bytes are refused with a reason', async () => {
    expect(() => decodeDstackAttestation(Uint8Array.of(0x83, 1, 2))).toThrow(/MessagePack/);
    const gcp = att.slice();
    gcp[1] = 1;
    expect(() => decodeDstackAttestation(gcp)).toThrow(/dstack-gcp-tdx/);
    expect(() => decodeDstackAttestation(new Uint8Array([...att, 0]))).toThrow(/stray bytes/);
  });

  it('JSON event logs: wrong shapes are malformed', async () => {
    for (const bad of [
      '{',
      '{}',
      '[1]',
      '[{"imr":9,"event_type":1,"digest":"","event":"","event_payload":""}]',
      '[{"imr":0,"event_type":1,"event_payload":"zz"}]',
    ]) {
      expect(await typedOnly(() => parseDstackEventLogJson(bad))).toBe('EVENTLOG_MALFORMED');
    }
  });
});
