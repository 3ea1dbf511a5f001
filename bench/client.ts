/**
 * Client-side cost of attestation per new connection, against a local `ratls serve` (simulated
 * provider, stapled collateral): plain TLS (certificate pinned, no attestation) vs attested agent
 * with certificate binding, with a nonce round trip, and with session binding (the default), plus
 * a request on an already-attested keep-alive connection. `npm run bench -- client [iterations]`.
 * (Connection rates under concurrency, with real-TDX quote latency: `npm run bench -- session`.)
 */
import https from 'node:https';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startRatlsServer } from '../src/proxy/server.ts';
import { startDemoOllama } from '../src/demo/ollama.ts';
import { validateConfig } from '../src/proxy/config.ts';
import { initSimulatedWorld, loadSimulatedProvider } from '../src/tee/simulated/index.ts';
import { createRatlsIdentity } from '../src/ratls/identity.ts';
import { createNonceEvidence } from '../src/ratls/evidence.ts';
import { createAttestedAgent } from '../src/client/agent.ts';
import { defaultClientPolicy, type ClientPolicy } from '../src/verify/policy-file.ts';

function get(url: string, agent: https.Agent): Promise<void> {
  return new Promise((resolve, reject) => {
    https
      .get(url, { agent }, (res) => {
        res.resume();
        res.on('end', () => resolve());
      })
      .on('error', reject);
  });
}

function stats(ms: number[]): { median: number; p95: number; mean: number } {
  const s = [...ms].sort((a, b) => a - b);
  const at = (q: number) => s[Math.min(s.length - 1, Math.floor(q * s.length))]!;
  return { median: +at(0.5).toFixed(2), p95: +at(0.95).toFixed(2), mean: +(s.reduce((a, b) => a + b, 0) / s.length).toFixed(2) };
}

async function time(n: number, fn: () => Promise<void>): Promise<number[]> {
  await fn(); // warm-up
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const t = performance.now();
    await fn();
    out.push(performance.now() - t);
  }
  return out;
}

export async function run(args: string[]): Promise<void> {
  const n = Number(args[0] ?? 30);
  const dir = mkdtempSync(join(tmpdir(), 'ratls-bench-client-'));
  const world = await initSimulatedWorld(dir);
  const provider = await loadSimulatedProvider(dir);
  const demo = await startDemoOllama({ tokenDelayMs: 1 });
  const srv = await startRatlsServer(
    validateConfig({ listen: '127.0.0.1:0', log: { level: 'silent' }, routes: [{ prefix: '/', target: demo.url, name: 'demo' }] }),
    {
      identitySource: {
        issue: (now) => createRatlsIdentity({ provider, hosts: ['127.0.0.1'], now }),
        evidence: (id, nonce) => createNonceEvidence(id as unknown as { spkiDer: Uint8Array }, provider, nonce),
        quote: (rd) => provider.getQuote(rd),
      },
      autoRotate: false,
    },
  );
  const url = `${srv.url}api/version`;
  const policy = (nonce: boolean, binding: 'certificate' | 'session' = 'certificate'): ClientPolicy => {
    const p = defaultClientPolicy();
    p.trustedRoots = [world.rootPem];
    p.collateral = { offline: true };
    p.freshness.binding = binding;
    p.freshness.requireNonce = nonce;
    return p;
  };
  const fresh = (mk: () => https.Agent) => async () => {
    const a = mk();
    await get(url, a);
    a.destroy();
  };
  const results = {
    iterations: n,
    node: process.version,
    plainTlsNewConnection: stats(
      await time(
        n,
        fresh(() => new https.Agent({ ca: srv.identity().certPem, checkServerIdentity: () => undefined, maxCachedSessions: 0 })),
      ),
    ),
    attestedNewConnection: stats(
      await time(
        n,
        fresh(() => createAttestedAgent(policy(false))),
      ),
    ),
    attestedNewConnectionWithNonce: stats(
      await time(
        n,
        fresh(() => createAttestedAgent(policy(true))),
      ),
    ),
    attestedNewConnectionSession: stats(
      await time(
        n,
        fresh(() => createAttestedAgent(policy(false, 'session'))),
      ),
    ),
    attestedKeepAliveRequest: await (async () => {
      const a = createAttestedAgent(policy(false));
      const r = stats(await time(n, () => get(url, a)));
      a.destroy();
      return r;
    })(),
  };
  await srv.close({ drainTimeoutMs: 200 });
  await demo.close();
  const outDir = fileURLToPath(new URL('./results/', import.meta.url));
  mkdirSync(outDir, { recursive: true });
  const file = join(outDir, `client-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
  writeFileSync(file, JSON.stringify(results, null, 2));
  console.log('ms per request (median / p95 / mean):');
  for (const [k, v] of Object.entries(results)) if (typeof v === 'object') console.log(`  ${k.padEnd(32)} ${v.median} / ${v.p95} / ${v.mean}`);
  console.log(`results: ${file}`);
}
