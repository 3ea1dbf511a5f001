/**
 * The runtime log (docs/eventlog.md): exact encoding and replay, coverage by the evidence (RTMR3 or
 * the "runtime-log" claim), append-only model history, tampering named by register and event, and
 * the workload policy.
 */
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { RuntimeLogBuilder, foldWorkload, parseRuntimeLog, runtimeLogHeader, runtimeReplayValues, type RuntimeEvent } from '../../src/eventlog/runtime.ts';
import { appraiseWorkload } from '../../src/eventlog/appraise.ts';
import { canonicalJson } from '../../src/eventlog/jcs.ts';
import { parseTcgLog } from '../../src/eventlog/tcg.ts';
import { toHex } from '../../src/core/bytes.ts';

const M1 = { name: 'llama3.2:1b', digest: 'a'.repeat(64), size: 1_300_000_000, format: 'gguf', family: 'llama', parameterSize: '1.2B', quantization: 'Q8_0' };
const M2 = { name: 'qwen2.5:0.5b', digest: 'b'.repeat(64), size: 400_000_000, family: 'qwen2', quantization: 'Q4_K_M' };
const EVENTS: RuntimeEvent[] = [
  { kind: 'proxy', version: '0.1.0', configDigest: 'c'.repeat(96) },
  { kind: 'image', role: 'open-webui', image: 'ghcr.io/open-webui/open-webui', digest: `sha256:${'d'.repeat(64)}` },
  { kind: 'open-webui', version: '0.6.5' },
  { kind: 'ollama', version: '0.17.7' },
  { kind: 'model-added', ...M1 },
];

async function build(events: RuntimeEvent[], initial?: Uint8Array): Promise<RuntimeLogBuilder> {
  const b = new RuntimeLogBuilder(initial);
  for (const e of events) await b.append(e);
  return b;
}

const sha384 = (b: Uint8Array) => new Uint8Array(createHash('sha384').update(b).digest());

describe('encoding', () => {
  it('canonical JSON follows RFC 8785 for the values events use', () => {
    expect(canonicalJson({ b: 1, a: 'x\u2028"', é: true, A: [null, false, -3] })).toBe('{"A":[null,false,-3],"a":"x\u2028\\"","b":1,"é":true}');
    expect(() => canonicalJson({ x: 1.5 })).toThrow(/whole numbers/);
  });

  it('each record is mrIndex 4, EV_EVENT_TAG, SHA-384(tagged event), with the JSON in the documented form', async () => {
    const b = await build(EVENTS.slice(0, 1));
    const log = parseTcgLog(b.bytes());
    expect(log.events).toHaveLength(1);
    const e = log.events[0]!;
    expect([e.mrIndex, e.eventType]).toEqual([4, 6]);
    expect(Buffer.from(e.data.subarray(0, 4)).toString('latin1')).toBe('RTLS');
    expect(new DataView(e.data.buffer, e.data.byteOffset).getUint32(4, true)).toBe(e.data.length - 8);
    expect(new TextDecoder().decode(e.data.subarray(8))).toBe(`{"configDigest":"${'c'.repeat(96)}","kind":"proxy","seq":1,"version":"0.1.0"}`);
    expect(toHex(e.digests[0]!.digest)).toBe(toHex(sha384(e.data)));
    // RTMR3 = SHA-384(0^48 || digest), computed independently with node:crypto
    expect(toHex(b.replayValue)).toBe(toHex(sha384(new Uint8Array([...new Uint8Array(48), ...e.digests[0]!.digest]))));
  });

  it('round-trips: the parsed log folds to the recorded workload', async () => {
    const b = await build([...EVENTS, { kind: 'model-added', ...M2 }, { kind: 'model-removed', name: M1.name, digest: M1.digest }]);
    const log = await parseRuntimeLog(b.bytes());
    expect(log.events.map((e) => e.seq)).toEqual([1, 2, 3, 4, 5, 6, 7]);
    const s = foldWorkload(log.events);
    expect(s.proxy).toEqual({ version: '0.1.0', configDigest: 'c'.repeat(96), seq: 1 });
    expect(s.openWebui?.version).toBe('0.6.5');
    expect(s.ollama?.version).toBe('0.17.7');
    expect(s.images).toEqual([{ role: 'open-webui', image: 'ghcr.io/open-webui/open-webui', digest: `sha256:${'d'.repeat(64)}`, seq: 2 }]);
    expect(s.models).toEqual([{ ...M2, seq: 6 }]);
    expect(s.removed).toEqual([{ name: M1.name, digest: M1.digest, seq: 7, addedSeq: 5 }]);
    const values = await runtimeReplayValues(log.events);
    expect(values.at(-1)).toBe(toHex(b.replayValue));
  });

  it('an initial-value record states RTMR3 before the log (other software extended it first)', async () => {
    const before = sha384(new Uint8Array([1]));
    const b = await build(EVENTS.slice(0, 2), before);
    const log = await parseRuntimeLog(b.bytes());
    expect(log.initial).toBe(toHex(before));
    expect((await runtimeReplayValues(log.events, log.initial)).at(-1)).toBe(toHex(b.replayValue));
  });

  it('refuses a log without our header', async () => {
    const b = await build(EVENTS.slice(0, 1));
    const bytes = b.bytes();
    bytes[40]! ^= 1;
    await expect(parseRuntimeLog(bytes)).rejects.toMatchObject({ code: 'EVENTLOG_MALFORMED' });
    expect(runtimeLogHeader().length).toBe(88);
  });
});

describe('coverage by evidence', () => {
  it('RTMR3 binding: a quote made after k events covers k; later events are pending', async () => {
    const b = new RuntimeLogBuilder();
    for (const e of EVENTS) await b.append(e);
    const rtmr3AtCert = toHex(b.replayValue);
    await b.append({ kind: 'model-added', ...M2 });
    const r = await appraiseWorkload({ rtmrs: ['', '', '', rtmr3AtCert], evidence: [{ source: 'certificate', rtmr3: rtmr3AtCert }], runtimeLog: b.bytes() });
    expect(r.errors).toEqual([]);
    expect(r.report.binding).toBe('rtmr3');
    expect(r.report.runtime).toMatchObject({ coveredBy: 'certificate', covered: 5, pending: 1 });
    expect(r.report.runtime!.models.map((m) => [m.name, m.pending])).toEqual([
      [M1.name, false],
      [M2.name, true],
    ]);
    // fresher evidence covers the rest
    const fresh = toHex(b.replayValue);
    const r2 = await appraiseWorkload({
      rtmrs: ['', '', '', rtmr3AtCert],
      evidence: [
        { source: 'certificate', rtmr3: rtmr3AtCert },
        { source: 'nonce evidence', rtmr3: fresh },
      ],
      runtimeLog: b.bytes(),
    });
    expect(r2.report.runtime).toMatchObject({ coveredBy: 'nonce evidence', covered: 6, pending: 0 });
  });

  it('claims binding: the "runtime-log" claim is the replay from zero; RTMR3 is not used', async () => {
    const b = await build(EVENTS);
    const claim = toHex(b.replayValue);
    const r = await appraiseWorkload({
      rtmrs: ['', '', '', '0'.repeat(96)],
      evidence: [{ source: 'certificate', rtmr3: '0'.repeat(96), runtimeLog: claim }],
      runtimeLog: b.bytes(),
    });
    expect(r.errors).toEqual([]);
    expect(r.report.binding).toBe('claims');
    expect(r.report.runtime!.covered).toBe(5);
  });

  it('a log that no evidence covers is refused, naming RTMR3', async () => {
    const b = await build(EVENTS);
    const r = await appraiseWorkload({
      rtmrs: ['', '', '', 'e'.repeat(96)],
      evidence: [{ source: 'certificate', rtmr3: 'e'.repeat(96) }],
      runtimeLog: b.bytes(),
    });
    expect(r.errors.map((e) => e.code)).toEqual(['EVENTLOG_REPLAY_MISMATCH']);
    expect(r.errors[0]!.message).toMatch(/^RTMR3: no prefix of the runtime log's 5 events/);
  });
});

describe('tampered runtime events are named by register and event', () => {
  it('digest, data, order and removal, for every event', async () => {
    const b = await build([...EVENTS, { kind: 'model-added', ...M2 }]);
    const bytes = b.bytes();
    const value = toHex(b.replayValue);
    const events = parseTcgLog(bytes).events;
    const run = async (t: Uint8Array) =>
      (await appraiseWorkload({ rtmrs: ['', '', '', value], evidence: [{ source: 'certificate', rtmr3: value }], runtimeLog: t })).errors;
    for (const e of events) {
      const digest = bytes.slice();
      digest[e.offset + 20]! ^= 1;
      expect((await run(digest))[0]!.message).toContain(`RTMR3 event #${e.index} `);
      const data = bytes.slice();
      data[e.offset + 66 + e.data.length - 3]! ^= 1;
      expect((await run(data))[0]!.message).toContain(`RTMR3 event #${e.index} `);
      const next = events[e.index]?.offset ?? bytes.length;
      const removed = new Uint8Array([...bytes.subarray(0, e.offset), ...bytes.subarray(next)]);
      const err = (await run(removed))[0]!;
      expect(err.message).toContain('RTMR3');
      if (e.index < events.length) expect(err.message).toContain(`event #${e.index} `);
    }
    const [a, c] = [events[1]!, events[2]!];
    const swapped = new Uint8Array([
      ...bytes.subarray(0, a.offset),
      ...bytes.subarray(c.offset, events[3]!.offset),
      ...bytes.subarray(a.offset, c.offset),
      ...bytes.subarray(events[3]!.offset),
    ]);
    const err = (await run(swapped))[0]!;
    expect(err.code).toBe('EVENTLOG_MALFORMED');
    expect(err.message).toContain('RTMR3 event #2 carries sequence number 3');
  });
});

describe('workload policy', () => {
  const rtmr3 = async (events: RuntimeEvent[]) => {
    const b = await build(events);
    return { log: b.bytes(), value: toHex(b.replayValue) };
  };
  const appraise = async (events: RuntimeEvent[], policy: Parameters<typeof appraiseWorkload>[0]['policy']) => {
    const { log, value } = await rtmr3(events);
    return appraiseWorkload({ rtmrs: ['', '', '', value], evidence: [{ source: 'certificate', rtmr3: value }], runtimeLog: log, policy });
  };

  it('allowed models: an unknown model is refused, naming its event; allowing it passes', async () => {
    const events: RuntimeEvent[] = [...EVENTS, { kind: 'model-added', ...M2 }];
    const only1 = await appraise(events, { allowedModels: [{ name: M1.name, digest: M1.digest }] });
    expect(only1.errors.map((e) => e.code)).toEqual(['WORKLOAD_MODEL_NOT_ALLOWED']);
    expect(only1.errors[0]!.message).toContain('RTMR3 runtime event #6');
    expect(only1.errors[0]!.message).toContain('qwen2.5:0.5b');
    expect((await appraise(events, { allowedModels: [{ name: M1.name }, { name: M2.name, digest: `sha256:${M2.digest.toUpperCase()}` }] })).errors).toEqual([]);
    // same name, other weights
    const other = await appraise(events, {
      allowedModels: [
        { name: M1.name, digest: M1.digest },
        { name: M2.name, digest: 'f'.repeat(64) },
      ],
    });
    expect(other.errors.map((e) => e.code)).toEqual(['WORKLOAD_MODEL_NOT_ALLOWED']);
  });

  it('a removed model no longer counts against the allowed list, but stays in the history', async () => {
    const r = await appraise([...EVENTS, { kind: 'model-added', ...M2 }, { kind: 'model-removed', name: M2.name, digest: M2.digest }], {
      allowedModels: [{ name: M1.name }],
    });
    expect(r.errors).toEqual([]);
    expect(r.report.runtime!.removed.map((x) => x.name)).toEqual([M2.name]);
  });

  it('required models, versions, config digest and image digests', async () => {
    const ok = await appraise(EVENTS, {
      requiredModels: [{ name: M1.name, digest: M1.digest }],
      openWebuiVersions: ['0.6.5'],
      ollamaVersions: ['0.17.7'],
      proxyVersions: ['0.1.0'],
      proxyConfigDigests: ['C'.repeat(96)],
      imageDigests: { 'open-webui': [`sha256:${'d'.repeat(64)}`] },
    });
    expect(ok.errors).toEqual([]);
    const bad = await appraise(EVENTS, {
      requiredModels: [{ name: M2.name }],
      openWebuiVersions: ['0.6.4'],
      proxyConfigDigests: ['0'.repeat(96)],
      imageDigests: { ollama: [`sha256:${'e'.repeat(64)}`] },
    });
    expect(bad.errors.map((e) => e.code)).toEqual(['WORKLOAD_MODEL_MISSING', 'WORKLOAD_MISMATCH', 'WORKLOAD_MISMATCH', 'WORKLOAD_MISMATCH']);
    expect(bad.errors[1]!.message).toContain('RTMR3 runtime event #3 (open-webui)');
    expect(bad.errors[2]!.message).toContain('RTMR3 runtime event #1 (proxy)');
  });

  it('a required model recorded after the evidence is pending, not yet accepted', async () => {
    const b = await build(EVENTS);
    const atCert = toHex(b.replayValue);
    await b.append({ kind: 'model-added', ...M2 });
    const r = await appraiseWorkload({
      rtmrs: ['', '', '', atCert],
      evidence: [{ source: 'certificate', rtmr3: atCert }],
      runtimeLog: b.bytes(),
      policy: { requiredModels: [{ name: M2.name }] },
    });
    expect(r.errors.map((e) => e.code)).toEqual(['WORKLOAD_MODEL_MISSING']);
    expect(r.errors[0]!.message).toContain('after the evidence was made');
  });

  it('a workload pin without any runtime log is EVENTLOG_MISSING', async () => {
    const r = await appraiseWorkload({ rtmrs: ['', '', '', ''], evidence: [], policy: { allowedModels: [{ name: 'x' }] } });
    expect(r.errors.map((e) => e.code)).toEqual(['EVENTLOG_MISSING']);
  });
});
