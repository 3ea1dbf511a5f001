/**
 * Crafted RA-TLS certificates: same key and evidence as a genuine one, re-signed by that key with
 * extensions a verifier might read differently.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';
import { verifyRatlsCertificate } from '../../../src/ratls/verify-cert.ts';
import { OID_RATLS_EVIDENCE } from '../../../src/ratls/extension.ts';
import { makeIdentity, makeWorld, type World } from '../../client/helpers.ts';
import type { RatlsIdentity } from '../../../src/ratls/identity.ts';

x509.cryptoProvider.set(webcrypto as unknown as Crypto);

let world: World;
let id: RatlsIdentity;

beforeAll(async () => {
  world = await makeWorld();
  id = await makeIdentity(world);
});

/** Re-issues `id`'s certificate (same key, same evidence) with `extra` extensions added. */
async function reissue(extra: x509.Extension[], keep: (e: x509.Extension) => boolean = () => true): Promise<Uint8Array> {
  const cert = new x509.X509Certificate(Buffer.from(id.certDer));
  const alg = {
    name: 'ECDSA',
    namedCurve: cert.publicKey.algorithm.name === 'ECDSA' ? (cert.publicKey.algorithm as EcKeyAlgorithm).namedCurve : 'P-256',
    hash: 'SHA-256',
  };
  const pkcs8 = Buffer.from(id.keyPem.replace(/-----[A-Z ]+-----/g, '').replace(/\s+/g, ''), 'base64');
  const privateKey = await webcrypto.subtle.importKey('pkcs8', pkcs8, alg, false, ['sign']);
  const publicKey = await cert.publicKey.export(alg, ['verify']);
  const out = await x509.X509CertificateGenerator.create({
    serialNumber: cert.serialNumber,
    subject: cert.subject,
    issuer: cert.issuer,
    notBefore: cert.notBefore,
    notAfter: cert.notAfter,
    publicKey,
    signingKey: privateKey,
    signingAlgorithm: alg,
    extensions: [...cert.extensions.filter(keep), ...extra],
  });
  return new Uint8Array(out.rawData);
}

const opts = () => ({ now: new Date(), trustedRoots: [world.rootPem], policy: { allowedTcbStatuses: ['UpToDate' as const], allowDebug: false } });

describe('crafted certificates', () => {
  it('baseline: the re-issued certificate with nothing added passes', async () => {
    const r = await verifyRatlsCertificate(await reissue([]), opts());
    expect(r.errors).toEqual([]);
    expect(r.ok).toBe(true);
  });

  // FINDING C1 (low): RFC 5280 says a certificate with a critical extension the verifier does not
  // understand must be rejected; the RA-TLS verifier ignored them (the TLS layer does not check,
  // since the WebPKI check is off).
  it('rejects an unknown critical extension', async () => {
    const der = await reissue([new x509.Extension('1.3.6.1.4.1.99999.1', true, new Uint8Array([0x05, 0x00]))]);
    const r = await verifyRatlsCertificate(der, opts());
    expect(r.ok).toBe(false);
    expect(r.errors.map((e) => e.code)).toContain('CERT_MALFORMED');
  });

  it('still accepts an unknown non-critical extension', async () => {
    const der = await reissue([new x509.Extension('1.3.6.1.4.1.99999.2', false, new Uint8Array([0x05, 0x00]))]);
    expect((await verifyRatlsCertificate(der, opts())).ok).toBe(true);
  });

  it('rejects two evidence extensions (verifiers could read different ones)', async () => {
    const cert = new x509.X509Certificate(Buffer.from(id.certDer));
    const ev = cert.getExtension(OID_RATLS_EVIDENCE)!;
    const der = await reissue([new x509.Extension(OID_RATLS_EVIDENCE, false, ev.value)]);
    const r = await verifyRatlsCertificate(der, opts());
    expect(r.ok).toBe(false);
    expect(r.errors.map((e) => e.code)).toContain('CERT_MALFORMED');
  });

  it('a certificate without evidence fails with EVIDENCE_MISSING', async () => {
    const der = await reissue([], (e) => e.type !== OID_RATLS_EVIDENCE);
    const r = await verifyRatlsCertificate(der, opts());
    expect(r.ok).toBe(false);
    expect(r.errors.map((e) => e.code)).toContain('EVIDENCE_MISSING');
  });

  it('a huge certificate is refused without hanging', async () => {
    const der = await reissue([new x509.Extension('1.3.6.1.4.1.99999.3', false, new Uint8Array(2 * 1024 * 1024))]);
    const t0 = performance.now();
    const r = await verifyRatlsCertificate(der, opts());
    expect(performance.now() - t0).toBeLessThan(5000);
    // it still verifies (the TLS stack caps certificate sizes far lower); what matters is no hang
    expect(typeof r.ok).toBe('boolean');
  });
});
