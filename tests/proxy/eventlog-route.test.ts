/**
 * /.well-known/ratls/eventlog on a running `ratls serve` (simulated TDX): the JSON document and
 * the raw logs; the claims binding (certificate and nonce evidence carry "runtime-log", RTMR3 is
 * left alone); a model pulled into Ollama is recorded and new certificate evidence follows; a
 * measurement that is off answers EVENTLOG_MISSING.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRatlsServer, type RunningRatlsServer } from '../../src/proxy/server.ts';
import { startDemoOllama, type RunningDemoOllama } from '../../src/demo/ollama.ts';
import { probe } from '../../src/client/probe.ts';
import { parseEventLogDocument } from '../../src/eventlog/document.ts';
import { parseRuntimeLog } from '../../src/eventlog/runtime.ts';
import { parseTcgLog } from '../../src/eventlog/tcg.ts';
import { parseQuote } from '../../src/quote/parse.ts';
import { toHex } from '../../src/core/bytes.ts';
import { defaultClientPolicy, type ClientPolicy } from '../../src/verify/policy-file.ts';
import { initSimulatedWorld } from '../../src/tee/simulated/index.ts';
import type { RatlsVerificationResult } from '../../src/ratls/verify-cert.ts';
import { testConfig, trustingAgent } from './helpers.ts';

let simDir: string;
let rootPem: string;
let ollama: RunningDemoOllama;

beforeAll(async () => {
  simDir = mkdtempSync(join(tmpdir(), 'ratls-sim-el-'));
  rootPem = (await initSimulatedWorld(simDir)).rootPem;
  ollama = await startDemoOllama({ tokenDelayMs: 1 });
});
afterAll(async () => {
  await ollama?.close();
});

function policy(p: Partial<ClientPolicy['appraisal']> = {}, nonce = false): ClientPolicy {
  const d = defaultClientPolicy();
  return { ...d, trustedRoots: [rootPem], appraisal: { ...d.appraisal, ...p }, freshness: { ...d.freshness, requireNonce: nonce } };
}

async function get(srv: RunningRatlsServer, path: string): Promise<Response> {
  return fetch(`${srv.url.replace(/\/$/, '')}${path}`, { dispatcher: trustingAgent(srv.identity().certPem) } as RequestInit);
}

describe('claims binding', () => {
  let srv: RunningRatlsServer;
  beforeAll(async () => {
    srv = await startRatlsServer(
      testConfig({
        evidence: { provider: 'simulated', simDir },
        upstreams: { ollama: ollama.url, openWebui: 'http://127.0.0.1:9' },
        measurement: { mode: 'claims', pollInterval: 0 },
      }),
    );
  });
  afterAll(() => srv?.close({ drainTimeoutMs: 100 }));

  it('serves both logs as JSON and raw; the boot log replays to the TD', async () => {
    const res = await get(srv, '/.well-known/ratls/eventlog');
    expect(res.headers.get('cache-control')).toBe('no-store');
    const text = await res.text();
    const logs = parseEventLogDocument(text);
    const doc = JSON.parse(text) as { boot: { source: string; events: unknown[] }; runtime: { binding: string; replay: string } };
    expect(doc.boot.source).toBe('simulated');
    expect(doc.runtime.binding).toBe('claims');
    const raw = new Uint8Array(await (await get(srv, '/.well-known/ratls/eventlog?format=runtime')).arrayBuffer());
    expect(raw).toEqual(logs.runtimeLog);
    expect(parseTcgLog(new Uint8Array(await (await get(srv, '/.well-known/ratls/eventlog?format=boot')).arrayBuffer())).events.length).toBe(20);
    expect((await get(srv, '/.well-known/ratls/eventlog?format=cbor')).status).toBe(400);
    const lean = (await (await get(srv, '/.well-known/ratls/eventlog?decoded=false')).json()) as { boot: object; runtime: object };
    expect(Object.keys(lean.boot).sort()).toEqual(['log', 'source']);
    expect(Object.keys(lean.runtime).sort()).toEqual(['binding', 'log', 'replay']);
    const models = (await parseRuntimeLog(logs.runtimeLog!)).events.filter((e) => e.event.kind === 'model-added');
    expect(models.map((e) => (e.event as { name: string }).name)).toEqual(['ratls-demo:latest', 'ratls-demo:mini']);
  });

  it('the certificate binds the runtime log through its claims; RTMR3 stays zero', async () => {
    const e = await probe(srv.url, policy(), { workload: 'always' });
    const r = e.result as RatlsVerificationResult;
    expect(r.errors).toEqual([]);
    expect(r.workload?.binding).toBe('claims');
    expect(r.ratls?.runtimeLog).toBe(toHex(srv.measurement!.measurer!.replayValue()));
    expect(toHex(parseQuote(srv.identity().quote).body.rtmr3)).toBe('00'.repeat(48));
  });

  it('a pulled model is recorded; new certificate evidence covers it; nonce evidence carries the claim too', async () => {
    const before = srv.identity().fingerprintSha256;
    const pulled = await fetch(`${ollama.url}/api/pull`, { method: 'POST', body: JSON.stringify({ model: 'phi3:mini', stream: false }) });
    expect(pulled.status).toBe(200);
    const change = await srv.measurement!.measurer!.poll();
    expect(change?.events.map((x) => x.kind)).toEqual(['model-added']);
    for (let i = 0; i < 100 && srv.identity().fingerprintSha256 === before; i++) await new Promise((r) => setTimeout(r, 50));
    expect(srv.identity().fingerprintSha256).not.toBe(before);
    const e = await probe(srv.url, policy({ workload: { requiredModels: [{ name: 'phi3:mini' }] } }, true));
    const r = e.result as RatlsVerificationResult;
    expect(r.errors).toEqual([]);
    // session binding (the default): the session batch carries the runtime-log claim and covers the log
    expect(r.workload?.runtime).toMatchObject({ pending: 0, coveredBy: 'session evidence' });
    expect(r.workload?.runtime?.models.map((m) => m.name)).toContain('phi3:mini');
  });
});

describe('measurement off', () => {
  it('answers EVENTLOG_MISSING; a policy that pins models refuses the server', async () => {
    const srv = await startRatlsServer(testConfig({ evidence: { provider: 'simulated', simDir }, measurement: { mode: 'off', bootLog: false } }));
    try {
      const res = await get(srv, '/.well-known/ratls/eventlog?format=runtime');
      expect(res.status).toBe(404);
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe('EVENTLOG_MISSING');
      const e = await probe(srv.url, policy({ workload: { allowedModels: [{ name: 'x' }] } }));
      expect(e.result.ok).toBe(false);
      expect(e.result.errors.map((x) => x.code)).toEqual(['EVENTLOG_MISSING']);
    } finally {
      await srv.close({ drainTimeoutMs: 100 });
    }
  });
});
