import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { execFileSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createSecureContext } from 'node:tls';
import * as x509 from '@peculiar/x509';
import { decode as cborgDecode } from 'cborg';
import { initSimulatedWorld, loadSimulatedProvider, type SimulatedProvider } from '../../src/tee/simulated/index.ts';
import { createRatlsIdentity, type RatlsIdentity } from '../../src/ratls/identity.ts';
import { createNonceEvidence } from '../../src/ratls/evidence.ts';
import { encodeClaims, reportDataForClaims } from '../../src/ratls/claims.ts';
import { encodeEvidence, OID_RATLS_ENDORSEMENTS, OID_RATLS_EVIDENCE } from '../../src/ratls/extension.ts';
import { verifyRatlsCertificate, verifyRatlsEvidence, type RatlsVerificationResult } from '../../src/ratls/verify-cert.ts';
import { INTEL_SGX_ROOT_CA_PEM } from '../../src/verify/roots.ts';
import { toHex } from '../../src/core/bytes.ts';
import { loadManifest, readTestFile, loadCollateralDir, collateralDirFor } from '../helpers/testdata.ts';

let dir: string;
let provider: SimulatedProvider;
let root: string;
let id: RatlsIdentity;
const issuedAt = new Date();
const soon = new Date(issuedAt.getTime() + 5_000);

const codes = (r: RatlsVerificationResult) => r.errors.map((e) => e.code);

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ratls-cert-'));
  await initSimulatedWorld(join(dir, 'w'));
  provider = await loadSimulatedProvider(join(dir, 'w'));
  root = provider.rootPem;
  id = await createRatlsIdentity({ provider, hosts: ['localhost', '127.0.0.1', '::1'], now: issuedAt });
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** A self-signed certificate for `keys` carrying the given extensions (to move evidence around). */
async function certWith(keys: CryptoKeyPair, exts: x509.Extension[], at: Date = issuedAt): Promise<Uint8Array> {
  const c = await x509.X509CertificateGenerator.createSelfSigned({
    name: 'CN=forged',
    notBefore: new Date(at.getTime() - 60_000),
    notAfter: new Date(at.getTime() + 86_400_000),
    keys,
    signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' },
    extensions: exts,
  });
  return new Uint8Array(c.rawData);
}

const newKeys = async () => (await crypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, ['sign', 'verify'])) as CryptoKeyPair;
const ext = (oid: string, value: Uint8Array) => new x509.Extension(oid, false, value.slice().buffer);

describe('RA-TLS certificate round trip (simulated provider)', () => {
  it('verifies with the simulated root, offline, from stapled collateral', async () => {
    const r = await verifyRatlsCertificate(id.certDer, { now: soon, trustedRoots: [root] });
    expect(r.errors).toEqual([]);
    expect(r.ok).toBe(true);
    expect(r.tcbStatus).toBe('UpToDate');
    expect(r.nonIntelRoot).toBe(true);
    expect(r.ratls).toEqual({ profile: 'ccc', pubkeyHashAlg: 'SHA-256', nonce: null });
    expect(r.certificate?.fingerprintSha256).toBe(id.fingerprintSha256);
    expect(r.certificate?.subject).toMatch(/SIMULATED/);
    expect(r.quote?.mrTd).toBe(provider.measurements.mrTd);
    expect(r.checks.find((c) => c.name === 'collateral')?.detail).toBe('stapled');
  });

  it('is rejected without the simulated root (Intel root only)', async () => {
    const r = await verifyRatlsCertificate(id.certDer, { now: soon });
    expect(r.ok).toBe(false);
    expect(codes(r)).toContain('PCK_CHAIN_UNTRUSTED');
    const r2 = await verifyRatlsCertificate(id.certDer, { now: soon, trustedRoots: [INTEL_SGX_ROOT_CA_PEM] });
    expect(codes(r2)).toContain('PCK_CHAIN_UNTRUSTED');
  });

  it("is rejected under another simulated world's root", async () => {
    const other = await initSimulatedWorld(join(dir, 'other'));
    const r = await verifyRatlsCertificate(id.certDer, { now: soon, trustedRoots: [other.rootPem] });
    expect(r.ok).toBe(false);
    expect(codes(r)).toContain('PCK_CHAIN_UNTRUSTED');
  });

  it('rejects a certificate whose key was swapped while keeping the extensions', async () => {
    const orig = new x509.X509Certificate(id.certDer.slice().buffer);
    const keep = [OID_RATLS_EVIDENCE, OID_RATLS_ENDORSEMENTS].map((o) => orig.getExtension(o)!);
    const forged = await certWith(await newKeys(), keep);
    const r = await verifyRatlsCertificate(forged, { now: soon, trustedRoots: [root] });
    expect(r.ok).toBe(false);
    expect(codes(r)).toEqual(['PUBKEY_MISMATCH']);
    expect(r.errors[0]!.message).toMatch(/different key/);
  });

  it('rejects claims that the quote was not made for (REPORTDATA_MISMATCH)', async () => {
    const keys = await newKeys();
    const spki = new Uint8Array(await crypto.subtle.exportKey('spki', keys.publicKey));
    // Claims for the new key (so pubkey-hash matches), but the quote belongs to `id`.
    const claims = await encodeClaims({ spkiDer: spki });
    const forged = await certWith(keys, [ext(OID_RATLS_EVIDENCE, encodeEvidence(id.quote, claims))]);
    const r = await verifyRatlsCertificate(forged, { now: soon, trustedRoots: [root], collateral: await provider.collateral(issuedAt) });
    expect(codes(r)).toEqual(['REPORTDATA_MISMATCH']);
  });

  it('rejects a DEBUG TD unless the policy allows it', async () => {
    const dbg = await loadSimulatedProvider(join(dir, 'w'), { debug: true });
    const d = await createRatlsIdentity({ provider: dbg, now: issuedAt });
    const r = await verifyRatlsCertificate(d.certDer, { now: soon, trustedRoots: [root] });
    expect(r.ok).toBe(false);
    expect(codes(r)).toContain('TD_DEBUG');
    expect(r.quote?.debug).toBe(true);
    const allowed = await verifyRatlsCertificate(d.certDer, { now: soon, trustedRoots: [root], policy: { allowDebug: true } });
    expect(allowed.ok).toBe(true);
  });

  it('applies measurement policy', async () => {
    const ok = await verifyRatlsCertificate(id.certDer, { now: soon, trustedRoots: [root], policy: { mrTd: [provider.measurements.mrTd] } });
    expect(ok.ok).toBe(true);
    const bad = await verifyRatlsCertificate(id.certDer, { now: soon, trustedRoots: [root], policy: { mrTd: ['00'.repeat(48)] } });
    expect(codes(bad)).toContain('MEASUREMENT_MISMATCH');
  });

  it('rejects expired, not-yet-valid and too-old certificates, and expired collateral', async () => {
    const after = new Date(id.notAfter.getTime() + 1000);
    expect(codes(await verifyRatlsCertificate(id.certDer, { now: after, trustedRoots: [root] }))).toContain('CERT_EXPIRED');
    const before = new Date(id.notBefore.getTime() - 1000);
    expect(codes(await verifyRatlsCertificate(id.certDer, { now: before, trustedRoots: [root] }))).toContain('CERT_NOT_YET_VALID');
    const hourLater = new Date(issuedAt.getTime() + 3_600_000);
    expect(codes(await verifyRatlsCertificate(id.certDer, { now: hourLater, trustedRoots: [root], maxCertAgeSeconds: 600 }))).toEqual(['CERT_TOO_OLD']);
    // A 60-day certificate outlives its stapled 30-day collateral.
    const long = await createRatlsIdentity({ provider, validitySeconds: 60 * 86400, now: issuedAt });
    const day40 = new Date(issuedAt.getTime() + 40 * 86_400_000);
    const r = await verifyRatlsCertificate(long.certDer, { now: day40, trustedRoots: [root] });
    expect(r.ok).toBe(false);
    expect(codes(r).some((c) => c === 'COLLATERAL_EXPIRED' || c === 'CRL_EXPIRED')).toBe(true);
    expect(codes(r)).not.toContain('CERT_EXPIRED');
  });

  it('uses supplied collateral when nothing is stapled, and says so when there is none', async () => {
    const bare = await createRatlsIdentity({ provider, stapleCollateral: false, now: issuedAt });
    const cert = new x509.X509Certificate(bare.certDer.slice().buffer);
    expect(cert.getExtension(OID_RATLS_ENDORSEMENTS)).toBeNull();
    const none = await verifyRatlsCertificate(bare.certDer, { now: soon, trustedRoots: [root] });
    expect(codes(none)).toEqual(['COLLATERAL_MISSING']);
    const supplied = await verifyRatlsCertificate(bare.certDer, { now: soon, trustedRoots: [root], collateral: await provider.collateral(issuedAt) });
    expect(supplied.ok).toBe(true);
    const viaSource = await verifyRatlsCertificate(bare.certDer, {
      now: soon,
      trustedRoots: [root],
      collateralSources: [{ name: 'test', get: async () => provider.collateral(issuedAt) }],
    });
    expect(viaSource.ok).toBe(true);
  });

  it('supports P-384 keys, SHA-384 pubkey-hash and the dstack profile', async () => {
    const p384 = await createRatlsIdentity({ provider, keyAlg: 'P-384', pubkeyHashAlg: 'SHA-384', now: issuedAt });
    const r = await verifyRatlsCertificate(p384.certDer, { now: soon, trustedRoots: [root] });
    expect(r.ok).toBe(true);
    expect(r.ratls?.pubkeyHashAlg).toBe('SHA-384');
    const ds = await createRatlsIdentity({ provider, profile: 'dstack', now: issuedAt });
    const rd = await verifyRatlsCertificate(ds.certDer, { now: soon, trustedRoots: [root] });
    expect(rd.errors).toEqual([]);
    expect(rd.ratls?.profile).toBe('dstack');
    // dstack DER-wraps the raw quote in an OCTET STRING inside extnValue.
    const dsExt = new Uint8Array(new x509.X509Certificate(ds.certDer.slice().buffer).getExtension('1.3.6.1.4.1.62397.1.1')!.value);
    expect(dsExt[0]).toBe(0x04);
    expect(toHex(dsExt.subarray(dsExt.length - ds.quote.length))).toBe(toHex(ds.quote));
  });

  it('refuses bad host names and fails closed on an invalid verification time', async () => {
    for (const h of ['bad host', 'a:b:zz', 'x'.repeat(300), '999.1.1.1:80']) {
      await expect(createRatlsIdentity({ provider, hosts: [h] }), h).rejects.toMatchObject({ code: 'POLICY_INVALID' });
    }
    const r = await verifyRatlsCertificate(id.certDer, { now: new Date('nope'), trustedRoots: [root] });
    expect(r.ok).toBe(false);
    expect(codes(r)).toEqual(['INTERNAL']);
  });

  it('never throws on garbage and reports missing evidence', async () => {
    expect(codes(await verifyRatlsCertificate(new Uint8Array([1, 2, 3]), { now: soon }))).toEqual(['CERT_MALFORMED']);
    const plain = await certWith(await newKeys(), []);
    expect(codes(await verifyRatlsCertificate(plain, { now: soon }))).toEqual(['EVIDENCE_MISSING']);
    const orig = new x509.X509Certificate(id.certDer.slice().buffer).getExtension(OID_RATLS_EVIDENCE)!;
    const twice = await certWith(await newKeys(), [orig, orig]);
    expect(codes(await verifyRatlsCertificate(twice, { now: soon, trustedRoots: [root] }))).toEqual(['CERT_MALFORMED']);
    const junk = await certWith(await newKeys(), [ext(OID_RATLS_EVIDENCE, new Uint8Array([0xd9, 0xea, 0x60, 0x82, 0x41]))]);
    expect(codes(await verifyRatlsCertificate(junk, { now: soon }))).toEqual(['EVIDENCE_MALFORMED']);
  });

  it('keeps the private key out of enumeration/serialisation but usable for TLS', () => {
    expect(Object.keys(id)).not.toContain('keyPem');
    expect(JSON.stringify(id)).not.toContain('PRIVATE KEY');
    expect(id.keyPem).toMatch(/^-----BEGIN PRIVATE KEY-----/);
    expect(() => createSecureContext({ cert: id.certPem, key: id.keyPem })).not.toThrow();
  });
});

describe('interop: independent decoders', () => {
  it('cborg decodes the evidence extension to the same quote and claims', () => {
    const cert = new x509.X509Certificate(id.certDer.slice().buffer);
    const e = cert.getExtension(OID_RATLS_EVIDENCE)!;
    expect(e.critical).toBe(false);
    const tags: ((x: unknown) => unknown)[] = [];
    tags[60000] = (x) => ({ tag60000: x });
    const d = cborgDecode(new Uint8Array(e.value), { tags }) as { tag60000: [Uint8Array, Uint8Array] };
    expect(toHex(d.tag60000[0])).toBe(toHex(id.quote));
    expect(toHex(d.tag60000[1])).toBe(toHex(id.claimsBuffer));
    const claims = cborgDecode(d.tag60000[1], { useMaps: true }) as Map<string, Uint8Array>;
    const [alg, h] = cborgDecode(claims.get('pubkey-hash')!) as [number, Uint8Array];
    expect(alg).toBe(1);
    expect(h.length).toBe(32);
    const en = cborgDecode(new Uint8Array(cert.getExtension(OID_RATLS_ENDORSEMENTS)!.value), { tags }) as { tag60000: unknown[] };
    expect(en.tag60000.length).toBe(9);
  });

  it('openssl x509 -text shows both extensions, the SANs and a non-CA certificate', async () => {
    const f = join(dir, 'cert.pem');
    await writeFile(f, id.certPem);
    const text = execFileSync('openssl', ['x509', '-in', f, '-noout', '-text'], { encoding: 'latin1' });
    expect(text).toContain('2.23.133.5.4.9:');
    expect(text).toContain('2.23.133.5.4.2:');
    expect(text).toMatch(/DNS:localhost, IP Address:127\.0\.0\.1, IP Address:0:0:0:0:0:0:0:1/);
    expect(text).toContain('CA:FALSE');
    expect(text).not.toContain('1.2.840.113741.1.13.1');
    // The evidence extension is not critical (critical ones print "critical" after the OID).
    expect(text).not.toMatch(/2\.23\.133\.5\.4\.9: critical/);
  });
});

describe('nonce evidence', () => {
  it('binds the nonce and the connection key', async () => {
    const nonce = crypto.getRandomValues(new Uint8Array(32));
    const ev = await createNonceEvidence(id, provider, nonce);
    const c = await provider.collateral(issuedAt);
    const ok = await verifyRatlsEvidence(ev, id.spkiDer, { now: soon, trustedRoots: [root], collateral: c, expectedNonce: nonce });
    expect(ok.errors).toEqual([]);
    expect(ok.ratls?.nonce).toBe(toHex(nonce));
    const wrong = await verifyRatlsEvidence(ev, id.spkiDer, { now: soon, trustedRoots: [root], collateral: c, expectedNonce: new Uint8Array(32) });
    expect(codes(wrong)).toEqual(['NONCE_MISMATCH']);
    const otherKey = new Uint8Array(await crypto.subtle.exportKey('spki', (await newKeys()).publicKey));
    expect(codes(await verifyRatlsEvidence(ev, otherKey, { now: soon, trustedRoots: [root], collateral: c, expectedNonce: nonce }))).toEqual([
      'PUBKEY_MISMATCH',
    ]);
    const certNoNonce = await verifyRatlsCertificate(id.certDer, { now: soon, trustedRoots: [root], expectedNonce: nonce });
    expect(codes(certNoNonce)).toEqual(['NONCE_MISSING']);
    await expect(createNonceEvidence(id, provider, new Uint8Array(0))).rejects.toMatchObject({ code: 'NONCE_MISSING' });
    await expect(createNonceEvidence(id, provider, new Uint8Array(300))).rejects.toMatchObject({ code: 'NONCE_INVALID' });
  });
});

describe('real TDX quotes wrapped in a certificate', () => {
  const manifest = loadManifest();
  const withCollateral = manifest.quotes.filter((q) => q.collateral?.set && q.verification_time?.iso);
  it.each(withCollateral.map((q) => [q.id, q] as const))('%s cannot pass the key binding', async (_name, q) => {
    const quote = readTestFile(q.file);
    const keys = await newKeys();
    const spki = new Uint8Array(await crypto.subtle.exportKey('spki', keys.publicKey));
    const claims = await encodeClaims({ spkiDer: spki });
    const now = new Date(q.verification_time!.iso);
    // Dated at the quote's verification time, so that the key binding is the only thing that fails.
    const der = await certWith(keys, [ext(OID_RATLS_EVIDENCE, encodeEvidence(quote, claims))], now);
    const r = await verifyRatlsCertificate(der, {
      now,
      collateral: loadCollateralDir(collateralDirFor(q.collateral!.set)),
      policy: {
        allowDebug: true,
        allowedTcbStatuses: [
          'UpToDate',
          'OutOfDate',
          'SWHardeningNeeded',
          'ConfigurationNeeded',
          'ConfigurationAndSWHardeningNeeded',
          'OutOfDateConfigurationNeeded',
        ],
      },
    });
    expect(r.ok).toBe(false);
    const binding = r.errors.find((e) => e.code === 'REPORTDATA_MISMATCH');
    expect(binding, JSON.stringify(r.errors)).toBeDefined();
    expect(binding!.message).toMatch(/not produced for this certificate/);
    expect(toHex(await reportDataForClaims(claims))).not.toBe(q.fields.report_data);
    // The quote itself is genuine: the DCAP chain to Intel's root holds.
    expect(codes(r)).not.toContain('PCK_CHAIN_UNTRUSTED');
    expect(codes(r)).not.toContain('QUOTE_SIGNATURE_INVALID');
    expect(codes(r).filter((c) => c.startsWith('CERT_'))).toEqual([]);
    if (q.expected?.tcb_status === 'UpToDate' && q.fields.td_attributes.startsWith('00')) expect(codes(r)).toEqual(['REPORTDATA_MISMATCH']);
  });
});
