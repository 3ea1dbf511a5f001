/**
 * E3: an upstream that lists many models (or a list that keeps changing) must not grow the runtime
 * log past what verifiers read, nor make the server record the same events again on every poll.
 * Before the fix, 4096 long-named models made a 20 MB log that the server's own parser refused
 * (16 MiB): the events stayed in the log but not in the measurer's state, so every poll appended
 * the whole list again (+20 MB each time, RTMR3 extended 4096 times), and /eventlog answered 500.
 * Logs between 1 and 16 MiB were refused by every client (it read 1 MiB at most).
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAX_RUNTIME_LOG_BYTES, WorkloadMeasurer } from '../../../src/proxy/workload-measurer.ts';
import type { UpstreamObservation } from '../../../src/proxy/upstream-observer.ts';
import { parseRuntimeLog, type ModelRecord } from '../../../src/eventlog/runtime.ts';
import { parseEventLogDocument } from '../../../src/eventlog/document.ts';
import { startRatlsServer, type RunningRatlsServer } from '../../../src/proxy/server.ts';
import { probe } from '../../../src/client/probe.ts';
import { initSimulatedWorld } from '../../../src/tee/simulated/index.ts';
import { defaultClientPolicy, type ClientPolicy } from '../../../src/verify/policy-file.ts';
import type { RatlsVerificationResult } from '../../../src/ratls/verify-cert.ts';
import { testConfig, trustingAgent } from '../../proxy/helpers.ts';

const PROXY = { version: '0.1.0', configDigest: 'c'.repeat(96) };

/** `n` models whose names are `nameLength` characters long (Ollama's /api/tags allows 512), with `families` long family names. */
function models(n: number, nameLength: number, tag = 'a', families = 0): ModelRecord[] {
  return Array.from({ length: n }, (_, i) => {
    const id = `${tag}${i}:`;
    return {
      name: id + 'x'.repeat(nameLength - id.length),
      digest: i.toString(16).padStart(64, tag === 'a' ? '0' : 'f'),
      size: 1000 + i,
      family: 'llama',
      ...(families > 0 ? { families: Array.from({ length: families }, (_, k) => `${k}`.padEnd(128, 'f')) } : {}),
    };
  });
}

function silentLogger(errors: string[]) {
  return { info: () => {}, warn: () => {}, error: (_o: object, msg: string) => void errors.push(msg) } as never;
}

describe('the runtime log stays within what verifiers read', () => {
  it('a model list too large for the log is recorded not at all, once; polls do not append it again', async () => {
    const errors: string[] = [];
    const list: UpstreamObservation = { ollamaVersion: '0.17.7', models: models(4096, 512, 'a', 32), problems: [] };
    const m = await WorkloadMeasurer.start({
      binding: 'claims',
      proxy: PROXY,
      images: [],
      upstreams: {},
      observe: async () => list,
      logger: silentLogger(errors),
    });
    const size = m.log().length;
    expect(size).toBeLessThanOrEqual(MAX_RUNTIME_LOG_BYTES);
    const changes: number[] = [];
    m.onChange((c) => changes.push(c.events.length));
    for (let i = 0; i < 3; i++) expect(await m.poll()).toBeUndefined();
    // nothing more was written, the log still parses, and only the proxy's own event is in it
    expect(m.log().length).toBe(size);
    expect((await parseRuntimeLog(m.log())).events.map((e) => e.event.kind)).toEqual(['proxy']);
    expect(m.incomplete).toMatch(/incomplete: recording 4097 more events would make the runtime log \d+ bytes, over the 4194304 verifiers accept/);
    expect(m.incomplete).toMatch(/Hold fewer models/);
    // the evidence stops vouching for the log
    expect(m.runtimeLogClaim()).toBeUndefined();
    expect(errors).toHaveLength(1);
    expect(changes).toEqual([]);
  });

  it('a list that keeps changing fills the log up to the limit, then stops; every recorded batch is whole', async () => {
    const rtmr = { extends: 0 };
    let flip = false;
    const m = await WorkloadMeasurer.start({
      binding: 'claims',
      proxy: PROXY,
      images: [],
      upstreams: {},
      observe: async () => {
        flip = !flip;
        return { models: models(400, 200, flip ? 'a' : 'b'), problems: [] };
      },
      logger: silentLogger([]),
    });
    const changes: number[] = [];
    m.onChange((c) => {
      rtmr.extends += c.events.length;
      changes.push(c.events.length);
    });
    for (let i = 0; i < 40 && m.incomplete === undefined; i++) await m.poll();
    expect(m.incomplete).toBeDefined();
    expect(m.log().length).toBeLessThanOrEqual(MAX_RUNTIME_LOG_BYTES);
    const events = (await parseRuntimeLog(m.log())).events;
    // start: proxy + 400 added; each flip: 400 removed + 400 added; the last (refused) change is announced with no events
    expect(changes.at(-1)).toBe(0);
    expect(changes.slice(0, -1).every((n) => n === 800)).toBe(true);
    expect(events.length).toBe(401 + 800 * (changes.length - 1));
    const size = m.log().length;
    await m.poll();
    expect(m.log().length).toBe(size);
  });
});

/** An Ollama-shaped upstream whose /api/tags lists `list()`. */
async function fakeOllama(list: () => ModelRecord[]): Promise<{ url: string; server: Server }> {
  const server = createServer((req, res) => {
    if (req.url === '/api/version') return void res.end(JSON.stringify({ version: '0.17.7' }));
    if (req.url === '/api/tags')
      return void res.end(
        JSON.stringify({ models: list().map((m) => ({ name: m.name, digest: m.digest, size: m.size, details: { family: m.family, families: m.families } })) }),
      );
    res.statusCode = 404;
    res.end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server };
}

describe('ratls serve with a large runtime log', () => {
  let simDir: string;
  let rootPem: string;
  let list: ModelRecord[] = models(3000, 500);
  let ollama: { url: string; server: Server };
  let srv: RunningRatlsServer;
  const policy = (workload: NonNullable<ClientPolicy['appraisal']['workload']>): ClientPolicy => {
    const d = defaultClientPolicy();
    return { ...d, trustedRoots: [rootPem], appraisal: { ...d.appraisal, workload } };
  };

  beforeAll(async () => {
    simDir = mkdtempSync(join(tmpdir(), 'ratls-sim-big-log-'));
    rootPem = (await initSimulatedWorld(simDir)).rootPem;
    ollama = await fakeOllama(() => list);
    srv = await startRatlsServer(
      testConfig({
        evidence: { provider: 'simulated', simDir },
        upstreams: { ollama: ollama.url, openWebui: 'http://127.0.0.1:9' },
        measurement: { mode: 'claims', pollInterval: 0 },
      }),
    );
  });
  afterAll(async () => {
    await srv?.close({ drainTimeoutMs: 100 });
    ollama?.server.close();
  });

  it('a log of several MiB within the limit is read and replayed by clients (they read 1 MiB before)', async () => {
    const size = srv.measurement!.measurer!.log().length;
    expect(size).toBeGreaterThan(1.5 * 1024 * 1024);
    expect(size).toBeLessThanOrEqual(MAX_RUNTIME_LOG_BYTES);
    const e = await probe(srv.url, policy({ requiredModels: [{ name: list[2999]!.name }] }));
    const r = e.result as RatlsVerificationResult;
    expect(r.errors).toEqual([]);
    expect(r.workload?.runtime?.models).toHaveLength(3000);
  }, 60_000);

  it('past the limit the server stops serving the log and workload checks fail closed, saying why', async () => {
    // every model replaced: 3000 removals and 3000 additions do not fit beside the 3000 already recorded
    list = models(3000, 500, 'b');
    const before = srv.identity().fingerprintSha256;
    expect(await srv.measurement!.measurer!.poll()).toMatchObject({ events: [] });
    expect(srv.measurement!.measurer!.incomplete).toBeDefined();
    // new certificate evidence without the runtime-log claim
    for (let i = 0; i < 100 && srv.identity().fingerprintSha256 === before; i++) await new Promise((r) => setTimeout(r, 50));
    expect(srv.identity().fingerprintSha256).not.toBe(before);

    const res = await fetch(`${srv.url}.well-known/ratls/eventlog`, { dispatcher: trustingAgent(srv.identity().certPem) } as RequestInit);
    expect(res.status).toBe(200);
    const text = await res.text();
    expect((JSON.parse(text) as { runtime: unknown }).runtime).toBeNull();
    expect(parseEventLogDocument(text).runtimeUnavailable).toMatch(/runtime event log is incomplete/);
    const raw = await fetch(`${srv.url}.well-known/ratls/eventlog?format=runtime`, { dispatcher: trustingAgent(srv.identity().certPem) } as RequestInit);
    expect(raw.status).toBe(404);

    const e = await probe(srv.url, policy({ requiredModels: [{ name: list[0]!.name }] }));
    expect(e.result.ok).toBe(false);
    expect(e.result.errors.map((x) => x.code)).toContain('EVENTLOG_MISSING');
    expect((e.result as RatlsVerificationResult).workload?.unavailable).toMatch(/incomplete/);
  }, 60_000);
});
