/**
 * Other projects' real RA-TLS certificates (tests/fixtures/ratls, PROVENANCE.md there) and the
 * certificate shapes they use: every published CCC certificate holds an SGX quote, so it must be
 * refused as SGX (QUOTE_UNSUPPORTED_TEE), after its key binding was checked byte for byte the way
 * the CCC format says. RSA keys, SHA-384/512 pubkey-hash ids, nonce and unknown claims, chains in
 * one PEM file, dstack GetTlsKey JSON, DER, and expired archives checked with --at.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as x509 from '@peculiar/x509';
import { verifyRatlsCertificate } from '../../src/ratls/verify-cert.ts';
import { encodeClaims, reportDataForClaims } from '../../src/ratls/claims.ts';
import { encodeEndorsements, encodeEvidence, OID_RATLS_ENDORSEMENTS, OID_RATLS_EVIDENCE } from '../../src/ratls/extension.ts';
import { initSimulatedWorld, loadSimulatedProvider, type SimulatedProvider } from '../../src/tee/simulated/index.ts';
import { runCli } from '../helpers/cli.ts';

const fixtures = fileURLToPath(new URL('../fixtures/ratls/', import.meta.url));
const fixture = (name: string): string => join(fixtures, name);
const derOf = (name: string): Uint8Array => new Uint8Array(x509.PemConverter.decodeFirst(readFileSync(fixture(name), 'latin1')));

const SGX_CERTS = ['ccc-gramine-sgx-cert.pem', 'ccc-intel-sgxsdk-cert.pem', 'ccc-rats-tls-sgx-cert.pem', 'rats-rs-demo-sgx-cert.pem'];

let dir: string;
let provider: SimulatedProvider;
let rootPem: string;
beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'ratls-interop-'));
  rootPem = (await initSimulatedWorld(join(dir, 'w'))).rootPem;
  provider = await loadSimulatedProvider(join(dir, 'w'));
}, 60_000);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('published CCC certificates (all SGX): binding checked, then refused as SGX', () => {
  for (const name of SGX_CERTS) {
    it(name, async () => {
      const der = derOf(name);
      const cert = new x509.X509Certificate(der.slice().buffer);
      // inside its validity, so only the TEE decides
      const r = await verifyRatlsCertificate(der, { now: new Date(cert.notBefore.getTime() + 30_000) });
      expect(r.ok).toBe(false);
      expect(r.errors.map((e) => e.code)).toEqual(['QUOTE_UNSUPPORTED_TEE']);
      expect(r.errors[0]!.message).toMatch(/SGX ECDSA quote \(version 3\).*not a TDX quote/);
      const passed = r.checks.filter((c) => c.ok).map((c) => c.name);
      expect(passed).toEqual(expect.arrayContaining(['REPORTDATA binding', 'public key binding']));
      expect(r.ratls?.pubkeyHashAlg).toBe('SHA-256');
    });
  }

  it('a flipped claims byte breaks the REPORTDATA binding of a real certificate', async () => {
    const der = derOf('ccc-gramine-sgx-cert.pem');
    const view = new x509.X509Certificate(der.slice().buffer);
    const ext = view.getExtension(OID_RATLS_EVIDENCE)!;
    const value = new Uint8Array(ext.value);
    // the claims buffer is the last byte string of the evidence; its last byte is part of the key hash
    value[value.length - 1]! ^= 1;
    const keys = (await crypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, ['sign', 'verify'])) as CryptoKeyPair;
    const forged = await x509.X509CertificateGenerator.createSelfSigned({
      serialNumber: '01',
      name: view.subject,
      notBefore: view.notBefore,
      notAfter: view.notAfter,
      keys,
      signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' },
      extensions: [new x509.Extension(OID_RATLS_EVIDENCE, false, value.buffer)],
    });
    const r = await verifyRatlsCertificate(new Uint8Array(forged.rawData), { now: new Date('2025-01-01T00:00:00Z') });
    expect(r.errors.map((e) => e.code)).toEqual(expect.arrayContaining(['REPORTDATA_MISMATCH', 'PUBKEY_MISMATCH', 'QUOTE_UNSUPPORTED_TEE']));
  });
});

describe('ratls cert verify on real certificates', () => {
  it('an expired rats-tls certificate: exit 1, and the message offers --at; with --at only the SGX refusal stays', async () => {
    const f = fixture('ccc-rats-tls-sgx-cert.pem');
    const now = await runCli('cert', 'verify', f, '--json');
    expect(now.code).toBe(1);
    const errs = (JSON.parse(now.out) as { errors: Array<{ code: string; message: string }> }).errors;
    expect(errs.map((e) => e.code)).toEqual(['CERT_EXPIRED', 'QUOTE_UNSUPPORTED_TEE']);
    expect(errs[0]!.message).toContain('--at 2023-02-22T16:10:22.000Z');
    const then = await runCli('cert', 'verify', f, '--at', '2023-02-22T16:10:22.000Z', '--json');
    expect(then.code).toBe(1);
    expect((JSON.parse(then.out) as { errors: Array<{ code: string }> }).errors.map((e) => e.code)).toEqual(['QUOTE_UNSUPPORTED_TEE']);
  });

  it('DER, PEM chains in either order and dstack GetTlsKey JSON: the certificate with evidence is verified and named', async () => {
    const leaf = readFileSync(fixture('ccc-intel-sgxsdk-cert.pem'), 'latin1');
    const der = derOf('ccc-intel-sgxsdk-cert.pem');
    // a CA without evidence next to the leaf, as dstack hands out (leaf + app CA)
    const caKeys = (await crypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, ['sign', 'verify'])) as CryptoKeyPair;
    const ca = await x509.X509CertificateGenerator.createSelfSigned({
      serialNumber: '02',
      name: 'CN=App CA',
      keys: caKeys,
      signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' },
      extensions: [new x509.BasicConstraintsExtension(true, 1, true)],
    });
    const files = {
      'leaf.der': der,
      'ca-first.pem': ca.toString('pem') + '\n' + leaf,
      'leaf-first.pem': leaf + ca.toString('pem') + '\n',
      'gettlskey.json': JSON.stringify({ key: '-----BEGIN PRIVATE KEY-----\nx\n-----END PRIVATE KEY-----\n', certificate_chain: [leaf, ca.toString('pem')] }),
    };
    for (const [name, data] of Object.entries(files)) {
      const f = join(dir, name);
      writeFileSync(f, data);
      const r = await runCli('cert', 'verify', f, '--json', '--at', '2024-01-01T00:00:00Z');
      expect(r.code, name).toBe(1);
      const out = JSON.parse(r.out) as { certificate: { subject: string }; errors: Array<{ code: string }> };
      expect(out.certificate.subject, name).toBe('CN=Intel SGX Enclave, O=Intel Corporation, C=US');
      expect(out.errors.map((e) => e.code)).toEqual(['QUOTE_UNSUPPORTED_TEE']);
      if (name === 'leaf.der') expect(r.err).toBe('');
      else expect(r.err, name).toMatch(/holds 2 certificates; verifying #\d \(CN=Intel SGX Enclave.*\), the one carrying RA-TLS evidence/);
    }
  });
});

describe('certificate shapes other implementations use', () => {
  /** A CCC certificate for an RSA key, made by hand as another implementation would, with the simulated quote and staple. */
  async function rsaCert(hashAlg: 'SHA-256' | 'SHA-384' | 'SHA-512', extra: Array<[string, Uint8Array]>, critical = false): Promise<Uint8Array> {
    const keys = (await crypto.subtle.generateKey(
      { name: 'RSASSA-PKCS1-v1_5', modulusLength: 2048, publicExponent: new Uint8Array([1, 0, 1]), hash: 'SHA-256' },
      true,
      ['sign', 'verify'],
    )) as CryptoKeyPair;
    const spki = new Uint8Array(await crypto.subtle.exportKey('spki', keys.publicKey));
    const claims = await encodeClaims({ spkiDer: spki, hashAlg, extra });
    const quote = await provider.getQuote(await reportDataForClaims(claims));
    const now = Date.now();
    const cert = await x509.X509CertificateGenerator.createSelfSigned({
      serialNumber: '03',
      name: 'CN=rsa-peer',
      notBefore: new Date(now - 60_000),
      notAfter: new Date(now + 3_600_000),
      keys,
      signingAlgorithm: { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' },
      extensions: [
        new x509.Extension(OID_RATLS_EVIDENCE, critical, encodeEvidence(quote, claims).slice().buffer),
        new x509.Extension(OID_RATLS_ENDORSEMENTS, false, encodeEndorsements(await provider.collateral(new Date(now))).slice().buffer),
      ],
    });
    return new Uint8Array(cert.rawData);
  }

  it('RSA keys with SHA-384 and SHA-512 pubkey-hash ids, a nonce and claims ratls does not know: verified', async () => {
    for (const alg of ['SHA-384', 'SHA-512'] as const) {
      const der = await rsaCert(alg, [
        ['nonce', Uint8Array.of(1, 2, 3, 4)],
        ['key_0', new TextEncoder().encode('custom claim of another implementation')],
      ]);
      const r = await verifyRatlsCertificate(der, { now: new Date(), trustedRoots: [rootPem], expectedNonce: Uint8Array.of(1, 2, 3, 4) });
      expect(r.errors, alg).toEqual([]);
      expect(r.ok).toBe(true);
      expect(r.ratls).toMatchObject({ profile: 'ccc', pubkeyHashAlg: alg, nonce: '01020304' });
    }
  });

  it('the evidence extension marked critical is still understood', async () => {
    const r = await verifyRatlsCertificate(await rsaCert('SHA-256', [], true), { now: new Date(), trustedRoots: [rootPem] });
    expect(r.errors).toEqual([]);
  });
});
