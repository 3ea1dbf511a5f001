/**
 * A relying party sends its nonce to the attestation service as base64 text and later checks the
 * token with the same nonce. `verifyAttestationToken` used to compare a string `expectedNonce` as
 * text with the token's base64url `eat_nonce`, so the nonce `openssl rand -base64 32` printed (the
 * standard alphabet, with padding), which the service itself accepts, never matched. Now a string is
 * decoded the way the service decodes "nonce" (standard or URL-safe alphabet, padding optional) and
 * the bytes are compared; text that is not base64 is NONCE_INVALID, saying what is expected.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { startAttestService, type AttestServiceHandle } from '../../../src/service/server.ts';
import { verifyAttestationToken } from '../../../src/token/verify.ts';
import { stubVerifier } from '../../service/stub-verifier.ts';
import { runCli } from '../../helpers/cli.ts';
import { loadManifest, readTestFile } from '../../helpers/testdata.ts';

const POLICIES = resolve(import.meta.dirname, '../../../config/policies');
const quote = Buffer.from(readTestFile(loadManifest().quotes.find((q) => q.id === 'v4-b0c06f000000-dcapqvl.dat')!.file)).toString('base64');
/** 32 bytes whose standard base64 has "+", "/" and "=": the characters base64url spells differently. */
const NONCE = Buffer.concat([Buffer.from([0xfb, 0xff, 0xbf, 0xfb, 0xff, 0xbf]), Buffer.alloc(26, 0x5a)]);
const OPENSSL_STYLE = NONCE.toString('base64');

let dir: string;
let svc: AttestServiceHandle;
let jwksUrl: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'ratls-nonce-text-'));
  svc = await startAttestService({ keyDir: join(dir, 'keys'), policiesDir: POLICIES, verifier: stubVerifier, rateLimit: false });
  jwksUrl = `${svc.url}/.well-known/jwks.json`;
});
afterAll(async () => {
  await svc?.close();
  rmSync(dir, { recursive: true, force: true });
});

/** A token for `nonce` as sent in the request (the stub quote is not bound to it: the verdict is a failure, the nonce claim is what matters here). */
async function tokenFor(nonce: string): Promise<string> {
  const r = await fetch(`${svc.url}/v1/attest`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ quote, nonce }) });
  expect(r.status).toBe(200);
  return ((await r.json()) as { token: string }).token;
}
const check = (token: string, expectedNonce: string | Uint8Array) => verifyAttestationToken(token, { jwksUrl }, { allowFailedVerdict: true, expectedNonce });

describe('expectedNonce given as text', () => {
  it('the standard base64 `openssl rand -base64 32` prints (with "+", "/", "=") matches', async () => {
    expect(OPENSSL_STYLE).toMatch(/^\+\/\+\/.*=$/);
    const token = await tokenFor(OPENSSL_STYLE);
    await expect(check(token, OPENSSL_STYLE)).resolves.toBeDefined();
  });

  it('base64url with or without padding, surrounding whitespace and the bytes themselves match too', async () => {
    const token = await tokenFor(OPENSSL_STYLE);
    for (const form of [NONCE.toString('base64url'), NONCE.toString('base64url') + '=', `${OPENSSL_STYLE}\n`, new Uint8Array(NONCE)]) {
      await expect(check(token, form)).resolves.toBeDefined();
    }
  });

  it('the service reads "nonce" the same way: either alphabet gives the same eat_nonce', async () => {
    const a = await check(await tokenFor(OPENSSL_STYLE), NONCE);
    const b = await check(await tokenFor(NONCE.toString('base64url')), NONCE);
    expect(a.claims.eat_nonce).toBe(NONCE.toString('base64url'));
    expect(b.claims.eat_nonce).toBe(a.claims.eat_nonce);
  });

  it('another nonce is NONCE_MISMATCH; hex text is read as base64 (other bytes) and says so', async () => {
    const token = await tokenFor(OPENSSL_STYLE);
    await expect(check(token, Buffer.alloc(32, 1).toString('base64'))).rejects.toMatchObject({ code: 'NONCE_MISMATCH' });
    await expect(check(token, NONCE.toString('hex'))).rejects.toMatchObject({
      code: 'NONCE_MISMATCH',
      message: expect.stringContaining('a string expectedNonce is read as base64'),
    });
  });

  it('text that is not base64, or empty, is NONCE_INVALID saying what is expected', async () => {
    const token = await tokenFor(OPENSSL_STYLE);
    for (const bad of ['not base64!', '', 'abcde']) {
      await expect(check(token, bad)).rejects.toMatchObject({ code: 'NONCE_INVALID', message: expect.stringContaining('openssl rand -base64 32') });
    }
  });
});

describe('--expect-nonce on the command line', () => {
  it('takes hex, as ratls prints nonces, and says how to convert base64 instead of guessing', async () => {
    const token = await tokenFor(OPENSSL_STYLE);
    const r = await runCli('token', 'verify', token, '--jwks', jwksUrl, '--expect-nonce', OPENSSL_STYLE);
    expect(r.code).toBe(2);
    expect(r.err).toContain('--expect-nonce takes the nonce in hex');
    expect(r.err).toContain('base64 -d | xxd -p');
    // the hex of the same nonce passes the nonce check (the token is read; its verdict is the stub's failure)
    const ok = JSON.parse((await runCli('token', 'verify', token, '--jwks', jwksUrl, '--expect-nonce', NONCE.toString('hex'), '--json')).out) as Record<
      string,
      unknown
    >;
    expect(ok).toMatchObject({ nonceChecked: true, claims: { eat_nonce: NONCE.toString('base64url') } });
    const other = JSON.parse((await runCli('token', 'verify', token, '--jwks', jwksUrl, '--expect-nonce', '00'.repeat(32), '--json')).out) as Record<
      string,
      unknown
    >;
    expect(other).toMatchObject({ ok: false, errors: [{ code: 'NONCE_MISMATCH' }] });
  });
});
