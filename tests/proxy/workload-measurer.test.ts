/**
 * The server's measurement: what it records at start and on each poll (models added, removed,
 * re-pulled with new weights, versions), that RTMR3 follows the log exactly, that a restart in the
 * same boot continues the log (and completes an extend a crash interrupted), the claims binding,
 * and the observer's checks on Ollama's and open-webui's answers.
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { WorkloadMeasurer } from '../../src/proxy/workload-measurer.ts';
import { modelFromTags, observeUpstreams, type UpstreamObservation } from '../../src/proxy/upstream-observer.ts';
import { parseRuntimeLog, runtimeReplayValues, type ModelRecord } from '../../src/eventlog/runtime.ts';
import type { RtmrAccess } from '../../src/tee/rtmr.ts';
import { startDemoOllama } from '../../src/demo/ollama.ts';
import { demoModel } from '../../src/demo/models.ts';
import { toHex } from '../../src/core/bytes.ts';

function fakeRtmr(): RtmrAccess & { value: () => string; extends: number } {
  let v = new Uint8Array(48);
  const r = {
    kind: 'simulated' as const,
    extends: 0,
    read: async () => v.slice(),
    extend: async (_i: number, d: Uint8Array) => {
      v = new Uint8Array(createHash('sha384').update(v).update(d).digest());
      r.extends++;
    },
    value: () => toHex(v),
  };
  return r;
}

const M = (name: string, digest: string): ModelRecord => ({ name, digest: digest.repeat(64), size: 10, family: 'llama' });
const PROXY = { version: '0.1.0', configDigest: 'c'.repeat(96) };

function observer(seq: UpstreamObservation[]): () => Promise<UpstreamObservation> {
  let i = 0;
  return async () => seq[Math.min(i++, seq.length - 1)]!;
}

describe('WorkloadMeasurer', () => {
  it('records proxy, images, versions and models at start; each poll only what changed; RTMR3 follows the log', async () => {
    const rtmr = fakeRtmr();
    const m = await WorkloadMeasurer.start({
      binding: 'rtmr3',
      rtmr,
      proxy: PROXY,
      images: [{ role: 'open-webui', image: 'ghcr.io/open-webui/open-webui', digest: `sha256:${'d'.repeat(64)}` }],
      upstreams: {},
      observe: observer([
        { openWebuiVersion: '0.6.5', ollamaVersion: '0.17.7', models: [M('a:latest', 'a'), M('b:latest', 'b')], problems: [] },
        { openWebuiVersion: '0.6.5', ollamaVersion: '0.17.7', models: [M('a:latest', 'a'), M('b:latest', 'b')], problems: [] },
        { openWebuiVersion: '0.6.5', ollamaVersion: '0.17.7', models: [M('a:latest', 'a'), M('b:latest', 'e'), M('c:latest', 'c')], problems: [] },
        { ollamaVersion: '0.17.8', problems: ['open-webui /api/version: HTTP 502', 'Ollama /api/tags: fetch failed'] },
      ]),
    });
    const kinds = async () => (await parseRuntimeLog(m.log())).events.map((e) => `${e.event.kind}:${(e.event as { name?: string }).name ?? ''}`);
    expect(await kinds()).toEqual(['proxy:', 'image:', 'open-webui:', 'ollama:', 'model-added:a:latest', 'model-added:b:latest']);
    expect(rtmr.extends).toBe(6);
    expect(rtmr.value()).toBe(toHex(m.replayValue()));

    const changes: number[] = [];
    m.onChange((c) => changes.push(c.events.length));
    expect(await m.poll()).toBeUndefined();
    const c = await m.poll();
    expect(c?.events.map((e) => e.kind)).toEqual(['model-removed', 'model-added', 'model-added']);
    expect((await kinds()).slice(6)).toEqual(['model-removed:b:latest', 'model-added:b:latest', 'model-added:c:latest']);
    // an unreachable Ollama is not a deleted model: only the version that was read is recorded
    expect((await m.poll())?.events).toEqual([{ kind: 'ollama', version: '0.17.8' }]);
    expect(m.models().map((x) => x.name)).toEqual(['a:latest', 'b:latest', 'c:latest']);
    expect(changes).toEqual([3, 1]);
    expect(rtmr.value()).toBe(toHex(m.replayValue()));
    const values = await runtimeReplayValues((await parseRuntimeLog(m.log())).events);
    expect(values.at(-1)).toBe(rtmr.value());
  });

  it('claims binding: nothing is extended; the claim is the replay value', async () => {
    const m = await WorkloadMeasurer.start({
      binding: 'claims',
      proxy: PROXY,
      images: [],
      upstreams: {},
      observe: observer([{ models: [M('a:latest', 'a')], problems: [] }]),
    });
    const values = await runtimeReplayValues((await parseRuntimeLog(m.log())).events);
    expect(toHex(m.runtimeLogClaim()!)).toBe(values.at(-1));
  });

  it('a restart in the same boot continues the saved log; a crash between log and extend is completed', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ratls-rtlog-'));
    const logFile = join(dir, 'runtime-events.bin');
    const rtmr = fakeRtmr();
    const obs = observer([{ models: [M('a:latest', 'a')], problems: [] }]);
    const first = await WorkloadMeasurer.start({ binding: 'rtmr3', rtmr, logFile, proxy: PROXY, images: [], upstreams: {}, observe: obs });
    expect(readFileSync(logFile)).toEqual(Buffer.from(first.log()));
    // same workload after the restart: nothing new to record
    const second = await WorkloadMeasurer.start({ binding: 'rtmr3', rtmr, logFile, proxy: PROXY, images: [], upstreams: {}, observe: obs });
    expect((await parseRuntimeLog(second.log())).events).toHaveLength(2);
    expect(rtmr.extends).toBe(2);

    // simulate a crash: the next event reached the file but not RTMR3
    const third = await WorkloadMeasurer.start({
      binding: 'rtmr3',
      rtmr: { ...rtmr, kind: 'simulated', read: rtmr.read, extend: async () => undefined },
      logFile,
      proxy: PROXY,
      images: [],
      upstreams: {},
      observe: observer([{ models: [M('a:latest', 'a'), M('b:latest', 'b')], problems: [] }]),
    });
    expect((await parseRuntimeLog(third.log())).events).toHaveLength(3);
    expect(rtmr.value()).not.toBe(toHex(third.replayValue()));
    const fourth = await WorkloadMeasurer.start({
      binding: 'rtmr3',
      rtmr,
      logFile,
      proxy: PROXY,
      images: [],
      upstreams: {},
      observe: observer([{ models: [M('a:latest', 'a'), M('b:latest', 'b')], problems: [] }]),
    });
    expect(rtmr.value()).toBe(toHex(fourth.replayValue()));
    expect((await parseRuntimeLog(fourth.log())).events).toHaveLength(3);
  });

  it('RTMR3 extended by other software first: a new log states its value, and replays from it', async () => {
    const rtmr = fakeRtmr();
    await rtmr.extend(3, new Uint8Array(48).fill(1));
    const before = rtmr.value();
    const dir = mkdtempSync(join(tmpdir(), 'ratls-rtlog-'));
    writeFileSync(join(dir, 'log'), 'garbage');
    const m = await WorkloadMeasurer.start({
      binding: 'rtmr3',
      rtmr,
      logFile: join(dir, 'log'),
      proxy: PROXY,
      images: [],
      upstreams: {},
      observe: observer([{ problems: [] }]),
    });
    const log = await parseRuntimeLog(m.log());
    expect(log.initial).toBe(before);
    expect((await runtimeReplayValues(log.events, log.initial)).at(-1)).toBe(rtmr.value());
  });
});

describe('reading the upstreams', () => {
  it("takes name, manifest digest, size and details from Ollama's /api/tags, and versions", async () => {
    const model = demoModel('llama3.2:1b', { quantizationLevel: 'Q8_0' });
    const ollama = await startDemoOllama({ models: [model], version: '0.17.7' });
    try {
      const o = await observeUpstreams({ ollama: ollama.url, openWebui: 'http://127.0.0.1:9' });
      expect(o.ollamaVersion).toBe('0.17.7');
      expect(o.openWebuiVersion).toBeUndefined();
      expect(o.problems.join()).toContain('open-webui /api/version');
      expect(o.models).toEqual([
        {
          name: 'llama3.2:1b',
          digest: model.digest,
          size: model.size,
          format: 'gguf',
          family: 'llama',
          families: ['llama'],
          parameterSize: '1.2B',
          quantization: 'Q8_0',
        },
      ]);
    } finally {
      await ollama.close();
    }
  });

  it('skips entries that cannot be measured', () => {
    expect(modelFromTags({ name: 'x', digest: 'sha256:' + 'A'.repeat(64), size: 1 })?.digest).toBe('a'.repeat(64));
    expect(modelFromTags({ name: 'x', digest: 'short', size: 1 })).toBeUndefined();
    expect(modelFromTags({ name: 'x\n', digest: 'a'.repeat(64), size: 1 })).toBeUndefined();
    expect(modelFromTags({ name: 'x', digest: 'a'.repeat(64), size: -1 })).toBeUndefined();
  });
});
