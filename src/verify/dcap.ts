/**
 * Intel DCAP verification of TDX quotes, step by step as Intel's Quote Verification Library does
 * it, then the appraisal policy. Browser-safe: WebCrypto only, the time is a parameter.
 *
 * Never throws: every failure becomes a VerifyError with a stable code, and every step is
 * recorded in `checks` for the readable report.
 */
import { parseQuote, INTEL_QE_VENDOR_ID } from '../quote/parse.ts';
import { summarizeQuote } from '../quote/summary.ts';
import type { Quote } from '../quote/types.ts';
import { concatBytes, constantTimeEqual, digest, isAllZero, toHex } from '../core/bytes.ts';
import { splitSignedJson, parseQeIdentity, parseTcbInfo, type QeIdentity, type TcbInfo } from './collateral.ts';
import { BoundedCache, bytesKey, clearCryptoCache, verifyEcdsa, verifyMemo, verifySignedObject } from './crypto.ts';
import { RatlsError, toVerifyError, type ErrorCode, type VerifyError } from '../core/errors.ts';
import { parsePckExtensions, pckCaType, type PckExtensions } from './pck.ts';
import { applyPolicy } from './policy.ts';
import { INTEL_SGX_ROOT_CA_PEM } from './roots.ts';
import { checkTdxModuleIdentity, evaluateQeIdentity, evaluateTcb, type TcbEvaluation } from './tcb.ts';
import type { CheckRecord, Collateral, QuoteSummary, TcbStatus, VerificationResult, VerifyQuoteOptions } from '../core/types.ts';
import { crlHasRequiredExtensions, parseCertificate, parseCrl, pemToDers, rootToDer, serialHex, type Certificate, type Crl } from './x509.ts';

// ---- content-keyed caches of pure parsing results -----------------------------------------

const certCache = new BoundedCache<Certificate>(1024);
const crlCache = new BoundedCache<Crl>(64);
const pemCache = new BoundedCache<Certificate[]>(256);
const tcbInfoCache = new BoundedCache<ParsedDoc<TcbInfo>>(64);
const qeIdCache = new BoundedCache<ParsedDoc<QeIdentity>>(64);
const bindingHashCache = new BoundedCache<Promise<Uint8Array>>(1024);

/** SHA-256(attestation key || QE auth data), memoised by those exact bytes (a pure function). */
function bindingHash(attestationKey: Uint8Array, qeAuthData: Uint8Array): Promise<Uint8Array> {
  const input = concatBytes(attestationKey, qeAuthData);
  const k = bytesKey(input);
  let h = bindingHashCache.get(k);
  if (!h) {
    h = digest('SHA-256', input);
    bindingHashCache.set(k, h);
  }
  return h;
}

/** Forgets every cached parse and verified signature (cold benchmarks, tests). */
export function clearVerifierCache(): void {
  certCache.clear();
  crlCache.clear();
  pemCache.clear();
  tcbInfoCache.clear();
  qeIdCache.clear();
  bindingHashCache.clear();
  clearCryptoCache();
}

interface ParsedDoc<T> {
  value: T;
  signedBytes: Uint8Array;
  signature: Uint8Array;
  /** Signature checks by signer key (see crypto.ts memo rules). */
  verified: Map<string, Promise<boolean>>;
}

function cert(der: Uint8Array, code: ErrorCode, what: string): Certificate {
  const k = bytesKey(der);
  let c = certCache.get(k);
  if (!c) {
    c = parseCertificate(der, code, what);
    certCache.set(k, c);
  }
  return c;
}

function crl(der: Uint8Array, what: string): Crl {
  const k = bytesKey(der);
  let c = crlCache.get(k);
  if (!c) {
    c = parseCrl(der, what);
    crlCache.set(k, c);
  }
  return c;
}

/** Parsed certificates of PEM text, cached by the text itself (no byte keys needed). */
function pem(text: string, code: ErrorCode, what: string): Certificate[] {
  let d = pemCache.get(text);
  if (!d) {
    d = pemToDers(text, code, what).map((der, i) => parseCertificate(der, code, `${what} certificate ${i + 1}`));
    pemCache.set(text, d);
  }
  return d;
}

const utf8 = new TextEncoder();

function doc<T>(
  cache: BoundedCache<ParsedDoc<T>>,
  text: string,
  member: 'tcbInfo' | 'enclaveIdentity',
  what: string,
  parse: (b: Record<string, unknown>) => T,
): ParsedDoc<T> {
  if (typeof text !== 'string') throw new RatlsError('COLLATERAL_MISSING', `${what} is missing from the collateral.`);
  let d = cache.get(text);
  if (!d) {
    const s = splitSignedJson(text, member, what);
    d = { value: parse(s.body), signedBytes: utf8.encode(s.signedText), signature: s.signature, verified: new Map() };
    cache.set(text, d);
  }
  return d;
}

// ---- result accumulation -------------------------------------------------------------------

class Run {
  readonly errors: VerifyError[] = [];
  readonly checks: CheckRecord[] = [];
  summary: QuoteSummary | null = null;
  tcbStatus: TcbStatus | null = null;
  advisoryIds: string[] = [];
  nonIntelRoot = false;

  pass(name: string, detail?: string): void {
    this.checks.push(detail === undefined ? { name, ok: true } : { name, ok: true, detail });
  }

  fail(name: string, code: ErrorCode, message: string): void {
    this.checks.push({ name, ok: false, detail: `${code}: ${message}` });
    this.errors.push({ code, message });
  }

  failWith(name: string, err: unknown, fallback: ErrorCode = 'INTERNAL'): void {
    const e = toVerifyError(err, fallback);
    this.fail(name, e.code, e.message);
  }

  result(): VerificationResult {
    const r: VerificationResult = {
      ok: this.errors.length === 0,
      tcbStatus: this.tcbStatus,
      advisoryIds: this.advisoryIds,
      errors: this.errors,
      quote: this.summary,
      checks: this.checks,
    };
    if (this.nonIntelRoot) r.nonIntelRoot = true;
    return r;
  }
}

// ---- chains --------------------------------------------------------------------------------

interface ChainCodes {
  malformed: ErrorCode;
  untrusted: ErrorCode;
  badSignature: ErrorCode;
  expired: ErrorCode;
  notYetValid: ErrorCode;
}

const PCK_CODES: ChainCodes = {
  malformed: 'PCK_CHAIN_MALFORMED',
  untrusted: 'PCK_CHAIN_UNTRUSTED',
  badSignature: 'PCK_CHAIN_INVALID_SIGNATURE',
  expired: 'PCK_CERT_EXPIRED',
  notYetValid: 'PCK_CERT_NOT_YET_VALID',
};

const COLLATERAL_CODES: ChainCodes = {
  malformed: 'COLLATERAL_MALFORMED',
  untrusted: 'COLLATERAL_CHAIN_UNTRUSTED',
  badSignature: 'COLLATERAL_CHAIN_UNTRUSTED',
  expired: 'COLLATERAL_EXPIRED',
  notYetValid: 'COLLATERAL_NOT_YET_VALID',
};

interface Chain {
  /** Certificates leaf first, ending with the trusted root. */
  certs: Certificate[];
  root: Certificate;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && constantTimeEqual(a, b);
}

/**
 * Builds a chain from `ders` (leaf first) to one of `roots`, checking names, CA flags and the
 * expected length. Signatures and validity are checked separately (in parallel).
 */
function buildChain(given: Certificate[], roots: Certificate[], length: number, what: string, codes: ChainCodes): Chain {
  if (given.length === 0) throw new RatlsError(codes.malformed, `${what} holds no certificate.`);
  const certs = [...given];
  const last = certs[certs.length - 1]!;
  let root = roots.find((r) => sameBytes(r.der, last.der));
  if (!root) {
    // The chain may omit the root; then its last certificate must be issued by a trusted one.
    root = roots.find((r) => sameBytes(r.subjectRaw, last.issuerRaw));
    if (!root || sameBytes(last.subjectRaw, last.issuerRaw)) {
      throw new RatlsError(
        codes.untrusted,
        `${what} ends at "${last.subjectCn}", which is not a trusted root; pass its root explicitly (--root) only if you trust it.`,
      );
    }
    certs.push(root);
  }
  if (certs.length !== length) {
    throw new RatlsError(codes.malformed, `${what} has ${certs.length} certificates including the root; Intel's format has ${length}.`);
  }
  // Intel's QVL verifies every certificate as ECDSA-SHA256 with a P-256 key (verifySha256EcdsaSignature,
  // rawToP256PubKey); other algorithms are not part of Intel's PKI and are refused, not tolerated.
  for (const c of certs) {
    if (c.curve !== 'P-256' || c.hash !== 'SHA-256') {
      throw new RatlsError(codes.malformed, `${what}: "${c.subjectCn}" is not an ECDSA P-256 / SHA-256 certificate as Intel's PKI uses.`);
    }
  }
  for (let i = 0; i + 1 < certs.length; i++) {
    const child = certs[i]!;
    const parent = certs[i + 1]!;
    if (!sameBytes(child.issuerRaw, parent.subjectRaw)) {
      throw new RatlsError(codes.untrusted, `${what}: "${child.subjectCn}" is not issued by "${parent.subjectCn}".`);
    }
    if (!parent.isCa) throw new RatlsError(codes.untrusted, `${what}: "${parent.subjectCn}" is not a CA certificate.`);
  }
  return { certs, root };
}

async function chainSignatures(chain: Chain, what: string, codes: ChainCodes): Promise<VerifyError | undefined> {
  const { certs } = chain;
  const oks = await Promise.all(certs.slice(0, -1).map((c, i) => verifySignedObject(c, certs[i + 1]!)));
  const bad = oks.indexOf(false);
  if (bad >= 0) {
    return { code: codes.badSignature, message: `${what}: the signature on "${certs[bad]!.subjectCn}" does not verify with its issuer's key.` };
  }
  return undefined;
}

function chainValidity(chain: Chain, now: Date, what: string, codes: ChainCodes): VerifyError | undefined {
  for (const c of chain.certs) {
    if (now < c.notBefore) {
      return {
        code: codes.notYetValid,
        message: `${what}: "${c.subjectCn}" is not valid before ${c.notBefore.toISOString()} (verification time ${now.toISOString()}).`,
      };
    }
    if (now > c.notAfter) {
      return { code: codes.expired, message: `${what}: "${c.subjectCn}" expired at ${c.notAfter.toISOString()} (verification time ${now.toISOString()}).` };
    }
  }
  return undefined;
}

function crlCurrent(c: Crl, now: Date, what: string): VerifyError | undefined {
  if (!c.nextUpdate) return { code: 'CRL_INVALID', message: `${what} has no nextUpdate, so its freshness cannot be judged.` };
  if (now < c.thisUpdate)
    return { code: 'CRL_INVALID', message: `${what} is not valid before ${c.thisUpdate.toISOString()} (verification time ${now.toISOString()}).` };
  if (now >= c.nextUpdate)
    return { code: 'CRL_EXPIRED', message: `${what} expired at ${c.nextUpdate.toISOString()}; fetch a current one (verification time ${now.toISOString()}).` };
  return undefined;
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

// ---- the verifier --------------------------------------------------------------------------

const defaultRoots: Certificate[] = [];

function trustedRoots(opts: VerifyQuoteOptions): Certificate[] {
  if (!opts.trustedRoots) {
    if (defaultRoots.length === 0) defaultRoots.push(cert(rootToDer(INTEL_SGX_ROOT_CA_PEM), 'INTERNAL', 'Intel SGX Root CA'));
    return defaultRoots;
  }
  if (opts.trustedRoots.length === 0) throw new RatlsError('POLICY_INVALID', 'The list of trusted roots is empty; no quote can be trusted.');
  return opts.trustedRoots.map((r) => {
    const c = cert(rootToDer(r), 'POLICY_INVALID', 'Trusted root');
    if (!sameBytes(c.subjectRaw, c.issuerRaw)) throw new RatlsError('POLICY_INVALID', `Trusted root "${c.subjectCn}" is not self-issued.`);
    return c;
  });
}

let intelRootDer: Uint8Array | undefined;
function isIntelRoot(c: Certificate): boolean {
  intelRootDer ??= rootToDer(INTEL_SGX_ROOT_CA_PEM);
  return sameBytes(c.der, intelRootDer);
}

/**
 * Verifies a TDX quote against Intel DCAP collateral at `opts.now`, then applies the policy.
 *
 * `tcbStatus` is Intel's status whenever the quote, its PCK chain and the collateral signatures
 * verified, even if time validity or the policy then reject it; null otherwise.
 */
export async function verifyQuote(quote: Uint8Array, opts: VerifyQuoteOptions): Promise<VerificationResult> {
  const run = new Run();
  try {
    await verifyInto(run, quote, opts);
  } catch (err) {
    run.failWith('verification', err);
  }
  return run.result();
}

async function verifyInto(run: Run, quoteBytes: Uint8Array, opts: VerifyQuoteOptions): Promise<void> {
  const now = opts?.now;
  if (!(now instanceof Date) || Number.isNaN(now.getTime())) {
    run.fail('verification time', 'POLICY_INVALID', 'The verification time is not a valid date.');
    return;
  }

  // 1. Quote structure.
  let q: Quote;
  try {
    q = parseQuote(quoteBytes);
  } catch (err) {
    run.failWith('quote structure', err, 'QUOTE_MALFORMED');
    return;
  }
  run.summary = summarizeQuote(q);
  run.pass(
    'quote structure',
    `TDX quote v${q.header.version}, body type ${q.bodyType}, ${q.length} bytes${quoteBytes.length > q.length ? ` (+${quoteBytes.length - q.length} bytes padding ignored)` : ''}`,
  );
  if (toHex(q.header.qeVendorId) !== INTEL_QE_VENDOR_ID) {
    run.fail('QE vendor', 'QUOTE_QE_VENDOR_UNKNOWN', `QE vendor ID ${toHex(q.header.qeVendorId)} is not Intel's; only Intel's quoting enclave is supported.`);
    return;
  }

  // 2. Trust anchors and PCK chain structure.
  let roots: Certificate[];
  try {
    roots = trustedRoots(opts);
  } catch (err) {
    run.failWith('trusted roots', err, 'POLICY_INVALID');
    return;
  }
  let pckChain: Chain;
  let pck: PckExtensions;
  try {
    const given = q.certification.pckChainPem.flatMap((p) => pem(p, 'PCK_CHAIN_MALFORMED', 'PCK certificate chain'));
    pckChain = buildChain(given, roots, 3, 'PCK certificate chain', PCK_CODES);
    const leaf = pckChain.certs[0]!;
    if (!leaf.subjectCn.includes('SGX PCK Certificate')) {
      throw new RatlsError('PCK_CHAIN_MALFORMED', `The quote's leaf certificate "${leaf.subjectCn}" is not an SGX PCK Certificate.`);
    }
    if (!pckCaType(pckChain.certs[1]!.subjectCn)) {
      throw new RatlsError(
        'PCK_CHAIN_MALFORMED',
        `The PCK certificate's issuer "${pckChain.certs[1]!.subjectCn}" is neither a PCK Platform CA nor a PCK Processor CA.`,
      );
    }
    pck = parsePckExtensions(leaf);
  } catch (err) {
    run.failWith('PCK certificate chain', err, 'PCK_CHAIN_MALFORMED');
    return;
  }
  run.summary = summarizeQuote(q, { fmspc: pck.fmspc, pceId: pck.pceId });
  if (!isIntelRoot(pckChain.root)) run.nonIntelRoot = true;
  const leaf = pckChain.certs[0]!;
  const pckCa = pckChain.certs[1]!;

  // 3. Collateral structure.
  const c: Collateral | undefined = opts.collateral;
  let tcbDoc: ParsedDoc<TcbInfo>;
  let qeDoc: ParsedDoc<QeIdentity>;
  let rootCrl: Crl;
  let pckCrl: Crl;
  let tcbChain: Chain;
  let qeChain: Chain;
  let crlChain: Chain;
  try {
    if (!c) throw new RatlsError('COLLATERAL_MISSING', `No collateral was given; fetch it for FMSPC ${pck.fmspc} from Intel PCS or a PCCS.`);
    tcbDoc = doc(tcbInfoCache, c.tcbInfoJson, 'tcbInfo', 'TCB info', parseTcbInfo);
    qeDoc = doc(qeIdCache, c.qeIdentityJson, 'enclaveIdentity', 'QE identity', parseQeIdentity);
    if (!(c.rootCaCrl instanceof Uint8Array) || !(c.pckCrl instanceof Uint8Array)) {
      throw new RatlsError('COLLATERAL_MISSING', 'The collateral lacks the root CA CRL or the PCK CRL.');
    }
    rootCrl = crl(c.rootCaCrl, 'Root CA CRL');
    pckCrl = crl(c.pckCrl, 'PCK CRL');
    tcbChain = buildChain(
      pem(c.tcbInfoIssuerChain ?? '', 'COLLATERAL_MALFORMED', 'TCB info issuer chain'),
      roots,
      2,
      'TCB info issuer chain',
      COLLATERAL_CODES,
    );
    qeChain = buildChain(
      pem(c.qeIdentityIssuerChain ?? '', 'COLLATERAL_MALFORMED', 'QE identity issuer chain'),
      roots,
      2,
      'QE identity issuer chain',
      COLLATERAL_CODES,
    );
    crlChain = buildChain(pem(c.pckCrlIssuerChain ?? '', 'COLLATERAL_MALFORMED', 'PCK CRL issuer chain'), roots, 2, 'PCK CRL issuer chain', COLLATERAL_CODES);
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
  } catch (err) {
    run.failWith('collateral', err, 'COLLATERAL_MALFORMED');
    return;
  }
  for (const ch of [tcbChain, qeChain, crlChain]) {
    if (!sameBytes(ch.root.der, pckChain.root.der)) {
      run.fail(
        'collateral',
        'COLLATERAL_CHAIN_UNTRUSTED',
        'The collateral is signed under a different root than the PCK certificate chain; both must come from the same PKI.',
      );
      return;
    }
  }
  const root = pckChain.root;

  // 4. Every signature, in parallel (WebCrypto runs them on worker threads).
  const qe = q.certification;
  const attKey = concatBytes(new Uint8Array([4]), q.attestationKey);
  const [pckSigErr, tcbChainErr, qeChainErr, crlChainErr, rootCrlOk, pckCrlOk, tcbSigOk, qeIdSigOk, qeReportOk, quoteSigOk, qeHash] = await Promise.all([
    chainSignatures(pckChain, 'PCK certificate chain', PCK_CODES),
    chainSignatures(tcbChain, 'TCB info issuer chain', COLLATERAL_CODES),
    chainSignatures(qeChain, 'QE identity issuer chain', COLLATERAL_CODES),
    chainSignatures(crlChain, 'PCK CRL issuer chain', COLLATERAL_CODES),
    verifySignedObject(rootCrl, root),
    verifySignedObject(pckCrl, crlChain.certs[0]!),
    verifyMemo(tcbDoc.verified, tcbChain.certs[0]!, 'SHA-256', tcbDoc.signedBytes, tcbDoc.signature),
    verifyMemo(qeDoc.verified, qeChain.certs[0]!, 'SHA-256', qeDoc.signedBytes, qeDoc.signature),
    verifyEcdsa({ format: 'raw', bytes: leaf.publicKey, curve: leaf.curve }, 'SHA-256', qe.qeReport.raw, qe.qeReportSignature),
    verifyEcdsa({ format: 'raw', bytes: attKey, curve: 'P-256' }, 'SHA-256', q.signedBytes, q.signature),
    bindingHash(q.attestationKey, qe.qeAuthData),
  ]);
  let signaturesOk = true;
  const record = (name: string, err: VerifyError | undefined, detail?: string): void => {
    if (err) {
      signaturesOk = false;
      run.fail(name, err.code, err.message);
    } else run.pass(name, detail);
  };

  // 5. PCK chain and revocation (QVL 4.1.2.4.1-7).
  record('PCK chain signatures', pckSigErr, `${pckChain.certs.map((x) => x.subjectCn).join(' <- ')}`);
  const pckTime = chainValidity(pckChain, now, 'PCK certificate chain', PCK_CODES);
  if (pckTime) run.fail('PCK chain validity', pckTime.code, pckTime.message);
  else run.pass('PCK chain validity');
  record(
    'root CA CRL signature',
    rootCrlOk && sameBytes(rootCrl.issuerRaw, root.subjectRaw)
      ? undefined
      : { code: 'CRL_INVALID', message: 'The root CA CRL is not signed by the trusted root.' },
  );
  // Intel's QVL refuses CRLs without a CRL number and an authority key identifier.
  for (const [x, name] of [
    [rootCrl, 'root CA CRL'],
    [pckCrl, 'PCK CRL'],
  ] as const) {
    if (!crlHasRequiredExtensions(x))
      record(`${name} extensions`, {
        code: 'CRL_INVALID',
        message: `The ${name} lacks the CRL number or authority key identifier extension Intel's CRLs carry; it is not an Intel CRL.`,
      });
  }
  record('PCK CRL issuer chain', crlChainErr);
  const pckCrlIssuerOk =
    sameBytes(pckCrl.issuerRaw, leaf.issuerRaw) && sameBytes(crlChain.certs[0]!.subjectRaw, pckCrl.issuerRaw) && /CA/.test(pckCrl.issuerCn);
  record(
    'PCK CRL signature',
    pckCrlOk && pckCrlIssuerOk
      ? undefined
      : { code: 'CRL_INVALID', message: `The PCK CRL is not a valid CRL of "${leaf.issuerCn}", the CA that issued the PCK certificate.` },
  );
  const crlTime =
    crlCurrent(rootCrl, now, 'The root CA CRL') ??
    crlCurrent(pckCrl, now, 'The PCK CRL') ??
    chainValidity(crlChain, now, 'PCK CRL issuer chain', COLLATERAL_CODES);
  if (crlTime) run.fail('CRL freshness', crlTime.code, crlTime.message);
  else run.pass('CRL freshness');
  const revokedCa = [pckCa, tcbChain.certs[0]!, qeChain.certs[0]!, crlChain.certs[0]!].find((x) => rootCrl.revoked.has(serialHex(x)));
  const revoked = revokedCa !== undefined || pckCrl.revoked.has(serialHex(leaf));
  if (revokedCa) run.fail('revocation', 'PCK_REVOKED', `"${revokedCa.subjectCn}" (serial ${serialHex(revokedCa)}) is revoked by the root CA CRL.`);
  else if (pckCrl.revoked.has(serialHex(leaf)))
    run.fail(
      'revocation',
      'PCK_REVOKED',
      `The PCK certificate (serial ${serialHex(leaf)}) is revoked by the PCK CRL; the platform's key is no longer trusted.`,
    );
  else run.pass('revocation', `${pckCrl.revoked.size} PCK and ${rootCrl.revoked.size} CA revocations checked`);

  // 6. Collateral signatures and freshness (QVL 4.1.2.4.8-10).
  record('TCB info issuer chain', tcbChainErr);
  record(
    'TCB info signature',
    tcbSigOk
      ? undefined
      : {
          code: 'COLLATERAL_SIGNATURE_INVALID',
          message: 'The TCB info signature does not verify over its "tcbInfo" text; the TCB info was altered or is not Intel\'s.',
        },
  );
  record('QE identity issuer chain', qeChainErr);
  record(
    'QE identity signature',
    qeIdSigOk
      ? undefined
      : {
          code: 'COLLATERAL_SIGNATURE_INVALID',
          message: 'The QE identity signature does not verify over its "enclaveIdentity" text; the QE identity was altered or is not Intel\'s.',
        },
  );
  const tcb = tcbDoc.value;
  const qeId = qeDoc.value;
  const fresh =
    docFreshness(tcb, now, 'The TCB info') ??
    docFreshness(qeId, now, 'The QE identity') ??
    chainValidity(tcbChain, now, 'TCB info issuer chain', COLLATERAL_CODES) ??
    chainValidity(qeChain, now, 'QE identity issuer chain', COLLATERAL_CODES);
  if (fresh) run.fail('collateral freshness', fresh.code, fresh.message);
  else run.pass('collateral freshness', `TCB info until ${tcb.nextUpdate.toISOString()}, QE identity until ${qeId.nextUpdate.toISOString()}`);
  if (tcb.fmspc !== pck.fmspc || tcb.pceId !== pck.pceId) {
    record('TCB info matches platform', {
      code: 'COLLATERAL_MISMATCH',
      message: `The TCB info is for FMSPC ${tcb.fmspc} / PCE ID ${tcb.pceId} but the PCK certificate has FMSPC ${pck.fmspc} / PCE ID ${pck.pceId}; fetch the TCB info for this platform.`,
    });
  } else run.pass('TCB info matches platform', `FMSPC ${pck.fmspc}, PCE ID ${pck.pceId}`);

  // 7. TDX module identity (QVL 4.1.2.4.11).
  const mod = checkTdxModuleIdentity(tcb, q);
  const modErr = 'code' in mod ? mod : undefined;
  const modId = 'code' in mod ? undefined : mod.identity?.id;
  record('TDX module identity', modErr, modErr ? undefined : (modId ?? 'tdxModule'));

  // 8. QE report signature and binding, QE identity, quote signature (QVL 4.1.2.4.12-16).
  record(
    'QE report signature',
    qeReportOk
      ? undefined
      : {
          code: 'QE_REPORT_SIGNATURE_INVALID',
          message: 'The QE report signature does not verify with the PCK certificate key; the quote was not produced on this platform.',
        },
  );
  // Intel's QVL compares only the first 32 bytes; the rest must be zero too (go-tdx-guest's stricter
  // form), so no unbound data can ride in the QE report.
  const bound = constantTimeEqual(qeHash, qe.qeReport.reportData.subarray(0, 32)) && isAllZero(qe.qeReport.reportData.subarray(32));
  record(
    'QE report data binding',
    bound
      ? undefined
      : {
          code: 'QE_REPORT_DATA_MISMATCH',
          message:
            'The QE report does not bind the attestation key and QE auth data (SHA-256 mismatch or non-zero padding); the attestation key was substituted.',
        },
  );
  const qeEval = evaluateQeIdentity(qeId, qe.qeReport);
  const qeErr = 'code' in qeEval ? qeEval : undefined;
  record('QE identity', qeErr, qeErr ? undefined : `ISVSVN ${qe.qeReport.isvSvn}: ${'status' in qeEval ? qeEval.status : ''}`);
  record(
    'quote signature',
    quoteSigOk
      ? undefined
      : { code: 'QUOTE_SIGNATURE_INVALID', message: 'The quote signature does not verify with the attestation key; the TD report was altered.' },
  );

  // 9. TCB level (QVL 4.1.2.4.17), only on verified inputs.
  if (!signaturesOk || qeErr || !('status' in qeEval)) {
    run.checks.push({ name: 'TCB level', ok: false, detail: 'not evaluated: an earlier check failed' });
  } else {
    const ev: TcbEvaluation = evaluateTcb(tcb, pck, q, qeEval);
    // Intel's QVL reports a revoked PCK (or CA) as a Revoked result whatever the TCB level says.
    run.tcbStatus = revoked ? 'Revoked' : ev.status;
    run.advisoryIds = ev.advisoryIds;
    if (ev.error) run.fail('TCB level', ev.error.code, ev.error.message);
    else {
      const parts = [`platform ${ev.tdxLevel?.status} (${ev.tdxLevel?.tcbDate})`, `module ${ev.moduleStatus}`, `QE ${ev.qe?.status}`];
      if (ev.relaunchAdvised) parts.push('TD relaunch advised');
      run.pass('TCB level', `${ev.status}: ${parts.join(', ')}${ev.advisoryIds.length ? `; advisories ${ev.advisoryIds.join(', ')}` : ''}`);
    }
  }

  // 10. Policy. The collateral minimum is enforced here too, so every caller of verifyQuote (e.g.
  // `ratls quote verify --policy`) honours it, not only those that pick collateral by it.
  const minEval = opts.policy?.minTcbEvaluationDataNumber;
  if (minEval !== undefined) {
    if (typeof minEval !== 'number' || !Number.isInteger(minEval) || minEval < 0) {
      run.fail('collateral evaluation number', 'POLICY_INVALID', `minTcbEvaluationDataNumber must be a non-negative integer; got ${String(minEval)}.`);
    } else {
      const n = Math.min(tcb.tcbEvaluationDataNumber, qeId.tcbEvaluationDataNumber);
      if (n < minEval) {
        run.fail(
          'collateral evaluation number',
          'TCB_EVALUATION_TOO_OLD',
          `The collateral's tcbEvaluationDataNumber is ${n} (TCB info ${tcb.tcbEvaluationDataNumber}, QE identity ${qeId.tcbEvaluationDataNumber}), below the policy minimum ${minEval}: it predates a TCB recovery the policy requires; fetch current collateral.`,
        );
      } else run.pass('collateral evaluation number', `${n} >= ${minEval}`);
    }
  }
  const hasTcbError = run.errors.some((e) => e.code === 'TCB_NOT_SUPPORTED' || e.code === 'TDX_MODULE_MISMATCH');
  if (run.errors.length === 0 || run.tcbStatus !== null || hasTcbError) {
    const perr = applyPolicy(run.summary, run.tcbStatus, run.advisoryIds, opts.policy).filter(
      (e) => !(e.code === 'TCB_STATUS_NOT_ALLOWED' && run.tcbStatus === null),
    );
    if (perr.length === 0) run.pass('policy');
    for (const e of perr) run.fail('policy', e.code, e.message);
  }
}
