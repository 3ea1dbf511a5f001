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
export { verifyQuote, clearVerifierCache } from '../verify/dcap.ts';
export {
  verifyRatlsCertificate,
  verifyRatlsEvidence,
  type VerifyRatlsOptions,
  type RatlsInfo,
  type RatlsCertificateInfo,
  type RatlsVerificationResult,
} from '../ratls/verify-cert.ts';
export { applyPolicy, DEFAULT_ALLOWED_TCB_STATUSES } from '../verify/policy.ts';
export {
  parsePolicy,
  policyToYaml,
  defaultClientPolicy,
  type ClientPolicy,
  type CollateralSettings,
  type FreshnessSettings,
  type PolicyParseOptions,
} from '../verify/policy-file.ts';
export { parsePckExtensions, pckInfoFromQuote, type PckExtensions, type PckInfo } from '../verify/pck.ts';
export { formatVerificationReport, formatQuoteFields } from '../verify/report.ts';
export { INTEL_SGX_ROOT_CA_PEM, INTEL_SGX_ROOT_CA_SHA256 } from '../verify/roots.ts';
export { ERROR_CODES, RatlsError, toVerifyError, type ErrorCode, type VerifyError } from '../core/errors.ts';
export { TCB_STATUSES, allAdvisoryIds } from '../core/types.ts';
export type { TcbStatus, QvlStatus, Collateral, AppraisalPolicy, VerifyQuoteOptions, QuoteSummary, CheckRecord, VerificationResult } from '../core/types.ts';
export { parseQuote } from '../quote/parse.ts';
export { summarizeQuote } from '../quote/summary.ts';
export type { Quote, QuoteHeader, TdReportBody } from '../quote/types.ts';
export type { CollateralRequest, CollateralSource } from '../collateral/types.ts';
export {
  appraiseWorkload,
  policyNeedsEventLog,
  type EvidencePoint,
  type WorkloadInputs,
  type WorkloadAppraisal,
  type WorkloadReport,
  type ReportedModel,
} from '../eventlog/appraise.ts';
export { parseTcgLog, type TcgLog, type TcgEvent } from '../eventlog/tcg.ts';
export { replayTcgEvents, type RtmrReplay } from '../eventlog/replay.ts';
export { describeBootEvent, type DescribedEvent, type BootEventKind } from '../eventlog/boot-events.ts';
export { parseRuntimeLog, foldWorkload, RuntimeLogBuilder, type RuntimeEvent, type RuntimeLog, type ModelRecord } from '../eventlog/runtime.ts';
export { decodeDstackAttestation, parseDstackEventLogJson, replayDstackEvents, type DstackEvent, type DstackAttestation } from '../eventlog/dstack.ts';
export { parseEventLogDocument, type EventLogDocument, type ServedLogs } from '../eventlog/document.ts';
export { readEventLogFile } from '../eventlog/detect.ts';
export { withWorkload } from '../ratls/workload-check.ts';
export { pinWorkload } from '../eventlog/workload-policy.ts';
export type { ModelPin, WorkloadPolicy } from '../core/types.ts';
