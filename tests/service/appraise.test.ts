/**
 * The appraisal behind POST /v1/attest on its own (no HTTP): refusals and their statuses, the
 * policy chosen, the nonce / runtimeData binding, the claims handed to the signer. Verifiers are
 * stand-ins so each rule is exercised alone; the real DCAP path is in genuine.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { appraiseAttestRequest, type Appraisal, type AppraisalDeps, type Refusal } from '../../src/service/appraise.ts';
import type { EvidenceContext, EvidenceVerifier } from '../../src/service/evidence.ts';
import type { NamedPolicy, PolicySet } from '../../src/service/policies.ts';
import type { VerificationResult } from '../../src/core/types.ts';
import { defaultClientPolicy } from '../../src/verify/policy-file.ts';
import { parseQuote } from '../../src/quote/parse.ts';
import { summarizeQuote } from '../../src/quote/summary.ts';
import { stubVerifier } from './stub-verifier.ts';
import { loadManifest, readTestFile } from '../helpers/testdata.ts';

const quote = readTestFile(loadManifest().quotes.find((q) => q.id === 'v4-b0c06f000000-dcapqvl.dat')!.file);
const b64 = (b: Uint8Array) => Buffer.from(b).toString('base64');
const AT = new Date('2025-06-01T00:00:00Z');

function named(name: string, change: (p: NamedPolicy['policy']) => void = () => {}, nonIntelRoots = false): NamedPolicy {
  const policy = defaultClientPolicy();
  change(policy);
  return { name, hash: `hash-of-${name}`, policy, nonIntelRoots };
}

const policies: PolicySet = {
  defaultName: 'default',
  byName: new Map([
    ['default', named('default')],
    ['fresh', named('fresh', (p) => (p.freshness.requireNonce = true))],
    ['simulated', named('simulated', () => {}, true)],
  ]),
};

function deps(verifier: EvidenceVerifier = stubVerifier, verifyTimeoutMs = 5_000): AppraisalDeps {
  return { policies, verifier, verifyAt: () => AT, verifyTimeoutMs };
}

/** A verifier that reports the quote as verified, with REPORTDATA replaced by `reportData`. */
function verifierWithReportData(reportData: Uint8Array): EvidenceVerifier {
  return {
    ...stubVerifier,
    async verifyQuote(q) {
      return {
        ...(await stubVerifier.verifyQuote(q, { policy: defaultClientPolicy(), now: AT })),
        quote: { ...summarizeQuote(parseQuote(q)), reportData: Buffer.from(reportData).toString('hex') },
      };
    },
  };
}

async function appraised(body: unknown, d: AppraisalDeps = deps()): Promise<Appraisal> {
  const a = await appraiseAttestRequest(JSON.stringify(body), d);
  if ('refused' in a) throw new Error(`refused: ${a.refused.code}`);
  return a;
}

async function refused(body: string | object, d: AppraisalDeps = deps()): Promise<Refusal> {
  const a = await appraiseAttestRequest(typeof body === 'string' ? body : JSON.stringify(body), d);
  if (!('refused' in a)) throw new Error('appraised, expected a refusal');
  return a;
}

describe('appraisal refuses what is not an attestation request', () => {
  it.each([
    ['malformed JSON', '{"quote": ', 'REQUEST_MALFORMED'],
    ['bad base64', { quote: 'not*base64!' }, 'REQUEST_BASE64_INVALID'],
    ['an unknown field', { quote: 'AAAA', extra: 1 }, 'REQUEST_MALFORMED'],
    ['both evidence kinds', { quote: 'AAAA', certificate: 'AAAA' }, 'REQUEST_MALFORMED'],
    ['an unknown policy', { quote: b64(quote), policy: 'nope' }, 'POLICY_UNKNOWN'],
    ['a truncated quote', { quote: b64(quote.subarray(0, 700)) }, 'QUOTE_TRUNCATED'],
  ])('%s: 400 %s, before any verification', async (_name, body, code) => {
    let called = false;
    const watching: EvidenceVerifier = {
      verifyQuote: (...a) => ((called = true), stubVerifier.verifyQuote(...a)),
      verifyCertificate: (...a) => ((called = true), stubVerifier.verifyCertificate(...a)),
      verifyEvidence: (...a) => ((called = true), stubVerifier.verifyEvidence(...a)),
    };
    const r = await refused(body, deps(watching));
    expect(r.status).toBe(400);
    expect(r.refused.code).toBe(code);
    expect(called).toBe(false);
  });

  it('a certificate the verifier cannot read: 400 with the verifier’s own error', async () => {
    const r = await refused({ certificate: b64(new Uint8Array([1, 2, 3])) });
    expect(r).toEqual({ refused: { code: 'CERT_MALFORMED', message: 'not a certificate' }, status: 400 });
  });

  it('a certificate that failed for another reason is appraised (signed failure), not refused', async () => {
    const rejecting: EvidenceVerifier = {
      ...stubVerifier,
      async verifyCertificate() {
        return { ok: false, tcbStatus: null, advisoryIds: [], errors: [{ code: 'COLLATERAL_MISSING', message: 'none' }], quote: null, checks: [] };
      },
    };
    const a = await appraised({ certificate: b64(new Uint8Array([1])) }, deps(rejecting));
    expect(a.result.ok).toBe(false);
    expect(a.claims['x-ratls-ok']).toBe(false);
    expect(a.claims['x-ratls-evidence']).toBe('ratls-certificate');
  });

  it('a verifier slower than the limit: 503 VERIFY_TIMEOUT with Retry-After 5', async () => {
    const hanging: EvidenceVerifier = {
      verifyQuote: () => new Promise<VerificationResult>(() => {}),
      verifyCertificate: () => new Promise(() => {}),
      verifyEvidence: () => new Promise(() => {}),
    };
    const r = await refused({ quote: b64(quote) }, deps(hanging, 20));
    expect(r.status).toBe(503);
    expect(r.retryAfterSeconds).toBe(5);
    expect(r.refused.code).toBe('VERIFY_TIMEOUT');
  });

  it('a verifier that throws something unexpected rejects (the route answers 500)', async () => {
    const broken: EvidenceVerifier = { ...stubVerifier, verifyQuote: () => Promise.reject(new Error('bug')) };
    await expect(appraiseAttestRequest(JSON.stringify({ quote: b64(quote) }), deps(broken))).rejects.toThrow('bug');
  });
});

describe('appraisal of a quote', () => {
  it('uses the default policy, the appraisal clock and hashes the quote without its padding', async () => {
    let seen: EvidenceContext | undefined;
    const recording: EvidenceVerifier = { ...stubVerifier, verifyQuote: (q, ctx) => ((seen = ctx), stubVerifier.verifyQuote(q, ctx)) };
    const padded = new Uint8Array([...quote, 0, 0, 0, 0]);
    const a = await appraised({ quote: b64(padded) }, deps(recording));
    expect(seen?.now).toBe(AT);
    expect(seen?.policy).toBe(policies.byName.get('default')!.policy);
    expect(a.policy.name).toBe('default');
    expect(a.evidence).toBe('quote');
    expect(a.result.ok).toBe(true);
    expect(a.binding).toBeUndefined();
    const used = quote.subarray(0, parseQuote(quote).length);
    expect(used.length).toBeLessThan(padded.length);
    expect(a.claims.tdx_collateral).toEqual({ quotehash: createHash('sha256').update(used).digest('hex') });
    expect(a.claims['x-ratls-policy']).toBe('default');
    expect(a.claims['x-ratls-verified-at']).toBe(AT.getTime() / 1000);
    expect(a.claims['ear.status']).toBe('affirming');
  });

  it('binds a nonce through SHA-512(nonce) in REPORTDATA and says which rule matched', async () => {
    const nonce = new Uint8Array([7, 7, 7, 7]);
    const rd = new Uint8Array(createHash('sha512').update(nonce).digest());
    const a = await appraised({ quote: b64(quote), nonce: b64(nonce) }, deps(verifierWithReportData(rd)));
    expect(a.result.ok).toBe(true);
    expect(a.binding).toBe('sha512');
    expect(a.claims['x-ratls-reportdata-binding']).toBe('sha512');
    expect(a.claims.eat_nonce).toBe(Buffer.from(nonce).toString('base64url'));
  });

  it('binds runtimeData through SHA-256(runtimeData) || 0^32', async () => {
    const data = new TextEncoder().encode('runtime');
    const rd = new Uint8Array(64);
    rd.set(createHash('sha256').update(data).digest());
    const a = await appraised({ quote: b64(quote), runtimeData: b64(data) }, deps(verifierWithReportData(rd)));
    expect(a.binding).toBe('sha256-zero-padded');
    expect(a.claims.attester_runtime_data).toBe(Buffer.from(data).toString('base64url'));
  });

  it('a nonce the quote does not bind turns the verdict into a signed NONCE_MISMATCH', async () => {
    const a = await appraised({ quote: b64(quote), nonce: b64(new Uint8Array([1])) });
    expect(a.result.ok).toBe(false);
    expect(a.result.errors.map((e) => e.code)).toEqual(['NONCE_MISMATCH']);
    expect(a.binding).toBeUndefined();
    expect(a.claims['x-ratls-ok']).toBe(false);
    expect(a.claims['ear.status']).toBe('contraindicated');
  });

  it('REPORTDATA_MISMATCH when the verifier could not read REPORTDATA but a nonce was sent', async () => {
    const blind: EvidenceVerifier = {
      ...stubVerifier,
      async verifyQuote() {
        return { ok: false, tcbStatus: null, advisoryIds: [], errors: [{ code: 'COLLATERAL_MISSING', message: 'none' }], quote: null, checks: [] };
      },
    };
    const a = await appraised({ quote: b64(quote), nonce: b64(new Uint8Array([1])) }, deps(blind));
    expect(a.result.errors.map((e) => e.code)).toEqual(['COLLATERAL_MISSING', 'REPORTDATA_MISMATCH']);
  });

  it('a policy that requires a nonce fails a request without one', async () => {
    const a = await appraised({ quote: b64(quote), policy: 'fresh' });
    expect(a.policy.name).toBe('fresh');
    expect(a.result.ok).toBe(false);
    expect(a.result.errors.map((e) => e.code)).toEqual(['NONCE_MISSING']);
    expect(a.claims.policy_ids_unmatched).toEqual([{ id: 'fresh', hash: 'hash-of-fresh' }]);
  });

  it('marks every result of a policy that trusts non-Intel roots as simulated', async () => {
    expect((await appraised({ quote: b64(quote), policy: 'simulated' })).claims['x-ratls-simulated']).toBe(true);
    expect((await appraised({ quote: b64(quote) })).claims['x-ratls-simulated']).toBeUndefined();
  });
});

describe('appraisal of an RA-TLS certificate', () => {
  const verified: EvidenceVerifier = {
    ...stubVerifier,
    verifyCertificate: (_der, ctx) => stubVerifier.verifyQuote(quote, ctx),
  };

  it('passes the nonce to the verifier and reports the binding as the RA-TLS claims', async () => {
    let seen: EvidenceContext | undefined;
    const recording: EvidenceVerifier = { ...verified, verifyCertificate: (d, ctx) => ((seen = ctx), verified.verifyCertificate(d, ctx)) };
    const cert = new Uint8Array([0x30, 1, 2]);
    const nonce = new Uint8Array([9, 9]);
    const a = await appraised({ certificate: b64(cert), nonce: b64(nonce) }, deps(recording));
    expect(seen?.nonce).toEqual(nonce);
    expect(a.binding).toBe('ratls-claims');
    expect(a.claims['x-ratls-cert-sha256']).toBe(createHash('sha256').update(cert).digest('hex'));
    expect(a.claims.tdx_collateral).toBeUndefined();
  });

  it('claims no binding when the certificate failed', async () => {
    const failing: EvidenceVerifier = {
      ...stubVerifier,
      async verifyCertificate() {
        return { ok: false, tcbStatus: null, advisoryIds: [], errors: [{ code: 'NONCE_MISMATCH', message: 'other nonce' }], quote: null, checks: [] };
      },
    };
    const a = await appraised({ certificate: b64(new Uint8Array([1])), nonce: b64(new Uint8Array([2])) }, deps(failing));
    expect(a.binding).toBeUndefined();
    expect(a.claims['x-ratls-reportdata-binding']).toBeUndefined();
  });
});
