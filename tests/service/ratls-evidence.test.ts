/**
 * The attestation service appraises what `ratls serve` hands out on /.well-known/ratls/evidence
 * (CCC evidence, CBOR tag 60000 [quote, claims]) with and without the server's certificate, and a
 * requireNonce policy is satisfied by the normal flow: the nonce in the RA-TLS claims counts as
 * bound when it equals the request's nonce.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash, randomBytes } from 'node:crypto';
import { X509Certificate } from '@peculiar/x509';
import { startAttestService, type AttestServiceHandle } from '../../src/service/server.ts';
import { verifyAttestationToken } from '../../src/token/verify.ts';
import { initSimulatedWorld, loadSimulatedProvider, type SimulatedProvider } from '../../src/tee/simulated/index.ts';
import { createRatlsIdentity, type RatlsIdentity } from '../../src/ratls/identity.ts';
import { createNonceEvidence } from '../../src/ratls/evidence.ts';
import { decodeEvidence, encodeEvidence } from '../../src/ratls/extension.ts';
import { encodeClaims } from '../../src/ratls/claims.ts';
import { toArrayBuffer } from '../../src/core/bytes.ts';

let dir: string;
let provider: SimulatedProvider;
let id: RatlsIdentity;
/** A service with the simulated root only: collateral comes from the certificate's staple. */
let stapleOnly: AttestServiceHandle;
/** A service that also serves the simulated world's collateral, for evidence sent without a certificate. */
let withCollateral: AttestServiceHandle;

const b64 = (b: Uint8Array) => Buffer.from(b).toString('base64');
const nonce = new TextEncoder().encode('relying-party-nonce-0002');

interface Body {
  token?: string;
  result?: { ok: boolean; evidence: string; reportDataBinding: string | null; errors: Array<{ code: string; message: string }> };
  error?: { code: string; message: string };
}

async function post(svc: AttestServiceHandle, body: Record<string, unknown>): Promise<{ status: number; body: Body }> {
  const r = await fetch(`${svc.url}/v1/attest`, { method: 'POST', body: JSON.stringify(body) });
  return { status: r.status, body: (await r.json()) as Body };
}

const codes = (b: Body) => (b.result?.errors ?? []).map((e) => e.code);

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'ratls-svc-ev-'));
  const world = await initSimulatedWorld(join(dir, 'world'));
  provider = await loadSimulatedProvider(join(dir, 'world'));
  id = await createRatlsIdentity({ provider, hosts: ['localhost'] });
  const policies = join(dir, 'policies');
  mkdirSync(policies);
  writeFileSync(join(policies, 'default.yaml'), 'version: 1\n');
  writeFileSync(join(policies, 'fresh.yaml'), 'version: 1\nfreshness:\n  requireNonce: true\n');
  stapleOnly = await startAttestService({ keyDir: join(dir, 'k1'), policiesDir: policies, roots: [world.rootPem], offline: true, rateLimit: false });
  withCollateral = await startAttestService({
    keyDir: join(dir, 'k2'),
    policiesDir: policies,
    roots: [world.rootPem],
    collateralSources: [{ name: 'simulated', get: (req) => provider.collateral(req.now) }],
    offline: true,
    rateLimit: false,
  });
});
afterAll(async () => {
  await stapleOnly?.close();
  await withCollateral?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('evidence with the certificate it names (what ratls attest sends)', () => {
  it('verifies, binds the nonce through the claims, and names the certificate and key in the token', async () => {
    const ev = await createNonceEvidence(id, provider, nonce);
    const { status, body } = await post(stapleOnly, { evidence: b64(ev), certificate: b64(id.certDer), nonce: b64(nonce) });
    expect(status).toBe(200);
    expect(body.result?.errors).toEqual([]);
    expect(body.result).toMatchObject({ ok: true, evidence: 'ratls-evidence', reportDataBinding: 'ratls-claims' });
    const { claims } = await verifyAttestationToken(
      body.token!,
      { jwksUrl: `${stapleOnly.url}/.well-known/jwks.json` },
      { allowSimulated: true, expectedNonce: nonce },
    );
    expect(claims['x-ratls-evidence']).toBe('ratls-evidence');
    expect(claims['x-ratls-cert-sha256']).toBe(id.fingerprintSha256);
    const spki = new Uint8Array(new X509Certificate(toArrayBuffer(id.certDer)).publicKey.rawData);
    expect(claims['x-ratls-pubkey-hash']).toBe(`sha-256:${createHash('sha256').update(spki).digest('hex')}`);
    // the measurements are the fresh quote's: its REPORTDATA is the hash of the claims with our nonce
    expect(claims.tdx_report_data).toBe(Buffer.from(decodeEvidence(ev).quote.subarray(568, 632)).toString('hex'));
    expect(claims.tdx_mrtd).toBe(provider.measurements.mrTd);
  });

  it('a certificate posted as PEM text works the same', async () => {
    const ev = await createNonceEvidence(id, provider, nonce);
    const { body } = await post(stapleOnly, { evidence: b64(ev), certificate: b64(new TextEncoder().encode(id.certPem)), nonce: b64(nonce) });
    expect(body.result?.ok).toBe(true);
  });

  it('a policy with freshness.requireNonce is satisfied by the normal flow, and refuses it without the nonce', async () => {
    const ev = await createNonceEvidence(id, provider, nonce);
    const fresh = await post(stapleOnly, { evidence: b64(ev), certificate: b64(id.certDer), nonce: b64(nonce), policy: 'fresh' });
    expect(fresh.body.result?.errors).toEqual([]);
    expect(fresh.body.result?.ok).toBe(true);
    const without = await post(stapleOnly, { evidence: b64(ev), certificate: b64(id.certDer), policy: 'fresh' });
    expect(without.body.result?.ok).toBe(false);
    expect(codes(without.body)).toEqual(['NONCE_MISSING']);
    // a certificate alone carries no nonce in its claims: it cannot satisfy requireNonce
    const cert = await post(stapleOnly, { certificate: b64(id.certDer), nonce: b64(nonce), policy: 'fresh' });
    expect(cert.body.result?.ok).toBe(false);
    expect(codes(cert.body)).toContain('NONCE_MISSING');
  });

  it('evidence for another nonce is a signed failure with NONCE_MISMATCH and no binding', async () => {
    const ev = await createNonceEvidence(id, provider, new TextEncoder().encode('someone else'));
    const { status, body } = await post(stapleOnly, { evidence: b64(ev), certificate: b64(id.certDer), nonce: b64(nonce) });
    expect(status).toBe(200);
    expect(body.result?.ok).toBe(false);
    expect(codes(body)).toEqual(['NONCE_MISMATCH']);
    expect(body.result?.reportDataBinding).toBeNull();
  });

  it('evidence for another key than the certificate’s is a signed failure with PUBKEY_MISMATCH', async () => {
    const other = await createRatlsIdentity({ provider, hosts: ['localhost'] });
    const ev = await createNonceEvidence(other, provider, nonce);
    const { body } = await post(stapleOnly, { evidence: b64(ev), certificate: b64(id.certDer), nonce: b64(nonce) });
    expect(body.result?.ok).toBe(false);
    expect(codes(body)).toEqual(['PUBKEY_MISMATCH']);
  });

  it('claims changed after quoting are a signed failure with REPORTDATA_MISMATCH', async () => {
    const ev = decodeEvidence(await createNonceEvidence(id, provider, nonce));
    const spki = new Uint8Array(new X509Certificate(toArrayBuffer(id.certDer)).publicKey.rawData);
    const forged = encodeEvidence(ev.quote, await encodeClaims({ spkiDer: spki, nonce: new TextEncoder().encode('forged nonce') }));
    const { body } = await post(stapleOnly, { evidence: b64(forged), certificate: b64(id.certDer), nonce: b64(new TextEncoder().encode('forged nonce')) });
    expect(body.result?.ok).toBe(false);
    expect(codes(body)).toContain('REPORTDATA_MISMATCH');
  });
});

describe('evidence alone', () => {
  it('verifies with the service’s own collateral and reports the key it names for the relying party to compare', async () => {
    const ev = await createNonceEvidence(id, provider, nonce);
    const { body } = await post(withCollateral, { evidence: b64(ev), nonce: b64(nonce), policy: 'fresh' });
    expect(body.result?.errors).toEqual([]);
    expect(body.result).toMatchObject({ ok: true, evidence: 'ratls-evidence', reportDataBinding: 'ratls-claims' });
    const { claims } = await verifyAttestationToken(body.token!, { jwksUrl: `${withCollateral.url}/.well-known/jwks.json` }, { allowSimulated: true });
    expect(claims['x-ratls-cert-sha256']).toBeUndefined();
    expect(claims['x-ratls-pubkey-hash']).toMatch(/^sha-256:[0-9a-f]{64}$/);
  });

  it('without collateral at the service (only a root) it is a signed COLLATERAL_MISSING, with the measurements', async () => {
    const ev = await createNonceEvidence(id, provider, nonce);
    const { status, body } = await post(stapleOnly, { evidence: b64(ev), nonce: b64(nonce) });
    expect(status).toBe(200);
    expect(codes(body)).toEqual(['COLLATERAL_MISSING']);
  });

  it('a nonce the claims do not carry, or changed claims, fail with their codes', async () => {
    const ev = await createNonceEvidence(id, provider, nonce);
    expect(codes((await post(withCollateral, { evidence: b64(ev), nonce: b64(new Uint8Array([1])) })).body)).toEqual(['NONCE_MISMATCH']);
    const parts = decodeEvidence(ev);
    const forged = encodeEvidence(parts.quote, await encodeClaims({ spkiDer: new Uint8Array([1, 2, 3]), nonce }));
    expect(codes((await post(withCollateral, { evidence: b64(forged), nonce: b64(nonce) })).body)).toEqual(['REPORTDATA_MISMATCH']);
  });
});

describe('what is not readable evidence is a 400 without a token', () => {
  it.each([
    [
      'the evidence posted as "quote" (it used to say "version 60121")',
      async () => ({ quote: b64(await createNonceEvidence(id, provider, nonce)) }),
      'EVIDENCE_FORMAT_MISMATCH',
    ],
    ['a certificate posted as "evidence"', async () => ({ evidence: b64(id.certDer) }), 'EVIDENCE_FORMAT_MISMATCH'],
    ['evidence cut short', async () => ({ evidence: b64((await createNonceEvidence(id, provider, nonce)).subarray(0, 100)) }), 'EVIDENCE_MALFORMED'],
    [
      'evidence whose quote is cut short',
      async () => {
        const ev = decodeEvidence(await createNonceEvidence(id, provider, nonce));
        return { evidence: b64(encodeEvidence(ev.quote.subarray(0, 700), ev.claimsBuffer)) };
      },
      'QUOTE_TRUNCATED',
    ],
    [
      'a certificate that is not one, with evidence',
      async () => ({ evidence: b64(await createNonceEvidence(id, provider, nonce)), certificate: b64(new Uint8Array([0x30, 0x82, 0, 1, 0])) }),
      'CERT_MALFORMED',
    ],
  ])('%s: 400 %s', async (_name, body, code) => {
    const { status, body: res } = await post(withCollateral, await body());
    expect(status).toBe(400);
    expect(res.error?.code).toBe(code);
    expect(res.token).toBeUndefined();
  });
});

describe('hostile evidence', () => {
  it('bit flips, truncations and random tails never throw, pass only where the quote is unsigned text (its PCK chain PEM), and refusals carry known codes', async () => {
    const { appraiseAttestRequest } = await import('../../src/service/appraise.ts');
    const { createDcapEvidenceVerifier } = await import('../../src/service/verifier.ts');
    const { ERROR_CODES } = await import('../../src/core/errors.ts');
    const { defaultClientPolicy } = await import('../../src/verify/policy-file.ts');
    const policy = defaultClientPolicy();
    policy.trustedRoots = [provider.rootPem];
    const deps = {
      policies: { defaultName: 'default', byName: new Map([['default', { name: 'default', hash: 'h', policy, nonIntelRoots: true }]]) },
      verifier: createDcapEvidenceVerifier({ sources: [{ name: 'simulated', get: (req) => provider.collateral(req.now) }], offline: true }),
      verifyAt: () => new Date(),
      verifyTimeoutMs: 10_000,
    };
    const ev = await createNonceEvidence(id, provider, nonce);
    const body = (e: Uint8Array) => JSON.stringify({ evidence: b64(e), certificate: b64(id.certDer), nonce: b64(nonce) });
    const clean = await appraiseAttestRequest(body(ev), deps);
    expect('result' in clean && clean.result.ok).toBe(true);
    const text = Buffer.from(ev);
    const pem = { start: text.indexOf('-----BEGIN'), end: text.lastIndexOf('-----END CERTIFICATE-----') + '-----END CERTIFICATE-----\n'.length };
    expect(pem.start).toBeGreaterThan(0);
    const known = new Set<string>(ERROR_CODES);
    let refused = 0;
    for (let i = 0; i < 150; i++) {
      const m = ev.slice();
      const at = Math.floor(Math.random() * m.length);
      if (i % 3 === 0) m[at]! ^= 1 << (i % 8);
      const bytes =
        i % 3 === 1 ? m.subarray(0, Math.floor(Math.random() * m.length)) : i % 3 === 2 ? new Uint8Array([...m.subarray(0, 3), ...randomBytes(i)]) : m;
      const a = await appraiseAttestRequest(body(bytes), deps);
      if ('refused' in a) {
        refused++;
        expect(a.status).toBe(400);
        expect(known.has(a.refused.code), a.refused.code).toBe(true);
      } else if (a.result.ok) {
        // the one unsigned part of a quote: the PCK chain as PEM text, which is parsed leniently
        // (separators, the label after END); trust comes from the signatures of the DER inside
        // and from the configured root, not from this text
        expect(i % 3 === 0 && at >= pem.start && at < pem.end, `mutation ${i} at ${at} passed`).toBe(true);
      } else {
        for (const e of a.result.errors) expect(known.has(e.code), e.code).toBe(true);
      }
    }
    expect(refused).toBeGreaterThan(50);
  });
});
