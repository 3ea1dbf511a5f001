/**
 * Platform instance pinning, the second defence against a leaked TLS key: the attacker runs the
 * same image on a genuine TDX machine of their own (same measurements, same FMSPC, another PPID)
 * with the key and certificate taken from the real TD. Its TD really terminates the session, so
 * session binding alone passes; a policy pinned to the real platform (PPID, FMSPC, PCE ID from the
 * PCK certificate, `ratls policy from --pin-platform`) refuses it before any request byte.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { startRatlsServer, type RunningRatlsServer } from '../../../src/proxy/server.ts';
import { validateConfig } from '../../../src/proxy/config.ts';
import { createAttestedFetch } from '../../../src/client/fetch.ts';
import { AttestationError } from '../../../src/client/errors.ts';
import { probe } from '../../../src/client/probe.ts';
import { loadPolicyFile } from '../../../src/policy/load.ts';
import { loadSimulatedProvider } from '../../../src/tee/simulated/index.ts';
import { createRatlsIdentity } from '../../../src/ratls/identity.ts';
import { createNonceEvidence } from '../../../src/ratls/evidence.ts';
import { main } from '../../../src/cli/main.ts';
import type { ClientPolicy } from '../../../src/verify/policy-file.ts';
import { makeWorld, simPolicy, simulatedSource, type World } from '../../client/helpers.ts';

let world: World;
let app: http.Server;
let appSeen: string[];
let genuine: RunningRatlsServer;
let elsewhere: RunningRatlsServer;
let elsewhereOwnKey: RunningRatlsServer;
let pinned: ClientPolicy;
let rootFile: string;
let dir: string;
const PPID_B = 'b0'.repeat(16);

function config() {
  return validateConfig({
    listen: '127.0.0.1:0',
    log: { level: 'silent' },
    routes: [{ prefix: '/', target: `http://127.0.0.1:${(app.address() as AddressInfo).port}`, name: 'app' }],
  });
}

beforeAll(async () => {
  world = await makeWorld();
  dir = mkdtempSync(join(tmpdir(), 'ratls-pin-'));
  rootFile = join(dir, 'root.pem');
  writeFileSync(rootFile, world.rootPem);
  appSeen = [];
  app = http.createServer((req, res) => {
    appSeen.push(`${req.method} ${req.url}`);
    res.end('ok');
  });
  await new Promise<void>((r) => app.listen(0, '127.0.0.1', r));
  genuine = await startRatlsServer(config(), { identitySource: await simulatedSource(world), autoRotate: false });

  // the attacker's machine: same world (FMSPC, root, measurements), another PPID, the stolen key
  const b = await loadSimulatedProvider(world.dir, { ppid: PPID_B });
  const stolen = genuine.identity();
  elsewhere = await startRatlsServer(config(), {
    identitySource: {
      issue: async () => stolen,
      quote: (rd) => b.getQuote(rd),
      evidence: (id, nonce) => createNonceEvidence(id, b, nonce),
      collateral: (now) => b.collateral(now),
    },
    autoRotate: false,
  });
  // ...or with a key and certificate of its own, quoted there
  elsewhereOwnKey = await startRatlsServer(config(), {
    identitySource: {
      issue: (now) => createRatlsIdentity({ provider: b, hosts: ['127.0.0.1'], now }),
      quote: (rd) => b.getQuote(rd),
      collateral: (now) => b.collateral(now),
    },
    autoRotate: false,
  });

  // the policy the operator publishes: pinned to the genuine TD's software and platform
  const out: string[] = [];
  const io = { out: (s: string) => void out.push(s), err: (s: string) => void out.push(s), setExitCode: () => undefined, isTty: false };
  const file = join(dir, 'pinned.yaml');
  expect(await main(['node', 'ratls', 'policy', 'from', '--url', genuine.url, '--root', rootFile, '--pin-platform', '--out', file], io)).toBe(0);
  writeFileSync(file, readFileSync(file, 'utf8') + 'collateral:\n  offline: true\n');
  pinned = loadPolicyFile(file);
});
afterAll(async () => {
  await elsewhere?.close({ drainTimeoutMs: 100 });
  await elsewhereOwnKey?.close({ drainTimeoutMs: 100 });
  await genuine?.close({ drainTimeoutMs: 100 });
  await new Promise<void>((r) => (app ? app.close(() => r()) : r()));
});

describe('the same image and key on another platform', () => {
  it('`ratls policy from --pin-platform` pins the PPID, FMSPC and PCE ID of the genuine TD', async () => {
    const ev = await probe(genuine.url, simPolicy(world));
    expect(ev.result.quote?.ppid).toMatch(/^[0-9a-f]{32}$/);
    expect(pinned.appraisal.ppid).toEqual([ev.result.quote!.ppid]);
    expect(pinned.appraisal.fmspc).toEqual([ev.result.quote!.fmspc]);
    expect(pinned.appraisal.pceId).toEqual(['0000']);
    expect(pinned.appraisal.mrTd).toEqual([ev.result.quote!.mrTd]);
    expect(pinned.freshness.binding).toBe('session');
  });

  it('passes without a platform pin (session binding is satisfied: that TD really is on the session)', async () => {
    const ev = await probe(elsewhere.url, simPolicy(world));
    expect(ev.result.errors).toEqual([]);
    expect(ev.sessionBound).toBe(true);
    // the report shows where the session was quoted, next to where the certificate was
    expect(ev.result.checks.find((c) => c.name === 'session binding')?.detail).toContain(`quoted on platform PPID ${PPID_B}`);
  });

  it('is refused with the pin (PLATFORM_MISMATCH) before any request byte; the genuine TD still passes', async () => {
    const appBefore = appSeen.length;
    for (const srv of [elsewhere, elsewhereOwnKey]) {
      const f = createAttestedFetch(pinned);
      try {
        const err = await f(`${srv.url}secret`, { method: 'POST', body: 'prompt' }).catch((e: unknown) => e);
        expect(err).toBeInstanceOf(AttestationError);
        expect((err as AttestationError).result.errors.map((e) => e.code)).toContain('PLATFORM_MISMATCH');
        expect((err as AttestationError).message).toMatch(/another machine/);
      } finally {
        await f.close();
      }
    }
    expect(appSeen.length).toBe(appBefore);
    const f = createAttestedFetch(pinned);
    try {
      expect((await f(`${genuine.url}hello`)).status).toBe(200);
    } finally {
      await f.close();
    }
    // certificate binding with the pin refuses the machine whose certificate was quoted elsewhere
    const cert = await probe(elsewhereOwnKey.url, { ...pinned, freshness: { ...pinned.freshness, binding: 'certificate' } });
    expect(cert.result.errors.map((e) => e.code)).toContain('PLATFORM_MISMATCH');
  });

  it('every report shows the platform: ratls verify (pinned, matches / MISMATCH) and JSON', async () => {
    const out: string[] = [];
    const io = { out: (s: string) => void out.push(s), err: (s: string) => void out.push(s), setExitCode: () => undefined, isTty: false };
    const file = join(dir, 'pinned-offline.yaml');
    writeFileSync(file, readFileSync(join(dir, 'pinned.yaml'), 'utf8'));
    expect(await main(['node', 'ratls', 'verify', genuine.url, '--policy', file], io)).toBe(0);
    expect(out.join('')).toMatch(/Platform:\s+PPID [0-9a-f]{32}, FMSPC ff[0-9a-f]{10}, PCE ID 0000 \(pinned\)/);
    expect(out.join('')).toMatch(/PPID\s+matches\s+[0-9a-f]{32}/);
    out.length = 0;
    expect(await main(['node', 'ratls', 'verify', elsewhereOwnKey.url, '--policy', file], io)).toBe(1);
    expect(out.join('')).toMatch(new RegExp(`PPID\\s+MISMATCH\\s+${PPID_B}`));
    expect(out.join('')).toContain('PLATFORM_MISMATCH');
    out.length = 0;
    expect(await main(['node', 'ratls', 'verify', genuine.url, '--policy', file, '--json'], io)).toBe(0);
    const j = JSON.parse(out.join('')) as { quote: { ppid: string; fmspc: string; pceId: string }; binding: string; sessionBound: boolean };
    expect(j.quote.ppid).toBe(pinned.appraisal.ppid![0]);
    expect(j.binding).toBe('session');
    expect(j.sessionBound).toBe(true);
  });
});
