/**
 * RA-TLS certificate verification: certificate validity, evidence extension decoding, DCAP
 * verification of the quote (stapled, supplied or fetched collateral), the binding
 * H(claims) == REPORTDATA and pubkey-hash == H(this certificate's SPKI), the appraisal policy and
 * an optional expected nonce. Never throws; every failure is a coded reason in the result.
 *
 * Browser-safe: WebCrypto, @peculiar/x509 (through certificate.ts), cbor2; time is a parameter.
 */
import { CheckRecorder } from '../core/checks.ts';
import { RatlsError, toVerifyError } from '../core/errors.ts';
import type { AppraisalPolicy, Collateral, QuoteSummary, VerificationResult } from '../core/types.ts';
import type { CollateralSource } from '../collateral/types.ts';
import { fetchCollateral } from '../collateral/chain.ts';
import { collateralMatches } from '../collateral/inspect.ts';
import { parseQuote } from '../quote/parse.ts';
import { sgxQuoteReportData } from '../quote/identify.ts';
import type { Quote } from '../quote/types.ts';
import { summarizeQuote } from '../quote/summary.ts';
import { pckInfoFromQuote } from '../verify/pck.ts';
import { verifyQuote } from '../verify/dcap.ts';
import { constantTimeEqual, digest, toHex } from '../core/bytes.ts';
import { claimsBindKey, decodeClaims, reportDataForClaims, type RatlsClaims } from './claims.ts';
import { decodeEndorsements, decodeEvidence, OID_DSTACK_QUOTE, OID_RATLS_ENDORSEMENTS, OID_RATLS_EVIDENCE } from './extension.ts';
import { dstackReportData } from './identity.ts';
import { readRatlsCertificate, type RatlsCertificateView } from './certificate.ts';
import type { WorkloadReport } from '../eventlog/workload-report.ts';
import type { DstackEvent } from '../eventlog/dstack.ts';
import { extractDstackEvidence, OID_DSTACK_ATTESTATION } from './dstack-evidence.ts';
import { withWorkload } from './workload-check.ts';
import { describeForeignEvidence } from './foreign-evidence.ts';

/** Inputs to {@link verifyRatlsCertificate} and {@link verifyRatlsEvidence}. */
export interface VerifyRatlsOptions {
  /** Verification time; the verifier never reads the clock. */
  now: Date;
  /** Trusted roots (PEM or DER). Default: the pinned Intel SGX Root CA only. */
  trustedRoots?: Array<string | Uint8Array>;
  policy?: AppraisalPolicy;
  /** Collateral to use as is (takes precedence over stapled and fetched collateral). */
  collateral?: Collateral;
  /** Where to fetch collateral when the certificate staples none that is current. Stapled is tried first. */
  collateralSources?: CollateralSource[];
  /** When set, the claims must carry exactly this nonce. */
  expectedNonce?: Uint8Array;
  /** When set, certificates whose notBefore is longer ago than this are rejected (CERT_TOO_OLD). */
  maxCertAgeSeconds?: number;
}

/** RA-TLS facts of a verified certificate or evidence. */
export interface RatlsInfo {
  profile: 'ccc' | 'dstack';
  /** 'SHA-256' | 'SHA-384' | 'SHA-512' (ccc); 'SHA-512' for dstack's REPORTDATA. */
  pubkeyHashAlg: string;
  /** Nonce from the claims, lower-case hex, or null. */
  nonce: string | null;
  /** The "runtime-log" claim (hex), when the server binds its runtime event log through claims. */
  runtimeLog?: string;
}

/** Certificate facts reported with the result. */
export interface RatlsCertificateInfo {
  notBefore: string;
  notAfter: string;
  fingerprintSha256: string;
  subject: string;
}

/** Result of RA-TLS verification: the quote verification result plus RA-TLS facts. */
export type RatlsVerificationResult = VerificationResult & {
  ratls: RatlsInfo | null;
  certificate: RatlsCertificateInfo | null;
  /** What answers: the replayed event logs (models, versions, boot events), when they were checked. */
  workload?: WorkloadReport;
};

/**
 * Extensions a critical flag may sit on: the usual ones of a TLS server certificate (constraints,
 * key usages, names, key identifiers, policies) and the evidence extensions themselves.
 */
const UNDERSTOOD_CRITICAL = new Set([
  '2.5.29.14', // subjectKeyIdentifier
  '2.5.29.15', // keyUsage
  '2.5.29.17', // subjectAltName
  '2.5.29.19', // basicConstraints
  '2.5.29.32', // certificatePolicies
  '2.5.29.35', // authorityKeyIdentifier
  '2.5.29.37', // extKeyUsage
  OID_RATLS_EVIDENCE,
  OID_RATLS_ENDORSEMENTS,
  OID_DSTACK_QUOTE,
  OID_DSTACK_ATTESTATION,
]);

/** A result that stopped before DCAP verification: what was recorded, never ok. */
export function stopped(rec: CheckRecorder, certificate: RatlsCertificateInfo | null = null, ratls: RatlsInfo | null = null): RatlsVerificationResult {
  return { ...rec.result(), ok: false, ratls, certificate };
}

/** Where the quote and its binding come from. */
export interface Evidence {
  profile: 'ccc' | 'dstack';
  quote: Uint8Array;
  claims: RatlsClaims | null;
  claimsBuffer: Uint8Array | null;
  /** dstack: which extension held the quote, and the event log it came with. */
  dstackSource?: string;
  dstackEvents?: DstackEvent[];
}

/** Verifies an RA-TLS certificate (DER). Never throws. */
export async function verifyRatlsCertificate(der: Uint8Array, opts: VerifyRatlsOptions): Promise<RatlsVerificationResult> {
  const rec = new CheckRecorder();
  if (!validTime(rec, opts)) return stopped(rec);
  try {
    let cert: RatlsCertificateView;
    try {
      cert = readRatlsCertificate(der);
    } catch (err) {
      rec.failWith('certificate', err, 'CERT_MALFORMED');
      return stopped(rec);
    }
    const info: RatlsCertificateInfo = {
      notBefore: cert.notBefore.toISOString(),
      notAfter: cert.notAfter.toISOString(),
      fingerprintSha256: toHex(await digest('SHA-256', der)),
      subject: cert.subject,
    };
    checkValidity(rec, cert, opts);
    const spkiDer = cert.spkiDer;
    await checkIssuer(rec, cert);

    // RFC 5280 forbids repeats; with two evidence extensions different verifiers could read different ones.
    const dup = [OID_RATLS_EVIDENCE, OID_RATLS_ENDORSEMENTS, OID_DSTACK_QUOTE, OID_DSTACK_ATTESTATION].find((oid) => cert.extensionsOf(oid).length > 1);
    if (dup) {
      rec.fail('evidence extension', {
        code: 'CERT_MALFORMED',
        message: `The certificate carries extension ${dup} more than once; it is malformed or crafted to confuse verifiers.`,
      });
      return stopped(rec, info);
    }
    // RFC 5280 4.2: a critical extension the verifier does not process makes the certificate invalid;
    // nothing else checks it here, because the WebPKI check is off for RA-TLS peers.
    const unknownCritical = cert.extensions.find((e) => e.critical && !UNDERSTOOD_CRITICAL.has(e.type));
    if (unknownCritical) {
      rec.fail('critical extensions', {
        code: 'CERT_MALFORMED',
        message: `The certificate marks extension ${unknownCritical.type} critical and this verifier does not understand it, so it must reject the certificate (RFC 5280).`,
      });
      return stopped(rec, info);
    }
    let evidence: Evidence;
    try {
      evidence = await extractEvidence(cert);
      rec.pass('evidence extension', evidence.profile === 'ccc' ? OID_RATLS_EVIDENCE : (evidence.dstackSource ?? OID_DSTACK_QUOTE));
    } catch (err) {
      rec.failWith('evidence extension', err, 'EVIDENCE_MALFORMED');
      return stopped(rec, info);
    }

    let stapled: Collateral | undefined;
    let stapleUnusable = false;
    const endorsements = cert.extensionsOf(OID_RATLS_ENDORSEMENTS)[0];
    if (endorsements) {
      const value = endorsements.value;
      try {
        stapled = decodeEndorsements(value).collateral;
        rec.pass('stapled collateral', 'decoded');
      } catch (err) {
        // A broken staple (rats-rs, for one, always sends an empty extension) carries nothing, so it
        // is reported and skipped: the verdict rests on whatever collateral the other sources supply.
        stapleUnusable = true;
        const why = value.length === 0 ? `the extension ${OID_RATLS_ENDORSEMENTS} is empty` : toVerifyError(err, 'COLLATERAL_MALFORMED').message;
        rec.warn('stapled collateral', `not used: ${why}; collateral is taken from the other sources`);
      }
    }
    const result = await verifyEvidenceParts(rec, evidence, spkiDer, opts, stapled, stapleUnusable);
    // dstack certificates carry their event log: only its RTMR3 runtime events survive dstack's stripping
    if (evidence.dstackEvents) {
      const w = opts.policy?.workload;
      return { ...(await withWorkload(result, { dstack: { events: evidence.dstackEvents, registers: [3] }, ...(w ? { policy: w } : {}) })), certificate: info };
    }
    return { ...result, certificate: info };
  } catch (err) {
    rec.failWith('internal', err);
    return stopped(rec);
  }
}

/**
 * Verifies evidence fetched from `/.well-known/ratls/evidence?nonce=...` (CBOR tag 60000) against
 * the SPKI of the TLS connection it came over. Pass `expectedNonce` to require the nonce. Never throws.
 */
export async function verifyRatlsEvidence(evidence: Uint8Array, spkiDer: Uint8Array, opts: VerifyRatlsOptions): Promise<RatlsVerificationResult> {
  const rec = new CheckRecorder();
  if (!validTime(rec, opts)) return stopped(rec);
  try {
    let ev: Evidence;
    try {
      const { quote, claimsBuffer } = decodeEvidence(evidence);
      ev = { profile: 'ccc', quote, claimsBuffer, claims: decodeClaims(claimsBuffer) };
      rec.pass('evidence');
    } catch (err) {
      rec.failWith('evidence', err, 'EVIDENCE_MALFORMED');
      return stopped(rec);
    }
    return await verifyEvidenceParts(rec, ev, spkiDer, opts, undefined);
  } catch (err) {
    rec.failWith('internal', err);
    return stopped(rec);
  }
}

/** Every time comparison against an invalid Date is false, which would pass checks: fail closed. */
export function validTime(rec: CheckRecorder, opts: VerifyRatlsOptions): boolean {
  if (opts && opts.now instanceof Date && !Number.isNaN(opts.now.getTime())) return true;
  rec.fail('verification time', { code: 'INTERNAL', message: 'The verification time is missing or not a valid date; pass options.now.' });
  return false;
}

/**
 * The certificate's own signature. A self-issued certificate must verify with its own key, or it was
 * altered after issuance. A certificate issued by another name (a CA, as the CCC format allows) is
 * accepted without looking at the CA: the evidence binds the certificate's key, and the issuer adds
 * no trust, so its signature is not checked.
 */
async function checkIssuer(rec: CheckRecorder, cert: RatlsCertificateView): Promise<void> {
  // undefined: an algorithm WebCrypto lacks, e.g. a CA's RSA-PSS signature
  const selfSigned = await cert.verifiesWithOwnKey();
  if (selfSigned) {
    rec.pass('certificate signature');
    return;
  }
  const subject = cert.subjectNameDer;
  const issuer = cert.issuerNameDer;
  if (subject.length === issuer.length && constantTimeEqual(subject, issuer)) {
    rec.fail('certificate signature', {
      code: 'CERT_MALFORMED',
      message:
        selfSigned === false
          ? 'The certificate is self-issued but its signature does not verify with its own key; it was altered after issuance.'
          : 'The self-issued certificate signature could not be checked (unsupported key or signature algorithm).',
    });
    return;
  }
  rec.pass(
    'certificate issuer',
    `not self-signed (issued by "${cert.issuer}"); issuer not used for trust: the evidence binds this certificate's key, so the issuer's signature is not checked`,
  );
}

function checkValidity(rec: CheckRecorder, cert: RatlsCertificateView, opts: VerifyRatlsOptions): void {
  const now = opts.now.getTime();
  if (now < cert.notBefore.getTime()) {
    rec.fail('certificate validity', {
      code: 'CERT_NOT_YET_VALID',
      message: `The certificate is valid only from ${cert.notBefore.toISOString()}; check this machine's clock or the server's.`,
    });
  } else if (now > cert.notAfter.getTime()) {
    rec.fail('certificate validity', {
      code: 'CERT_EXPIRED',
      message:
        `The certificate expired at ${cert.notAfter.toISOString()}. From a live server this means it failed to rotate it: retry later or report it to the operator. ` +
        `To check an archived certificate as it stood, verify it at a time inside its validity (CLI: --at ${cert.notBefore.toISOString()}; API: options.now), with collateral valid then.`,
    });
  } else rec.pass('certificate validity', `${cert.notBefore.toISOString()} .. ${cert.notAfter.toISOString()}`);
  if (opts.maxCertAgeSeconds !== undefined && now - cert.notBefore.getTime() > opts.maxCertAgeSeconds * 1000) {
    rec.fail('certificate age', {
      code: 'CERT_TOO_OLD',
      message: `The certificate was issued at ${cert.notBefore.toISOString()}, more than ${opts.maxCertAgeSeconds} s ago; ask for fresh evidence with a nonce or relax maxCertAgeSeconds.`,
    });
  }
}

async function extractEvidence(cert: RatlsCertificateView): Promise<Evidence> {
  const ext = cert.extensionsOf(OID_RATLS_EVIDENCE)[0];
  if (ext) {
    const { quote, claimsBuffer } = decodeEvidence(ext.value);
    return { profile: 'ccc', quote, claimsBuffer, claims: decodeClaims(claimsBuffer) };
  }
  const dstack = await extractDstackEvidence(cert);
  if (dstack) {
    return {
      profile: 'dstack',
      quote: dstack.quote,
      claims: null,
      claimsBuffer: null,
      dstackSource: dstack.source,
      ...(dstack.events ? { dstackEvents: dstack.events } : {}),
    };
  }
  const foreign = describeForeignEvidence(cert.extensions);
  throw new RatlsError(
    'EVIDENCE_MISSING',
    foreign
      ? `The certificate has no RA-TLS evidence in a format ratls verifies (CCC ${OID_RATLS_EVIDENCE}, dstack ${OID_DSTACK_QUOTE} or ${OID_DSTACK_ATTESTATION}). ${foreign} Check that server with its own project's verifier, or run ratls serve in front of it.`
      : `The certificate has no RA-TLS evidence extension (${OID_RATLS_EVIDENCE}); the server is not an RA-TLS endpoint or attestation is switched off.`,
  );
}

/**
 * The checks every kind of evidence shares: REPORTDATA and key binding, the nonce when expected,
 * collateral choice, then DCAP and the policy. Session evidence (verify-session.ts) runs it after
 * its own binding check.
 */
export async function verifyEvidenceParts(
  rec: CheckRecorder,
  ev: Evidence,
  spkiDer: Uint8Array,
  opts: VerifyRatlsOptions,
  stapled: Collateral | undefined,
  stapleUnusable = false,
): Promise<RatlsVerificationResult> {
  const ratls: RatlsInfo = {
    profile: ev.profile,
    pubkeyHashAlg: ev.claims ? ev.claims.pubkeyHashAlg : 'SHA-512',
    nonce: ev.claims?.nonce ? toHex(ev.claims.nonce) : null,
    ...(ev.claims?.runtimeLog ? { runtimeLog: toHex(ev.claims.runtimeLog) } : {}),
  };
  let parsed: Quote | undefined;
  let parseError: unknown;
  try {
    parsed = parseQuote(ev.quote);
  } catch (err) {
    parseError = err;
  }
  // An SGX enclave's certificate (Gramine, rats-tls, Intel SGX SDK) is refused below, but its
  // REPORTDATA sits at a fixed offset: checking the binding first shows the evidence is well formed.
  const reportData = parsed?.body.reportData ?? sgxQuoteReportData(ev.quote);
  if (!reportData) {
    rec.failWith('quote structure', parseError, 'QUOTE_MALFORMED');
    return stopped(rec, null, ratls);
  }

  // Binding: the quote must have been made for these claims, and the claims for this key.
  if (ev.profile === 'ccc') {
    const expected = await reportDataForClaims(ev.claimsBuffer!);
    if (!constantTimeEqual(expected, reportData)) {
      rec.fail('REPORTDATA binding', {
        code: 'REPORTDATA_MISMATCH',
        message:
          `The quote's REPORTDATA (${toHex(reportData.subarray(0, 8))}...) is not SHA-256 of the certificate's claims followed by zeros (${toHex(expected.subarray(0, 8))}...): ` +
          'the quote was not produced for this certificate (for example, a quote copied from another machine or certificate).',
      });
    } else rec.pass('REPORTDATA binding', 'REPORTDATA = SHA-256(claims) || 0^32');
    if (!(await claimsBindKey(ev.claims!, spkiDer))) {
      rec.fail('public key binding', {
        code: 'PUBKEY_MISMATCH',
        message: `The pubkey-hash claim does not match ${ev.claims!.pubkeyHashAlg} of this certificate's public key: the evidence belongs to a different key (key swapped or evidence transplanted).`,
      });
    } else rec.pass('public key binding', `pubkey-hash = ${ev.claims!.pubkeyHashAlg}(SPKI)`);
  } else {
    const expected = await dstackReportData(spkiDer);
    if (!constantTimeEqual(expected, reportData)) {
      rec.fail('REPORTDATA binding', {
        code: 'REPORTDATA_MISMATCH',
        message:
          'The quote\'s REPORTDATA is not SHA-512("ratls-cert:" || SPKI) of this certificate\'s key (dstack profile): the quote was made for another key.',
      });
    } else rec.pass('REPORTDATA binding', 'REPORTDATA = SHA-512("ratls-cert:" || SPKI)');
  }

  if (!parsed) {
    rec.failWith('quote structure', parseError, 'QUOTE_MALFORMED');
    return stopped(rec, null, ratls);
  }

  if (opts.expectedNonce) {
    const got = ev.claims?.nonce;
    if (!got) {
      rec.fail('nonce', {
        code: 'NONCE_MISSING',
        message: 'A nonce was expected but the evidence carries none; the server did not answer the freshness challenge.',
      });
    } else if (!constantTimeEqual(got, opts.expectedNonce)) {
      rec.fail('nonce', {
        code: 'NONCE_MISMATCH',
        message: 'The evidence carries a different nonce than the one sent: it is a replay or belongs to another request.',
      });
    } else rec.pass('nonce');
  }

  // Collateral: explicit, else stapled (if current), else sources; a stale staple is still handed
  // to DCAP when nothing better exists, so the result names the exact expiry rather than "missing".
  let collateral = opts.collateral;
  let collateralSource = 'supplied';
  if (!collateral) {
    try {
      const pck = pckInfoFromQuote(parsed);
      const minEval = opts.policy?.minTcbEvaluationDataNumber;
      const request = { fmspc: pck.fmspc, pckCa: pck.pckCa, now: opts.now, ...(minEval !== undefined ? { minTcbEvaluationDataNumber: minEval } : {}) };
      if (stapled && collateralMatches(stapled, request)) {
        collateral = stapled;
        collateralSource = 'stapled';
      } else if (opts.collateralSources && opts.collateralSources.length > 0) {
        try {
          const got = await fetchCollateral(opts.collateralSources, request);
          collateral = got.collateral;
          collateralSource = got.source;
        } catch (err) {
          if (!stapled) throw err;
        }
      }
      if (!collateral && stapled) {
        collateral = stapled;
        collateralSource = 'stapled (not current)';
      }
      if (!collateral) {
        throw new RatlsError(
          'COLLATERAL_MISSING',
          `No collateral: the certificate staples ${stapleUnusable ? 'only an unusable extension' : 'none'} and no collateral source was configured. ` +
            `Give Intel collateral for its platform (FMSPC ${pck.fmspc}, ${pck.pckCa} PCK CA): a collateral directory (CLI: --collateral DIR), or a policy whose collateral section names a PCCS or Intel PCS (CLI: --policy FILE; API: collateralSources).`,
        );
      }
    } catch (err) {
      rec.failWith('collateral', err, 'COLLATERAL_MISSING');
    }
  }

  // a staple or cache older than the policy's minimum is skipped above; if nothing newer was found
  // (or collateral was supplied), verifyQuote reports TCB_EVALUATION_TOO_OLD from the signed data

  if (!collateral) {
    // The reason is recorded above; the quote's fields are still worth reporting.
    let summary: QuoteSummary | null;
    try {
      summary = summarizeQuote(parsed);
    } catch {
      summary = null;
    }
    return { ...rec.result({ quote: summary }), ok: false, ratls, certificate: null };
  }
  rec.pass('collateral', collateralSource);
  const policy: AppraisalPolicy | undefined = opts.policy ? { ...opts.policy } : undefined;
  // Raw-quote REPORTDATA pinning makes no sense here: RA-TLS binds REPORTDATA itself.
  if (policy) delete policy.reportData;
  const base = await verifyQuote(ev.quote, {
    collateral,
    now: opts.now,
    ...(opts.trustedRoots ? { trustedRoots: opts.trustedRoots } : {}),
    ...(policy ? { policy } : {}),
  });
  return { ...rec.around(base), ratls, certificate: null };
}
