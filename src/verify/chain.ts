/**
 * Certificate chains of Intel's PKI as Intel's QVL checks them: the trust anchors, a chain's
 * structure (names, CA flags, length, algorithms), its signatures and its validity at a given time.
 * Structure is checked first and synchronously; signatures are returned as promises so the verifier
 * can run every chain's signatures in parallel.
 */
import { constantTimeEqual, fromHex } from '../core/bytes.ts';
import { RatlsError, type ErrorCode, type VerifyError } from '../core/errors.ts';
import type { VerifyQuoteOptions } from '../core/types.ts';
import { cert } from './content-cache.ts';
import { verifySignedObject } from './crypto.ts';
import { INTEL_SGX_PREPRODUCTION_ROOT_KEY_HEX, INTEL_SGX_ROOT_CA_PEM } from './roots.ts';
import { rootToDer, type Certificate } from './x509.ts';

/** The error codes a chain's failures are reported with (the PCK chain and collateral chains differ). */
export interface ChainCodes {
  malformed: ErrorCode;
  untrusted: ErrorCode;
  badSignature: ErrorCode;
  expired: ErrorCode;
  notYetValid: ErrorCode;
}

export const PCK_CODES: ChainCodes = {
  malformed: 'PCK_CHAIN_MALFORMED',
  untrusted: 'PCK_CHAIN_UNTRUSTED',
  badSignature: 'PCK_CHAIN_INVALID_SIGNATURE',
  expired: 'PCK_CERT_EXPIRED',
  notYetValid: 'PCK_CERT_NOT_YET_VALID',
};

export const COLLATERAL_CODES: ChainCodes = {
  malformed: 'COLLATERAL_MALFORMED',
  untrusted: 'COLLATERAL_CHAIN_UNTRUSTED',
  badSignature: 'COLLATERAL_CHAIN_UNTRUSTED',
  expired: 'COLLATERAL_EXPIRED',
  notYetValid: 'COLLATERAL_NOT_YET_VALID',
};

export interface Chain {
  /** Certificates leaf first, ending with the trusted root. */
  certs: Certificate[];
  root: Certificate;
}

/** Byte equality of two encodings (names, DER), in constant time for equal lengths. */
export function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && constantTimeEqual(a, b);
}

const defaultRoots: Certificate[] = [];

/** The trust anchors of `opts`: the pinned Intel SGX Root CA unless roots are given. */
export function trustedRoots(opts: VerifyQuoteOptions): Certificate[] {
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

/** True when `c` is the pinned Intel SGX Root CA itself. */
export function isIntelRootCert(c: Certificate): boolean {
  intelRootDer ??= rootToDer(INTEL_SGX_ROOT_CA_PEM);
  return sameBytes(c.der, intelRootDer);
}

let preproductionKey: Uint8Array | undefined;

/** True when `c` is a self-issued certificate of Intel's pre-production (SBX) root key. */
export function isIntelPreproductionRoot(c: Certificate): boolean {
  preproductionKey ??= fromHex(INTEL_SGX_PREPRODUCTION_ROOT_KEY_HEX)!;
  return selfIssued(c) && sameBytes(c.publicKey, preproductionKey);
}

function selfIssued(c: Certificate): boolean {
  return sameBytes(c.subjectRaw, c.issuerRaw);
}

const MAX_CHAIN_CERTIFICATES = 8;

/**
 * The one path through `given`, end certificate first, linked by names; the order of `given` does
 * not matter (Intel's CertificateChain finds each certificate by its role). Byte-identical copies
 * count once, as Intel accepts them. Any other certificate off the path, two different certificates
 * with one name, or names that loop are refused: Intel would ignore or misread such a certificate
 * depending on its position, and one chain must have one reading.
 */
export function orderChain(given: Certificate[], what: string, code: ErrorCode): Certificate[] {
  // Intel's chains have 2 or 3 certificates; the bound keeps the pairwise name matching below cheap.
  if (given.length > MAX_CHAIN_CERTIFICATES) {
    throw new RatlsError(
      code,
      `${what} holds ${given.length} certificates; Intel's chains have at most 3 (copies included, at most ${MAX_CHAIN_CERTIFICATES} are read).`,
    );
  }
  const certs: Certificate[] = [];
  for (const c of given) if (!certs.some((d) => sameBytes(d.der, c.der))) certs.push(c);
  if (certs.length === 0) throw new RatlsError(code, `${what} holds no certificate.`);
  // The end certificate issues none of the others (a self-issued root issues itself, which does not count).
  const ends = certs.filter((c) => !certs.some((d) => d !== c && !selfIssued(d) && sameBytes(d.issuerRaw, c.subjectRaw)));
  if (ends.length !== 1) {
    throw new RatlsError(
      code,
      ends.length === 0
        ? `${what}: the certificates' names form a loop; there is no end certificate.`
        : `${what} holds ${ends.length} certificates that issue none of the others (${ends.map((c) => `"${c.subjectCn}"`).join(', ')}); a chain is one path from one end certificate to its root.`,
    );
  }
  const path = [ends[0]!];
  for (let cur = ends[0]!; !selfIssued(cur);) {
    const issuers = certs.filter((d) => d !== cur && sameBytes(d.subjectRaw, cur.issuerRaw));
    if (issuers.length === 0) break; // the root is left out; the caller supplies it
    if (issuers.length > 1) {
      const preproduction = issuers.some(isIntelPreproductionRoot) ? " (one of them Intel's pre-production root)" : '';
      throw new RatlsError(
        code,
        `${what} holds ${issuers.length} different certificates named "${cur.issuerCn}"${preproduction}; the chain can be read two ways.`,
      );
    }
    cur = issuers[0]!;
    if (path.includes(cur)) throw new RatlsError(code, `${what}: the certificates' names form a loop at "${cur.subjectCn}".`);
    path.push(cur);
  }
  const off = certs.find((c) => !path.includes(c));
  if (off) {
    throw new RatlsError(
      code,
      `${what}: "${off.subjectCn}" is not on the chain ${path.map((c) => `"${c.subjectCn}"`).join(' -> ')}; a chain holds only the certificates of that one path.`,
    );
  }
  return path;
}

/** The refusal of a chain that ends at an untrusted root `top`; Intel's pre-production root is named. */
function untrustedRoot(top: Certificate, what: string, codes: ChainCodes): RatlsError {
  if (isIntelPreproductionRoot(top)) {
    return new RatlsError(
      codes.untrusted,
      `${what} ends at Intel's pre-production (SBX) root CA: it has the production root's name "${top.subjectCn}" but the pre-production key, and it signs only Intel's pre-production (sandbox) platforms and collateral, never a production platform. Verify such evidence only in a test setup, by passing that root explicitly (--root).`,
    );
  }
  return new RatlsError(
    codes.untrusted,
    `${what} ends at "${top.subjectCn}", which is not a trusted root; pass its root explicitly (--root) only if you trust it.`,
  );
}

/**
 * Builds the chain from `given` (in any order, see {@link orderChain}) to one of `roots`, checking
 * names, CA flags and the expected length. Signatures and validity are checked separately (in
 * parallel).
 */
export function buildChain(given: Certificate[], roots: Certificate[], length: number, what: string, codes: ChainCodes): Chain {
  const certs = orderChain(given, what, codes.malformed);
  const top = certs[certs.length - 1]!;
  let root = roots.find((r) => sameBytes(r.der, top.der));
  if (!root) {
    // The chain may omit the root; then its top certificate must be issued by a trusted one.
    if (selfIssued(top)) throw untrustedRoot(top, what, codes);
    root = roots.find((r) => sameBytes(r.subjectRaw, top.issuerRaw));
    if (!root) throw untrustedRoot(top, what, codes);
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
  for (let i = 1; i < certs.length; i++) {
    if (!certs[i]!.isCa) throw new RatlsError(codes.untrusted, `${what}: "${certs[i]!.subjectCn}" is not a CA certificate.`);
  }
  return { certs, root };
}

/** Verifies every certificate's signature with its issuer's key, all at once; the first failure, if any. */
export async function chainSignatures(chain: Chain, what: string, codes: ChainCodes): Promise<VerifyError | undefined> {
  const { certs } = chain;
  const oks = await Promise.all(certs.slice(0, -1).map((c, i) => verifySignedObject(c, certs[i + 1]!)));
  const bad = oks.indexOf(false);
  if (bad >= 0) {
    return { code: codes.badSignature, message: `${what}: the signature on "${certs[bad]!.subjectCn}" does not verify with its issuer's key.` };
  }
  return undefined;
}

/** The first certificate of the chain not valid at `now`, as an error; undefined when all are. */
export function chainValidity(chain: Chain, now: Date, what: string, codes: ChainCodes): VerifyError | undefined {
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
