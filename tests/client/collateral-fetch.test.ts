/**
 * A certificate without stapled collateral: the client fetches it from a PCCS (fake, on loopback),
 * caches it on disk, and later verifies offline from the cache alone; with neither, it refuses
 * with COLLATERAL_MISSING.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createRatlsIdentity } from '../../src/ratls/identity.ts';
import { loadSimulatedProvider } from '../../src/tee/simulated/index.ts';
import { writeCollateralDir } from '../../src/collateral/file.ts';
import { probe } from '../../src/client/probe.ts';
import { makeWorld, onlySessionRequests, simPolicy, startSpyServer, type SpyServer, type World } from './helpers.ts';
import { startFakePcs, type FakePcs } from '../collateral/fake-pcs.ts';

let world: World;
let server: SpyServer;
let pccs: FakePcs;

beforeAll(async () => {
  world = await makeWorld();
  const provider = await loadSimulatedProvider(world.dir);
  const id = await createRatlsIdentity({ provider, hosts: ['127.0.0.1'], stapleCollateral: false });
  server = await startSpyServer(id, undefined, { sessionQuote: (rd) => provider.getQuote(rd) });
  const dir = mkdtempSync(join(tmpdir(), 'ratls-simcol-'));
  await writeCollateralDir(dir, await provider.collateral(new Date()));
  pccs = await startFakePcs(dir, 'pccs');
});
afterAll(async () => {
  await server?.close();
  await pccs?.close();
});

describe('client collateral without staple', () => {
  it('PCCS -> disk cache -> offline from cache; nothing -> COLLATERAL_MISSING', async () => {
    const cacheDir = mkdtempSync(join(tmpdir(), 'ratls-cache-'));
    const online = await probe(
      server.url,
      simPolicy(world, (p) => {
        p.collateral = { pccsUrl: pccs.url, pcsUrl: 'http://127.0.0.1:9', cacheDir };
      }),
    );
    expect(online.result.errors).toEqual([]);
    expect(online.result.checks.find((c) => c.name === 'collateral')?.detail).toMatch(/^cache:/);
    const fetched = pccs.requests.length;
    expect(fetched).toBeGreaterThanOrEqual(4);

    const offline = await probe(
      server.url,
      simPolicy(world, (p) => {
        p.collateral = { offline: true, cacheDir };
      }),
    );
    expect(offline.result.ok).toBe(true);
    expect(pccs.requests.length).toBe(fetched);

    const none = await probe(
      server.url,
      simPolicy(world, (p) => {
        p.collateral = { offline: true };
      }),
    );
    expect(none.result.ok).toBe(false);
    expect(none.result.errors.map((e) => e.code)).toContain('COLLATERAL_MISSING');
    expect(onlySessionRequests(server.text())).toBe(true);
  });
});
