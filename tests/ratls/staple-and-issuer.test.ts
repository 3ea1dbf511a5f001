/**
 * RA-TLS certificate rules found by running other projects' certificates (docs/verifier.md,
 * "Differences from Intel's QVL" and docs/ratls.md): an unusable stapled-endorsements extension is
 * a warning and the other collateral sources are used; a leaf issued by a CA is accepted when the
 * evidence binds its key, while a self-issued certificate whose signature fails was altered.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as x509 from '@peculiar/x509';
import { encode } from 'cbor2';
import { initSimulatedWorld, loadSimulatedProvider, type SimulatedProvider } from '../../src/tee/simulated/index.ts';
import { createRatlsIdentity, type RatlsIdentity } from '../../src/ratls/identity.ts';
import { encodeEndorsements, OID_RATLS_ENDORSEMENTS } from '../../src/ratls/extension.ts';
import { verifyRatlsCertificate, type RatlsVerificationResult, type VerifyRatlsOptions } from '../../src/ratls/verify-cert.ts';
import { formatVerificationReport } from '../../src/verify/report.ts';
import { renderReport } from '../../src/client/report.ts';
import type { CollateralSource } from '../../src/collateral/types.ts';
import type { Collateral } from '../../src/core/types.ts';
import type { ErrorCode } from '../../src/core/errors.ts';

let dir: string;
let provider: SimulatedProvider;
let rootPem: string;
let id: RatlsIdentity;
let collateral: Collateral;
const now = new Date();
const at = new Date(now.getTime() + 5_000);

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'ratls-staple-issuer-'));
  rootPem = (await initSimulatedWorld(join(dir, 'w'))).rootPem;
  provider = await loadSimulatedProvider(join(dir, 'w'));
  // No staple of its own: each case adds the endorsements extension it needs.
  id = await createRatlsIdentity({ provider, hosts: ['localhost'], now, stapleCollateral: false });
  collateral = await provider.collateral(now);
}, 60_000);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const codes = (r: RatlsVerificationResult): ErrorCode[] => r.errors.map((e) => e.code);
const ECDSA_P256 = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
const ECDSA_P384 = { name: 'ECDSA', namedCurve: 'P-384', hash: 'SHA-384' } as const;

/** The identity's extensions (evidence, names, usages), without any staple. */
function baseExtensions(): x509.Extension[] {
  return new x509.X509Certificate(Buffer.from(id.certDer)).extensions.filter((e) => e.type !== OID_RATLS_ENDORSEMENTS);
}

const staple = (value: Uint8Array) => new x509.Extension(OID_RATLS_ENDORSEMENTS, false, value.slice().buffer);

/** The identity's key and evidence in a new self-signed certificate with `extra` extensions. */
async function selfSigned(extra: x509.Extension[]): Promise<Uint8Array> {
  const orig = new x509.X509Certificate(Buffer.from(id.certDer));
  const c = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: orig.serialNumber,
    name: orig.subject,
    notBefore: orig.notBefore,
    notAfter: orig.notAfter,
    keys: id.keyPair,
    signingAlgorithm: ECDSA_P256,
    extensions: [...baseExtensions(), ...extra],
  });
  return new Uint8Array(c.rawData);
}

/** A certificate for `publicKey` carrying the identity's evidence, issued and signed by `issuer`. */
async function issuedBy(
  issuer: { name: string; key: CryptoKey; alg: EcdsaParams & EcKeyGenParams },
  subject: string,
  publicKey: CryptoKey,
  extra: x509.Extension[] = [],
) {
  const orig = new x509.X509Certificate(Buffer.from(id.certDer));
  const c = await x509.X509CertificateGenerator.create({
    serialNumber: '0a1b2c3d',
    subject,
    issuer: issuer.name,
    notBefore: orig.notBefore,
    notAfter: orig.notAfter,
    publicKey,
    signingKey: issuer.key,
    signingAlgorithm: issuer.alg,
    extensions: [...baseExtensions(), ...extra],
  });
  return new Uint8Array(c.rawData);
}

async function throwawayCa(alg: typeof ECDSA_P256 | typeof ECDSA_P384, name: string) {
  const keys = (await crypto.subtle.generateKey(alg, true, ['sign', 'verify'])) as CryptoKeyPair;
  return { name, key: keys.privateKey, alg };
}

// ---- 3. an empty or undecodable stapled endorsements extension -----------------------------------

describe('3. a broken staple is a warning; the other collateral sources decide', () => {
  const pccs = (): CollateralSource => ({ name: 'test-pccs', get: async () => collateral });
  const broken: Array<[string, () => Uint8Array, RegExp]> = [
    ['empty (as rats-rs emits it)', () => new Uint8Array(0), /the extension 2\.23\.133\.5\.4\.2 is empty/],
    ['garbage bytes', () => Uint8Array.from([0xff, 0x13, 0x37, 0x00, 0x42]), /not used: /],
    [
      'truncated CBOR',
      () => {
        const full = encodeEndorsements(collateral, now);
        return full.subarray(0, Math.floor(full.length / 2));
      },
      /not used: /,
    ],
    ['well-formed CBOR of the wrong shape', () => encode([1, 2, 3]), /not used: The endorsements must be CBOR tag 60000/],
  ];
  const fallbacks: Array<[string, (() => Partial<VerifyRatlsOptions>) | undefined, string]> = [
    ['a collateral source', () => ({ collateralSources: [pccs()] }), 'test-pccs'],
    ['collateral given directly', () => ({ collateral }), 'supplied'],
    ['no other source', undefined, ''],
  ];
  for (const [what, value, detail] of broken) {
    for (const [fallbackName, fallback, source] of fallbacks) {
      it(`${what}, with ${fallbackName}`, async () => {
        const der = await selfSigned([staple(value())]);
        const r = await verifyRatlsCertificate(der, { now: at, trustedRoots: [rootPem], ...(fallback?.() ?? {}) });
        const check = r.checks.find((c) => c.name === 'stapled collateral');
        expect(check).toMatchObject({ ok: false, warning: true });
        expect(check?.detail).toMatch(detail);
        if (fallback) {
          expect(r.errors).toEqual([]);
          expect(r.ok).toBe(true);
          expect(r.tcbStatus).toBe('UpToDate');
          expect(r.checks.find((c) => c.name === 'collateral' && c.ok)?.detail).toBe(source);
        } else {
          // Fails only because nothing supplied collateral, and says why.
          expect(r.ok).toBe(false);
          expect(codes(r)).toEqual(['COLLATERAL_MISSING']);
          expect(r.errors[0]!.message).toMatch(/staples only an unusable extension/);
        }
      });
    }
  }

  it('a good staple is used as before', async () => {
    const r = await verifyRatlsCertificate(await selfSigned([staple(encodeEndorsements(collateral, now))]), { now: at, trustedRoots: [rootPem] });
    expect(r.ok).toBe(true);
    expect(r.checks.find((c) => c.name === 'stapled collateral')).toEqual({ name: 'stapled collateral', ok: true, detail: 'decoded' });
    expect(r.checks.find((c) => c.name === 'collateral')?.detail).toBe('stapled');
  });

  it('the reports mark the broken staple as a warning, not a failure', async () => {
    const r = await verifyRatlsCertificate(await selfSigned([staple(new Uint8Array(0))]), { now: at, trustedRoots: [rootPem], collateral });
    expect(formatVerificationReport(r)).toMatch(/\[WARN\] stapled collateral: not used/);
    expect(formatVerificationReport(r)).toContain('Verdict: OK');
    expect(renderReport(r, { target: 'x', nonceRequested: false, nonceVerified: false, colour: false })).toMatch(/WARN stapled collateral/);
  });
});

// ---- 4. CA-issued RA-TLS certificates ------------------------------------------------------------

describe('4. a CA-issued leaf is accepted when the evidence binds its key; a bad self-signature is "altered"', () => {
  interface IssuerCase {
    name: string;
    cert: () => Promise<Uint8Array>;
    ok: boolean;
    errors: ErrorCode[];
    check: { name: string; ok: boolean; detail?: RegExp };
  }
  const cases: IssuerCase[] = [
    {
      name: 'self-signed (the usual form)',
      cert: async () => id.certDer,
      ok: true,
      errors: [],
      check: { name: 'certificate signature', ok: true },
    },
    {
      name: 'issued by a throwaway P-256 CA for the evidence-bound key',
      cert: async () =>
        issuedBy(await throwawayCa(ECDSA_P256, 'CN=Throwaway RA-TLS CA'), 'CN=localhost', id.keyPair.publicKey, [staple(encodeEndorsements(collateral, now))]),
      ok: true,
      errors: [],
      check: { name: 'certificate issuer', ok: true, detail: /^not self-signed \(issued by "CN=Throwaway RA-TLS CA"\); issuer not used for trust/ },
    },
    {
      name: 'issued by a P-384 CA (its algorithm does not matter, it is not checked)',
      cert: async () =>
        issuedBy(await throwawayCa(ECDSA_P384, 'CN=P-384 CA, O=Elsewhere'), 'CN=localhost', id.keyPair.publicKey, [
          staple(encodeEndorsements(collateral, now)),
        ]),
      ok: true,
      errors: [],
      check: { name: 'certificate issuer', ok: true, detail: /issuer not used for trust/ },
    },
    {
      name: 'issued by a CA for another key carrying this evidence: the binding still fails',
      cert: async () => {
        const other = (await crypto.subtle.generateKey(ECDSA_P256, true, ['sign', 'verify'])) as CryptoKeyPair;
        return issuedBy(await throwawayCa(ECDSA_P256, 'CN=Throwaway RA-TLS CA'), 'CN=localhost', other.publicKey, [
          staple(encodeEndorsements(collateral, now)),
        ]);
      },
      ok: false,
      errors: ['PUBKEY_MISMATCH'],
      check: { name: 'certificate issuer', ok: true },
    },
    {
      name: 'self-issued name but signed by another key: altered after issuance',
      cert: async () =>
        issuedBy(await throwawayCa(ECDSA_P256, 'CN=localhost'), 'CN=localhost', id.keyPair.publicKey, [staple(encodeEndorsements(collateral, now))]),
      ok: false,
      errors: ['CERT_MALFORMED'],
      check: {
        name: 'certificate signature',
        ok: false,
        detail: /self-issued but its signature does not verify with its own key; it was altered after issuance/,
      },
    },
    {
      name: 'the genuine self-signed certificate with one serial-number bit flipped: altered after issuance',
      cert: async () => {
        const der = id.certDer.slice();
        const serial = Buffer.from(new x509.X509Certificate(Buffer.from(der)).serialNumber, 'hex');
        const i = Buffer.from(der).indexOf(serial) + serial.length - 1;
        der[i] = der[i]! ^ 0x01;
        return der;
      },
      ok: false,
      errors: ['CERT_MALFORMED'],
      check: { name: 'certificate signature', ok: false, detail: /altered after issuance/ },
    },
  ];
  for (const c of cases) {
    it(c.name, async () => {
      const r = await verifyRatlsCertificate(await c.cert(), { now: at, trustedRoots: [rootPem], collateral });
      expect(codes(r)).toEqual(c.errors);
      expect(r.ok).toBe(c.ok);
      const check = r.checks.find((x) => x.name === c.check.name);
      expect(check?.ok).toBe(c.check.ok);
      if (c.check.detail) expect(check?.detail).toMatch(c.check.detail);
      // One of the two, never both: a certificate is either self-signed or issued by someone else.
      expect(r.checks.filter((x) => x.name === 'certificate signature' || x.name === 'certificate issuer')).toHaveLength(1);
      if (c.ok) expect(r.quote?.mrTd).toBe(provider.measurements.mrTd);
    });
  }
});
