import type { VerifyError } from './errors.ts';

/** TCB statuses as Intel names them, plus the combined TDX statuses the QVL produces. */
export type TcbStatus =
  'UpToDate' | 'SWHardeningNeeded' | 'ConfigurationNeeded' | 'ConfigurationAndSWHardeningNeeded' | 'OutOfDate' | 'OutOfDateConfigurationNeeded' | 'Revoked';

export const TCB_STATUSES: readonly TcbStatus[] = [
  'UpToDate',
  'SWHardeningNeeded',
  'ConfigurationNeeded',
  'ConfigurationAndSWHardeningNeeded',
  'OutOfDate',
  'OutOfDateConfigurationNeeded',
  'Revoked',
];

/**
 * Intel DCAP collateral for one quote, kept exactly as served: the JSON documents as text
 * (their signatures cover the exact bytes of the inner object), CRLs as DER, chains as PEM.
 * File names in a collateral directory: tcb_info.json, tcb_info_issuer_chain.pem, qe_identity.json,
 * qe_identity_issuer_chain.pem, pck_crl.der, pck_crl_issuer_chain.pem, root_ca_crl.der.
 */
export interface Collateral {
  tcbInfoJson: string;
  tcbInfoIssuerChain: string;
  qeIdentityJson: string;
  qeIdentityIssuerChain: string;
  pckCrl: Uint8Array;
  pckCrlIssuerChain: string;
  rootCaCrl: Uint8Array;
}

/**
 * Appraisal policy applied after DCAP verification. Measurement fields are lists of accepted
 * lower-case hex values; an absent field is not checked.
 */
export interface AppraisalPolicy {
  /** Default ['UpToDate']. */
  allowedTcbStatuses?: TcbStatus[];
  /** When set, every advisory ID reported must be in this list. */
  allowedAdvisoryIds?: string[];
  /** DEBUG TDs are rejected unless this is true. */
  allowDebug?: boolean;
  mrTd?: string[];
  rtmr0?: string[];
  rtmr1?: string[];
  rtmr2?: string[];
  rtmr3?: string[];
  mrSeam?: string[];
  xfam?: string[];
  tdAttributes?: string[];
  /** Expected REPORTDATA (64 bytes hex); used by raw quote verification, not by RA-TLS. */
  reportData?: string[];
  /**
   * Lowest acceptable tcbEvaluationDataNumber of the TCB info and QE identity used. Refuses older
   * (still signed, not yet expired) collateral, e.g. from before a TCB recovery. Enforced by the
   * RA-TLS verifier and the attestation service, which pick collateral.
   */
  minTcbEvaluationDataNumber?: number;
  /**
   * Platform instance pins, from the PCK certificate: accepted PPIDs (16 bytes hex), FMSPCs
   * (6 bytes) and PCE IDs (2 bytes). A quote from another machine running the same image fails
   * with PLATFORM_MISMATCH.
   */
  ppid?: string[];
  fmspc?: string[];
  pceId?: string[];
}

/** Inputs to {@link verifyQuote}. */
export interface VerifyQuoteOptions {
  collateral: Collateral;
  /** Verification time. The core never reads the clock itself. */
  now: Date;
  /** Trusted root certificates (PEM or DER). Default: the pinned Intel SGX Root CA only. */
  trustedRoots?: Array<string | Uint8Array>;
  policy?: AppraisalPolicy;
}

/** Fields of a quote in lower-case hex, as reported in results and by `quote inspect`. */
export interface QuoteSummary {
  version: number;
  attestationKeyType: number;
  teeType: string;
  qeSvn: number;
  pceSvn: number;
  qeVendorId: string;
  userData: string;
  bodyType: number;
  teeTcbSvn: string;
  mrSeam: string;
  mrSignerSeam: string;
  seamAttributes: string;
  tdAttributes: string;
  xfam: string;
  mrTd: string;
  mrConfigId: string;
  mrOwner: string;
  mrOwnerConfig: string;
  rtmr0: string;
  rtmr1: string;
  rtmr2: string;
  rtmr3: string;
  reportData: string;
  teeTcbSvn2?: string;
  mrServiceTd?: string;
  debug: boolean;
  fmspc?: string;
  pceId?: string;
  /** Platform Provisioning ID of the PCK certificate (16 bytes hex): which physical platform made the quote. */
  ppid?: string;
}

/** One step of the verification, for the readable report. */
export interface CheckRecord {
  name: string;
  ok: boolean;
  detail?: string;
}

/** Result of quote verification; also the base of RA-TLS certificate results. */
export interface VerificationResult {
  ok: boolean;
  /** Intel's status even when policy rejects it; null when none could be derived. */
  tcbStatus: TcbStatus | null;
  advisoryIds: string[];
  errors: VerifyError[];
  quote: QuoteSummary | null;
  checks: CheckRecord[];
  /** True when the quote chains to a root other than Intel's (e.g. a simulated one). */
  nonIntelRoot?: boolean;
}
