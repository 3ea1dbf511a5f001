/**
 * The quote fields an attestation token states, in the shape the policy code reads (hex strings
 * and the DEBUG flag), so a relying party can hold a token to its own policy file with the same
 * rules, codes and report as a quote it verified itself.
 */
import type { AppraisedQuote } from '../verify/policy.ts';
import type { AttestationClaims } from './claims.ts';

const HEX48 = /^[0-9a-f]{96}$/;
const HEX8 = /^[0-9a-f]{16}$/;
const HEX64 = /^[0-9a-f]{128}$/;
const HEX_ANY = /^[0-9a-f]{0,256}$/;

/** Reported when present; not needed by any policy rule. */
const OPTIONAL = [
  ['tdx_mrsignerseam', 'mrSignerSeam'],
  ['tdx_seam_attributes', 'seamAttributes'],
  ['tdx_mrconfigid', 'mrConfigId'],
  ['tdx_mrowner', 'mrOwner'],
  ['tdx_mrownerconfig', 'mrOwnerConfig'],
  ['tdx_tee_tcb_svn', 'teeTcbSvn'],
  ['tdx_tee_tcb_svn2', 'teeTcbSvn2'],
  ['tdx_mrservicetd', 'mrServiceTd'],
  ['tdx_fmspc', 'fmspc'],
] as const satisfies ReadonlyArray<readonly [keyof AttestationClaims, keyof AppraisedQuote]>;

function hex(claims: AttestationClaims, claim: keyof AttestationClaims, format: RegExp): string | undefined {
  const v = claims[claim];
  return typeof v === 'string' && format.test(v) ? v : undefined;
}

/**
 * The measurements of a (verified) token, or null when it does not carry all of them in the
 * expected form (the service could not parse the quote). DEBUG comes from
 * `tdx_td_attributes_debug`, which must agree with bit 0 of `tdx_td_attributes`.
 *
 * @example
 * const q = quoteFieldsFromClaims(claims);
 * const errors = q ? applyPolicy(q, claims.attester_tcb_status, claims.attester_advisory_ids, policy.appraisal) : [];
 */
export function quoteFieldsFromClaims(claims: AttestationClaims): AppraisedQuote | null {
  const mrTd = hex(claims, 'tdx_mrtd', HEX48);
  const rtmr0 = hex(claims, 'tdx_rtmr0', HEX48);
  const rtmr1 = hex(claims, 'tdx_rtmr1', HEX48);
  const rtmr2 = hex(claims, 'tdx_rtmr2', HEX48);
  const rtmr3 = hex(claims, 'tdx_rtmr3', HEX48);
  const mrSeam = hex(claims, 'tdx_mrseam', HEX48);
  const xfam = hex(claims, 'tdx_xfam', HEX8);
  const tdAttributes = hex(claims, 'tdx_td_attributes', HEX8);
  const reportData = hex(claims, 'tdx_report_data', HEX64);
  const debug = claims.tdx_td_attributes_debug;
  if (!mrTd || !rtmr0 || !rtmr1 || !rtmr2 || !rtmr3 || !mrSeam || !xfam || !tdAttributes || !reportData || typeof debug !== 'boolean') return null;
  // TD attributes are little-endian: bit 0 is the low bit of the first byte
  if (debug !== ((parseInt(tdAttributes.slice(0, 2), 16) & 1) === 1)) return null;
  const q: AppraisedQuote = { mrTd, rtmr0, rtmr1, rtmr2, rtmr3, mrSeam, xfam, tdAttributes, reportData, debug };
  for (const [claim, field] of OPTIONAL) {
    const v = hex(claims, claim, HEX_ANY);
    if (v !== undefined) q[field] = v;
  }
  return q;
}
