/**
 * Maps a verification result to the claims of an attestation token. Names follow Intel Trust
 * Authority's TDX token (`tdx_*`, `attester_*`, `policy_ids_*`), the IETF EAT claims (`eat_nonce`,
 * `eat_profile`, `dbgstat`) and the EAR status vocabulary used by the Confidential Containers
 * attestation service (`ear.status`); fields specific to this service are prefixed `x-ratls-`.
 * The full table is in docs/attest-service.md.
 */
import { allAdvisoryIds, type QuoteSummary, type VerificationResult } from '../core/types.ts';
import type { AttestationClaims, BindingRule, EarStatus } from '../token/claims.ts';

export type { AttestationClaims, EarStatus } from '../token/claims.ts';

/** EAT profile identifying this claim set (a tag URI, so it never needs to resolve). */
export const EAT_PROFILE = 'tag:ratls-proxy,2025:attest-service:tdx:v1';

/** Build identifier in `ear.verifier-id` (bump with the claim set). */
const VERIFIER_BUILD = '0.1.0';

/** What the service knows after verification. */
export interface ClaimInputs {
  result: VerificationResult;
  policyName: string;
  policyHash: string;
  evidence: 'quote' | 'ratls-certificate' | 'ratls-evidence';
  quoteHash?: string;
  certificateSha256?: string;
  /** The RA-TLS claims' pubkey-hash, `<alg>:<hex>` (evidence only). */
  pubkeyHash?: string;
  nonce?: Uint8Array;
  runtimeData?: Uint8Array;
  binding?: BindingRule | 'ratls-claims';
  verifiedAt: Date;
}

// TD_ATTRIBUTES bits (Intel TDX module ABI): the hex string is little-endian bytes of a u64
const TD_ATTR_DEBUG = 0n;
const TD_ATTR_SEPT_VE_DISABLE = 28n;
const TD_ATTR_PKS = 30n;
const TD_ATTR_KL = 31n;
const TD_ATTR_PERFMON = 63n;

function leU64(hex: string): bigint {
  let v = 0n;
  for (let i = hex.length - 2; i >= 0; i -= 2) v = (v << 8n) | BigInt(parseInt(hex.slice(i, i + 2), 16));
  return v;
}

function bit(v: bigint, n: bigint): boolean {
  return ((v >> n) & 1n) === 1n;
}

function b64url(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString('base64url');
}

function earStatus(r: VerificationResult): EarStatus {
  if (!r.ok) return 'contraindicated';
  return r.tcbStatus === 'UpToDate' ? 'affirming' : 'warning';
}

function quoteClaims(q: QuoteSummary): Partial<AttestationClaims> {
  const attrs = leU64(q.tdAttributes);
  const c: Partial<AttestationClaims> = {
    dbgstat: q.debug ? 'enabled' : 'disabled-since-boot',
    tdx_mrseam: q.mrSeam,
    tdx_mrsignerseam: q.mrSignerSeam,
    tdx_seam_attributes: q.seamAttributes,
    tdx_td_attributes: q.tdAttributes,
    tdx_td_attributes_debug: bit(attrs, TD_ATTR_DEBUG),
    tdx_td_attributes_septve_disable: bit(attrs, TD_ATTR_SEPT_VE_DISABLE),
    tdx_td_attributes_protection_keys: bit(attrs, TD_ATTR_PKS),
    tdx_td_attributes_key_locker: bit(attrs, TD_ATTR_KL),
    tdx_td_attributes_perfmon: bit(attrs, TD_ATTR_PERFMON),
    tdx_is_debuggable: q.debug,
    tdx_xfam: q.xfam,
    tdx_mrtd: q.mrTd,
    tdx_mrconfigid: q.mrConfigId,
    tdx_mrowner: q.mrOwner,
    tdx_mrownerconfig: q.mrOwnerConfig,
    tdx_rtmr0: q.rtmr0,
    tdx_rtmr1: q.rtmr1,
    tdx_rtmr2: q.rtmr2,
    tdx_rtmr3: q.rtmr3,
    tdx_report_data: q.reportData,
    tdx_tee_tcb_svn: q.teeTcbSvn,
  };
  if (q.teeTcbSvn2 !== undefined) c.tdx_tee_tcb_svn2 = q.teeTcbSvn2;
  if (q.mrServiceTd !== undefined) c.tdx_mrservicetd = q.mrServiceTd;
  if (q.fmspc !== undefined) c.tdx_fmspc = q.fmspc;
  return c;
}

/** Builds the claim set (without the registered JWT claims, which the signer adds). */
export function buildClaims(input: ClaimInputs): AttestationClaims {
  const { result } = input;
  const policyRef = { id: input.policyName, hash: input.policyHash };
  const claims: AttestationClaims = {
    eat_profile: EAT_PROFILE,
    ver: '1.0',
    attester_type: 'TDX',
    attester_tcb_status: result.tcbStatus,
    // every advisory that applies (platform, TDX module, QE), as before the result split them
    attester_advisory_ids: allAdvisoryIds(result),
    ...(result.quote ? quoteClaims(result.quote) : {}),
    policy_ids_matched: result.ok ? [policyRef] : [],
    policy_ids_unmatched: result.ok ? [] : [policyRef],
    'ear.status': earStatus(result),
    'ear.verifier-id': { developer: 'ratls-proxy', build: `ratls-proxy attest-service ${VERIFIER_BUILD}` },
    submods: { cpu0: { 'ear.status': earStatus(result), 'ear.appraisal-policy-id': `${input.policyName}@sha256:${input.policyHash}` } },
    'x-ratls-ok': result.ok,
    'x-ratls-errors': result.errors.map((e) => ({ code: e.code, message: e.message })),
    'x-ratls-policy': input.policyName,
    'x-ratls-evidence': input.evidence,
    'x-ratls-verified-at': Math.floor(input.verifiedAt.getTime() / 1000),
  };
  if (input.quoteHash) claims.tdx_collateral = { quotehash: input.quoteHash };
  if (input.certificateSha256) claims['x-ratls-cert-sha256'] = input.certificateSha256;
  if (input.pubkeyHash) claims['x-ratls-pubkey-hash'] = input.pubkeyHash;
  if (input.nonce) claims.eat_nonce = b64url(input.nonce);
  if (input.runtimeData) claims.attester_runtime_data = b64url(input.runtimeData);
  if (input.binding) claims['x-ratls-reportdata-binding'] = input.binding;
  if (result.nonIntelRoot) claims['x-ratls-simulated'] = true;
  return claims;
}
