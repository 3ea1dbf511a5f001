/**
 * The attestation service on the real DCAP verifier: genuine quotes from the shared test data at
 * their manifest times, tampered quotes, and 200 parallel requests.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { JWK } from 'jose';
import { startAttestService, type AttestServiceHandle } from '../../src/service/server.ts';
import { verifyAttestationToken } from '../../src/token/verify.ts';
import { loadManifest, readTestFile, TESTDATA_DIR, type ManifestQuote } from '../helpers/testdata.ts';

const POLICIES = resolve(import.meta.dirname, '../../config/policies');
const manifest = loadManifest();
const byId = (id: string): ManifestQuote => manifest.quotes.find((q) => q.id === id)!;

let dir: string;
let svc: AttestServiceHandle;
let at = new Date(0);
let jwks: { keys: JWK[] };

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'ratls-svc-genuine-'));
  svc = await startAttestService({
    keyDir: join(dir, 'keys'),
    policiesDir: POLICIES,
    collateralDirs: [join(TESTDATA_DIR, 'collateral')],
    offline: true,
    rateLimit: false,
    // the vectors' collateral is only current at their recorded times
    verifyAt: () => at,
  });
  jwks = (await (await fetch(`${svc.url}/.well-known/jwks.json`)).json()) as { keys: JWK[] };
});
afterAll(async () => {
  await svc?.close();
  rmSync(dir, { recursive: true, force: true });
});

interface AttestResponse {
  token: string;
  result: { ok: boolean; tcbStatus: string | null; advisoryIds: string[]; errors: Array<{ code: string }> };
}

async function attest(quote: Uint8Array, extra: Record<string, unknown> = {}): Promise<{ status: number; body: AttestResponse }> {
  const r = await fetch(`${svc.url}/v1/attest`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ quote: Buffer.from(quote).toString('base64'), ...extra }),
  });
  return { status: r.status, body: (await r.json()) as AttestResponse };
}

async function claimsOf(token: string) {
  return (await verifyAttestationToken(token, jwks, { issuer: svc.url, allowFailedVerdict: true, allowBackdatedAppraisal: true })).claims;
}

describe('genuine quotes at their manifest times', () => {
  const cases = manifest.quotes.filter((q) => q.verification_time && q.collateral && q.expected && 'ok' in q.expected);
  it.each(cases.map((q) => [q.id, q] as const))('%s', async (_id, q) => {
    at = new Date(q.verification_time!.iso);
    const { status, body } = await attest(readTestFile(q.file), { policy: 'permissive-tcb' });
    expect(status).toBe(200);
    const c = await claimsOf(body.token);
    const f = q.fields as Record<string, unknown>;
    // measurements are reported whatever the verdict
    expect(c.tdx_mrtd).toBe(q.fields.mr_td);
    expect(c.tdx_report_data).toBe(q.fields.report_data);
    expect(c.tdx_td_attributes).toBe(q.fields.td_attributes);
    expect(c.tdx_mrseam).toBe(f.mr_seam);
    expect(c.tdx_xfam).toBe(f.xfam);
    expect([c.tdx_rtmr0, c.tdx_rtmr1, c.tdx_rtmr2, c.tdx_rtmr3]).toEqual([f.rtmr0, f.rtmr1, f.rtmr2, f.rtmr3]);
    expect(c.tdx_fmspc).toBe(q.pck.fmspc);
    expect(c.attester_type).toBe('TDX');
    expect(c['x-ratls-verified-at']).toBe(Math.floor(at.getTime() / 1000));
    expect(c['x-ratls-simulated']).toBeUndefined();
    const exp = q.expected!;
    const debugTd = (q.td_attributes_flags as { debug?: boolean } | undefined)?.debug === true;
    if (exp.ok) {
      expect(c.attester_tcb_status).toBe(exp.tcb_status);
      expect(c.attester_advisory_ids).toEqual(exp.advisory_ids);
      // permissive-tcb still rejects DEBUG TDs
      expect(c['x-ratls-ok']).toBe(!debugTd);
      if (debugTd) {
        expect(c['x-ratls-errors'].map((e) => e.code)).toContain('TD_DEBUG');
        expect(c.dbgstat).toBe('enabled');
        expect(c.tdx_td_attributes_debug).toBe(true);
      } else {
        expect(c['ear.status']).toBe(exp.tcb_status === 'UpToDate' ? 'affirming' : 'warning');
        expect(c.submods.cpu0['ear.status']).toBe(c['ear.status']);
        expect(c.submods.cpu0['ear.appraisal-policy-id']).toMatch(/^permissive-tcb@sha256:[0-9a-f]{64}$/);
        expect(c.policy_ids_matched).toEqual([{ id: 'permissive-tcb', hash: expect.stringMatching(/^[0-9a-f]{64}$/) }]);
      }
    } else {
      expect(c['x-ratls-ok']).toBe(false);
      expect(c['ear.status']).toBe('contraindicated');
      expect(c['x-ratls-errors'].map((e) => e.code)).toContain('TCB_NOT_SUPPORTED');
    }
  });

  it('the default policy rejects an OutOfDate platform but still reports its advisories', async () => {
    const q = byId('v4-00806f050000-zkdcap.dat');
    at = new Date(q.verification_time!.iso);
    const { body } = await attest(readTestFile(q.file));
    expect(body.result.ok).toBe(false);
    expect(body.result.tcbStatus).toBe('OutOfDate');
    const c = await claimsOf(body.token);
    expect(c['x-ratls-policy']).toBe('default');
    expect(c.attester_tcb_status).toBe('OutOfDate');
    expect(c.attester_advisory_ids).toEqual(['INTEL-SA-00960', 'INTEL-SA-00982', 'INTEL-SA-00986']);
    expect(c['x-ratls-errors'].map((e) => e.code)).toContain('TCB_STATUS_NOT_ALLOWED');
    expect(c.policy_ids_unmatched[0]?.id).toBe('default');
  });

  it('outside the collateral window the result is a signed failure', async () => {
    const q = byId('v4-b0c06f000000-dcapqvl.dat');
    at = new Date('2030-01-01T00:00:00Z');
    const { status, body } = await attest(readTestFile(q.file));
    expect(status).toBe(200);
    expect(body.result.ok).toBe(false);
    expect(body.result.errors.map((e) => e.code).join(',')).toMatch(/COLLATERAL_MISSING|COLLATERAL_EXPIRED/);
  });
});

describe('tampered quotes', () => {
  const q = byId('v4-b0c06f000000-dcapqvl.dat');
  const original = readTestFile(q.file);

  it.each([
    ['MRTD (signed body)', 48 + 136 + 5, 'QUOTE_SIGNATURE_INVALID'],
    ['REPORTDATA (signed body)', 48 + 520, 'QUOTE_SIGNATURE_INVALID'],
    ['quote signature', 48 + 584 + 4 + 10, 'QUOTE_SIGNATURE_INVALID'],
  ] as const)('a changed byte in the %s gives a signed failure (200, ok false)', async (_what, offset, code) => {
    at = new Date(q.verification_time!.iso);
    const bad = Uint8Array.from(original);
    bad[offset] = bad[offset]! ^ 0x01;
    const { status, body } = await attest(bad);
    expect(status).toBe(200);
    expect(body.result.ok).toBe(false);
    expect(body.result.errors.map((e) => e.code)).toContain(code);
    const c = await claimsOf(body.token);
    expect(c['x-ratls-ok']).toBe(false);
    // the relying party's default check refuses it
    await expect(verifyAttestationToken(body.token, jwks, { allowBackdatedAppraisal: true })).rejects.toMatchObject({ code: 'TOKEN_CLAIM_MISMATCH' });
  });

  it('a cut quote gives 400 with the parser code and no token', async () => {
    const { status, body } = await attest(original.subarray(0, 1000));
    expect(status).toBe(400);
    expect((body as unknown as { error: { code: string } }).error.code).toBe('QUOTE_TRUNCATED');
  });
});

describe('concurrency', () => {
  it('200 parallel requests give 200 correct, verifiable answers', async () => {
    // three quotes valid at the same instant, with different outcomes
    const ok = byId('v5-90c06f000000-gotdxguest.dat');
    const unsupported = byId('v5-90c06f000000-dcapqvl-outdated.dat');
    expect(unsupported.verification_time!.iso).toBe(ok.verification_time!.iso);
    at = new Date(ok.verification_time!.iso);
    const inputs = [ok, unsupported].map((m) => ({ m, bytes: readTestFile(m.file) }));
    const started = performance.now();
    const results = await Promise.all(
      Array.from({ length: 200 }, async (_, i) => {
        const { m, bytes } = inputs[i % 2]!;
        const nonceless = await attest(bytes);
        return { m, ...nonceless };
      }),
    );
    const elapsed = performance.now() - started;
    let good = 0;
    const jtis = new Set<string>();
    for (const { m, status, body } of results) {
      expect(status).toBe(200);
      const c = await claimsOf(body.token);
      expect(c.tdx_mrtd).toBe(m.fields.mr_td);
      expect(c['x-ratls-ok']).toBe(m.expected!.ok);
      jtis.add(c.jti!);
      good++;
    }
    expect(good).toBe(200);
    expect(jtis.size).toBe(200);
    console.log(`[attest-service] 200 parallel /v1/attest requests answered in ${elapsed.toFixed(0)} ms`);
  });
});
