/**
 * Reads the few unsigned facts a source or cache needs from collateral: which FMSPC and PCK CA it
 * is for and until when it may be used. Nothing here is trusted; the verifier checks signatures.
 */
import type { Collateral } from '../core/types.ts';
import type { VerifyError } from '../core/errors.ts';
import { parseCertificate, parseCrl, pemToDers } from '../verify/x509.ts';
import { splitPemCertificates } from '../quote/parse.ts';
import type { CollateralRequest } from './types.ts';

function jsonField(json: string, outer: string, field: string): unknown {
  try {
    const doc = JSON.parse(json) as Record<string, unknown>;
    const inner = doc[outer];
    return typeof inner === 'object' && inner !== null ? (inner as Record<string, unknown>)[field] : undefined;
  } catch {
    return undefined;
  }
}

function date(v: unknown): Date | undefined {
  if (typeof v !== 'string') return undefined;
  const d = new Date(v);
  return Number.isNaN(d.getTime()) ? undefined : d;
}

function crlNextUpdate(der: Uint8Array): Date | undefined {
  try {
    return parseCrl(der).nextUpdate;
  } catch {
    return undefined;
  }
}

/** The FMSPC the TCB info is for, lower-case hex, or undefined when unreadable. */
export function tcbInfoFmspc(c: Pick<Collateral, 'tcbInfoJson'>): string | undefined {
  const f = jsonField(c.tcbInfoJson, 'tcbInfo', 'fmspc');
  return typeof f === 'string' ? f.toLowerCase() : undefined;
}

/** 'platform' / 'processor' from the PCK CRL issuer chain's first certificate, when recognisable. */
export function pckCrlCa(c: Pick<Collateral, 'pckCrlIssuerChain'>): 'platform' | 'processor' | undefined {
  try {
    // linear split: this runs on a server's stapled collateral before any signature check
    const first = splitPemCertificates(c.pckCrlIssuerChain)[0];
    if (!first) return undefined;
    const subject = parseCertificate(pemToDers(first)[0]!).subjectCn.toLowerCase();
    if (subject.includes('platform')) return 'platform';
    if (subject.includes('processor')) return 'processor';
  } catch {
    // unreadable chain: no opinion, the verifier will reject it
  }
  return undefined;
}

/**
 * The earliest nextUpdate of the TCB info, QE identity and both CRLs: the collateral must not be
 * used at or after this time. Undefined when any of them is unreadable (treated as unusable).
 */
export function collateralValidUntil(c: Collateral): Date | undefined {
  const dates = [
    date(jsonField(c.tcbInfoJson, 'tcbInfo', 'nextUpdate')),
    date(jsonField(c.qeIdentityJson, 'enclaveIdentity', 'nextUpdate')),
    crlNextUpdate(c.pckCrl),
    crlNextUpdate(c.rootCaCrl),
  ];
  let min: Date | undefined;
  for (const d of dates) {
    if (!d) return undefined;
    if (!min || d < min) min = d;
  }
  return min;
}

/**
 * The lower of the TCB info's and QE identity's tcbEvaluationDataNumber (Intel bumps it at each TCB
 * recovery), or undefined when either is unreadable.
 */
export function collateralEvaluationDataNumber(c: Pick<Collateral, 'tcbInfoJson' | 'qeIdentityJson'>): number | undefined {
  const a = jsonField(c.tcbInfoJson, 'tcbInfo', 'tcbEvaluationDataNumber');
  const b = jsonField(c.qeIdentityJson, 'enclaveIdentity', 'tcbEvaluationDataNumber');
  if (!Number.isInteger(a) || !Number.isInteger(b)) return undefined;
  return Math.min(a as number, b as number);
}

/**
 * Checks the policy minimum; the number is read unverified, but the verifier then checks the
 * signatures over the very JSON it came from, so a passing result has an authentic number.
 */
export function evaluationNumberError(c: Collateral, min: number | undefined): VerifyError | undefined {
  if (min === undefined) return undefined;
  const n = collateralEvaluationDataNumber(c);
  if (n !== undefined && n >= min) return undefined;
  return {
    code: 'TCB_EVALUATION_TOO_OLD',
    message:
      `The collateral's tcbEvaluationDataNumber is ${n ?? 'unreadable'}, below the policy minimum ${min}: it predates a TCB recovery the policy requires. ` +
      'Refresh the collateral (server staple, PCCS or cache), or lower tcb.minEvaluationDataNumber.',
  };
}

/** What {@link collateralMatches} reads from collateral; the same for every request, so it can be kept. */
export interface CollateralFacts {
  fmspc: string | undefined;
  ca: 'platform' | 'processor' | undefined;
  evaluationDataNumber: number | undefined;
  validUntil: Date | undefined;
}

/** Reads the facts once (JSON and CRL parsing: worth keeping for collateral used again and again). */
export function collateralFacts(c: Collateral): CollateralFacts {
  return { fmspc: tcbInfoFmspc(c), ca: pckCrlCa(c), evaluationDataNumber: collateralEvaluationDataNumber(c), validUntil: collateralValidUntil(c) };
}

/** {@link collateralMatches} on facts already read. */
export function factsMatch(f: CollateralFacts, req: CollateralRequest): boolean {
  if (f.fmspc !== req.fmspc.toLowerCase()) return false;
  if (f.ca && f.ca !== req.pckCa) return false;
  const min = req.minTcbEvaluationDataNumber;
  if (min !== undefined && !(f.evaluationDataNumber !== undefined && f.evaluationDataNumber >= min)) return false;
  return f.validUntil !== undefined && req.now < f.validUntil;
}

/** True when `c` claims to be for the request's FMSPC and CA, is not past nextUpdate at `now`, and meets the minimum evaluation number. */
export function collateralMatches(c: Collateral, req: CollateralRequest): boolean {
  return factsMatch(collateralFacts(c), req);
}
