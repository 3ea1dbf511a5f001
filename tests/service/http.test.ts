/**
 * HTTP layer of the attestation service with a stand-in verifier (the real DCAP path is covered in
 * genuine.test.ts): input validation, limits, tokens, JWKS, rotation, admin route.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createHash } from 'node:crypto';
import { startAttestService, type AttestServiceHandle } from '../../src/service/server.ts';
import { stubVerifier } from './stub-verifier.ts';
import { verifyAttestationToken } from '../../src/token/verify.ts';
import { loadManifest, readTestFile } from '../helpers/testdata.ts';

const POLICIES = resolve(import.meta.dirname, '../../config/policies');
const manifest = loadManifest();
const genuine = manifest.quotes.find((q) => q.id === 'v4-b0c06f000000-dcapqvl.dat')!;
const quoteBytes = readTestFile(genuine.file);

let dir: string;
let svc: AttestServiceHandle;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'ratls-svc-http-'));
  svc = await startAttestService({
    keyDir: join(dir, 'keys'),
    policiesDir: POLICIES,
    verifier: stubVerifier,
    rateLimit: { ratePerSecond: 1000, burst: 1000 },
    bodyLimitBytes: 32 * 1024,
    adminToken: 'admin-secret-for-tests',
    tokenTtlSeconds: 120,
  });
});
afterAll(async () => {
  await svc?.close();
  rmSync(dir, { recursive: true, force: true });
});

async function attest(body: unknown, raw = false): Promise<Response> {
  return fetch(`${svc.url}/v1/attest`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: raw ? (body as string) : JSON.stringify(body),
  });
}

describe('POST /v1/attest input handling', () => {
  it('answers malformed JSON with 400 REQUEST_MALFORMED and no stack trace', async () => {
    const r = await attest('{"quote": ', true);
    expect(r.status).toBe(400);
    const text = await r.text();
    expect(JSON.parse(text).error.code).toBe('REQUEST_MALFORMED');
    expect(text).not.toMatch(/at .*\.ts:\d+/);
  });

  it('answers bad base64 with 400 REQUEST_BASE64_INVALID', async () => {
    const r = await attest({ quote: 'not*base64!' });
    expect(r.status).toBe(400);
    expect((await r.json()).error.code).toBe('REQUEST_BASE64_INVALID');
  });

  it('rejects unknown fields, both evidence kinds at once, and unknown policies', async () => {
    expect((await (await attest({ quote: 'AAAA', extra: 1 })).json()).error.code).toBe('REQUEST_MALFORMED');
    expect((await (await attest({ quote: 'AAAA', certificate: 'AAAA' })).json()).error.code).toBe('REQUEST_MALFORMED');
    const r = await attest({ quote: Buffer.from(quoteBytes).toString('base64'), policy: 'nope' });
    expect(r.status).toBe(400);
    expect((await r.json()).error.code).toBe('POLICY_UNKNOWN');
  });

  it('answers a truncated quote with 400 and the parser code', async () => {
    const r = await attest({ quote: Buffer.from(quoteBytes.subarray(0, 700)).toString('base64') });
    expect(r.status).toBe(400);
    expect((await r.json()).error.code).toBe('QUOTE_TRUNCATED');
  });

  it('answers an oversized body with 413 REQUEST_TOO_LARGE', async () => {
    const r = await attest({ quote: 'A'.repeat(40 * 1024) });
    expect(r.status).toBe(413);
    expect((await r.json()).error.code).toBe('REQUEST_TOO_LARGE');
  });

  it('answers an unknown route with a JSON 404', async () => {
    const r = await fetch(`${svc.url}/v2/whatever`);
    expect(r.status).toBe(404);
    expect((await r.json()).error.code).toBe('REQUEST_MALFORMED');
  });
});

describe('tokens', () => {
  it('signs a token that verifies with the JWKS and fails after one changed byte', async () => {
    const r = await attest({ quote: Buffer.from(quoteBytes).toString('base64') });
    expect(r.status).toBe(200);
    const { token, result } = (await r.json()) as { token: string; result: { ok: boolean; kid: string } };
    expect(result.ok).toBe(true);
    const jwksUrl = `${svc.url}/.well-known/jwks.json`;
    const v = await verifyAttestationToken(token, { jwksUrl }, { issuer: svc.url });
    expect(v.kid).toBe(result.kid);
    expect(v.claims.tdx_mrtd).toBe(genuine.fields.mr_td);
    expect(v.claims['x-ratls-ok']).toBe(true);
    expect(v.claims.tdx_collateral?.quotehash).toBe(createHash('sha256').update(quoteBytes.subarray(0, genuine.quote_bytes_used)).digest('hex'));

    // flip one byte of the payload (keeping it valid base64url) and of the signature
    const [h, p, s] = token.split('.') as [string, string, string];
    const i = Math.floor(p.length / 2);
    const tamperedPayload = `${h}.${p.slice(0, i)}${p[i] === 'A' ? 'B' : 'A'}${p.slice(i + 1)}.${s}`;
    await expect(verifyAttestationToken(tamperedPayload, { jwksUrl })).rejects.toMatchObject({
      code: expect.stringMatching(/TOKEN_SIGNATURE_INVALID|TOKEN_INVALID/),
    });
    const sig = Buffer.from(s, 'base64url');
    sig[5] = sig[5]! ^ 1;
    await expect(verifyAttestationToken(`${h}.${p}.${sig.toString('base64url')}`, { jwksUrl })).rejects.toMatchObject({ code: 'TOKEN_SIGNATURE_INVALID' });
    // wrong issuer, expired, unknown kid, alg none
    await expect(verifyAttestationToken(token, { jwksUrl }, { issuer: 'https://elsewhere' })).rejects.toMatchObject({ code: 'TOKEN_CLAIM_MISMATCH' });
    await expect(verifyAttestationToken(token, { jwksUrl }, { now: new Date(Date.now() + 3600_000) })).rejects.toMatchObject({ code: 'TOKEN_EXPIRED' });
    await expect(verifyAttestationToken(token, { keys: [] })).rejects.toMatchObject({ code: 'TOKEN_KEY_UNKNOWN' });
    const none = `${Buffer.from(JSON.stringify({ alg: 'none', kid: result.kid })).toString('base64url')}.${p}.`;
    await expect(verifyAttestationToken(none, { jwksUrl })).rejects.toMatchObject({ code: 'TOKEN_ALG_NOT_ALLOWED' });
    const hs = `${Buffer.from(JSON.stringify({ alg: 'HS256', kid: result.kid })).toString('base64url')}.${p}.${s}`;
    await expect(verifyAttestationToken(hs, { jwksUrl })).rejects.toMatchObject({ code: 'TOKEN_ALG_NOT_ALLOWED' });
  });

  it('binds nonce and runtimeData through REPORTDATA and reports a mismatch as a signed failure', async () => {
    const r = await attest({ quote: Buffer.from(quoteBytes).toString('base64'), nonce: Buffer.from('nonce-1').toString('base64') });
    expect(r.status).toBe(200);
    const { token, result } = (await r.json()) as { token: string; result: { ok: boolean; errors: Array<{ code: string }> } };
    expect(result.ok).toBe(false);
    expect(result.errors.map((e) => e.code)).toContain('NONCE_MISMATCH');
    const jwks = (await (await fetch(`${svc.url}/.well-known/jwks.json`)).json()) as { keys: [] };
    await expect(verifyAttestationToken(token, jwks)).rejects.toMatchObject({ code: 'TOKEN_CLAIM_MISMATCH' });
    const v = await verifyAttestationToken(token, jwks, { allowFailedVerdict: true, expectedNonce: new TextEncoder().encode('nonce-1') });
    expect(v.claims['ear.status']).toBe('contraindicated');
    expect(v.claims.policy_ids_unmatched[0]?.id).toBe('default');
    await expect(
      verifyAttestationToken(token, jwks, { allowFailedVerdict: true, expectedNonce: Buffer.from('other').toString('base64') }),
    ).rejects.toMatchObject({
      code: 'NONCE_MISMATCH',
    });
  });
});

describe('other routes', () => {
  it('lists policies, health and metrics', async () => {
    const p = (await (await fetch(`${svc.url}/v1/policies`)).json()) as {
      default: string;
      policies: Array<{ name: string; allowedTcbStatuses: string[]; allowDebug: boolean; trustedRoots: string[] }>;
    };
    expect(p.default).toBe('default');
    const def = p.policies.find((x) => x.name === 'default')!;
    expect(def.allowedTcbStatuses).toEqual(['UpToDate']);
    expect(def.allowDebug).toBe(false);
    expect(def.trustedRoots).toEqual(['intel']);
    expect(p.policies.map((x) => x.name)).toContain('permissive-tcb');
    expect((await (await fetch(`${svc.url}/healthz`)).json()).status).toBe('ok');
    const m = await (await fetch(`${svc.url}/metrics`)).text();
    expect(m).toMatch(/ratls_attest_requests_total\{route="\/v1\/attest",status="200"\}/);
  });

  it('admin rotation needs the bearer token and keeps the old kid in the JWKS', async () => {
    const denied = await fetch(`${svc.url}/v1/admin/rotate-key`, { method: 'POST', headers: { authorization: 'Bearer wrong' } });
    expect(denied.status).toBe(401);
    const before = (await (await attest({ quote: Buffer.from(quoteBytes).toString('base64') })).json()) as { token: string; result: { kid: string } };
    const r = await fetch(`${svc.url}/v1/admin/rotate-key`, { method: 'POST', headers: { authorization: 'Bearer admin-secret-for-tests' } });
    expect(r.status).toBe(200);
    const { kid, previous } = (await r.json()) as { kid: string; previous: string };
    expect(previous).toBe(before.result.kid);
    expect(kid).not.toBe(previous);
    const jwks = (await (await fetch(`${svc.url}/.well-known/jwks.json`)).json()) as { keys: Array<{ kid: string }> };
    expect(jwks.keys.map((k) => k.kid)).toEqual(expect.arrayContaining([kid, previous]));
    // the token signed before rotation still verifies, and new tokens carry the new kid
    await expect(verifyAttestationToken(before.token, { jwksUrl: `${svc.url}/.well-known/jwks.json` })).resolves.toMatchObject({ kid: previous });
    const after = (await (await attest({ quote: Buffer.from(quoteBytes).toString('base64') })).json()) as { result: { kid: string } };
    expect(after.result.kid).toBe(kid);
  });
});

describe('rate limit', () => {
  it('answers 429 with Retry-After once the burst is spent', async () => {
    const d = mkdtempSync(join(tmpdir(), 'ratls-svc-rl-'));
    const s = await startAttestService({ keyDir: join(d, 'k'), policiesDir: POLICIES, verifier: stubVerifier, rateLimit: { ratePerSecond: 0.5, burst: 3 } });
    try {
      const statuses: number[] = [];
      let retryAfter: string | null = null;
      for (let i = 0; i < 5; i++) {
        const r = await fetch(`${s.url}/v1/attest`, { method: 'POST', body: '{}' });
        statuses.push(r.status);
        if (r.status === 429) {
          retryAfter = r.headers.get('retry-after');
          expect((await r.json()).error.code).toBe('RATE_LIMITED');
        } else {
          await r.body?.cancel();
        }
      }
      expect(statuses).toEqual([400, 400, 400, 429, 429]);
      expect(Number(retryAfter)).toBeGreaterThanOrEqual(1);
    } finally {
      await s.close();
      rmSync(d, { recursive: true, force: true });
    }
  });
});
