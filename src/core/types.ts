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
 * Intel's quote verification result (`sgx_ql_qv_result_t`) by its C name: what Intel's QVL/QvE
 * return for the same quote and collateral. Unlike {@link TcbStatus} it has the TD 1.5 relaunch
 * results, where the platform is already patched and relaunching the TD would make it current.
 */
export type QvlStatus =
  | 'SGX_QL_QV_RESULT_OK'
  | 'SGX_QL_QV_RESULT_SW_HARDENING_NEEDED'
  | 'SGX_QL_QV_RESULT_CONFIG_NEEDED'
  | 'SGX_QL_QV_RESULT_CONFIG_AND_SW_HARDENING_NEEDED'
  | 'SGX_QL_QV_RESULT_OUT_OF_DATE'
  | 'SGX_QL_QV_RESULT_OUT_OF_DATE_CONFIG_NEEDED'
  | 'SGX_QL_QV_RESULT_REVOKED'
  | 'SGX_QL_QV_RESULT_TD_RELAUNCH_ADVISED'
  | 'SGX_QL_QV_RESULT_TD_RELAUNCH_ADVISED_CONFIG_NEEDED';

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
  /**
   * Set (with `ok: false`) on a check that did not pass but does not decide the verdict: it adds no
   * error, and the report shows it as a warning (e.g. an unusable stapled collateral extension when
   * another source supplied collateral).
   */
  warning?: true;
}

/** Result of quote verification; also the base of RA-TLS certificate results. */
export interface VerificationResult {
  ok: boolean;
  /** Intel's status even when policy rejects it; null when none could be derived. */
  tcbStatus: TcbStatus | null;
  /**
   * Advisory IDs of the matched platform TCB level, as Intel's QVL (DCAP 1.21) reports them. The
   * TDX module level's and the QE level's are in their own fields; the appraisal policy checks all
   * three lists ({@link allAdvisoryIds}).
   */
  advisoryIds: string[];
  /** Advisory IDs of the matched TDX module TCB level (verifyQuote always sets it). */
  tdxModuleAdvisoryIds?: string[];
  /** Advisory IDs of the matched QE identity TCB level (verifyQuote always sets it). */
  qeAdvisoryIds?: string[];
  /**
   * Intel's full verification result for the same inputs whenever `tcbStatus` is set (null
   * otherwise; verifyQuote always sets it). Differs from `tcbStatus` only for the TD relaunch
   * results, where `tcbStatus` keeps the underlying OutOfDate / OutOfDateConfigurationNeeded.
   */
  qvlStatus?: QvlStatus | null;
  errors: VerifyError[];
  quote: QuoteSummary | null;
  checks: CheckRecord[];
  /** True when the quote chains to a root other than Intel's (e.g. a simulated one). */
  nonIntelRoot?: boolean;
}

/**
 * Every advisory ID a result reports: the platform level's, then the TDX module level's and the QE
 * level's, each once. This is what the appraisal policy checks.
 */
export function allAdvisoryIds(r: Pick<VerificationResult, 'advisoryIds' | 'tdxModuleAdvisoryIds' | 'qeAdvisoryIds'>): string[] {
  const out: string[] = [];
  for (const a of [...r.advisoryIds, ...(r.tdxModuleAdvisoryIds ?? []), ...(r.qeAdvisoryIds ?? [])]) if (!out.includes(a)) out.push(a);
  return out;
}
