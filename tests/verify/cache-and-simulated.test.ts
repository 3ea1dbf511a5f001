import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { clearVerifierCache, verifyQuote } from '../../src/verify/dcap.ts';
import { initSimulatedWorld, loadWorld, loadSimulatedProvider, simulatedCollateral } from '../../src/tee/simulated/index.ts';
import { issueCrl } from '../../src/tee/simulated/pki.ts';
import { pckInfoFromQuote } from '../../src/verify/pck.ts';
import { parseQuote } from '../../src/quote/parse.ts';
import { toHex } from '../../src/core/bytes.ts';
import type { Collateral } from '../../src/core/types.ts';
import { vector, V4_OK, V5_OK } from './helpers.ts';

describe('caches never change a verdict', () => {
  const v = vector(V4_OK);
  const c = v.collateral!;

  it('a warm cache still checks time, content and the quote itself', async () => {
    clearVerifierCache();
    expect((await verifyQuote(v.quote, { collateral: c, now: v.now })).ok).toBe(true);
    expect((await verifyQuote(v.quote, { collateral: c, now: v.now })).ok).toBe(true);
    // same (cached) collateral, later time: expired
    const later = await verifyQuote(v.quote, { collateral: c, now: new Date('2025-08-30T00:00:00Z') });
    expect(later.errors.map((e) => e.code)).toContain('COLLATERAL_EXPIRED');
    // same cached chains, tampered document
    const tampered = await verifyQuote(v.quote, { collateral: { ...c, tcbInfoJson: c.tcbInfoJson.replace('"OutOfDate"', '"UpToDate"') }, now: v.now });
    expect(tampered.errors.map((e) => e.code)).toContain('COLLATERAL_SIGNATURE_INVALID');
    // a failure is not remembered, and a success is not reused for other data
    const flipped = v.quote.slice();
    flipped[200] = flipped[200]! ^ 1;
    expect((await verifyQuote(flipped, { collateral: c, now: v.now })).errors.map((e) => e.code)).toContain('QUOTE_SIGNATURE_INVALID');
    expect((await verifyQuote(v.quote, { collateral: c, now: v.now })).ok).toBe(true);
    // a root given explicitly does not leak into later default-root calls
    const other = vector(V5_OK);
    expect((await verifyQuote(other.quote, { collateral: other.collateral!, now: other.now })).ok).toBe(true);
  });

  it('concurrent identical verifications agree', async () => {
    clearVerifierCache();
    const results = await Promise.all(Array.from({ length: 8 }, () => verifyQuote(v.quote, { collateral: c, now: v.now })));
    for (const r of results) expect(r.ok).toBe(true);
  });
});

describe('simulated world (H2) verified strictly in Intel formats', () => {
  let dir: string;
  let rootPem: string;
  let quote: Uint8Array;
  let collateral: Collateral;
  const now = new Date();

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'ratls-simworld-'));
    const info = await initSimulatedWorld(dir, { now });
    rootPem = info.rootPem;
    const provider = await loadSimulatedProvider(dir);
    quote = await provider.getQuote(new Uint8Array(64).fill(7));
    collateral = await simulatedCollateral(await loadWorld(dir), now);
  }, 60_000);

  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('passes only with its root given explicitly, flagged as non-Intel', async () => {
    const trusted = await verifyQuote(quote, { collateral, now, trustedRoots: [rootPem] });
    expect(trusted.errors).toEqual([]);
    expect(trusted.ok).toBe(true);
    expect(trusted.nonIntelRoot).toBe(true);
    expect(trusted.tcbStatus).toBe('UpToDate');
    expect(trusted.quote?.reportData).toBe('07'.repeat(64));
    const untrusted = await verifyQuote(quote, { collateral, now });
    expect(untrusted.ok).toBe(false);
    expect(untrusted.errors.map((e) => e.code)).toEqual(['PCK_CHAIN_UNTRUSTED']);
  });

  it('a PCK CRL listing the leaf gives PCK_REVOKED', async () => {
    const world = await loadWorld(dir);
    const leafSerial = toHex(pckInfoFromQuote(parseQuote(quote)).leaf.serial);
    const pckCrl = await issueCrl({
      issuer: world.pckCa,
      key: world.pckCaKey.privateKey,
      thisUpdate: new Date(now.getTime() - 3600_000),
      nextUpdate: new Date(now.getTime() + 86_400_000),
      revokedSerials: [leafSerial],
    });
    const r = await verifyQuote(quote, { collateral: { ...collateral, pckCrl }, now, trustedRoots: [rootPem] });
    expect(r.ok).toBe(false);
    expect(r.errors.map((e) => e.code)).toEqual(['PCK_REVOKED', 'TCB_STATUS_NOT_ALLOWED']);
    expect(r.tcbStatus).toBe('Revoked');
  });

  it('a root CA CRL listing the PCK CA or the TCB signing certificate gives PCK_REVOKED / Revoked', async () => {
    const world = await loadWorld(dir);
    for (const revokedCert of [world.pckCa, world.tcbSigning]) {
      const rootCaCrl = await issueCrl({
        issuer: world.root,
        key: world.rootKey.privateKey,
        thisUpdate: new Date(now.getTime() - 3600_000),
        nextUpdate: new Date(now.getTime() + 86_400_000),
        revokedSerials: [revokedCert.serialNumber],
      });
      const r = await verifyQuote(quote, {
        collateral: { ...collateral, rootCaCrl },
        now,
        trustedRoots: [rootPem],
        policy: { allowedTcbStatuses: ['UpToDate', 'Revoked'] },
      });
      expect(r.ok).toBe(false);
      expect(r.errors.map((e) => e.code)).toContain('PCK_REVOKED');
      expect(r.tcbStatus).toBe('Revoked');
    }
  });

  it('a correctly signed CRL without the CRL number and AKI extensions is CRL_INVALID (Intel CRL_REQUIRED_EXTENSIONS)', async () => {
    const x509 = await import('@peculiar/x509');
    const world = await loadWorld(dir);
    const bare = await x509.X509CrlGenerator.create({
      issuer: world.pckCa.subject,
      thisUpdate: new Date(now.getTime() - 3600_000),
      nextUpdate: new Date(now.getTime() + 86_400_000),
      signingKey: world.pckCaKey.privateKey,
      signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' },
    });
    const r = await verifyQuote(quote, { collateral: { ...collateral, pckCrl: new Uint8Array(bare.rawData) }, now, trustedRoots: [rootPem] });
    expect(r.ok).toBe(false);
    expect(r.errors.map((e) => e.code)).toEqual(['CRL_INVALID']);
    expect(r.errors[0]!.message).toMatch(/CRL number or authority key identifier/);
  });

  it('collateral from the simulated world cannot vouch for an Intel quote', async () => {
    const real = vector(V4_OK);
    const r = await verifyQuote(real.quote, { collateral, now: real.now, trustedRoots: [rootPem] });
    expect(r.ok).toBe(false);
    expect(r.errors.map((e) => e.code)).toContain('PCK_CHAIN_UNTRUSTED');
  });
});
