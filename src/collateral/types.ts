import type { Collateral } from '../core/types.ts';

/** What a verifier needs collateral for: the platform's FMSPC and which PCK CA issued its cert. */
export interface CollateralRequest {
  /** 6-byte FMSPC from the PCK certificate, lower-case hex. */
  fmspc: string;
  /** Issuer of the PCK certificate: Intel's "Processor" or "Platform" PCK CA. */
  pckCa: 'processor' | 'platform';
  /** Verification time; sources must not return collateral already past nextUpdate at this time. */
  now: Date;
  /** When set, collateral with a lower tcbEvaluationDataNumber does not match (policy minimum). */
  minTcbEvaluationDataNumber?: number;
}

/**
 * One place collateral can come from (stapled extension, disk cache, directory, PCS/PCCS).
 * Sources only fetch; the verifier checks every signature, so a source is never trusted.
 */
export interface CollateralSource {
  readonly name: string;
  /** Resolves undefined when this source has nothing for the request; rejects only on I/O errors. */
  get(request: CollateralRequest): Promise<Collateral | undefined>;
}
