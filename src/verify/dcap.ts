/**
 * Intel DCAP verification of TDX quotes, stage by stage as Intel's Quote Verification Library
 * does it (QVL 4.1.2.4), then the appraisal policy. Browser-safe: WebCrypto only, the time is a
 * parameter.
 *
 * Never throws: every failure becomes a VerifyError with a stable code, and every step is
 * recorded in `checks` for the readable report. Each stage below is one function that takes what
 * the previous stages produced and returns what the next ones take; a stage returns undefined when
 * nothing after it can be checked (its checks say why). docs/architecture.md lists the stages.
 */
import { parseQuote, INTEL_QE_VENDOR_ID } from '../quote/parse.ts';
import { summarizeQuote } from '../quote/summary.ts';
import type { Quote } from '../quote/types.ts';
import { concatBytes, constantTimeEqual, isAllZero, toHex } from '../core/bytes.ts';
import { CheckRecorder, type VerificationOutcome } from '../core/checks.ts';
import { RatlsError, type VerifyError } from '../core/errors.ts';
import type { Collateral, QuoteSummary, QvlStatus, TcbStatus, VerificationResult, VerifyQuoteOptions } from '../core/types.ts';
import { buildChain, chainSignatures, chainValidity, COLLATERAL_CODES, isIntelRootCert, PCK_CODES, sameBytes, trustedRoots, type Chain } from './chain.ts';
import { bindingHash, crl, pem, qeIdentityDoc, tcbInfoDoc, type ParsedDoc } from './content-cache.ts';
import { verifyEcdsa, verifyMemo, verifySignedObject } from './crypto.ts';
import { parsePckExtensions, pckCaType, type PckExtensions } from './pck.ts';
import { applyPolicy } from './policy.ts';
import type { QeIdentity } from './qe-identity.ts';
import { checkTdxModuleIdentity, evaluateQeIdentity, evaluateTcb, qvlStatusOf, type Advisories, type QeEvaluation } from './tcb.ts';
import type { TcbInfo } from './tcb-info.ts';
import { crlHasRequiredExtensions, serialHex, type Certificate, type Crl } from './x509.ts';

export { clearVerifierCache } from './content-cache.ts';

/**
 * Verifies a TDX quote against Intel DCAP collateral at `opts.now`, then applies the policy.
 *
 * `tcbStatus` is Intel's status whenever the quote, its PCK chain and the collateral signatures
 * verified, even if time validity or the policy then reject it; null otherwise. `qvlStatus` is
 * Intel's full result then (it adds the TD relaunch results), and the advisory IDs come per matched
 * level: `advisoryIds` (platform, what Intel reports), `tdxModuleAdvisoryIds`, `qeAdvisoryIds`.
 */
export async function verifyQuote(quote: Uint8Array, opts: VerifyQuoteOptions): Promise<VerificationResult> {
  const rec = new CheckRecorder({ codeInDetail: true });
  // The TCB fields are always present in verifyQuote's results (the CLI's JSON contract).
  const outcome: VerificationOutcome = { qvlStatus: null, advisoryIds: [], tdxModuleAdvisoryIds: [], qeAdvisoryIds: [] };
  try {
    await runStages(rec, outcome, quote, opts);
  } catch (err) {
    rec.failWith('verification', err);
  }
  return rec.result(outcome);
}

/** The stages in Intel's order; `outcome` gathers what the result reports about the quote. */
async function runStages(rec: CheckRecorder, outcome: VerificationOutcome, quoteBytes: Uint8Array, opts: VerifyQuoteOptions): Promise<void> {
  const now = verificationTime(rec, opts);
  if (!now) return;

  const read = readQuote(rec, quoteBytes);
  if (!read) return;
  outcome.quote = read.summary;
  if (!intelQuotingEnclave(rec, read.quote)) return;

  const pck = buildPckChain(rec, read.quote, opts);
  if (!pck) return;
  const summary = summarizeQuote(read.quote, { fmspc: pck.extensions.fmspc, pceId: pck.extensions.pceId, ppid: pck.extensions.ppid });
  outcome.quote = summary;
  if (!isIntelRootCert(pck.chain.root)) outcome.nonIntelRoot = true;

  const collateral = readCollateral(rec, pck, opts.collateral);
  if (!collateral) return;

  const signatures = await verifySignatures(read.quote, pck, collateral);
  const revocation = checkRevocation(rec, signatures, pck, collateral, now);
  const documents = checkCollateralFreshness(rec, signatures, pck, collateral, now);
  const moduleOk = checkTdxModule(rec, documents.tcbInfo, read.quote);
  const qeReport = checkQeReport(rec, signatures, documents.qeIdentity, read.quote);

  const inputsVerified = revocation.signaturesOk && documents.signaturesOk && moduleOk && qeReport.signaturesOk;
  const level = matchTcbLevel(rec, inputsVerified ? qeReport.qe : undefined, documents.tcbInfo, pck.extensions, read.quote, revocation.revoked);
  if (level) {
    outcome.tcbStatus = level.tcbStatus;
    outcome.qvlStatus = level.qvlStatus;
    outcome.advisoryIds = level.advisories.platform;
    outcome.tdxModuleAdvisoryIds = level.advisories.tdxModule;
    outcome.qeAdvisoryIds = level.advisories.qe;
  }

  // The policy judges every advisory that applies, not only the platform level's Intel reports.
  const advisories = level ? [...new Set([...level.advisories.platform, ...level.advisories.tdxModule, ...level.advisories.qe])] : [];
  appraise(rec, { summary, tcbStatus: outcome.tcbStatus ?? null, advisoryIds: advisories }, documents, opts);
}

// ---- Verification time ---------------------------------------------------------------------------

/** Every time comparison against an invalid Date is false, which would pass checks: fail closed. */
function verificationTime(rec: CheckRecorder, opts: VerifyQuoteOptions): Date | undefined {
  const now = opts?.now;
  if (now instanceof Date && !Number.isNaN(now.getTime())) return now;
  rec.fail('verification time', { code: 'POLICY_INVALID', message: 'The verification time is not a valid date.' });
  return undefined;
}

// ---- Quote structure: header, TD report body, signature data ------------------------------------

interface ReadQuote {
  quote: Quote;
  summary: QuoteSummary;
}

function readQuote(rec: CheckRecorder, quoteBytes: Uint8Array): ReadQuote | undefined {
  let quote: Quote;
  try {
    quote = parseQuote(quoteBytes);
  } catch (err) {
    rec.failWith('quote structure', err, 'QUOTE_MALFORMED');
    return undefined;
  }
  const summary = summarizeQuote(quote);
  rec.pass(
    'quote structure',
    `TDX quote v${quote.header.version}, body type ${quote.bodyType}, ${quote.length} bytes${quoteBytes.length > quote.length ? ` (+${quoteBytes.length - quote.length} bytes padding ignored)` : ''}`,
  );
  return { quote, summary };
}

/** Only Intel's quoting enclave is supported (the QE identity and PCK chain are Intel's). */
function intelQuotingEnclave(rec: CheckRecorder, quote: Quote): boolean {
  const vendor = toHex(quote.header.qeVendorId);
  if (vendor === INTEL_QE_VENDOR_ID) return true;
  rec.fail('QE vendor', { code: 'QUOTE_QE_VENDOR_UNKNOWN', message: `QE vendor ID ${vendor} is not Intel's; only Intel's quoting enclave is supported.` });
  return false;
}

// ---- PCK chain: Intel SGX Root CA -> PCK Platform/Processor CA -> PCK Certificate ---------------
// Structure only (names, CA flags, length, algorithms) and the PCK certificate's SGX extensions;
// the signatures are checked with all others, and validity with revocation.

interface PckChain {
  roots: Certificate[];
  chain: Chain;
  /** The PCK certificate. */
  leaf: Certificate;
  /** The PCK Platform or Processor CA that issued it. */
  pckCa: Certificate;
  extensions: PckExtensions;
}

function buildPckChain(rec: CheckRecorder, quote: Quote, opts: VerifyQuoteOptions): PckChain | undefined {
  let roots: Certificate[];
  try {
    roots = trustedRoots(opts);
  } catch (err) {
    rec.failWith('trusted roots', err, 'POLICY_INVALID');
    return undefined;
  }
  try {
    const given = quote.certification.pckChainPem.flatMap((p) => pem(p, 'PCK_CHAIN_MALFORMED', 'PCK certificate chain'));
    const chain = buildChain(given, roots, 3, 'PCK certificate chain', PCK_CODES);
    const leaf = chain.certs[0]!;
    const pckCa = chain.certs[1]!;
    if (!leaf.subjectCn.includes('SGX PCK Certificate')) {
      throw new RatlsError('PCK_CHAIN_MALFORMED', `The quote's leaf certificate "${leaf.subjectCn}" is not an SGX PCK Certificate.`);
    }
    if (!pckCaType(pckCa.subjectCn)) {
      throw new RatlsError('PCK_CHAIN_MALFORMED', `The PCK certificate's issuer "${pckCa.subjectCn}" is neither a PCK Platform CA nor a PCK Processor CA.`);
    }
    return { roots, chain, leaf, pckCa, extensions: parsePckExtensions(leaf) };
  } catch (err) {
    rec.failWith('PCK certificate chain', err, 'PCK_CHAIN_MALFORMED');
    return undefined;
  }
}

// ---- Collateral: TCB info and QE identity (Intel SGX Root CA -> TCB Signing), the PCK CRL -------
// (Intel SGX Root CA -> PCK CA, its issuer) and the root CA CRL. Structure only, as for the PCK chain.

interface CollateralParts {
  tcbDoc: ParsedDoc<TcbInfo>;
  qeDoc: ParsedDoc<QeIdentity>;
  rootCrl: Crl;
  pckCrl: Crl;
  tcbChain: Chain;
  qeChain: Chain;
  crlChain: Chain;
  /** The root every chain, the PCK chain's included, ends at. */
  root: Certificate;
}

function readCollateral(rec: CheckRecorder, pck: PckChain, c: Collateral | undefined): CollateralParts | undefined {
  let parts: CollateralParts;
  try {
    if (!c) throw new RatlsError('COLLATERAL_MISSING', `No collateral was given; fetch it for FMSPC ${pck.extensions.fmspc} from Intel PCS or a PCCS.`);
    const tcbDoc = tcbInfoDoc(c.tcbInfoJson);
    const qeDoc = qeIdentityDoc(c.qeIdentityJson);
    if (!(c.rootCaCrl instanceof Uint8Array) || !(c.pckCrl instanceof Uint8Array)) {
      throw new RatlsError('COLLATERAL_MISSING', 'The collateral lacks the root CA CRL or the PCK CRL.');
    }
    const rootCrl = crl(c.rootCaCrl, 'Root CA CRL');
    const pckCrl = crl(c.pckCrl, 'PCK CRL');
    const issuerChain = (text: string | undefined, what: string): Chain =>
      buildChain(pem(text ?? '', 'COLLATERAL_MALFORMED', what), pck.roots, 2, what, COLLATERAL_CODES);
    const tcbChain = issuerChain(c.tcbInfoIssuerChain, 'TCB info issuer chain');
    const qeChain = issuerChain(c.qeIdentityIssuerChain, 'QE identity issuer chain');
    const crlChain = issuerChain(c.pckCrlIssuerChain, 'PCK CRL issuer chain');
    // Only Intel's TCB signing key signs TCB info and QE identities, never a CA or a PCK key.
    for (const [ch, what] of [
      [tcbChain, 'TCB info'],
      [qeChain, 'QE identity'],
    ] as const) {
      const signer = ch.certs[0]!;
      if (!signer.subjectCn.includes('SGX TCB Signing') || signer.isCa) {
        throw new RatlsError('COLLATERAL_CHAIN_UNTRUSTED', `The ${what} is signed by "${signer.subjectCn}", which is not an SGX TCB Signing certificate.`);
      }
    }
    parts = { tcbDoc, qeDoc, rootCrl, pckCrl, tcbChain, qeChain, crlChain, root: pck.chain.root };
  } catch (err) {
    rec.failWith('collateral', err, 'COLLATERAL_MALFORMED');
    return undefined;
  }
  for (const ch of [parts.tcbChain, parts.qeChain, parts.crlChain]) {
    if (!sameBytes(ch.root.der, parts.root.der)) {
      rec.fail('collateral', {
        code: 'COLLATERAL_CHAIN_UNTRUSTED',
        message: 'The collateral is signed under a different root than the PCK certificate chain; both must come from the same PKI.',
      });
      return undefined;
    }
  }
  return parts;
}

// ---- Signatures: every ECDSA signature of the chains, the CRLs, the collateral documents, the ----
// QE report and the quote, started together (WebCrypto runs them on worker threads); the stages
// after this one only read the outcomes.

interface Signatures {
  pckChain: VerifyError | undefined;
  tcbChain: VerifyError | undefined;
  qeChain: VerifyError | undefined;
  crlChain: VerifyError | undefined;
  rootCrl: boolean;
  pckCrl: boolean;
  tcbInfo: boolean;
  qeIdentity: boolean;
  qeReport: boolean;
  quote: boolean;
  /** SHA-256(attestation key || QE auth data), which the QE report data must hold. */
  qeReportDataHash: Uint8Array;
}

async function verifySignatures(quote: Quote, pck: PckChain, c: CollateralParts): Promise<Signatures> {
  const cd = quote.certification;
  const attKey = concatBytes(new Uint8Array([4]), quote.attestationKey);
  const [pckChain, tcbChain, qeChain, crlChain, rootCrl, pckCrl, tcbInfo, qeIdentity, qeReport, quoteSig, qeReportDataHash] = await Promise.all([
    chainSignatures(pck.chain, 'PCK certificate chain', PCK_CODES),
    chainSignatures(c.tcbChain, 'TCB info issuer chain', COLLATERAL_CODES),
    chainSignatures(c.qeChain, 'QE identity issuer chain', COLLATERAL_CODES),
    chainSignatures(c.crlChain, 'PCK CRL issuer chain', COLLATERAL_CODES),
    verifySignedObject(c.rootCrl, c.root),
    verifySignedObject(c.pckCrl, c.crlChain.certs[0]!),
    verifyMemo(c.tcbDoc.verified, c.tcbChain.certs[0]!, 'SHA-256', c.tcbDoc.signedBytes, c.tcbDoc.signature),
    verifyMemo(c.qeDoc.verified, c.qeChain.certs[0]!, 'SHA-256', c.qeDoc.signedBytes, c.qeDoc.signature),
    verifyEcdsa({ format: 'raw', bytes: pck.leaf.publicKey, curve: pck.leaf.curve }, 'SHA-256', cd.qeReport.raw, cd.qeReportSignature),
    verifyEcdsa({ format: 'raw', bytes: attKey, curve: 'P-256' }, 'SHA-256', quote.signedBytes, quote.signature),
    bindingHash(quote.attestationKey, cd.qeAuthData),
  ]);
  return { pckChain, tcbChain, qeChain, crlChain, rootCrl, pckCrl, tcbInfo, qeIdentity, qeReport, quote: quoteSig, qeReportDataHash };
}

// ---- Revocation (QVL 4.1.2.4.1-7): the PCK chain's signatures and validity, the root CA CRL -----
// (signed by the root) and the PCK CRL (Intel SGX Root CA -> PCK CA -> PCK CRL), their freshness,
// and whether any certificate of the PCK or collateral chains is revoked.

interface Revocation {
  /** Every signature and CRL of this stage verified. */
  signaturesOk: boolean;
  /** The PCK certificate or one of the CAs is revoked (Intel then reports the status Revoked). */
  revoked: boolean;
}

function crlCurrent(c: Crl, now: Date, what: string): VerifyError | undefined {
  if (!c.nextUpdate) return { code: 'CRL_INVALID', message: `${what} has no nextUpdate, so its freshness cannot be judged.` };
  if (now < c.thisUpdate)
    return { code: 'CRL_INVALID', message: `${what} is not valid before ${c.thisUpdate.toISOString()} (verification time ${now.toISOString()}).` };
  if (now >= c.nextUpdate)
    return { code: 'CRL_EXPIRED', message: `${what} expired at ${c.nextUpdate.toISOString()}; fetch a current one (verification time ${now.toISOString()}).` };
  return undefined;
}

function checkRevocation(rec: CheckRecorder, sigs: Signatures, pck: PckChain, c: CollateralParts, now: Date): Revocation {
  const { leaf, pckCa } = pck;
  const { rootCrl, pckCrl, crlChain } = c;
  const verified: boolean[] = [];
  verified.push(rec.check('PCK chain signatures', sigs.pckChain, `${pck.chain.certs.map((x) => x.subjectCn).join(' <- ')}`));
  rec.check('PCK chain validity', chainValidity(pck.chain, now, 'PCK certificate chain', PCK_CODES));
  verified.push(
    rec.check(
      'root CA CRL signature',
      sigs.rootCrl && sameBytes(rootCrl.issuerRaw, c.root.subjectRaw)
        ? undefined
        : { code: 'CRL_INVALID', message: 'The root CA CRL is not signed by the trusted root.' },
    ),
  );
  // Intel's QVL refuses CRLs without a CRL number and an authority key identifier.
  for (const [x, name] of [
    [rootCrl, 'root CA CRL'],
    [pckCrl, 'PCK CRL'],
  ] as const) {
    if (!crlHasRequiredExtensions(x)) {
      rec.fail(`${name} extensions`, {
        code: 'CRL_INVALID',
        message: `The ${name} lacks the CRL number or authority key identifier extension Intel's CRLs carry; it is not an Intel CRL.`,
      });
      verified.push(false);
    }
  }
  verified.push(rec.check('PCK CRL issuer chain', sigs.crlChain));
  const pckCrlIssuerOk =
    sameBytes(pckCrl.issuerRaw, leaf.issuerRaw) && sameBytes(crlChain.certs[0]!.subjectRaw, pckCrl.issuerRaw) && /CA/.test(pckCrl.issuerCn);
  verified.push(
    rec.check(
      'PCK CRL signature',
      sigs.pckCrl && pckCrlIssuerOk
        ? undefined
        : { code: 'CRL_INVALID', message: `The PCK CRL is not a valid CRL of "${leaf.issuerCn}", the CA that issued the PCK certificate.` },
    ),
  );
  rec.check(
    'CRL freshness',
    crlCurrent(rootCrl, now, 'The root CA CRL') ??
      crlCurrent(pckCrl, now, 'The PCK CRL') ??
      chainValidity(crlChain, now, 'PCK CRL issuer chain', COLLATERAL_CODES),
  );
  const revokedCa = [pckCa, c.tcbChain.certs[0]!, c.qeChain.certs[0]!, crlChain.certs[0]!].find((x) => rootCrl.revoked.has(serialHex(x)));
  const revokedPck = pckCrl.revoked.has(serialHex(leaf));
  if (revokedCa) {
    rec.fail('revocation', { code: 'PCK_REVOKED', message: `"${revokedCa.subjectCn}" (serial ${serialHex(revokedCa)}) is revoked by the root CA CRL.` });
  } else if (revokedPck) {
    rec.fail('revocation', {
      code: 'PCK_REVOKED',
      message: `The PCK certificate (serial ${serialHex(leaf)}) is revoked by the PCK CRL; the platform's key is no longer trusted.`,
    });
  } else rec.pass('revocation', `${pckCrl.revoked.size} PCK and ${rootCrl.revoked.size} CA revocations checked`);
  return { signaturesOk: verified.every(Boolean), revoked: revokedCa !== undefined || revokedPck };
}

// ---- Collateral freshness (QVL 4.1.2.4.8-10): TCB info and QE identity (Intel SGX Root CA -> -----
// TCB Signing -> document): their signatures, validity at the verification time, and a TCB info
// issued for this platform's FMSPC and PCE ID.

interface CollateralDocuments {
  tcbInfo: TcbInfo;
  qeIdentity: QeIdentity;
  /** Both documents and their issuer chains verified, and the TCB info is this platform's. */
  signaturesOk: boolean;
}

function docFreshness(d: { issueDate: Date; nextUpdate: Date }, now: Date, what: string): VerifyError | undefined {
  if (now < d.issueDate)
    return {
      code: 'COLLATERAL_NOT_YET_VALID',
      message: `${what} was issued at ${d.issueDate.toISOString()}, after the verification time ${now.toISOString()}.`,
    };
  if (now >= d.nextUpdate)
    return {
      code: 'COLLATERAL_EXPIRED',
      message: `${what} expired at ${d.nextUpdate.toISOString()} (verification time ${now.toISOString()}); fetch current collateral.`,
    };
  return undefined;
}

function checkCollateralFreshness(rec: CheckRecorder, sigs: Signatures, pck: PckChain, c: CollateralParts, now: Date): CollateralDocuments {
  const verified = [
    rec.check('TCB info issuer chain', sigs.tcbChain),
    rec.check(
      'TCB info signature',
      sigs.tcbInfo
        ? undefined
        : {
            code: 'COLLATERAL_SIGNATURE_INVALID',
            message: 'The TCB info signature does not verify over its "tcbInfo" text; the TCB info was altered or is not Intel\'s.',
          },
    ),
    rec.check('QE identity issuer chain', sigs.qeChain),
    rec.check(
      'QE identity signature',
      sigs.qeIdentity
        ? undefined
        : {
            code: 'COLLATERAL_SIGNATURE_INVALID',
            message: 'The QE identity signature does not verify over its "enclaveIdentity" text; the QE identity was altered or is not Intel\'s.',
          },
    ),
  ];
  const tcb = c.tcbDoc.value;
  const qeId = c.qeDoc.value;
  rec.check(
    'collateral freshness',
    docFreshness(tcb, now, 'The TCB info') ??
      docFreshness(qeId, now, 'The QE identity') ??
      chainValidity(c.tcbChain, now, 'TCB info issuer chain', COLLATERAL_CODES) ??
      chainValidity(c.qeChain, now, 'QE identity issuer chain', COLLATERAL_CODES),
    `TCB info until ${tcb.nextUpdate.toISOString()}, QE identity until ${qeId.nextUpdate.toISOString()}`,
  );
  const { fmspc, pceId } = pck.extensions;
  verified.push(
    rec.check(
      'TCB info matches platform',
      tcb.fmspc !== fmspc || tcb.pceId !== pceId
        ? {
            code: 'COLLATERAL_MISMATCH',
            message: `The TCB info is for FMSPC ${tcb.fmspc} / PCE ID ${tcb.pceId} but the PCK certificate has FMSPC ${fmspc} / PCE ID ${pceId}; fetch the TCB info for this platform.`,
          }
        : undefined,
      `FMSPC ${fmspc}, PCE ID ${pceId}`,
    ),
  );
  return { tcbInfo: tcb, qeIdentity: qeId, signaturesOk: verified.every(Boolean) };
}

// ---- TDX module identity (QVL 4.1.2.4.11): the quote's MRSIGNERSEAM and SEAM attributes against --
// the TCB info's tdxModule or tdxModuleIdentities.

function checkTdxModule(rec: CheckRecorder, tcb: TcbInfo, quote: Quote): boolean {
  const mod = checkTdxModuleIdentity(tcb, quote);
  if ('code' in mod) return rec.check('TDX module identity', mod);
  return rec.check('TDX module identity', undefined, mod.identity?.id ?? 'tdxModule');
}

// ---- QE report (QVL 4.1.2.4.12-16): the QE report signed by the PCK certificate, its report data --
// binding the attestation key, the QE against the QE identity, and the quote signed by the
// attestation key (PCK Certificate -> QE report -> attestation key -> quote).

interface QeReport {
  /** The QE's grade under the QE identity; undefined when the QE does not match it. */
  qe: QeEvaluation | undefined;
  /** Both signatures and the binding verified and the QE matches its identity. */
  signaturesOk: boolean;
}

function checkQeReport(rec: CheckRecorder, sigs: Signatures, qeId: QeIdentity, quote: Quote): QeReport {
  const report = quote.certification.qeReport;
  const signed = rec.check(
    'QE report signature',
    sigs.qeReport
      ? undefined
      : {
          code: 'QE_REPORT_SIGNATURE_INVALID',
          message: 'The QE report signature does not verify with the PCK certificate key; the quote was not produced on this platform.',
        },
  );
  // Intel's QVL compares only the first 32 bytes; the rest must be zero too (go-tdx-guest's stricter
  // form), so no unbound data can ride in the QE report.
  const bound = constantTimeEqual(sigs.qeReportDataHash, report.reportData.subarray(0, 32)) && isAllZero(report.reportData.subarray(32));
  const binds = rec.check(
    'QE report data binding',
    bound
      ? undefined
      : {
          code: 'QE_REPORT_DATA_MISMATCH',
          message:
            'The QE report does not bind the attestation key and QE auth data (SHA-256 mismatch or non-zero padding); the attestation key was substituted.',
        },
  );
  const qeEval = evaluateQeIdentity(qeId, report);
  const qe = 'code' in qeEval ? undefined : qeEval;
  const matches = 'code' in qeEval ? rec.check('QE identity', qeEval) : rec.check('QE identity', undefined, `ISVSVN ${report.isvSvn}: ${qeEval.status}`);
  const quoteSigned = rec.check(
    'quote signature',
    sigs.quote
      ? undefined
      : { code: 'QUOTE_SIGNATURE_INVALID', message: 'The quote signature does not verify with the attestation key; the TD report was altered.' },
  );
  return { qe, signaturesOk: signed && binds && matches && quoteSigned };
}

// ---- TCB level (QVL 4.1.2.4.17): the platform's TCB level in the TCB info, converged with the -----
// TDX module's and the QE's, evaluated only on verified inputs.

interface TcbLevel {
  tcbStatus: TcbStatus | null;
  qvlStatus: QvlStatus | null;
  advisories: Advisories;
}

/** `qe` is undefined when an earlier check failed: nothing is evaluated then. */
function matchTcbLevel(
  rec: CheckRecorder,
  qe: QeEvaluation | undefined,
  tcb: TcbInfo,
  pck: PckExtensions,
  quote: Quote,
  revoked: boolean,
): TcbLevel | undefined {
  if (!qe) {
    rec.skip('TCB level', 'not evaluated: an earlier check failed');
    return undefined;
  }
  const ev = evaluateTcb(tcb, pck, quote, qe);
  if (ev.error) rec.fail('TCB level', ev.error);
  else {
    const parts = [`platform ${ev.tdxLevel?.status} (${ev.tdxLevel?.tcbDate})`, `module ${ev.moduleStatus}`, `QE ${ev.qe?.status}`];
    if (ev.relaunch) parts.push(ev.relaunch === 'advised' ? 'TD relaunch advised' : 'TD relaunch advised, configuration needed');
    const adv = ev.advisories;
    const named = [
      adv.platform.length ? `platform advisories ${adv.platform.join(', ')}` : '',
      adv.tdxModule.length ? `module advisories ${adv.tdxModule.join(', ')}` : '',
      adv.qe.length ? `QE advisories ${adv.qe.join(', ')}` : '',
    ].filter(Boolean);
    rec.pass('TCB level', `${ev.status}: ${parts.join(', ')}${named.length ? `; ${named.join('; ')}` : ''}`);
  }
  // Intel's QVL reports a revoked PCK (or CA) as a Revoked result whatever the TCB level says.
  if (revoked) return { tcbStatus: 'Revoked', qvlStatus: qvlStatusOf('Revoked'), advisories: ev.advisories };
  return { tcbStatus: ev.status, qvlStatus: ev.qvlStatus, advisories: ev.advisories };
}

// ---- Appraisal: the caller's policy (collateral minimum, TCB statuses, advisories, debug, --------
// measurements) over the verified quote.

interface Appraised {
  summary: QuoteSummary;
  tcbStatus: TcbStatus | null;
  advisoryIds: string[];
}

function appraise(rec: CheckRecorder, v: Appraised, docs: CollateralDocuments, opts: VerifyQuoteOptions): void {
  // The collateral minimum is enforced here too, so every caller of verifyQuote (e.g.
  // `ratls quote verify --policy`) honours it, not only those that pick collateral by it.
  const minEval = opts.policy?.minTcbEvaluationDataNumber;
  if (minEval !== undefined) {
    if (typeof minEval !== 'number' || !Number.isInteger(minEval) || minEval < 0) {
      rec.fail('collateral evaluation number', {
        code: 'POLICY_INVALID',
        message: `minTcbEvaluationDataNumber must be a non-negative integer; got ${String(minEval)}.`,
      });
    } else {
      const tcbN = docs.tcbInfo.tcbEvaluationDataNumber;
      const qeN = docs.qeIdentity.tcbEvaluationDataNumber;
      const n = Math.min(tcbN, qeN);
      if (n < minEval) {
        rec.fail('collateral evaluation number', {
          code: 'TCB_EVALUATION_TOO_OLD',
          message: `The collateral's tcbEvaluationDataNumber is ${n} (TCB info ${tcbN}, QE identity ${qeN}), below the policy minimum ${minEval}: it predates a TCB recovery the policy requires; fetch current collateral.`,
        });
      } else rec.pass('collateral evaluation number', `${n} >= ${minEval}`);
    }
  }
  // The policy is judged when everything verified, or when the failures still leave a verdict on the
  // quote (a TCB status, or a TCB level that is not supported).
  const hasTcbError = rec.errors.some((e) => e.code === 'TCB_NOT_SUPPORTED' || e.code === 'TDX_MODULE_MISMATCH');
  if (rec.ok || v.tcbStatus !== null || hasTcbError) {
    const perr = applyPolicy(v.summary, v.tcbStatus, v.advisoryIds, opts.policy).filter((e) => !(e.code === 'TCB_STATUS_NOT_ALLOWED' && v.tcbStatus === null));
    if (perr.length === 0) rec.pass('policy');
    for (const e of perr) rec.fail('policy', e);
  }
}
