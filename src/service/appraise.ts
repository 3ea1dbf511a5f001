/**
 * The appraisal behind `POST /v1/attest`, without HTTP: the body is validated (a raw quote, CCC
 * RA-TLS evidence with or without its certificate, or a certificate; src/service/formats.ts tells
 * them apart), the named policy chosen, the evidence verified within the time limit, the nonce and
 * runtime-data binding checked, and the token's claims built. The route in app.ts only signs the claims and answers; a refusal
 * carries the status it is answered with.
 */
import { createHash } from 'node:crypto';
import { withError } from '../core/checks.ts';
import { EVIDENCE_UNREADABLE_CODES, RatlsError, type ErrorCode, type VerifyError } from '../core/errors.ts';
import type { VerificationResult } from '../core/types.ts';
import { parseQuote } from '../quote/parse.ts';
import { checkReportDataBinding, type BindingRule } from './binding.ts';
import { buildClaims, type AttestationClaims } from './claims.ts';
import type { ClaimsFacts, EvidenceContext, EvidenceVerifier } from './evidence.ts';
import type { NamedPolicy, PolicySet } from './policies.ts';
import { parseAttestRequest, type AttestRequest } from './request.ts';

/** What the appraisal needs from the service. */
export interface AppraisalDeps {
  policies: PolicySet;
  verifier: EvidenceVerifier;
  /** Appraisal clock (tests pin it to the vectors' times). */
  verifyAt: () => Date;
  verifyTimeoutMs: number;
}

/** A request answered with an error instead of a signed result. */
export interface Refusal {
  refused: VerifyError;
  /** 400: not an attestation request (or not evidence at all); 503: verification timed out. */
  status: 400 | 503;
  retryAfterSeconds?: number;
}

/** A request appraised: the verdict and the claims to sign, whether the verdict is ok or not. */
export interface Appraisal {
  policy: NamedPolicy;
  evidence: AttestRequest['kind'];
  result: VerificationResult;
  /** Which REPORTDATA rule bound the caller's nonce / runtime data, if any. */
  binding: BindingRule | 'ratls-claims' | undefined;
  claims: AttestationClaims;
}

function badRequest(code: ErrorCode, message: string): Refusal {
  return { refused: { code, message }, status: 400 };
}

/**
 * Appraises the body of one attestation request. Hostile input is refused, never thrown; only a
 * failure of the service itself (a verifier bug) rejects.
 *
 * @example
 * const a = await appraiseAttestRequest('{"quote":"BAACAIEA..."}', { policies, verifier, verifyAt: () => new Date(), verifyTimeoutMs: 10_000 });
 * if ('refused' in a) console.log(a.status, a.refused.code);
 * else console.log(a.result.ok, a.claims['ear.status']);
 */
export async function appraiseAttestRequest(body: string, deps: AppraisalDeps): Promise<Appraisal | Refusal> {
  let req: AttestRequest;
  try {
    req = parseAttestRequest(body);
  } catch (err) {
    if (err instanceof RatlsError) return badRequest(err.code, err.message);
    throw err;
  }
  const policy = deps.policies.byName.get(req.policy ?? deps.policies.defaultName);
  if (!policy) return badRequest('POLICY_UNKNOWN', `No policy named "${req.policy}"; GET /v1/policies lists them.`);

  let quoteHash: string | undefined;
  if (req.kind === 'quote') {
    try {
      const q = parseQuote(req.quote);
      // the token names the quote itself, not the padding some attesters append
      quoteHash = createHash('sha256').update(req.quote.subarray(0, q.length)).digest('hex');
    } catch (err) {
      if (err instanceof RatlsError) return badRequest(err.code, err.message);
      throw err;
    }
  }

  const verifiedAt = deps.verifyAt();
  const ctx = { policy: policy.policy, now: verifiedAt, ...(req.nonce ? { nonce: req.nonce } : {}) };
  let result: VerificationResult & { claims?: ClaimsFacts };
  try {
    result = await withTimeout(verify(deps.verifier, req, ctx), deps.verifyTimeoutMs);
  } catch (err) {
    if (err instanceof RatlsError && err.code === 'VERIFY_TIMEOUT')
      return { refused: { code: err.code, message: err.message }, status: 503, retryAfterSeconds: 5 };
    throw err;
  }
  if (req.kind !== 'quote' && !result.ok && !result.quote) {
    const unparseable = result.errors.find((x) => EVIDENCE_UNREADABLE_CODES.has(x.code));
    if (unparseable) return { refused: unparseable, status: 400 };
  }

  if (policy.policy.freshness.requireNonce && !req.nonce) {
    result = withError(result, {
      code: 'NONCE_MISSING',
      message: `Policy "${policy.name}" requires a fresh nonce; send "nonce" and have the attester bind it (see the REPORTDATA rule).`,
    });
  }
  let binding: BindingRule | 'ratls-claims' | undefined;
  if (req.kind === 'quote' && (req.nonce || req.runtimeData)) {
    if (!result.quote) {
      result = withError(result, { code: 'REPORTDATA_MISMATCH', message: 'REPORTDATA could not be read, so the nonce/runtimeData binding was not checked.' });
    } else {
      const rd = Buffer.from(result.quote.reportData, 'hex');
      const b = await checkReportDataBinding(new Uint8Array(rd), req.nonce, req.runtimeData);
      if (b.ok) binding = b.rule;
      else result = withError(result, b.error);
    }
  } else if (req.kind !== 'quote' && req.nonce && result.ok) {
    // the verifier compared the nonce claim with the request's nonce: the claims are the binding
    binding = 'ratls-claims';
  }
  // a policy naming only Intel's root can never produce a simulated result; trust the verifier's flag
  // but also mark every token from a policy that trusts other roots, so it is visible either way
  if (policy.nonIntelRoots) result = { ...result, nonIntelRoot: result.nonIntelRoot ?? true };

  const claims = buildClaims({
    result,
    policyName: policy.name,
    policyHash: policy.hash,
    evidence: EVIDENCE_CLAIM[req.kind],
    quoteHash,
    certificateSha256: req.kind !== 'quote' && req.certificate ? createHash('sha256').update(req.certificate).digest('hex') : undefined,
    pubkeyHash: result.claims?.pubkeyHash,
    nonce: req.nonce,
    runtimeData: req.runtimeData,
    binding,
    verifiedAt,
  });
  return { policy, evidence: req.kind, result, binding, claims };
}

/** `x-ratls-evidence` of each kind of request. */
const EVIDENCE_CLAIM = { quote: 'quote', certificate: 'ratls-certificate', evidence: 'ratls-evidence' } as const;

function verify(v: EvidenceVerifier, req: AttestRequest, ctx: EvidenceContext): Promise<VerificationResult & { claims?: ClaimsFacts }> {
  if (req.kind === 'quote') return v.verifyQuote(req.quote, ctx);
  if (req.kind === 'certificate') return v.verifyCertificate(req.certificate, ctx);
  return v.verifyEvidence(req.evidence, req.certificate, ctx);
}

async function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const t = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new RatlsError('VERIFY_TIMEOUT', `Verification did not finish within ${ms} ms (collateral source slow or unreachable); retry later.`)),
      ms,
    );
  });
  try {
    return await Promise.race([p, t]);
  } finally {
    clearTimeout(timer);
  }
}
