import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { collateralDirFor, loadCollateralDir } from '../helpers/testdata.ts';
import { ChainedCollateralSource, fetchCollateral } from '../../src/collateral/chain.ts';
import { DiskCacheCollateralSource } from '../../src/collateral/cache.ts';
import type { CollateralRequest, CollateralSource } from '../../src/collateral/types.ts';

const req: CollateralRequest = { fmspc: 'b0c06f000000', pckCa: 'platform', now: new Date('2025-06-25T00:00:00Z') };
const failing = (name: string, msg: string): CollateralSource => ({
  name,
  get: async () => {
    throw new Error(msg);
  },
});
const empty = (name: string): CollateralSource => ({ name, get: async () => undefined });

describe('ChainedCollateralSource reports why upstreams failed', () => {
  it('a PCCS DNS failure behind the cache reaches the COLLATERAL_MISSING message', async () => {
    const cache = new DiskCacheCollateralSource({
      dir: mkdtempSync(join(tmpdir(), 'ratls-chain-')),
      upstream: new ChainedCollateralSource([failing('pccs', 'getaddrinfo ENOTFOUND pccs.example'), empty('pcs')]),
    });
    const err = await fetchCollateral([cache], req).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toMatchObject({ code: 'COLLATERAL_MISSING' });
    expect((err as Error).message).toContain('getaddrinfo ENOTFOUND pccs.example');
    expect((err as Error).message).toContain('pcs: nothing current for this platform');
  });

  it('a failing source does not hide a later hit; all empty is still "nothing"', async () => {
    const c = loadCollateralDir(collateralDirFor('dcapqvl-b0c06f000000-2025-06'));
    const hit: CollateralSource = { name: 'dir', get: async () => c };
    expect(await new ChainedCollateralSource([failing('pccs', 'down'), hit]).get(req)).toBe(c);
    expect(await new ChainedCollateralSource([empty('a'), empty('b')]).get(req)).toBeUndefined();
  });
});
