/**
 * Every X.509 parsing failure in a peer's RA-TLS certificate is CERT_MALFORMED naming the part,
 * never INTERNAL with a library's text. @peculiar/x509 parses names, the key and each extension on
 * first access, so a subjectAltName or basicConstraints one bit away from a valid certificate used
 * to throw from deep inside the verifier: INTERNAL, and the attestation service answered 200 with a
 * signed failure instead of 400 CERT_MALFORMED.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';
import { verifyRatlsCertificate } from '../../../src/ratls/verify-cert.ts';
import { OID_RATLS_ENDORSEMENTS, OID_RATLS_EVIDENCE } from '../../../src/ratls/extension.ts';
import { startAttestService, type AttestServiceHandle } from '../../../src/service/server.ts';
import type { RatlsIdentity } from '../../../src/ratls/identity.ts';
import { makeIdentity, makeWorld, type World } from '../../client/helpers.ts';

x509.cryptoProvider.set(webcrypto as unknown as Crypto);

const POLICIES = resolve(import.meta.dirname, '../../../config/policies');

let world: World;
let id: RatlsIdentity;
let der: Uint8Array;
let cert: x509.X509Certificate;
let dir: string;
let svc: AttestServiceHandle;

beforeAll(async () => {
  world = await makeWorld();
  id = await makeIdentity(world);
  der = id.certDer;
  cert = new x509.X509Certificate(Buffer.from(der));
  dir = mkdtempSync(join(tmpdir(), 'ratls-malformed-'));
  svc = await startAttestService({ keyDir: join(dir, 'keys'), policiesDir: POLICIES, roots: [world.rootPem], rateLimit: false, processMetrics: false });
}, 60_000);
afterAll(async () => {
  await svc?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const opts = () => ({ now: new Date(), trustedRoots: [world.rootPem] });

/** Offset of `needle` in `hay` (first, or last occurrence). */
function offsetOf(hay: Uint8Array, needle: Uint8Array | ArrayBuffer, last = false): number {
  const b = Buffer.from(hay);
  const n = Buffer.from(needle instanceof ArrayBuffer ? new Uint8Array(needle) : needle);
  const at = last ? b.lastIndexOf(n) : b.indexOf(n);
  expect(at, 'part located in the certificate').toBeGreaterThan(0);
  return at;
}

/** A copy of the certificate with byte `at` set to `value`. */
function withByte(at: number, value: number, from = der): Uint8Array {
  const m = new Uint8Array(from);
  m[at] = value;
  return m;
}

const extensionValue = (oid: string): Uint8Array => new Uint8Array(cert.extensions.find((e) => e.type === oid)!.value);

/** DER of the OIDs of the small extensions damaged below (their values are too short to search for). */
const OID_DER: Record<string, number[]> = { '2.5.29.17': [0x06, 0x03, 0x55, 0x1d, 0x11], '2.5.29.19': [0x06, 0x03, 0x55, 0x1d, 0x13] };

/** Offset of the extnValue contents of extension `oid`: after its OID, the optional critical flag and the OCTET STRING header. */
function extensionValueAt(oid: string): number {
  let at = offsetOf(der, Buffer.from(OID_DER[oid]!)) + OID_DER[oid]!.length;
  if (der[at] === 0x01) at += 3; // critical BOOLEAN
  expect(der[at], 'OCTET STRING').toBe(0x04);
  return at + (der[at + 1]! < 0x80 ? 2 : 2 + (der[at + 1]! & 0x7f));
}

/** The tag byte of the first commonName value inside the Name DER at `nameAt`. */
function cnValueTag(nameAt: number): number {
  return offsetOf(der.subarray(nameAt), Buffer.from([0x06, 0x03, 0x55, 0x04, 0x03])) + nameAt + 5;
}

/**
 * The certificate made to look issued by a CA: one letter of the issuer name changed. Its signature
 * is then not checked (the evidence binds the key, the issuer adds no trust), so nothing before the
 * damaged part stops the verifier.
 */
function caIssued(from: Uint8Array): Uint8Array {
  const issuerAt = offsetOf(from, cert.issuerName.toArrayBuffer());
  const last = issuerAt + new Uint8Array(cert.issuerName.toArrayBuffer()).length - 1;
  return withByte(last, from[last]! ^ 0x01, from);
}

/** Damaged certificates, each one or two bytes away from the genuine one. */
function damaged(): Array<{ name: string; der: Uint8Array; part: RegExp }> {
  const san = extensionValueAt('2.5.29.17');
  const bc = extensionValueAt('2.5.29.19');
  expect([der[san], der[bc]]).toEqual([0x30, 0x30]);
  const spki = offsetOf(der, cert.publicKey.rawData);
  const subjectAt = offsetOf(der, cert.subjectName.toArrayBuffer(), true);
  const issuerAt = offsetOf(der, cert.issuerName.toArrayBuffer());
  const cases = [
    { name: 'subjectAltName that is not GeneralNames', der: withByte(san, 0x31), part: /subjectAltName/ },
    { name: 'basicConstraints that is not a SEQUENCE', der: withByte(bc, 0x31), part: /basicConstraints/ },
    // the namedCurve OID's tag turned into an OCTET STRING: parameters the library cannot read
    { name: 'public key with unreadable curve parameters', der: withByte(spki + 13, 0x04), part: /public key/ },
    { name: 'subject commonName with a UTCTime tag', der: withByte(cnValueTag(subjectAt), 0x17), part: /subject name/ },
    { name: 'issuer commonName with a UTCTime tag', der: withByte(cnValueTag(issuerAt), 0x17), part: /issuer name/ },
  ];
  return [...cases, ...cases.filter((c) => !/issuer name/.test(c.name)).map((c) => ({ ...c, name: `${c.name}, issuer changed`, der: caIssued(c.der) }))];
}

describe('malformed X.509 fields in an RA-TLS certificate', () => {
  it('baseline: the genuine certificate passes', async () => {
    const r = await verifyRatlsCertificate(der, opts());
    expect(r.errors).toEqual([]);
    expect(r.ok).toBe(true);
  });

  it('are CERT_MALFORMED naming the part, never INTERNAL or a library message', async () => {
    for (const c of damaged()) {
      const r = await verifyRatlsCertificate(c.der, opts());
      expect(r.ok, c.name).toBe(false);
      expect(
        r.errors.map((e) => e.code),
        c.name,
      ).not.toContain('INTERNAL');
      const malformed = r.errors.find((e) => e.code === 'CERT_MALFORMED' && c.part.test(e.message));
      expect(malformed, `${c.name}: ${JSON.stringify(r.errors)}`).toBeDefined();
      expect(malformed!.message).not.toMatch(/ASN1|schema|Wrong input|conversion/i);
    }
  });

  it('bit flips anywhere outside the evidence and collateral payloads: nothing comes back INTERNAL', async () => {
    // the two large extension values hold the quote and Intel's collateral, whose own parsers have
    // their fuzz tests; their first and last bytes (the headers) are flipped here too
    const skip = [OID_RATLS_EVIDENCE, OID_RATLS_ENDORSEMENTS].map((oid) => {
      const at = offsetOf(der, extensionValue(oid));
      return [at + 8, at + extensionValue(oid).length - 8] as const;
    });
    let flips = 0;
    const internal: string[] = [];
    const codes = new Set<string>();
    for (let i = 0; i < der.length; i++) {
      if (skip.some(([a, b]) => i >= a && i < b)) continue;
      // two bits per byte keep this within seconds; together they change every field's tag, length or content
      for (const bit of [i % 8, (i + 3) % 8]) {
        const m = withByte(i, der[i]! ^ (1 << bit));
        const r = await verifyRatlsCertificate(m, opts());
        flips++;
        for (const e of r.errors) {
          codes.add(e.code);
          if (e.code === 'INTERNAL') internal.push(`byte ${i} bit ${bit}: ${e.message}`);
        }
      }
    }
    expect(flips).toBeGreaterThan(1000);
    expect(internal).toEqual([]);
    expect(codes).toContain('CERT_MALFORMED');
  }, 120_000);
});

describe('attestation service and malformed certificates', () => {
  const attest = async (certificate: Uint8Array) => {
    const r = await fetch(`${svc.url}/v1/attest`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ certificate: Buffer.from(certificate).toString('base64') }),
    });
    return {
      status: r.status,
      body: (await r.json()) as { error?: { code: string; message: string }; result?: { ok: boolean; errors: Array<{ code: string }> } },
    };
  };

  it('baseline: the genuine certificate gets a signed ok', async () => {
    const { status, body } = await attest(der);
    expect(status).toBe(200);
    expect(body.result?.ok).toBe(true);
  });

  it('answers 400 CERT_MALFORMED, not a signed failure with INTERNAL', async () => {
    for (const c of damaged()) {
      const { status, body } = await attest(c.der);
      expect({ name: c.name, status, code: body.error?.code }).toEqual({ name: c.name, status: 400, code: 'CERT_MALFORMED' });
      expect(body.error!.message).toMatch(c.part);
    }
  });
});
