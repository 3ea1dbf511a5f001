/**
 * The claim set of the attestation service's tokens: what `ratls attest-service` signs and what
 * relying parties read back. Names follow Intel Trust Authority's TDX token, IETF EAT and EAR; the
 * mapping from a verification result lives in src/service/claims.ts, the table in
 * docs/attest-service.md.
 */
import type { JWTPayload } from 'jose';
import type { TcbStatus } from '../core/types.ts';
import type { VerifyError } from '../core/errors.ts';

/** Which REPORTDATA rule bound the caller's nonce and runtime data (docs/attest-service.md). */
export type BindingRule = 'sha512' | 'sha256-zero-padded';

/** EAR appraisal status (draft-ietf-rats-ear): how much a relying party should trust the TD. */
export type EarStatus = 'affirming' | 'warning' | 'contraindicated' | 'none';

/** The claims this service puts in every token, in addition to iss/iat/nbf/exp/jti/aud. */
export interface AttestationClaims extends JWTPayload {
  eat_profile: string;
  ver: string;
  attester_type: 'TDX';
  /** Intel's TCB status (null when verification stopped before one could be derived). */
  attester_tcb_status: TcbStatus | null;
  attester_advisory_ids: string[];
  /** base64url of the runtimeData the caller sent (bound through REPORTDATA). */
  attester_runtime_data?: string;
  /** base64url of the caller's nonce (bound through REPORTDATA or the RA-TLS claims). */
  eat_nonce?: string;
  dbgstat?: 'enabled' | 'disabled-since-boot';
  tdx_mrseam?: string;
  tdx_mrsignerseam?: string;
  tdx_seam_attributes?: string;
  tdx_td_attributes?: string;
  tdx_td_attributes_debug?: boolean;
  tdx_td_attributes_septve_disable?: boolean;
  tdx_td_attributes_protection_keys?: boolean;
  tdx_td_attributes_key_locker?: boolean;
  tdx_td_attributes_perfmon?: boolean;
  tdx_is_debuggable?: boolean;
  tdx_xfam?: string;
  tdx_mrtd?: string;
  tdx_mrconfigid?: string;
  tdx_mrowner?: string;
  tdx_mrownerconfig?: string;
  tdx_rtmr0?: string;
  tdx_rtmr1?: string;
  tdx_rtmr2?: string;
  tdx_rtmr3?: string;
  tdx_report_data?: string;
  tdx_tee_tcb_svn?: string;
  tdx_tee_tcb_svn2?: string;
  tdx_mrservicetd?: string;
  tdx_fmspc?: string;
  tdx_collateral?: { quotehash: string };
  policy_ids_matched: Array<{ id: string; hash: string }>;
  policy_ids_unmatched: Array<{ id: string; hash: string }>;
  'ear.status': EarStatus;
  /** EAR verifier identity (draft-ietf-rats-ear), so EAR libraries can read the token. */
  'ear.verifier-id': { developer: string; build: string };
  /** EAR per-submodule appraisal; one submodule, the TD's CPU, as the Trustee attestation service reports it. */
  submods: { cpu0: { 'ear.status': EarStatus; 'ear.appraisal-policy-id': string } };
  /** The verdict: true only when DCAP, policy and bindings all passed. */
  'x-ratls-ok': boolean;
  'x-ratls-errors': VerifyError[];
  'x-ratls-policy': string;
  /** `quote`, `ratls-certificate`, or `ratls-evidence` (CCC evidence, with or without its certificate). */
  'x-ratls-evidence': 'quote' | 'ratls-certificate' | 'ratls-evidence';
  /** The time the evidence was appraised at (normally equal to iat). */
  'x-ratls-verified-at': number;
  'x-ratls-reportdata-binding'?: BindingRule | 'ratls-claims';
  /** SHA-256 (hex) of the RA-TLS certificate DER, when a certificate was sent (alone or with evidence). */
  'x-ratls-cert-sha256'?: string;
  /** The evidence claims' pubkey-hash, `<alg>:<hex>` (e.g. `sha-256:...`): the key the TD vouched for. */
  'x-ratls-pubkey-hash'?: string;
  /** Present and true only when the evidence chained to a configured non-Intel (simulated) root. */
  'x-ratls-simulated'?: true;
}
