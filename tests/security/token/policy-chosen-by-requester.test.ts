/**
 * S6: whoever requests a token chooses the service policy ("policy" in the request), and the
 * service ships lenient ones: `permissive-tcb` accepts OutOfDate platforms ("do not use it to
 * release secrets"). A relying party that receives a token from an attester could not require the
 * policy: verifyAttestationToken and `ratls token verify` checked signature, issuer, nonce and
 * verdict, so an OutOfDate platform's `ok: true` under `permissive-tcb` passed where `default`
 * (UpToDate only) was meant. Now `policy` / `--service-policy` refuse any other policy with
 * TOKEN_CLAIM_MISMATCH, and `attestViaService` checks the policy it asked for.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { startAttestService, type AttestServiceHandle } from '../../../src/service/server.ts';
import type { EvidenceVerifier } from '../../../src/service/evidence.ts';
import { parseQuote } from '../../../src/quote/parse.ts';
import { summarizeQuote } from '../../../src/quote/summary.ts';
import { verifyAttestationToken } from '../../../src/token/verify.ts';
import { loadManifest, readTestFile } from '../../helpers/testdata.ts';
import { runCli } from '../../helpers/cli.ts';

const POLICIES = resolve(import.meta.dirname, '../../../config/policies');
const genuine = loadManifest().quotes.find((q) => q.id === 'v4-b0c06f000000-dcapqvl.dat')!;
const quoteB64 = Buffer.from(readTestFile(genuine.file)).toString('base64');

/** A platform whose TCB is OutOfDate: passes only a policy that allows that status. */
const outOfDate: EvidenceVerifier = {
  async verifyQuote(quote, ctx) {
    const allowed = ctx.policy.appraisal.allowedTcbStatuses ?? ['UpToDate'];
    const ok = allowed.includes('OutOfDate');
    return {
      ok,
      tcbStatus: 'OutOfDate',
      advisoryIds: ['INTEL-SA-00837'],
      errors: ok ? [] : [{ code: 'TCB_STATUS_NOT_ALLOWED', message: 'OutOfDate is not allowed' }],
      quote: summarizeQuote(parseQuote(quote)),
      checks: [],
    };
  },
  async verifyCertificate() {
    throw new Error('not used');
  },
  async verifyEvidence() {
    throw new Error('not used');
  },
};

let dir: string;
let svc: AttestServiceHandle;
let lenient: string;
let strict: { ok: boolean; token: string };

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'ratls-sec-policy-'));
  svc = await startAttestService({ keyDir: join(dir, 'keys'), policiesDir: POLICIES, verifier: outOfDate, rateLimit: false });
  const attest = async (policy?: string) => {
    const r = await fetch(`${svc.url}/v1/attest`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ quote: quoteB64, ...(policy ? { policy } : {}) }),
    });
    const j = (await r.json()) as { token: string; result: { ok: boolean } };
    return { ok: j.result.ok, token: j.token };
  };
  // the attester asks for the lenient policy; under the default one the same quote fails
  const l = await attest('permissive-tcb');
  expect(l.ok).toBe(true);
  lenient = l.token;
  strict = await attest();
  expect(strict.ok).toBe(false);
});
afterAll(async () => {
  await svc?.close();
  rmSync(dir, { recursive: true, force: true });
});

const jwks = () => ({ jwksUrl: `${svc.url}/.well-known/jwks.json` });

describe('a relying party can require the service policy', () => {
  it('without a required policy the lenient token passes (why the option exists)', async () => {
    const v = await verifyAttestationToken(lenient, jwks(), { issuer: svc.url });
    expect(v.claims['x-ratls-policy']).toBe('permissive-tcb');
    expect(v.claims['x-ratls-ok']).toBe(true);
  });

  it('policy: "default" refuses a token appraised under permissive-tcb, naming both', async () => {
    const err = await verifyAttestationToken(lenient, jwks(), { issuer: svc.url, policy: 'default' }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'TOKEN_CLAIM_MISMATCH' });
    expect((err as Error).message).toMatch(/appraised under the service's policy "permissive-tcb", not "default"/);
  });

  it('the named policy itself passes', async () => {
    const v = await verifyAttestationToken(lenient, jwks(), { issuer: svc.url, policy: 'permissive-tcb' });
    expect(v.claims['x-ratls-ok']).toBe(true);
  });

  it('ratls token verify --service-policy default: exit 1 with TOKEN_CLAIM_MISMATCH; without it the report says the policy was not checked', async () => {
    const refused = await runCli('token', 'verify', lenient, '--jwks', jwks().jwksUrl, '--service-policy', 'default');
    expect(refused.code).toBe(1);
    expect(refused.err).toContain('ratls token verify: TOKEN_CLAIM_MISMATCH: ');
    const unchecked = await runCli('token', 'verify', lenient, '--jwks', jwks().jwksUrl);
    expect(unchecked.code).toBe(0);
    expect(unchecked.out).toMatch(/Policy:\s+permissive-tcb \(not checked: pass --service-policy\)/);
    const checked = await runCli('token', 'verify', lenient, '--jwks', jwks().jwksUrl, '--service-policy', 'permissive-tcb');
    expect(checked.code).toBe(0);
    expect(checked.out).toMatch(/Policy:\s+permissive-tcb \(required\)/);
  });
});
