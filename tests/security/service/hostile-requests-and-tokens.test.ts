/**
 * Attacks on the attestation service and on verifyAttestationToken: forged keys, header tricks,
 * rate-limit and body-limit bypasses, hostile JSON.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import http from 'node:http';
import { chmodSync, mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { resolveServiceConfig } from '../../../src/service/config.ts';
import { createHash } from 'node:crypto';
import { initSimulatedWorld, loadSimulatedProvider } from '../../../src/tee/simulated/index.ts';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { gzipSync } from 'node:zlib';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, SignJWT, type JWK } from 'jose';
import { startAttestService, type AttestServiceHandle } from '../../../src/service/server.ts';
import { stubVerifier } from '../../service/stub-verifier.ts';
import { verifyAttestationToken } from '../../../src/token/verify.ts';
import { loadManifest, readTestFile, TESTDATA_DIR } from '../../helpers/testdata.ts';

const POLICIES = resolve(import.meta.dirname, '../../../config/policies');
const genuine = loadManifest().quotes.find((q) => q.id === 'v4-b0c06f000000-dcapqvl.dat')!;
const quoteB64 = Buffer.from(readTestFile(genuine.file)).toString('base64');

let dir: string;
let svc: AttestServiceHandle;
let token: string;
let kid: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'ratls-sec-svc-'));
  svc = await startAttestService({ keyDir: join(dir, 'keys'), policiesDir: POLICIES, verifier: stubVerifier, rateLimit: false, bodyLimitBytes: 16 * 1024 });
  const r = await fetch(`${svc.url}/v1/attest`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ quote: quoteB64 }) });
  ({
    token,
    result: { kid },
  } = (await r.json()) as { token: string; result: { kid: string } });
});
afterAll(async () => {
  await svc?.close();
  rmSync(dir, { recursive: true, force: true });
});

/** A forged token: same claims and kid as a real one, signed with the attacker's key. */
async function forge(claimsFrom: string, header: Record<string, unknown> = {}): Promise<{ jwt: string; jwk: JWK }> {
  const payload = JSON.parse(Buffer.from(claimsFrom.split('.')[1]!, 'base64url').toString()) as Record<string, unknown>;
  const { privateKey, publicKey } = await generateKeyPair('ES256', { extractable: true });
  const jwk = { ...(await exportJWK(publicKey)), kid, alg: 'ES256', use: 'sig' };
  const jwt = await new SignJWT(payload).setProtectedHeader({ alg: 'ES256', kid, typ: 'JWT', ...header }).sign(privateKey);
  return { jwt, jwk };
}

/** Serves `keys` as a JWKS on `host` (a non-loopback-looking address still on this machine). */
async function serveJwks(host: string, keys: JWK[]): Promise<{ url: string; hits: () => number; close(): Promise<void> }> {
  let hits = 0;
  const s = http.createServer((_req, res) => {
    hits++;
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys }));
  });
  await new Promise<void>((r) => s.listen(0, host, r));
  return {
    url: `http://${host}:${(s.address() as AddressInfo).port}/.well-known/jwks.json`,
    hits: () => hits,
    close: () => new Promise<void>((r) => s.close(() => r())),
  };
}

describe('verifyAttestationToken', () => {
  // FINDING S1 (medium): a JWKS URL over plain http lets anyone on the path (Wi-Fi, proxy, DNS) hand
  // the relying party their own key, and every token they sign passes. 127.0.0.2 stands in for a
  // remote host here; plain http stays allowed for localhost only.
  it('refuses to fetch keys over plain http from a non-loopback host (forged token via MITM)', async () => {
    const { jwt, jwk } = await forge(token);
    const mitm = await serveJwks('127.0.0.2', [jwk]);
    try {
      await expect(verifyAttestationToken(jwt, { jwksUrl: mitm.url })).rejects.toMatchObject({ code: 'TOKEN_KEYS_INSECURE' });
      expect(mitm.hits()).toBe(0);
    } finally {
      await mitm.close();
    }
  });

  it('still reads a JWKS from http://127.0.0.1 / localhost (local service, tests)', async () => {
    const v = await verifyAttestationToken(token, { jwksUrl: `${svc.url}/.well-known/jwks.json` }, { issuer: svc.url });
    expect(v.kid).toBe(kid);
  });

  it('ignores keys the token brings itself (jwk, jku, x5u headers) and kid tricks', async () => {
    const jwksUrl = `${svc.url}/.well-known/jwks.json`;
    const attacker = await serveJwks('127.0.0.1', []);
    try {
      const embedded = await forge(token);
      const withJwk = await forge(token, { jwk: embedded.jwk });
      await expect(verifyAttestationToken(withJwk.jwt, { jwksUrl })).rejects.toMatchObject({ code: 'TOKEN_SIGNATURE_INVALID' });
      const withJku = await forge(token, { jku: attacker.url, x5u: attacker.url });
      await expect(verifyAttestationToken(withJku.jwt, { jwksUrl })).rejects.toMatchObject({ code: 'TOKEN_SIGNATURE_INVALID' });
      expect(attacker.hits()).toBe(0);
      // a kid that is a path or a SQL fragment is just an unknown key
      for (const k of ['../../../etc/passwd', "' OR 1=1 --", '']) {
        const [, p, s] = token.split('.');
        const h = Buffer.from(JSON.stringify({ alg: 'ES256', kid: k })).toString('base64url');
        await expect(verifyAttestationToken(`${h}.${p}.${s}`, { jwksUrl })).rejects.toMatchObject({
          code: expect.stringMatching(/TOKEN_KEY_UNKNOWN|TOKEN_SIGNATURE_INVALID/),
        });
      }
    } finally {
      await attacker.close();
    }
  });

  it('refuses a token whose verdict is false even when its signature is genuine', async () => {
    const r = await fetch(`${svc.url}/v1/attest`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ quote: quoteB64, nonce: Buffer.from('n').toString('base64') }),
    });
    const { token: failed } = (await r.json()) as { token: string };
    await expect(verifyAttestationToken(failed, { jwksUrl: `${svc.url}/.well-known/jwks.json` })).rejects.toMatchObject({ code: 'TOKEN_CLAIM_MISMATCH' });
  });
});

describe('POST /v1/attest hostile requests', () => {
  it('rejects "__proto__" and "constructor" keys instead of merging them', async () => {
    for (const body of ['{"__proto__":{"ok":true},"quote":"AAAA"}', '{"constructor":{"prototype":{"x":1}},"quote":"AAAA"}']) {
      const r = await fetch(`${svc.url}/v1/attest`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
      expect(r.status).toBe(400);
      expect(((await r.json()) as { error: { code: string } }).error.code).toBe('REQUEST_MALFORMED');
    }
    expect(({} as Record<string, unknown>).ok).toBeUndefined();
  });

  it('policy names cannot walk the file system', async () => {
    for (const [policy, code] of [
      ['../default', 'REQUEST_MALFORMED'],
      ['..', 'REQUEST_MALFORMED'],
      ['/etc/passwd', 'REQUEST_MALFORMED'],
      ['default.yaml', 'POLICY_UNKNOWN'],
      ['__proto__', 'REQUEST_MALFORMED'],
      ['constructor', 'POLICY_UNKNOWN'],
    ] as const) {
      const r = await fetch(`${svc.url}/v1/attest`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ quote: quoteB64, policy }),
      });
      expect(r.status, policy).toBe(400);
      expect(((await r.json()) as { error: { code: string } }).error.code, policy).toBe(code);
    }
  });

  it('cuts a chunked body at the limit (no Content-Length to check up front)', async () => {
    const big = JSON.stringify({ quote: 'A'.repeat(64 * 1024) });
    const chunks = new ReadableStream<Uint8Array>({
      start(c) {
        for (let i = 0; i < big.length; i += 4096) c.enqueue(new TextEncoder().encode(big.slice(i, i + 4096)));
        c.close();
      },
    });
    const r = await fetch(`${svc.url}/v1/attest`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: chunks,
      duplex: 'half',
    } as RequestInit);
    expect(r.status).toBe(413);
  });

  it('does not inflate a gzip body (no decompression bomb)', async () => {
    const bomb = gzipSync(Buffer.alloc(8 * 1024 * 1024, 0x41));
    const r = await fetch(`${svc.url}/v1/attest`, { method: 'POST', headers: { 'content-type': 'application/json', 'content-encoding': 'gzip' }, body: bomb });
    expect([400, 413, 415]).toContain(r.status);
  });

  it('keys the rate limit on the socket address, not on X-Forwarded-For', async () => {
    const d = mkdtempSync(join(tmpdir(), 'ratls-sec-rl-'));
    const limited = await startAttestService({
      keyDir: join(d, 'k'),
      policiesDir: POLICIES,
      verifier: stubVerifier,
      rateLimit: { ratePerSecond: 0.01, burst: 3 },
    });
    try {
      const statuses: number[] = [];
      for (let i = 0; i < 6; i++) {
        const r = await fetch(`${limited.url}/v1/attest`, {
          method: 'POST',
          headers: { 'x-forwarded-for': `10.0.0.${i}`, 'x-real-ip': `10.1.0.${i}`, forwarded: `for=10.2.0.${i}` },
          body: '{}',
        });
        statuses.push(r.status);
        await r.body?.cancel();
      }
      expect(statuses).toEqual([400, 400, 400, 429, 429, 429]);
    } finally {
      await limited.close();
      rmSync(d, { recursive: true, force: true });
    }
  });
});

describe('policies that require a nonce', () => {
  // FINDING S2 (medium): "nonce": "" decoded to zero bytes, which counted as "a nonce was sent", so a
  // policy with freshness.requireNonce signed ok:true for a quote with no freshness at all (its
  // REPORTDATA bound only to runtimeData the caller chose).
  it('an empty nonce is not a nonce', async () => {
    const d = mkdtempSync(join(tmpdir(), 'ratls-sec-fresh-'));
    const policies = join(d, 'policies');
    mkdirSync(policies);
    writeFileSync(join(policies, 'default.yaml'), 'freshness:\n  requireNonce: true\n');
    await initSimulatedWorld(join(d, 'world'));
    const provider = await loadSimulatedProvider(join(d, 'world'));
    const runtimeData = Buffer.from('anything the caller likes');
    const quote = await provider.getQuote(new Uint8Array(createHash('sha512').update(runtimeData).digest()));
    const fresh = await startAttestService({ keyDir: join(d, 'k'), policiesDir: policies, verifier: stubVerifier, rateLimit: false });
    try {
      const r = await fetch(`${fresh.url}/v1/attest`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ quote: Buffer.from(quote).toString('base64'), nonce: '', runtimeData: runtimeData.toString('base64') }),
      });
      if (r.status === 200) {
        const { result } = (await r.json()) as { result: { ok: boolean; errors: Array<{ code: string }> } };
        expect(result.ok).toBe(false);
        expect(result.errors.map((e) => e.code)).toContain('NONCE_MISSING');
      } else {
        expect(r.status).toBe(400);
        expect(((await r.json()) as { error: { code: string } }).error.code).toMatch(/REQUEST_MALFORMED|NONCE_INVALID/);
      }
    } finally {
      await fresh.close();
      rmSync(d, { recursive: true, force: true });
    }
  });
});

describe('appraisal time', () => {
  // FINDING S3 (medium, misconfiguration): a service started with the testing-only --verify-at (or
  // with a wrong appraisal clock) signs "ok" for collateral long expired, with a fresh iat. The token
  // records the appraisal time in x-ratls-verified-at, but verifyAttestationToken did not look.
  it('refuses a token whose evidence was appraised long before it was issued', async () => {
    const d = mkdtempSync(join(tmpdir(), 'ratls-sec-at-'));
    const backdated = await startAttestService({
      keyDir: join(d, 'k'),
      policiesDir: POLICIES,
      collateralDirs: [join(TESTDATA_DIR, 'collateral')],
      offline: true,
      rateLimit: false,
      verifyAt: () => new Date('2025-07-19T10:00:34Z'),
    });
    try {
      const r = await fetch(`${backdated.url}/v1/attest`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ quote: quoteB64 }),
      });
      const { token: t, result } = (await r.json()) as { token: string; result: { ok: boolean } };
      expect(result.ok).toBe(true);
      const jwksUrl = `${backdated.url}/.well-known/jwks.json`;
      await expect(verifyAttestationToken(t, { jwksUrl })).rejects.toMatchObject({ code: 'TOKEN_CLAIM_MISMATCH' });
      // tests and replays of recorded vectors can opt in
      await expect(verifyAttestationToken(t, { jwksUrl }, { allowBackdatedAppraisal: true })).resolves.toMatchObject({ alg: 'ES256' });
    } finally {
      await backdated.close();
      rmSync(d, { recursive: true, force: true });
    }
  });
});

describe('admin token file', () => {
  // FINDING S4 (low, local): a token file readable by other users let any local user rotate the
  // signing key at will (tokens keep verifying, but relying parties with pinned keys break).
  it('refuses a token file that group or others can read, like the signing keys', () => {
    const d = mkdtempSync(join(tmpdir(), 'ratls-sec-admin-'));
    try {
      const f = join(d, 'token');
      writeFileSync(f, 'a-long-enough-admin-token-0123456789\n');
      chmodSync(f, 0o644);
      expect(() => resolveServiceConfig({ adminTokenFile: f }, {})).toThrow(/readable by group or others/);
      chmodSync(f, 0o600);
      expect(resolveServiceConfig({ adminTokenFile: f }, {}).adminToken).toBe('a-long-enough-admin-token-0123456789');
    } finally {
      rmSync(d, { recursive: true, force: true });
    }
  });
});
