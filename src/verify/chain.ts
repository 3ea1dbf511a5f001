/**
 * Certificate chains of Intel's PKI as Intel's QVL checks them: the trust anchors, a chain's
 * structure (names, CA flags, length, algorithms), its signatures and its validity at a given time.
 * Structure is checked first and synchronously; signatures are returned as promises so the verifier
 * can run every chain's signatures in parallel.
 */
import { constantTimeEqual } from '../core/bytes.ts';
import { RatlsError, type ErrorCode, type VerifyError } from '../core/errors.ts';
import type { VerifyQuoteOptions } from '../core/types.ts';
import { cert } from './content-cache.ts';
import { verifySignedObject } from './crypto.ts';
import { INTEL_SGX_ROOT_CA_PEM } from './roots.ts';
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

/**
 * Builds a chain from `given` (leaf first) to one of `roots`, checking names, CA flags and the
 * expected length. Signatures and validity are checked separately (in parallel).
 */
export function buildChain(given: Certificate[], roots: Certificate[], length: number, what: string, codes: ChainCodes): Chain {
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
