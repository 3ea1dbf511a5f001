/**
 * The attestation service against the simulated TDX world: REPORTDATA binding of nonce and
 * runtimeData, RA-TLS certificates, and the simulated marker that only an explicit root produces.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createHash } from 'node:crypto';
import { startAttestService, type AttestServiceHandle } from '../../src/service/server.ts';
import { verifyAttestationToken } from '../../src/token/verify.ts';
import { initSimulatedWorld, loadSimulatedProvider, type SimulatedProvider } from '../../src/tee/simulated/index.ts';
import { createRatlsIdentity } from '../../src/ratls/identity.ts';
import type { CollateralSource } from '../../src/collateral/types.ts';

const POLICIES = resolve(import.meta.dirname, '../../config/policies');

let dir: string;
let provider: SimulatedProvider;
let sim: AttestServiceHandle;
let intelOnly: AttestServiceHandle;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'ratls-svc-sim-'));
  const world = await initSimulatedWorld(join(dir, 'world'));
  provider = await loadSimulatedProvider(join(dir, 'world'));
  const simCollateral: CollateralSource = { name: 'simulated', get: (req) => provider.collateral(req.now) };
  sim = await startAttestService({
    keyDir: join(dir, 'keys-sim'),
    policiesDir: POLICIES,
    roots: [world.rootPem],
    collateralSources: [simCollateral],
    offline: true,
    rateLimit: false,
  });
  intelOnly = await startAttestService({
    keyDir: join(dir, 'keys-intel'),
    policiesDir: POLICIES,
    collateralSources: [simCollateral],
    offline: true,
    rateLimit: false,
  });
});
afterAll(async () => {
  await sim?.close();
  await intelOnly?.close();
  rmSync(dir, { recursive: true, force: true });
});

interface Body {
  token: string;
  result: { ok: boolean; evidence: string; simulated: boolean; reportDataBinding: string | null; errors: Array<{ code: string }> };
  error?: { code: string };
}

async function post(svc: AttestServiceHandle, body: Record<string, unknown>): Promise<{ status: number; body: Body }> {
  const r = await fetch(`${svc.url}/v1/attest`, { method: 'POST', body: JSON.stringify(body) });
  return { status: r.status, body: (await r.json()) as Body };
}

const b64 = (b: Uint8Array) => Buffer.from(b).toString('base64');
const nonce = new TextEncoder().encode('relying-party-nonce-0001');
const runtimeData = new TextEncoder().encode('{"pubkey":"abc"}');

describe('REPORTDATA binding (simulated quotes)', () => {
  it('accepts SHA-512(nonce || runtimeData) and marks the token simulated', async () => {
    const rd = createHash('sha512').update(nonce).update(runtimeData).digest();
    const quote = await provider.getQuote(new Uint8Array(rd));
    const { status, body } = await post(sim, { quote: b64(quote), nonce: b64(nonce), runtimeData: b64(runtimeData) });
    expect(status).toBe(200);
    expect(body.result.errors).toEqual([]);
    expect(body.result.ok).toBe(true);
    expect(body.result.reportDataBinding).toBe('sha512');
    expect(body.result.simulated).toBe(true);
    const jwksUrl = `${sim.url}/.well-known/jwks.json`;
    await expect(verifyAttestationToken(body.token, { jwksUrl })).rejects.toMatchObject({ code: 'SIMULATED_EVIDENCE' });
    const { claims } = await verifyAttestationToken(body.token, { jwksUrl }, { allowSimulated: true, expectedNonce: nonce, issuer: sim.url });
    expect(claims['x-ratls-simulated']).toBe(true);
    expect(claims.eat_nonce).toBe(Buffer.from(nonce).toString('base64url'));
    expect(claims.attester_runtime_data).toBe(Buffer.from(runtimeData).toString('base64url'));
    expect(claims.tdx_report_data).toBe(rd.toString('hex'));
    expect(claims.tdx_mrtd).toBe(provider.measurements.mrTd);
  });

  it('accepts SHA-256(nonce) padded with zeros', async () => {
    const rd = Buffer.concat([createHash('sha256').update(nonce).digest(), Buffer.alloc(32)]);
    const quote = await provider.getQuote(new Uint8Array(rd));
    const { body } = await post(sim, { quote: b64(quote), nonce: b64(nonce) });
    expect(body.result.ok).toBe(true);
    expect(body.result.reportDataBinding).toBe('sha256-zero-padded');
  });

  it('a quote made for other runtime data is a signed failure with NONCE_MISMATCH', async () => {
    const rd = createHash('sha512').update(nonce).update('other').digest();
    const quote = await provider.getQuote(new Uint8Array(rd));
    const { status, body } = await post(sim, { quote: b64(quote), nonce: b64(nonce), runtimeData: b64(runtimeData) });
    expect(status).toBe(200);
    expect(body.result.ok).toBe(false);
    expect(body.result.errors.map((e) => e.code)).toEqual(['NONCE_MISMATCH']);
  });

  it('a service without the simulated root rejects simulated quotes and sets no marker', async () => {
    const quote = await provider.getQuote(new Uint8Array(64));
    const { status, body } = await post(intelOnly, { quote: b64(quote) });
    expect(status).toBe(200);
    expect(body.result.ok).toBe(false);
    expect(body.result.simulated).toBe(false);
    expect(body.result.errors.map((e) => e.code)).toContain('PCK_CHAIN_UNTRUSTED');
  });
});

describe('policies requiring a nonce', () => {
  it('a policy with freshness.requireNonce fails requests without a nonce', async () => {
    const d = mkdtempSync(join(tmpdir(), 'ratls-svc-pol-'));
    writeFileSync(join(d, 'default.yaml'), 'version: 1\n');
    writeFileSync(join(d, 'fresh.yaml'), 'version: 1\nfreshness:\n  requireNonce: true\n');
    const world = await initSimulatedWorld(join(dir, 'world'));
    const s = await startAttestService({
      keyDir: join(d, 'keys'),
      policiesDir: d,
      roots: [world.rootPem],
      collateralSources: [{ name: 'simulated', get: (req) => provider.collateral(req.now) }],
      offline: true,
    });
    try {
      const quote = await provider.getQuote(new Uint8Array(createHash('sha512').update(nonce).digest()));
      const without = await post(s, { quote: b64(quote), policy: 'fresh' });
      expect(without.body.result.ok).toBe(false);
      expect(without.body.result.errors.map((e) => e.code)).toEqual(['NONCE_MISSING']);
      const withNonce = await post(s, { quote: b64(quote), policy: 'fresh', nonce: b64(nonce) });
      expect(withNonce.body.result.ok).toBe(true);
    } finally {
      await s.close();
      rmSync(d, { recursive: true, force: true });
    }
  });
});

describe('RA-TLS certificates', () => {
  it('verifies a simulated RA-TLS certificate', async () => {
    const id = await createRatlsIdentity({ provider, hosts: ['localhost'] });
    const { status, body } = await post(sim, { certificate: b64(id.certDer) });
    expect(status).toBe(200);
    expect(body.result.errors).toEqual([]);
    expect(body.result.ok).toBe(true);
    expect(body.result.evidence).toBe('ratls-certificate');
    const { claims } = await verifyAttestationToken(body.token, { jwksUrl: `${sim.url}/.well-known/jwks.json` }, { allowSimulated: true });
    expect(claims['x-ratls-evidence']).toBe('ratls-certificate');
    expect(claims['x-ratls-cert-sha256']).toBe(id.fingerprintSha256);
    expect(claims.tdx_mrtd).toBe(provider.measurements.mrTd);
  });

  it('a nonce the certificate claims do not carry fails', async () => {
    const id = await createRatlsIdentity({ provider, hosts: ['localhost'] });
    const { body } = await post(sim, { certificate: b64(id.certDer), nonce: b64(nonce) });
    expect(body.result.ok).toBe(false);
    expect(body.result.errors.map((e) => e.code).join(',')).toMatch(/NONCE_MISMATCH|NONCE_MISSING/);
  });

  it('bytes that are not a certificate give 400 CERT_MALFORMED', async () => {
    const { status, body } = await post(sim, { certificate: b64(new Uint8Array([0x30, 0x03, 0x02, 0x01, 0x00])) });
    expect(status).toBe(400);
    expect(body.error?.code).toBe('CERT_MALFORMED');
  });
});
