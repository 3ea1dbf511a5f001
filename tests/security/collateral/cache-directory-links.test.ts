/**
 * The collateral cache reads and writes only a directory that is this user's own and that nobody
 * else can swap. A symbolic link as the cache directory used to be followed: a link planted where
 * the cache is expected (`/tmp/...`, a shared `RATLS_CACHE_DIR`) made the cache write its files
 * into whatever directory of ours the link pointed at, and read what was there.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { collateralDirFor, loadCollateralDir } from '../../helpers/testdata.ts';
import { startFakePcs, type FakePcs } from '../../collateral/fake-pcs.ts';
import { PcsCollateralSource } from '../../../src/collateral/pcs.ts';
import { DiskCacheCollateralSource } from '../../../src/collateral/cache.ts';

const DIR = collateralDirFor('dcapqvl-b0c06f000000-2025-06');
const request = { fmspc: 'b0c06f000000', pckCa: 'platform' as const, now: new Date('2025-07-19T10:00:34Z') };

let base: string;
let pcs: FakePcs | undefined;
beforeAll(() => {
  base = mkdtempSync(join(tmpdir(), 'ratls-cache-links-'));
});
afterEach(async () => {
  await pcs?.close();
  pcs = undefined;
});
afterAll(() => rmSync(base, { recursive: true, force: true }));

/** A directory of ours holding a genuine, current cache entry. */
async function ourDirWithEntry(name: string): Promise<string> {
  const dir = join(base, name);
  mkdirSync(dir, { mode: 0o700 });
  await new DiskCacheCollateralSource({ dir }).store(request, loadCollateralDir(DIR));
  return dir;
}

async function cacheAt(dir: string): Promise<DiskCacheCollateralSource> {
  pcs ??= await startFakePcs(DIR);
  return new DiskCacheCollateralSource({ dir, upstream: new PcsCollateralSource({ baseUrl: pcs.url }) });
}

describe('collateral cache directory', () => {
  it('baseline: a directory of our own is read and written', async () => {
    const dir = await ourDirWithEntry('plain');
    const cache = await cacheAt(dir);
    expect(await cache.get(request)).toBeDefined();
    expect(cache.stats).toMatchObject({ hits: 1, misses: 0 });
  });

  it('does not follow a symbolic link as the cache directory: nothing read through it, nothing written through it', async () => {
    const target = await ourDirWithEntry('link-target');
    const link = join(base, 'cache-link');
    symlinkSync(target, link);
    const cache = await cacheAt(link);
    expect(await cache.get(request)).toBeDefined(); // from the upstream
    expect(cache.stats).toMatchObject({ hits: 0, misses: 1, stores: 0 });

    const empty = join(base, 'empty-target');
    mkdirSync(empty, { mode: 0o700 });
    symlinkSync(empty, join(base, 'empty-link'));
    const writer = await cacheAt(join(base, 'empty-link'));
    await writer.get(request);
    expect(readdirSync(empty)).toEqual([]);
  });

  it('does not use a cache directory below a directory every user can write to', async () => {
    const open = join(base, 'open');
    mkdirSync(open);
    chmodSync(open, 0o777);
    const dir = join(open, 'cache');
    const cache = await cacheAt(dir);
    expect(await cache.get(request)).toBeDefined();
    expect(cache.stats).toMatchObject({ hits: 0, stores: 0 });
    expect(existsSync(dir) ? readdirSync(dir) : []).toEqual([]);
  });

  it('does not read an entry that is a symbolic link', async () => {
    const elsewhere = await ourDirWithEntry('entry-source');
    const dir = join(base, 'linked-entry');
    mkdirSync(dir, { mode: 0o700 });
    const cache = await cacheAt(dir);
    symlinkSync(cache.fileFor(request).replace(dir, elsewhere), cache.fileFor(request));
    expect(await cache.get(request)).toBeDefined();
    expect(cache.stats.hits).toBe(0);
  });
});
