/**
 * Delegated attestation with workload pins: the attestation service verifies the quote and signs
 * its RTMRs; the client replays the VM's event logs (fetched on the evidence connection) against the
 * token's RTMRs and applies the policy's model pins, so a delegated check never passes a server
 * that a direct `ratls verify` would refuse.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRatlsServer, type RunningRatlsServer } from '../../src/proxy/server.ts';
import { validateConfig } from '../../src/proxy/config.ts';
import { startAttestService, type AttestServiceHandle } from '../../src/service/server.ts';
import { startDemoOllama, type RunningDemoOllama } from '../../src/demo/ollama.ts';
import { attestViaService } from '../../src/client/index.ts';
import { makeWorld, simPolicy, type World } from './helpers.ts';

let world: World;
let dir: string;
let ollama: RunningDemoOllama;
let srv: RunningRatlsServer;
let svc: AttestServiceHandle;

beforeAll(async () => {
  world = await makeWorld();
  dir = mkdtempSync(join(tmpdir(), 'ratls-attest-workload-'));
  mkdirSync(join(dir, 'policies'));
  writeFileSync(join(dir, 'policies', 'default.yaml'), 'version: 1\n');
  svc = await startAttestService({ keyDir: join(dir, 'keys'), policiesDir: join(dir, 'policies'), roots: [world.rootPem], offline: true, rateLimit: false });
  ollama = await startDemoOllama({ tokenDelayMs: 1 });
  srv = await startRatlsServer(
    validateConfig({
      listen: '127.0.0.1:0',
      log: { level: 'silent' },
      evidence: { provider: 'simulated', simDir: world.dir },
      upstreams: { ollama: ollama.url, openWebui: 'http://127.0.0.1:9' },
      measurement: { pollInterval: 0 },
    }),
    { autoRotate: false },
  );
});
afterAll(async () => {
  await srv?.close({ drainTimeoutMs: 200 });
  await ollama?.close();
  await svc?.close();
  for (const d of [dir, world?.dir]) if (d) rmSync(d, { recursive: true, force: true });
});

describe('attestViaService with workload pins', () => {
  it('refuses a server holding a model the policy does not allow, naming its event; allowing it passes', async () => {
    const [a, b] = ollama.models();
    const only = simPolicy(world, (p) => (p.appraisal.workload = { allowedModels: [{ name: a!.name, digest: a!.digest }] }));
    const refused = await attestViaService(srv.url, { service: svc.url, policy: only });
    expect(refused.ok).toBe(false);
    expect(refused.errors.map((e) => e.code)).toEqual(['WORKLOAD_MODEL_NOT_ALLOWED']);
    expect(refused.errors[0]!.message).toContain(b!.name);
    const both = simPolicy(
      world,
      (p) => (p.appraisal.workload = { allowedModels: [{ name: a!.name }, { name: b!.name }], requiredModels: [{ name: b!.name, digest: b!.digest }] }),
    );
    const ok = await attestViaService(srv.url, { service: svc.url, policy: both });
    expect(ok.errors).toEqual([]);
    expect(ok.ok).toBe(true);
    expect(ok.workload?.binding).toBe('rtmr3');
    expect(ok.workload?.runtime?.models.map((m) => m.name)).toEqual([a!.name, b!.name].sort());
  });
});
