/**
 * The verification step the service delegates: DCAP on a raw quote, the full RA-TLS check on a
 * certificate, or CCC RA-TLS evidence (with or without the certificate whose key it names). An interface so the HTTP layer can be exercised on its own and the DCAP plumbing
 * (collateral lookup, roots) lives in one place (src/service/verifier.ts).
 */
import type { ClientPolicy } from '../verify/policy-file.ts';
import type { VerificationResult } from '../core/types.ts';

/** Context of one verification. */
export interface EvidenceContext {
  policy: ClientPolicy;
  /** Appraisal time. */
  now: Date;
  /** Caller's nonce; for certificates and evidence it must appear in the RA-TLS claims. */
  nonce?: Uint8Array;
}

/** What the verifier read from RA-TLS claims, for the token. */
export interface ClaimsFacts {
  /** The claims' pubkey-hash as `<alg>:<hex>`, e.g. `sha-256:9f86...`. */
  pubkeyHash: string;
}

/** Verifies evidence; never throws for bad evidence (failures are in the result). */
export interface EvidenceVerifier {
  verifyQuote(quote: Uint8Array, ctx: EvidenceContext): Promise<VerificationResult>;
  verifyCertificate(der: Uint8Array, ctx: EvidenceContext): Promise<VerificationResult>;
  /**
   * CCC evidence (CBOR tag 60000 [quote, claims]): REPORTDATA = SHA-256(claims) || 0^32, the nonce
   * claim against `ctx.nonce`, DCAP on the quote; with `certificate`, also the certificate itself
   * and the claims' pubkey-hash against its key (the certificate's stapled collateral is used).
   */
  verifyEvidence(evidence: Uint8Array, certificate: Uint8Array | undefined, ctx: EvidenceContext): Promise<VerificationResult & { claims?: ClaimsFacts }>;
}
