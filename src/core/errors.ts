/**
 * Stable error codes. Callers and scripts match on `code`; the message is for people.
 * Add codes, never rename them.
 */
export const ERROR_CODES = [
  // quote structure
  'QUOTE_TRUNCATED',
  'QUOTE_MALFORMED',
  'QUOTE_UNSUPPORTED_VERSION',
  'QUOTE_UNSUPPORTED_TEE',
  'QUOTE_UNSUPPORTED_KEY_TYPE',
  'QUOTE_UNSUPPORTED_BODY',
  'QUOTE_UNSUPPORTED_CERT_DATA',
  'QUOTE_QE_VENDOR_UNKNOWN',
  // signatures and bindings inside the quote
  'QUOTE_SIGNATURE_INVALID',
  'QE_REPORT_SIGNATURE_INVALID',
  'QE_REPORT_DATA_MISMATCH',
  // PCK chain
  'PCK_CHAIN_MALFORMED',
  'PCK_CHAIN_UNTRUSTED',
  'PCK_CHAIN_INVALID_SIGNATURE',
  'PCK_CERT_EXPIRED',
  'PCK_CERT_NOT_YET_VALID',
  'PCK_CERT_EXTENSION_INVALID',
  'PCK_REVOKED',
  // collateral
  'COLLATERAL_MISSING',
  'COLLATERAL_MALFORMED',
  'COLLATERAL_SIGNATURE_INVALID',
  'COLLATERAL_CHAIN_UNTRUSTED',
  'COLLATERAL_EXPIRED',
  'COLLATERAL_NOT_YET_VALID',
  'COLLATERAL_MISMATCH',
  'CRL_INVALID',
  'CRL_EXPIRED',
  // identity and TCB
  'QE_IDENTITY_MISMATCH',
  'QE_TCB_REVOKED',
  'TDX_MODULE_MISMATCH',
  'TCB_NOT_SUPPORTED',
  'TCB_STATUS_NOT_ALLOWED',
  'ADVISORY_NOT_ALLOWED',
  // policy
  'TD_DEBUG',
  'MEASUREMENT_MISMATCH',
  'REPORTDATA_MISMATCH',
  'POLICY_INVALID',
  // RA-TLS
  'CERT_MALFORMED',
  'CERT_EXPIRED',
  'CERT_NOT_YET_VALID',
  'CERT_TOO_OLD',
  'EVIDENCE_MISSING',
  'EVIDENCE_MALFORMED',
  'PUBKEY_MISMATCH',
  'NONCE_MISMATCH',
  'NONCE_MISSING',
  'NONCE_INVALID',
  'SIMULATED_EVIDENCE',
  // environment
  'EVIDENCE_PROVIDER_UNAVAILABLE',
  'EVIDENCE_PROVIDER_FAILED',
  // a state directory (simulated world, collateral cache) that the process cannot create or write
  'STATE_DIR_UNUSABLE',
  // a file or directory that decides what ratls does (state, configuration, policies, roots) which
  // another user could have written or could swap: owner, mode, writable parent, symbolic link
  'PATH_UNTRUSTED',
  'CONNECTION_FAILED',
  'INTERNAL',
  // attestation service requests and tokens
  'REQUEST_MALFORMED',
  'REQUEST_BASE64_INVALID',
  'REQUEST_TOO_LARGE',
  'RATE_LIMITED',
  'POLICY_UNKNOWN',
  'TOKEN_INVALID',
  'TOKEN_EXPIRED',
  'TOKEN_SIGNATURE_INVALID',
  'TOKEN_KEY_UNKNOWN',
  'TOKEN_ALG_NOT_ALLOWED',
  'TOKEN_CLAIM_MISMATCH',
  'KEY_STORE_FAILED',
  'VERIFY_TIMEOUT',
  // a JWKS fetched over plain http from a non-loopback host: anyone on the path could swap the keys
  'TOKEN_KEYS_INSECURE',
  // collateral older than the policy's minTcbEvaluationDataNumber
  'TCB_EVALUATION_TOO_OLD',
  // event logs (CCEL boot log, runtime log, dstack event log) and the measured workload
  'EVENTLOG_MALFORMED',
  'EVENTLOG_MISSING',
  'EVENTLOG_DIGEST_MISMATCH',
  'EVENTLOG_REPLAY_MISMATCH',
  'WORKLOAD_MISMATCH',
  'WORKLOAD_MODEL_NOT_ALLOWED',
  'WORKLOAD_MODEL_MISSING',
  'RTMR_EXTEND_FAILED',
  // evidence posted in the wrong field of an attestation request (e.g. CCC evidence as "quote")
  'EVIDENCE_FORMAT_MISMATCH',
  // the bearer token of an opt-in listener (the Ollama listener): none configured, or weak or exposed
  'ACCESS_TOKEN_MISSING',
  'ACCESS_TOKEN_INVALID',
  // session-bound evidence (RFC 9266 tls-exporter): it was for another TLS session, or cannot be had
  'SESSION_BINDING_MISMATCH',
  'SESSION_BINDING_UNAVAILABLE',
  // the evidence queue is full (load shedding); retry after the server's Retry-After
  'EVIDENCE_BUSY',
  // the quote comes from a platform (PPID, FMSPC, PCE ID) the policy does not pin
  'PLATFORM_MISMATCH',
] as const;

export type ErrorCode = (typeof ERROR_CODES)[number];

/**
 * Codes that mean the evidence could not be read at all (not a quote, not a certificate, no
 * evidence in it): the attester's failure, which the attest-service answers with 400 rather than a
 * signed result, and which clients report as the VM's fault, not the service's.
 */
export const EVIDENCE_UNREADABLE_CODES: ReadonlySet<ErrorCode> = new Set<ErrorCode>([
  'QUOTE_TRUNCATED',
  'QUOTE_MALFORMED',
  'QUOTE_UNSUPPORTED_VERSION',
  'QUOTE_UNSUPPORTED_TEE',
  'QUOTE_UNSUPPORTED_KEY_TYPE',
  'QUOTE_UNSUPPORTED_BODY',
  'QUOTE_UNSUPPORTED_CERT_DATA',
  'CERT_MALFORMED',
  'EVIDENCE_MISSING',
  'EVIDENCE_MALFORMED',
]);

/** One reason a verification was rejected. */
export interface VerifyError {
  code: ErrorCode;
  /** A sentence a person can act on. */
  message: string;
}

/**
 * The only exception type the parsers and verifiers throw. Anything else escaping them is a bug.
 */
export class RatlsError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'RatlsError';
    this.code = code;
  }
  toJSON(): VerifyError {
    return { code: this.code, message: this.message };
  }
}

/** Wraps an unknown thrown value into a VerifyError without leaking stack traces. */
export function toVerifyError(err: unknown, fallback: ErrorCode = 'INTERNAL'): VerifyError {
  if (err instanceof RatlsError) return { code: err.code, message: err.message };
  const msg = err instanceof Error ? err.message : String(err);
  return { code: fallback, message: `Unexpected failure: ${msg}` };
}
