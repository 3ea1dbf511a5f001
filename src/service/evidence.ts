/**
 * The verification step the service delegates: DCAP on a raw quote, or the full RA-TLS check on a
 * certificate. An interface so the HTTP layer can be exercised on its own and the DCAP plumbing
 * (collateral lookup, roots) lives in one place (src/service/verifier.ts).
 */
import type { ClientPolicy } from '../verify/policy-file.ts';
import type { VerificationResult } from '../core/types.ts';

/** Context of one verification. */
export interface EvidenceContext {
  policy: ClientPolicy;
  /** Appraisal time. */
  now: Date;
  /** Caller's nonce; for certificates it must appear in the RA-TLS claims. */
  nonce?: Uint8Array;
}

/** Verifies evidence; never throws for bad evidence (failures are in the result). */
export interface EvidenceVerifier {
  verifyQuote(quote: Uint8Array, ctx: EvidenceContext): Promise<VerificationResult>;
  verifyCertificate(der: Uint8Array, ctx: EvidenceContext): Promise<VerificationResult>;
}
