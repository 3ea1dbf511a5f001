/**
 * Certificate and CRL minting for the simulated DCAP PKI, shaped like Intel's: the same
 * extensions, key usages, path lengths and CRL extensions as the real SGX Root CA hierarchy, but
 * every subject says SIMULATED so nobody mistakes it for Intel's. Node-only (key files).
 */
import * as x509 from '@peculiar/x509';
import * as asn1js from 'asn1js';
import { webcrypto } from 'node:crypto';

x509.cryptoProvider.set(webcrypto as unknown as Crypto);

export const EC_P256: EcKeyGenParams = { name: 'ECDSA', namedCurve: 'P-256' };
export const ECDSA_SHA256: EcdsaParams = { name: 'ECDSA', hash: 'SHA-256' };

/** Subjects of the simulated hierarchy (Intel's layout, SIMULATED names). */
export const SIM_NAMES = {
  root: 'CN=SIMULATED SGX Root CA, O=SIMULATED ratls-proxy (not Intel), L=Santa Clara, ST=CA, C=US',
  pckCa: 'CN=SIMULATED SGX PCK Platform CA, O=SIMULATED ratls-proxy (not Intel), L=Santa Clara, ST=CA, C=US',
  pck: 'CN=SIMULATED SGX PCK Certificate, O=SIMULATED ratls-proxy (not Intel), L=Santa Clara, ST=CA, C=US',
  tcbSigning: 'CN=SIMULATED SGX TCB Signing, O=SIMULATED ratls-proxy (not Intel), L=Santa Clara, ST=CA, C=US',
} as const;

export async function generateP256(): Promise<CryptoKeyPair> {
  return (await webcrypto.subtle.generateKey(EC_P256, true, ['sign', 'verify'])) as unknown as CryptoKeyPair;
}

/** PKCS#8 PEM of a private key (written only into the simulated world directory). */
export async function privateKeyPem(key: CryptoKey): Promise<string> {
  const der = await webcrypto.subtle.exportKey('pkcs8', key as unknown as webcrypto.CryptoKey);
  return x509.PemConverter.encode(der, 'PRIVATE KEY') + '\n';
}

/** Imports a PKCS#8 PEM P-256 key pair (public key recovered from the certificate or JWK). */
export async function importKeyPair(pkcs8Pem: string): Promise<CryptoKeyPair> {
  const der = x509.PemConverter.decodeFirst(pkcs8Pem);
  const priv = await webcrypto.subtle.importKey('pkcs8', der, EC_P256, true, ['sign']);
  const jwk = await webcrypto.subtle.exportKey('jwk', priv);
  const pub = await webcrypto.subtle.importKey('jwk', { kty: jwk.kty, crv: jwk.crv, x: jwk.x, y: jwk.y, ext: true }, EC_P256, true, ['verify']);
  return { privateKey: priv as unknown as CryptoKey, publicKey: pub as unknown as CryptoKey };
}

/** ECDSA-SHA256 signature in IEEE P1363 form (r||s, 64 bytes), the form DCAP uses everywhere. */
export async function signRaw(key: CryptoKey, data: Uint8Array): Promise<Uint8Array> {
  return new Uint8Array(await webcrypto.subtle.sign(ECDSA_SHA256, key as unknown as webcrypto.CryptoKey, data));
}

/** Raw public key x||y (64 bytes) as carried in quotes. */
export async function rawPublicKey64(key: CryptoKey): Promise<Uint8Array> {
  const raw = new Uint8Array(await webcrypto.subtle.exportKey('raw', key as unknown as webcrypto.CryptoKey));
  return raw.subarray(1);
}

/** Random positive 20-byte serial, hex. */
export function randomSerial(): string {
  const b = webcrypto.getRandomValues(new Uint8Array(20));
  b[0] = (b[0]! & 0x7f) | 0x10;
  return Buffer.from(b).toString('hex');
}

const CA_USAGE = new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true);
const LEAF_USAGE = new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.nonRepudiation, true);

export interface IssueParams {
  subject: string;
  publicKey: CryptoKey;
  issuer: { name: string; key: CryptoKey; cert?: x509.X509Certificate };
  notBefore: Date;
  notAfter: Date;
  ca: boolean;
  pathLength?: number;
  /** Where the issuer's CRL would be published (Intel fills this on every non-root cert). */
  crlUrl?: string;
  extra?: x509.Extension[];
}

/** Mints one certificate of the hierarchy. */
export async function issueCert(p: IssueParams): Promise<x509.X509Certificate> {
  const ski = await x509.SubjectKeyIdentifierExtension.create(p.publicKey);
  const exts: x509.Extension[] = [];
  if (p.issuer.cert) exts.push(await x509.AuthorityKeyIdentifierExtension.create(p.issuer.cert, false));
  else exts.push(new x509.AuthorityKeyIdentifierExtension(ski.keyId, false));
  if (p.crlUrl) exts.push(new x509.CRLDistributionPointsExtension([p.crlUrl]));
  exts.push(ski, p.ca ? CA_USAGE : LEAF_USAGE, new x509.BasicConstraintsExtension(p.ca, p.pathLength, true));
  exts.push(...(p.extra ?? []));
  return x509.X509CertificateGenerator.create({
    serialNumber: randomSerial(),
    subject: p.subject,
    issuer: p.issuer.name,
    notBefore: p.notBefore,
    notAfter: p.notAfter,
    publicKey: p.publicKey,
    signingKey: p.issuer.key,
    signingAlgorithm: ECDSA_SHA256,
    extensions: exts,
  });
}

/** A CRL like Intel's: CRL number 1, authority key id, optional revoked serials (key compromise). */
export async function issueCrl(p: {
  issuer: x509.X509Certificate;
  key: CryptoKey;
  thisUpdate: Date;
  nextUpdate: Date;
  revokedSerials?: string[];
}): Promise<Uint8Array> {
  const crlNumber = new x509.Extension('2.5.29.20', false, new asn1js.Integer({ value: 1 }).toBER(false));
  const crl = await x509.X509CrlGenerator.create({
    issuer: p.issuer.subject,
    thisUpdate: p.thisUpdate,
    nextUpdate: p.nextUpdate,
    signingKey: p.key,
    signingAlgorithm: ECDSA_SHA256,
    extensions: [crlNumber, await x509.AuthorityKeyIdentifierExtension.create(p.issuer, false)],
    entries: (p.revokedSerials ?? []).map((serialNumber) => ({
      serialNumber,
      revocationDate: p.thisUpdate,
      reason: x509.X509CrlReason.keyCompromise,
    })),
  });
  return new Uint8Array(crl.rawData);
}
