import { afterEach, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { collateralDirFor, loadCollateralDir, readTestFile, TESTDATA_DIR } from '../helpers/testdata.ts';
import { verifyQuote } from '../../src/verify/dcap.ts';
import { startFakePcs, type FakePcs } from './fake-pcs.ts';
import { PcsCollateralSource } from '../../src/collateral/pcs.ts';
import { DiskCacheCollateralSource } from '../../src/collateral/cache.ts';
import { DirectoryCollateralSource } from '../../src/collateral/directory.ts';
import { fetchCollateral } from '../../src/collateral/chain.ts';
import { collateralSourcesFromSettings } from '../../src/collateral/from-settings.ts';
import { collateralValidUntil, pckCrlCa, tcbInfoFmspc } from '../../src/collateral/inspect.ts';
import { RatlsError } from '../../src/core/errors.ts';
import type { CollateralRequest } from '../../src/collateral/types.ts';

const SET = 'dcapqvl-b0c06f000000-2025-06';
const DIR = collateralDirFor(SET);
const FMSPC = 'b0c06f000000';
const inWindow = new Date('2025-06-25T00:00:00Z');
const afterWindow = new Date('2025-08-01T00:00:00Z');
const req = (now = inWindow, fmspc = FMSPC): CollateralRequest => ({ fmspc, pckCa: 'platform', now });

let pcs: FakePcs | undefined;
afterEach(async () => {
  await pcs?.close();
  pcs = undefined;
});

describe('collateral inspection', () => {
  it('reads FMSPC, CA and the earliest nextUpdate', () => {
    const c = loadCollateralDir(DIR);
    expect(tcbInfoFmspc(c)).toBe(FMSPC);
    expect(pckCrlCa(c)).toBe('platform');
    const until = collateralValidUntil(c)!;
    expect(until.toISOString()).toBe('2025-07-19T10:00:35.000Z'); // PCK CRL expires first
  });
});

describe('PCS / PCCS client', () => {
  it('fetches all seven items from a PCCS (hex root CRL), byte for byte', async () => {
    pcs = await startFakePcs(DIR, 'pccs');
    const got = await new PcsCollateralSource({ baseUrl: pcs.url }).get(req());
    expect(got).toEqual(loadCollateralDir(DIR));
    expect(pcs.requests).toContain(`/tdx/certification/v4/tcb?fmspc=${FMSPC}`);
    expect(pcs.requests).toContain('/sgx/certification/v4/pckcrl?ca=platform&encoding=der');
  });

  it('fetches the root CRL from the distribution point in PCS mode', async () => {
    pcs = await startFakePcs(DIR, 'pcs');
    const src = new PcsCollateralSource({ baseUrl: pcs.url, kind: 'pcs', rootCaCrlUrl: `${pcs.url}/IntelSGXRootCA.der` });
    expect(await src.get(req())).toEqual(loadCollateralDir(DIR));
  });

  it('unknown FMSPC is "nothing here"; an unreachable service is an error', async () => {
    pcs = await startFakePcs(DIR);
    expect(await new PcsCollateralSource({ baseUrl: pcs.url }).get(req(inWindow, '00906ed50000'))).toBeUndefined();
    const dead = new PcsCollateralSource({ baseUrl: 'http://127.0.0.1:9', timeoutMs: 2000 });
    await expect(dead.get(req())).rejects.toMatchObject({ code: 'COLLATERAL_MISSING' });
  });
});

describe('disk cache', () => {
  it('reads through, survives a restart, honours nextUpdate, keys by FMSPC and CA', async () => {
    pcs = await startFakePcs(DIR);
    const dir = mkdtempSync(join(tmpdir(), 'ratls-cache-'));
    const first = new DiskCacheCollateralSource({ dir, upstream: new PcsCollateralSource({ baseUrl: pcs.url }) });
    expect(await first.get(req())).toEqual(loadCollateralDir(DIR));
    expect(first.stats).toMatchObject({ misses: 1, stores: 1 });
    const n = pcs.requests.length;

    // a new instance (as after a restart) with no upstream at all still serves it
    const offline = new DiskCacheCollateralSource({ dir });
    expect(await offline.get(req())).toEqual(loadCollateralDir(DIR));
    expect(offline.stats.hits).toBe(1);
    expect(pcs.requests.length).toBe(n);

    // other CA or FMSPC: not this entry
    expect(await offline.get({ ...req(), pckCa: 'processor' })).toBeUndefined();
    expect(await offline.get(req(inWindow, '00906ed50000'))).toBeUndefined();

    // past nextUpdate the entry is not served; the upstream is asked again (and has only stale data)
    expect(await offline.get(req(afterWindow))).toBeUndefined();
    const again = new DiskCacheCollateralSource({ dir, upstream: new PcsCollateralSource({ baseUrl: pcs.url }) });
    await again.get(req(afterWindow));
    expect(pcs.requests.length).toBeGreaterThan(n);
  });

  it('treats a corrupt entry as a miss', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ratls-cache-'));
    const cache = new DiskCacheCollateralSource({ dir });
    writeFileSync(cache.fileFor(req()), '{not json');
    expect(await cache.get(req())).toBeUndefined();
    await cache.store(req(), loadCollateralDir(DIR));
    expect(JSON.parse(readFileSync(cache.fileFor(req()), 'utf8')).format).toBe('ratls-collateral-cache/1');
    expect(await cache.get(req())).toBeDefined();
    expect(() => cache.fileFor({ fmspc: '../../etc', pckCa: 'platform' })).toThrow();
  });
});

describe('directory source and source order', () => {
  it('finds the set whose tcb_info.json has the FMSPC among subdirectories', async () => {
    const src = new DirectoryCollateralSource([join(TESTDATA_DIR, 'collateral')]);
    expect(await src.get(req())).toEqual(loadCollateralDir(DIR));
    expect(await src.get(req(afterWindow))).toBeUndefined();
    expect(await src.get(req(new Date('2026-02-20T00:00:00Z'), '90c06f000000'))).toBeDefined();
  });

  it('with no network and nothing stapled: COLLATERAL_MISSING with an actionable message', async () => {
    const sources = collateralSourcesFromSettings({ offline: true, cacheDir: mkdtempSync(join(tmpdir(), 'ratls-cache-')) });
    const err = await fetchCollateral(sources, req()).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RatlsError);
    expect((err as RatlsError).code).toBe('COLLATERAL_MISSING');
    expect((err as RatlsError).message).toMatch(/b0c06f000000.*Staple collateral/s);
    expect(await fetchCollateral([], req()).catch((e: RatlsError) => e.message)).toMatch(/No collateral source is configured/);
  });

  it('falls through a failing PCCS to the next source', async () => {
    pcs = await startFakePcs(DIR);
    const sources = collateralSourcesFromSettings({ pccsUrl: 'http://127.0.0.1:9', pcsUrl: pcs.url, cacheDir: mkdtempSync(join(tmpdir(), 'ratls-cache-')) });
    const got = await fetchCollateral(sources, req());
    expect(got.collateral).toEqual(loadCollateralDir(DIR));
    expect(got.source).toMatch(/^cache:/);
  });
});

describe('fetched collateral verifies a real quote', () => {
  it('PCCS output is byte-exact: Intel signatures check and the real v4 quote is UpToDate', async () => {
    pcs = await startFakePcs(DIR);
    const now = new Date('2025-07-19T10:00:34Z'); // the recorded verification time of this quote
    const collateral = await new PcsCollateralSource({ baseUrl: pcs.url }).get(req(now));
    expect(collateral).toBeDefined();
    const r = await verifyQuote(readTestFile('quotes/v4-b0c06f000000-dcapqvl.dat'), { collateral: collateral!, now });
    expect(r.errors).toEqual([]);
    expect(r.ok).toBe(true);
    expect(r.tcbStatus).toBe('UpToDate');
  });
});
