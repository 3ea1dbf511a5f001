/**
 * Content-keyed caches of the verifier's pure work: parsed certificates, CRLs, PEM chains and
 * signed documents, and the QE report binding hash. Each entry is keyed by the exact input bytes
 * or text, so a hit can never change a verdict; time-dependent checks are never cached.
 */
import { concatBytes, digest } from '../core/bytes.ts';
import { RatlsError, type ErrorCode } from '../core/errors.ts';
import { BoundedCache, bytesKey, clearCryptoCache } from './crypto.ts';
import { parseQeIdentity, type QeIdentity } from './qe-identity.ts';
import { splitSignedJson } from './signed-json.ts';
import { parseTcbInfo, type TcbInfo } from './tcb-info.ts';
import { parseCertificate, parseCrl, pemToDers, type Certificate, type Crl } from './x509.ts';

/** A signed document as parsed once: its value, the signed bytes and the detached signature. */
export interface ParsedDoc<T> {
  value: T;
  signedBytes: Uint8Array;
  signature: Uint8Array;
  /** Signature checks by signer key (see crypto.ts memo rules). */
  verified: Map<string, Promise<boolean>>;
}

const certCache = new BoundedCache<Certificate>(1024);
const crlCache = new BoundedCache<Crl>(64);
const pemCache = new BoundedCache<Certificate[]>(256);
const tcbInfoCache = new BoundedCache<ParsedDoc<TcbInfo>>(64);
const qeIdCache = new BoundedCache<ParsedDoc<QeIdentity>>(64);
const bindingHashCache = new BoundedCache<Promise<Uint8Array>>(1024);

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

/** SHA-256(attestation key || QE auth data), memoised by those exact bytes (a pure function). */
export function bindingHash(attestationKey: Uint8Array, qeAuthData: Uint8Array): Promise<Uint8Array> {
  const input = concatBytes(attestationKey, qeAuthData);
  const k = bytesKey(input);
  let h = bindingHashCache.get(k);
  if (!h) {
    h = digest('SHA-256', input);
    bindingHashCache.set(k, h);
  }
  return h;
}

/** The parsed certificate of `der`. */
export function cert(der: Uint8Array, code: ErrorCode, what: string): Certificate {
  const k = bytesKey(der);
  let c = certCache.get(k);
  if (!c) {
    c = parseCertificate(der, code, what);
    certCache.set(k, c);
  }
  return c;
}

/** The parsed CRL of `der`. */
export function crl(der: Uint8Array, what: string): Crl {
  const k = bytesKey(der);
  let c = crlCache.get(k);
  if (!c) {
    c = parseCrl(der, what);
    crlCache.set(k, c);
  }
  return c;
}

/** Parsed certificates of PEM text, cached by the text itself (no byte keys needed). */
export function pem(text: string, code: ErrorCode, what: string): Certificate[] {
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

/** The TCB info document of the collateral, parsed. */
export function tcbInfoDoc(text: string): ParsedDoc<TcbInfo> {
  return doc(tcbInfoCache, text, 'tcbInfo', 'TCB info', parseTcbInfo);
}

/** The QE identity document of the collateral, parsed. */
export function qeIdentityDoc(text: string): ParsedDoc<QeIdentity> {
  return doc(qeIdCache, text, 'enclaveIdentity', 'QE identity', parseQeIdentity);
}
