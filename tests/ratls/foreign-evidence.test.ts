// Certificates from other attestation projects, in formats ratls does not verify: the refusal must
// stay EVIDENCE_MISSING (fail closed) and say what was found, so a person knows which verifier to use.
import { describe, expect, it } from 'vitest';
import * as x509 from '@peculiar/x509';
import { verifyRatlsCertificate } from '../../src/ratls/verify-cert.ts';
import { describeForeignEvidence } from '../../src/ratls/foreign-evidence.ts';
import { loadManifest, readTestFile } from '../helpers/testdata.ts';

function octetString(content: Uint8Array): Uint8Array {
  const len = content.length;
  const head = len < 0x80 ? [0x04, len] : len < 0x100 ? [0x04, 0x81, len] : [0x04, 0x82, len >> 8, len & 0xff];
  return new Uint8Array([...head, ...content]);
}

async function certWith(extensions: { oid: string; value: Uint8Array }[]): Promise<Uint8Array> {
  const keys = (await crypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, ['sign', 'verify'])) as CryptoKeyPair;
  const now = Date.now();
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: '0a',
    name: 'CN=foreign',
    notBefore: new Date(now - 60_000),
    notAfter: new Date(now + 3_600_000),
    keys,
    signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' },
    extensions: extensions.map((e) => new x509.Extension(e.oid, false, e.value.slice().buffer)),
  });
  return new Uint8Array(cert.rawData);
}

async function refusal(der: Uint8Array): Promise<{ code: string; message: string }> {
  const r = await verifyRatlsCertificate(der, { now: new Date() });
  expect(r.ok).toBe(false);
  const e = r.errors.find((x) => x.code === 'EVIDENCE_MISSING');
  expect(e, JSON.stringify(r.errors)).toBeDefined();
  return e!;
}

const realTdxQuote = (): Uint8Array => {
  const q = loadManifest().quotes.find((x) => x.fields.version === 4)!;
  return readTestFile(q.file).subarray(0, q.quote_bytes_used);
};

describe("certificates with evidence in other projects' formats", () => {
  it('names the legacy rats-tls TDX extension and the Gramine SGX extension', async () => {
    const tdx = await refusal(await certWith([{ oid: '1.2.840.113741.1.5.5.1.6', value: octetString(realTdxQuote()) }]));
    expect(tdx.message).toMatch(/1\.2\.840\.113741\.1\.5\.5\.1\.6 holds a TDX quote in the legacy rats-tls/);
    const sgxQuote = new Uint8Array(1200);
    sgxQuote.set([3, 0, 2, 0]);
    const sgx = await refusal(await certWith([{ oid: '1.2.840.113741.1.13.1', value: octetString(sgxQuote) }]));
    expect(sgx.message).toMatch(/SGX quote .*not TDX/);
  });

  it('spots a TDX quote in an extension it has never heard of, wrapped or not', async () => {
    for (const value of [realTdxQuote(), octetString(realTdxQuote())]) {
      const e = await refusal(await certWith([{ oid: '1.3.6.1.4.1.99999.7', value }]));
      expect(e.message).toMatch(/extension 1\.3\.6\.1\.4\.1\.99999\.7 holds what looks like a TDX quote \(version 4\)/);
    }
  });

  it('keeps the plain message for a certificate with nothing attestation-like', async () => {
    const e = await refusal(await certWith([{ oid: '1.3.6.1.4.1.99999.8', value: octetString(new TextEncoder().encode('hello')) }]));
    expect(e.message).toMatch(/has no RA-TLS evidence extension \(2\.23\.133\.5\.4\.9\)/);
    expect(e.message).not.toMatch(/Found instead/);
  });

  it('never throws on hostile extension values', () => {
    let seed = 7;
    const rnd = (): number => ((seed = (seed * 1103515245 + 12345) >>> 0) >>> 16) & 0xff;
    for (let i = 0; i < 5000; i++) {
      const len = rnd() % 80;
      const value = Uint8Array.from({ length: len }, rnd);
      if (i % 3 === 0 && len > 2) value[0] = 0x04;
      if (i % 5 === 0 && len > 3) value[1] = 0x80 | (rnd() % 6);
      expect(() => describeForeignEvidence([{ type: '1.3.6.1.4.1.99999.9', critical: false, value }])).not.toThrow();
    }
  });
});
