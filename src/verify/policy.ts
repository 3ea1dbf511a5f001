/**
 * Appraisal policy applied on top of DCAP verification. Shared by raw quote verification and
 * RA-TLS certificate verification, so both reject the same things with the same codes.
 */
import type { VerifyError } from '../core/errors.ts';
import type { AppraisalPolicy, QuoteSummary, TcbStatus } from '../core/types.ts';
import { TCB_STATUSES } from '../core/types.ts';

/** Statuses accepted when the policy does not say otherwise. */
export const DEFAULT_ALLOWED_TCB_STATUSES: readonly TcbStatus[] = ['UpToDate'];

type MeasurementField = 'mrTd' | 'rtmr0' | 'rtmr1' | 'rtmr2' | 'rtmr3' | 'mrSeam' | 'xfam' | 'tdAttributes';

/**
 * What a policy reads of a quote: its measurements, DEBUG flag and REPORTDATA. An attestation
 * token states these (signed) without the rest of the quote, so it can be appraised the same way.
 */
export type AppraisedQuote = Pick<QuoteSummary, MeasurementField | 'debug' | 'reportData'> & Partial<QuoteSummary>;

const MEASUREMENTS: ReadonlyArray<[MeasurementField, string, number]> = [
  ['mrTd', 'MRTD', 48],
  ['rtmr0', 'RTMR0', 48],
  ['rtmr1', 'RTMR1', 48],
  ['rtmr2', 'RTMR2', 48],
  ['rtmr3', 'RTMR3', 48],
  ['mrSeam', 'MRSEAM', 48],
  ['xfam', 'XFAM', 8],
  ['tdAttributes', 'TD attributes', 8],
];

/** Platform identity from the PCK certificate: which physical machine produced the quote. */
const PLATFORM: ReadonlyArray<['ppid' | 'fmspc' | 'pceId', string, number]> = [
  ['ppid', 'PPID', 16],
  ['fmspc', 'FMSPC', 6],
  ['pceId', 'PCE ID', 2],
];

function normalise(values: string[], bytes: number, label: string, errors: VerifyError[]): string[] | undefined {
  const out: string[] = [];
  for (const v of values) {
    const h = typeof v === 'string' ? v.trim().toLowerCase().replace(/^0x/, '') : '';
    if (!new RegExp(`^[0-9a-f]{${bytes * 2}}$`).test(h)) {
      errors.push({ code: 'POLICY_INVALID', message: `Policy value for ${label} must be ${bytes} bytes of hex; got "${String(v)}".` });
      return undefined;
    }
    out.push(h);
  }
  return out;
}

/**
 * Checks a verified quote's Intel TCB status and fields against `policy`.
 * Returns every violation; an empty array means the policy accepts the quote.
 * A null status (no TCB level matched) is always a violation, so the policy fails closed.
 */
export function applyPolicy(summary: AppraisedQuote, tcbStatus: TcbStatus | null, advisoryIds: string[], policy: AppraisalPolicy = {}): VerifyError[] {
  const errors: VerifyError[] = [];
  const allowed = policy.allowedTcbStatuses ?? DEFAULT_ALLOWED_TCB_STATUSES;
  for (const s of allowed) {
    if (!(TCB_STATUSES as readonly string[]).includes(s)) {
      errors.push({ code: 'POLICY_INVALID', message: `"${String(s)}" is not a TCB status; use one of ${TCB_STATUSES.join(', ')}.` });
    }
  }
  if (tcbStatus === 'Revoked') {
    // Terminal in Intel's guidance (the QVL sample treats SGX_QL_QV_RESULT_REVOKED as a terminal
    // result): revoked keys or TCB can never be accepted, whatever the allow-list says.
    errors.push({
      code: 'TCB_STATUS_NOT_ALLOWED',
      message: "Intel TCB status is Revoked: the platform's keys or TCB are revoked by Intel, which no policy can accept.",
    });
  } else if (tcbStatus === null) {
    errors.push({ code: 'TCB_STATUS_NOT_ALLOWED', message: 'No Intel TCB status could be established for this quote, so the policy cannot accept it.' });
  } else if (!allowed.includes(tcbStatus)) {
    errors.push({
      code: 'TCB_STATUS_NOT_ALLOWED',
      message: `Intel TCB status is ${tcbStatus}, which the policy does not allow (allowed: ${allowed.join(', ') || 'none'}); update the platform or allow it with --allow-status ${tcbStatus}.`,
    });
  }
  if (policy.allowedAdvisoryIds) {
    const ok = new Set(policy.allowedAdvisoryIds.map((a) => a.toUpperCase()));
    const bad = advisoryIds.filter((a) => !ok.has(a.toUpperCase()));
    if (bad.length > 0) {
      errors.push({ code: 'ADVISORY_NOT_ALLOWED', message: `The platform is affected by advisories the policy does not accept: ${bad.join(', ')}.` });
    }
  }
  if (summary.debug && policy.allowDebug !== true) {
    errors.push({
      code: 'TD_DEBUG',
      message: 'The TD runs in DEBUG mode (TD_ATTRIBUTES bit 0), so its memory is readable by the host; it is rejected unless the policy allows debug TDs.',
    });
  }
  for (const [field, label, bytes] of MEASUREMENTS) {
    const want = policy[field];
    if (want === undefined) continue;
    const list = normalise(want, bytes, label, errors);
    if (list && !list.includes(summary[field])) {
      errors.push({
        code: 'MEASUREMENT_MISMATCH',
        message: `${label} is ${summary[field]}, which is not one of the ${list.length} value(s) the policy accepts.`,
      });
    }
  }
  for (const [field, label, bytes] of PLATFORM) {
    const want = policy[field];
    if (want === undefined) continue;
    const list = normalise(want, bytes, label, errors);
    if (!list) continue;
    const got = summary[field];
    // a pin with nothing to compare against fails closed (the PCK certificate could not be read)
    if (got === undefined) {
      errors.push({ code: 'PLATFORM_MISMATCH', message: `The policy pins the ${label} but the quote's PCK certificate gave none to compare; refusing.` });
    } else if (!list.includes(got)) {
      errors.push({
        code: 'PLATFORM_MISMATCH',
        message: `${label} is ${got}, which is not one of the ${list.length} platform(s) the policy pins: the quote was made on another machine (possibly the same image on someone else's hardware).`,
      });
    }
  }
  if (policy.reportData !== undefined) {
    const list = normalise(policy.reportData, 64, 'REPORTDATA', errors);
    if (list && !list.includes(summary.reportData)) {
      errors.push({
        code: 'REPORTDATA_MISMATCH',
        message: `REPORTDATA ${summary.reportData} is not the value the policy expects; the quote was made for other data.`,
      });
    }
  }
  return errors;
}
