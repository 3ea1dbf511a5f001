/**
 * The parts of X.509 certificates and CRLs that DCAP verification uses, read with the bounded DER
 * reader in der.ts. Browser-safe. Signatures are verified in crypto.ts.
 */
import { fromBase64, fromHex, toHex } from '../core/bytes.ts';
import { splitPemCertificates } from '../quote/parse.ts';
import { DerReader, TAG, derRoot, intValue, oidToString, parseTime, stripIntegerPadding, type Tlv } from './der.ts';
import { RatlsError, type ErrorCode } from '../core/errors.ts';

export const OID = {
  ecdsaWithSha256: '1.2.840.10045.4.3.2',
  ecdsaWithSha384: '1.2.840.10045.4.3.3',
  ecPublicKey: '1.2.840.10045.2.1',
  p256: '1.2.840.10045.3.1.7',
  p384: '1.3.132.0.34',
  commonName: '2.5.4.3',
  basicConstraints: '2.5.29.19',
  sgxExtensions: '1.2.840.113741.1.13.1',
} as const;

export type Curve = 'P-256' | 'P-384';
export type Hash = 'SHA-256' | 'SHA-384';

/** A signed DER object (certificate or CRL) split into what was signed and the signature. */
export interface SignedObject {
  /** The whole DER encoding. */
  der: Uint8Array;
  /** The to-be-signed bytes. */
  tbs: Uint8Array;
  hash: Hash;
  /** ECDSA signature converted to IEEE P1363 r||s (WebCrypto form), sized for its curve later. */
  sigR: Uint8Array;
  sigS: Uint8Array;
  /**
   * Signature checks of this exact object by issuer key. Lives on the parsed object, which is
   * itself cached by its exact bytes, so a remembered success can only apply to the same content.
   */
  verified: Map<string, Promise<boolean>>;
}

export interface Certificate extends SignedObject {
  serial: Uint8Array;
  issuerRaw: Uint8Array;
  subjectRaw: Uint8Array;
  subjectCn: string;
  issuerCn: string;
  notBefore: Date;
  notAfter: Date;
  /** DER SubjectPublicKeyInfo. */
  spki: Uint8Array;
  /** The uncompressed EC point (0x04 || x || y) from the SPKI; WebCrypto imports it fastest. */
  publicKey: Uint8Array;
  curve: Curve;
  /** basicConstraints cA flag. */
  isCa: boolean;
  /** Extension values (the OCTET STRING contents) by dotted OID. */
  extensions: Map<string, Uint8Array>;
}

export interface Crl extends SignedObject {
  issuerRaw: Uint8Array;
  issuerCn: string;
  thisUpdate: Date;
  nextUpdate: Date | undefined;
  /** Revoked serial numbers, lower-case hex without sign padding. */
  revoked: Set<string>;
  /** Dotted OIDs of the CRL extensions present. */
  extensionOids: Set<string>;
}

/** CRL extensions Intel's QVL requires on every CRL (CRL_REQUIRED_EXTENSIONS): CRL number, AKI. */
export const CRL_REQUIRED_EXTENSION_OIDS = ['2.5.29.20', '2.5.29.35'] as const;

/** Whether a CRL carries the extensions Intel's QVL requires (PckCrlVerifier checkStandardExtensions). */
export function crlHasRequiredExtensions(crl: Crl): boolean {
  return CRL_REQUIRED_EXTENSION_OIDS.every((o) => crl.extensionOids.has(o));
}

function readAlgorithm(r: DerReader, code: ErrorCode, what: string): Hash {
  const alg = r.enter(TAG.SEQUENCE);
  const oid = oidToString(alg.next(TAG.OID).value);
  if (oid === OID.ecdsaWithSha256) return 'SHA-256';
  if (oid === OID.ecdsaWithSha384) return 'SHA-384';
  throw new RatlsError(code, `${what} uses signature algorithm ${oid}; only ECDSA with SHA-256/384 is accepted.`);
}

function readEcdsaSignature(bits: Tlv, code: ErrorCode, what: string): { r: Uint8Array; s: Uint8Array } {
  if (bits.value.length < 1 || bits.value[0] !== 0) throw new RatlsError(code, `${what} has a malformed signature.`);
  const { reader } = derRoot(bits.value.subarray(1), TAG.SEQUENCE, code, `${what} signature`);
  const r = stripIntegerPadding(reader.next(TAG.INTEGER).value);
  const s = stripIntegerPadding(reader.next(TAG.INTEGER).value);
  if (!reader.done || r.length > 48 || s.length > 48) throw new RatlsError(code, `${what} has a malformed signature.`);
  return { r, s };
}

const utf8 = new TextDecoder('utf-8', { fatal: false });

/** The first commonName in a Name, or ''. */
function commonName(nameTlv: Tlv, code: ErrorCode, what: string): string {
  const rdns = new DerReader(nameTlv.value, code, what);
  while (!rdns.done) {
    const set = rdns.enter(TAG.SET);
    while (!set.done) {
      const atv = set.enter(TAG.SEQUENCE);
      const oid = oidToString(atv.next(TAG.OID).value);
      const val = atv.next();
      if (oid === OID.commonName) return utf8.decode(val.value);
    }
  }
  return '';
}

function splitSigned(der: Uint8Array, code: ErrorCode, what: string): { tbsTlv: Tlv; hash: Hash; sig: { r: Uint8Array; s: Uint8Array } } {
  const { reader } = derRoot(der, TAG.SEQUENCE, code, what);
  const tbsTlv = reader.next(TAG.SEQUENCE);
  const hash = readAlgorithm(reader, code, what);
  const sig = readEcdsaSignature(reader.next(TAG.BIT_STRING), code, what);
  if (!reader.done) throw new RatlsError(code, `${what} has trailing data.`);
  return { tbsTlv, hash, sig };
}

/**
 * Parses a DER certificate (ECDSA P-256/P-384 keys and signatures only, as Intel's PKI uses).
 * @throws RatlsError with `code` when the certificate cannot be read.
 */
export function parseCertificate(der: Uint8Array, code: ErrorCode = 'PCK_CHAIN_MALFORMED', what = 'Certificate'): Certificate {
  const { tbsTlv, hash, sig } = splitSigned(der, code, what);
  const t = new DerReader(tbsTlv.value, code, what);
  t.optional(0xa0); // version
  const serial = stripIntegerPadding(t.next(TAG.INTEGER).value);
  const innerHash = readAlgorithm(t, code, what);
  if (innerHash !== hash) throw new RatlsError(code, `${what} has mismatched signature algorithms.`);
  const issuer = t.next(TAG.SEQUENCE);
  const validity = t.enter(TAG.SEQUENCE);
  const notBefore = parseTime(validity.next(), code, what);
  const notAfter = parseTime(validity.next(), code, what);
  const subject = t.next(TAG.SEQUENCE);
  const spkiTlv = t.next(TAG.SEQUENCE);
  const spki = new DerReader(spkiTlv.value, code, what);
  const keyAlg = spki.enter(TAG.SEQUENCE);
  const keyOid = oidToString(keyAlg.next(TAG.OID).value);
  const curveOid = keyAlg.done ? '' : oidToString(keyAlg.next(TAG.OID).value);
  if (keyOid !== OID.ecPublicKey || (curveOid !== OID.p256 && curveOid !== OID.p384)) {
    throw new RatlsError(code, `${what} does not hold an ECDSA P-256 or P-384 public key.`);
  }
  const keyBits = spki.next(TAG.BIT_STRING).value;
  const pointLen = curveOid === OID.p256 ? 65 : 97;
  if (keyBits.length !== pointLen + 1 || keyBits[0] !== 0 || keyBits[1] !== 0x04) {
    throw new RatlsError(code, `${what} holds a public key that is not an uncompressed EC point.`);
  }
  t.optional(0x81);
  t.optional(0x82);
  const extensions = new Map<string, Uint8Array>();
  let isCa = false;
  const extWrap = t.optional(0xa3);
  if (extWrap) {
    const { reader: exts } = derRoot(extWrap.value, TAG.SEQUENCE, code, what);
    while (!exts.done) {
      const ext = exts.enter(TAG.SEQUENCE);
      const oid = oidToString(ext.next(TAG.OID).value);
      ext.optional(TAG.BOOLEAN);
      const value = ext.next(TAG.OCTET_STRING).value;
      if (extensions.has(oid)) throw new RatlsError(code, `${what} repeats extension ${oid}.`);
      extensions.set(oid, value);
      if (oid === OID.basicConstraints) {
        const { reader: bc } = derRoot(value, TAG.SEQUENCE, code, what);
        const flag = bc.optional(TAG.BOOLEAN);
        isCa = flag !== undefined && flag.value.length === 1 && flag.value[0] !== 0;
      }
    }
  }
  if (!t.done) throw new RatlsError(code, `${what} has unexpected fields.`);
  return {
    der,
    tbs: tbsTlv.full,
    hash,
    sigR: sig.r,
    sigS: sig.s,
    verified: new Map(),
    serial,
    issuerRaw: issuer.full,
    subjectRaw: subject.full,
    subjectCn: commonName(subject, code, what),
    issuerCn: commonName(issuer, code, what),
    notBefore,
    notAfter,
    spki: spkiTlv.full,
    publicKey: keyBits.subarray(1),
    curve: curveOid === OID.p256 ? 'P-256' : 'P-384',
    isCa,
    extensions,
  };
}

/** Parses a DER CRL. @throws RatlsError CRL_INVALID. */
export function parseCrl(der: Uint8Array, what = 'CRL'): Crl {
  const code: ErrorCode = 'CRL_INVALID';
  const { tbsTlv, hash, sig } = splitSigned(der, code, what);
  const t = new DerReader(tbsTlv.value, code, what);
  t.optional(TAG.INTEGER); // version
  const innerHash = readAlgorithm(t, code, what);
  if (innerHash !== hash) throw new RatlsError(code, `${what} has mismatched signature algorithms.`);
  const issuer = t.next(TAG.SEQUENCE);
  const thisUpdate = parseTime(t.next(), code, what);
  let nextUpdate: Date | undefined;
  const tag = t.peekTag();
  if (tag === TAG.UTC_TIME || tag === TAG.GENERALIZED_TIME) nextUpdate = parseTime(t.next(), code, what);
  const revoked = new Set<string>();
  const list = t.optional(TAG.SEQUENCE);
  if (list) {
    const entries = new DerReader(list.value, code, what);
    while (!entries.done) {
      const e = entries.enter(TAG.SEQUENCE);
      revoked.add(toHex(stripIntegerPadding(e.next(TAG.INTEGER).value)));
    }
  }
  const extensionOids = new Set<string>();
  const extWrap = t.optional(0xa0); // CRL extensions
  if (extWrap) {
    const { reader: exts } = derRoot(extWrap.value, TAG.SEQUENCE, code, what);
    while (!exts.done) {
      const oid = oidToString(exts.enter(TAG.SEQUENCE).next(TAG.OID).value);
      if (extensionOids.has(oid)) throw new RatlsError(code, `${what} repeats extension ${oid}.`);
      extensionOids.add(oid);
    }
  }
  if (!t.done) throw new RatlsError(code, `${what} has unexpected fields.`);
  return {
    der,
    tbs: tbsTlv.full,
    hash,
    sigR: sig.r,
    sigS: sig.s,
    verified: new Map(),
    issuerRaw: issuer.full,
    issuerCn: commonName(issuer, code, what),
    thisUpdate,
    nextUpdate,
    revoked,
    extensionOids,
  };
}

/** DER bytes of every certificate in PEM text, in order. */
export function pemToDers(pem: string, code: ErrorCode = 'PCK_CHAIN_MALFORMED', what = 'Certificate chain'): Uint8Array[] {
  const out: Uint8Array[] = [];
  if (typeof pem !== 'string') throw new RatlsError(code, `${what} is not PEM text.`);
  for (const block of splitPemCertificates(pem)) {
    const body = block.slice('-----BEGIN CERTIFICATE-----'.length, -'-----END CERTIFICATE-----'.length);
    const der = fromBase64(body.replace(/\s+/g, ''));
    if (!der || der.length === 0) throw new RatlsError(code, `${what} contains a PEM block that is not valid base64.`);
    out.push(der);
  }
  return out;
}

/** A trusted root given as PEM or DER, as DER. */
export function rootToDer(root: string | Uint8Array): Uint8Array {
  if (typeof root !== 'string') return root;
  const ders = pemToDers(root, 'POLICY_INVALID', 'Trusted root');
  if (ders.length !== 1) throw new RatlsError('POLICY_INVALID', 'A trusted root must be exactly one PEM certificate.');
  return ders[0]!;
}

/** Serial number as lower-case hex without sign padding. */
export function serialHex(c: Certificate): string {
  return toHex(c.serial);
}

/** Unsigned INTEGER helper re-exported for the PCK extension parser. */
export { intValue };

/** Header plus contents length of the DER element starting at b[0], or undefined if unreadable. */
function derTotalLength(b: Uint8Array): number | undefined {
  if (b.length < 2) return undefined;
  const first = b[1]!;
  if (first < 0x80) return 2 + first;
  const n = first & 0x7f;
  if (n === 0 || n > 4 || b.length < 2 + n) return undefined;
  let len = 0;
  for (let i = 0; i < n; i++) len = len * 256 + b[2 + i]!;
  return 2 + n + len;
}

function stripTrailingNul(b: Uint8Array): Uint8Array {
  let end = b.length;
  while (end > 0 && b[end - 1] === 0) end--;
  return b.subarray(0, end);
}

const CRL_PEM_BEGIN = '-----BEGIN X509 CRL-----';
const CRL_PEM_END = '-----END X509 CRL-----';

/**
 * CRLs arrive as raw DER, PEM, or hex-encoded DER (PCCS, DCAP collateral v3.0) depending on the
 * service or implementation; normalises to DER. Browser-safe, linear time on hostile input.
 * `what` names the CRL in messages, e.g. "stapled PCK CRL".
 * @throws RatlsError COLLATERAL_MALFORMED
 */
export function crlToDer(b: Uint8Array, what: string): Uint8Array {
  // DER may legitimately end in zero bytes (an ECDSA signature's last octet is 0 once in 256), so
  // only zeros past the length the DER header declares are a C-style terminator to drop.
  if (b.length > 0 && b[0] === 0x30) {
    const declared = derTotalLength(b);
    if (declared !== undefined && declared < b.length && b.subarray(declared).every((x) => x === 0)) return b.subarray(0, declared);
    return b;
  }
  let t: string;
  try {
    t = new TextDecoder('utf-8', { fatal: true }).decode(stripTrailingNul(b)).trim();
  } catch {
    throw new RatlsError('COLLATERAL_MALFORMED', `The ${what} is not UTF-8 text.`);
  }
  const begin = t.indexOf(CRL_PEM_BEGIN);
  if (begin >= 0) {
    const end = t.indexOf(CRL_PEM_END, begin + CRL_PEM_BEGIN.length);
    const der = end >= 0 ? fromBase64(t.slice(begin + CRL_PEM_BEGIN.length, end)) : undefined;
    if (!der || der.length === 0) throw new RatlsError('COLLATERAL_MALFORMED', `The ${what} is not valid PEM.`);
    return der;
  }
  const hex = fromHex(t);
  if (hex && hex[0] === 0x30) return hex;
  throw new RatlsError('COLLATERAL_MALFORMED', `The ${what} is neither DER, PEM nor hex.`);
}
