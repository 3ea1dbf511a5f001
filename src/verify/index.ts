/**
 * Browser-safe verifier API: TDX quote parsing, Intel DCAP verification, RA-TLS certificate and
 * evidence checks, policy files. WebCrypto and pure-JS only; the time is always a parameter.
 *
 * @example
 * ```ts
 * import { verifyRatlsCertificate, parsePolicy } from 'ratls-proxy/verify';
 * const policy = parsePolicy(policyYamlText);
 * const result = await verifyRatlsCertificate(certDer, {
 *   now: new Date(), trustedRoots: policy.trustedRoots, policy: policy.appraisal,
 * });
 * if (!result.ok) console.log(result.errors.map((e) => `${e.code}: ${e.message}`));
 * ```
 */
export { verifyQuote, clearVerifierCache } from './dcap.ts';
export {
  verifyRatlsCertificate,
  verifyRatlsEvidence,
  type VerifyRatlsOptions,
  type RatlsInfo,
  type RatlsCertificateInfo,
  type RatlsVerificationResult,
} from './ratls-cert.ts';
export { applyPolicy, DEFAULT_ALLOWED_TCB_STATUSES } from './policy.ts';
export {
  parsePolicy,
  policyToYaml,
  defaultClientPolicy,
  type ClientPolicy,
  type CollateralSettings,
  type FreshnessSettings,
  type PolicyParseOptions,
} from './policy-file.ts';
export { parsePckExtensions, pckInfoFromQuote, type PckExtensions, type PckInfo } from './pck.ts';
export { formatVerificationReport, formatQuoteFields } from './report.ts';
export { INTEL_SGX_ROOT_CA_PEM, INTEL_SGX_ROOT_CA_SHA256 } from './roots.ts';
export { ERROR_CODES, RatlsError, toVerifyError, type ErrorCode, type VerifyError } from './errors.ts';
export { TCB_STATUSES } from './types.ts';
export type { TcbStatus, Collateral, AppraisalPolicy, VerifyQuoteOptions, QuoteSummary, CheckRecord, VerificationResult } from './types.ts';
export { parseQuote } from '../quote/parse.ts';
export { summarizeQuote } from '../quote/summary.ts';
export type { Quote, QuoteHeader, TdReportBody } from '../quote/types.ts';
export type { CollateralRequest, CollateralSource } from '../collateral/types.ts';
