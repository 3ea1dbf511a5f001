import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { initSimulatedWorld, loadSimulatedProvider, type SimulatedProvider } from '../../src/tee/simulated/index.ts';
import { withCollateralSources } from '../../src/tee/with-collateral.ts';
import { createRatlsIdentity } from '../../src/ratls/identity.ts';
import { verifyRatlsCertificate } from '../../src/ratls/verify-cert.ts';
import type { CollateralRequest } from '../../src/collateral/types.ts';
import type { EvidenceProvider } from '../../src/ratls/evidence-provider.ts';

let dir: string;
let sim: SimulatedProvider;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ratls-wc-'));
  await initSimulatedWorld(join(dir, 'w'), { platformTcbStatus: 'OutOfDate' });
  sim = await loadSimulatedProvider(join(dir, 'w'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('withCollateralSources', () => {
  it('staples collateral fetched for the platform of a provider that has none (like configfs-tsm)', async () => {
    // A provider shaped like configfs-tsm: quotes only.
    const bare: EvidenceProvider = { name: 'bare', simulated: true, getQuote: (rd) => sim.getQuote(rd) };
    const requests: CollateralRequest[] = [];
    const p = withCollateralSources(bare, [{ name: 'test', get: async (req) => (requests.push(req), sim.collateral(req.now)) }]);
    const now = new Date();
    const id = await createRatlsIdentity({ provider: p, now });
    expect(requests.length).toBe(1);
    expect(requests[0]!.pckCa).toBe('platform');
    expect(requests[0]!.fmspc).toMatch(/^ff[0-9a-f]{10}$/);
    const r = await verifyRatlsCertificate(id.certDer, {
      now: new Date(now.getTime() + 1000),
      trustedRoots: [sim.rootPem],
      policy: { allowedTcbStatuses: ['UpToDate', 'OutOfDate'] },
    });
    expect(r.errors).toEqual([]);
    expect(r.checks.find((c) => c.name === 'collateral')?.detail).toBe('stapled');
  });

  it('simulated worlds can carry a non-UpToDate platform TCB for policy tests', async () => {
    const id = await createRatlsIdentity({ provider: sim });
    const now = new Date(Date.now() + 1000);
    const strict = await verifyRatlsCertificate(id.certDer, { now, trustedRoots: [sim.rootPem] });
    expect(strict.tcbStatus).toBe('OutOfDate');
    expect(strict.errors.map((e) => e.code)).toContain('TCB_STATUS_NOT_ALLOWED');
    expect(strict.advisoryIds).toContain('SIMULATED-SA-00001');
    const lax = await verifyRatlsCertificate(id.certDer, { now, trustedRoots: [sim.rootPem], policy: { allowedTcbStatuses: ['UpToDate', 'OutOfDate'] } });
    expect(lax.ok).toBe(true);
  });

  it('reports COLLATERAL_MISSING when no source has it', async () => {
    const bare: EvidenceProvider = { name: 'bare', simulated: true, getQuote: (rd) => sim.getQuote(rd) };
    const p = withCollateralSources(bare, [{ name: 'empty', get: async () => undefined }]);
    await expect(p.collateral!(new Date())).rejects.toMatchObject({ code: 'COLLATERAL_MISSING' });
  });
});
