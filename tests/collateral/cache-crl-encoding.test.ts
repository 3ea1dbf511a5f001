import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { collateralDirFor, loadCollateralDir } from '../helpers/testdata.ts';
import { DiskCacheCollateralSource } from '../../src/collateral/cache.ts';
import type { CollateralRequest } from '../../src/collateral/types.ts';

const c = loadCollateralDir(collateralDirFor('dcapqvl-b0c06f000000-2025-06'));
const req: CollateralRequest = { fmspc: 'b0c06f000000', pckCa: 'platform', now: new Date('2025-06-25T00:00:00Z') };

describe('disk cache CRL encoding', () => {
  it('round-trips an entry', async () => {
    const cache = new DiskCacheCollateralSource({ dir: mkdtempSync(join(tmpdir(), 'ratls-b64-')) });
    await cache.store(req, c);
    expect(await cache.get(req)).toEqual(c);
  });

  it('treats a CRL that is not well-formed base64 as a corrupt entry (miss)', async () => {
    const cache = new DiskCacheCollateralSource({ dir: mkdtempSync(join(tmpdir(), 'ratls-b64-')) });
    await cache.store(req, c);
    const file = cache.fileFor(req);
    const rec = JSON.parse(readFileSync(file, 'utf8')) as Record<string, string>;
    // Buffer's lenient decoder skipped the junk and served the CRL anyway
    rec.pckCrl = `${rec.pckCrl!.slice(0, 8)}!*!${rec.pckCrl!.slice(8)}`;
    writeFileSync(file, JSON.stringify(rec), { mode: 0o600 });
    expect(await cache.get(req)).toBeUndefined();
    expect(cache.stats.misses).toBe(1);
  });
});
