/**
 * Collateral cache poisoning. The verifier checks Intel's signatures on every use, so a planted
 * entry cannot make a bad TD pass; but a planted entry that matches the platform and claims a far
 * nextUpdate used to be served forever, so whoever could write the cache could make every
 * verification fail (or pin an older, still-signed TCB info from before a TCB recovery).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { chmodSync, chownSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { collateralDirFor, loadCollateralDir, readTestFile } from '../../helpers/testdata.ts';
import { startFakePcs, type FakePcs } from '../../collateral/fake-pcs.ts';
import { PcsCollateralSource } from '../../../src/collateral/pcs.ts';
import { DiskCacheCollateralSource } from '../../../src/collateral/cache.ts';
import { verifyQuote } from '../../../src/verify/dcap.ts';
import type { Collateral } from '../../../src/core/types.ts';

const DIR = collateralDirFor('dcapqvl-b0c06f000000-2025-06');
const now = new Date('2025-07-19T10:00:34Z');
const request = { fmspc: 'b0c06f000000', pckCa: 'platform' as const, now };
const quote = readTestFile('quotes/v4-b0c06f000000-dcapqvl.dat');

let pcs: FakePcs | undefined;
afterEach(async () => {
  await pcs?.close();
  pcs = undefined;
});

/** Genuine collateral with one byte of the TCB info signature changed and nextUpdate pushed out. */
function poisoned(): Collateral {
  const c = loadCollateralDir(DIR);
  const doc = JSON.parse(c.tcbInfoJson) as { tcbInfo: { nextUpdate: string }; signature: string };
  doc.tcbInfo.nextUpdate = '2099-01-01T00:00:00Z';
  doc.signature = (doc.signature[0] === 'a' ? 'b' : 'a') + doc.signature.slice(1);
  return { ...c, tcbInfoJson: JSON.stringify(doc) };
}

/** Writes a cache entry the way an attacker with write access would (not via our store). */
async function plant(dir: string, c: Collateral, mode: number, uid?: number): Promise<string> {
  const writer = new DiskCacheCollateralSource({ dir: mkdtempSync(join(tmpdir(), 'ratls-plant-')) });
  await writer.store(request, c);
  const file = new DiskCacheCollateralSource({ dir }).fileFor(request);
  writeFileSync(file, (await import('node:fs')).readFileSync(writer.fileFor(request)));
  chmodSync(file, mode);
  if (uid !== undefined) chownSync(file, uid, uid);
  return file;
}

async function verifyThroughCache(dir: string) {
  pcs ??= await startFakePcs(DIR);
  const cache = new DiskCacheCollateralSource({ dir, upstream: new PcsCollateralSource({ baseUrl: pcs.url }) });
  const collateral = await cache.get(request);
  expect(collateral).toBeDefined();
  return verifyQuote(quote, { collateral: collateral!, now });
}

describe('collateral cache poisoning', () => {
  it('baseline: a planted entry in a cache only we can write is served (and fails verification)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ratls-cache-'));
    await plant(dir, poisoned(), 0o644);
    const r = await verifyThroughCache(dir);
    expect(r.ok).toBe(false);
  });

  it('ignores a world-writable cache file and fetches good collateral instead', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ratls-cache-'));
    await plant(dir, poisoned(), 0o666);
    const r = await verifyThroughCache(dir);
    expect(r.errors).toEqual([]);
    expect(r.ok).toBe(true);
  });

  it('ignores every entry of a world-writable cache directory (anyone could swap files in)', async () => {
    const dir = join(mkdtempSync(join(tmpdir(), 'ratls-cache-')), 'shared');
    mkdirSync(dir);
    await plant(dir, poisoned(), 0o644);
    chmodSync(dir, 0o777);
    const r = await verifyThroughCache(dir);
    expect(r.ok).toBe(true);
  });

  it('ignores an entry whose content is for another FMSPC or CA than its file name says', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ratls-cache-'));
    const c = loadCollateralDir(DIR);
    const doc = JSON.parse(c.tcbInfoJson) as { tcbInfo: { fmspc: string } };
    doc.tcbInfo.fmspc = '00906ed50000';
    await plant(dir, { ...c, tcbInfoJson: JSON.stringify(doc) }, 0o644);
    const cache = new DiskCacheCollateralSource({ dir });
    expect(await cache.get(request)).toBeUndefined();
    expect(await cache.get({ ...request, pckCa: 'processor' })).toBeUndefined();
  });

  it.runIf(process.getuid?.() === 0)('ignores a cache file owned by another user', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ratls-cache-'));
    await plant(dir, poisoned(), 0o644, 65534);
    const r = await verifyThroughCache(dir);
    expect(r.ok).toBe(true);
  });
});
