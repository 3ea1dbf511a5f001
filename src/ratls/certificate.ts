/**
 * Reads a peer's RA-TLS certificate completely, once, before anything is checked. @peculiar/x509
 * parses lazily (names, validity, key and each extension on first access), so a malformed field
 * used to surface as a library exception wherever it was first touched, reported as INTERNAL with
 * the library's text. Here every part is read up front and any failure is CERT_MALFORMED naming the
 * part. Browser-safe.
 */
import { ExtensionFactory, X509Certificate } from '@peculiar/x509';
import { RatlsError } from '../core/errors.ts';
import { toArrayBuffer } from '../core/bytes.ts';
import { TAG, derRoot, oidToString } from '../verify/der.ts';

/** One extension as it is encoded: OID, critical flag, extnValue contents. */
export interface CertificateExtension {
  type: string;
  critical: boolean;
  value: Uint8Array;
}

/** The parts of a certificate the RA-TLS checks use, all read and validated. */
export interface RatlsCertificateView {
  der: Uint8Array;
  subject: string;
  issuer: string;
  /** DER of the subject and issuer Names (compared to tell a self-issued certificate). */
  subjectNameDer: Uint8Array;
  issuerNameDer: Uint8Array;
  notBefore: Date;
  notAfter: Date;
  /** DER SubjectPublicKeyInfo. */
  spkiDer: Uint8Array;
  extensions: readonly CertificateExtension[];
  /** The extensions with `type`, in order. */
  extensionsOf(type: string): CertificateExtension[];
  /**
   * Whether the certificate's signature verifies with its own key: undefined when the algorithm
   * cannot be checked here (e.g. a CA's RSA-PSS signature).
   */
  verifiesWithOwnKey(): Promise<boolean | undefined>;
}

/** Names the extensions whose value @peculiar/x509 interprets, for messages. */
const EXTENSION_NAMES: Record<string, string> = {
  '2.5.29.14': 'subjectKeyIdentifier',
  '2.5.29.15': 'keyUsage',
  '2.5.29.17': 'subjectAltName',
  '2.5.29.19': 'basicConstraints',
  '2.5.29.31': 'cRLDistributionPoints',
  '2.5.29.32': 'certificatePolicies',
  '2.5.29.35': 'authorityKeyIdentifier',
  '2.5.29.37': 'extKeyUsage',
  '1.3.6.1.5.5.7.1.1': 'authorityInfoAccess',
};

function malformed(part: string): RatlsError {
  return new RatlsError('CERT_MALFORMED', `The certificate's ${part} cannot be read: the certificate is malformed or was altered in transit.`);
}

/** Runs `read`; any failure in it is CERT_MALFORMED naming `part`. */
function readPart<T>(part: string, read: () => T): T {
  try {
    return read();
  } catch (err) {
    if (err instanceof RatlsError && err.code === 'CERT_MALFORMED') throw err;
    throw malformed(part);
  }
}

function validDate(d: Date, part: string): Date {
  if (!(d instanceof Date) || Number.isNaN(d.getTime())) throw malformed(part);
  return d;
}

/** The raw Extension SEQUENCEs of the TBSCertificate, in order (RFC 5280 4.1). */
function rawExtensions(der: Uint8Array): Uint8Array[] {
  const { reader } = derRoot(der, TAG.SEQUENCE, 'CERT_MALFORMED', 'The certificate');
  const tbs = reader.enter(TAG.SEQUENCE);
  tbs.optional(0xa0); // version
  tbs.next(TAG.INTEGER); // serialNumber
  tbs.next(TAG.SEQUENCE); // signature
  tbs.next(TAG.SEQUENCE); // issuer
  tbs.next(TAG.SEQUENCE); // validity
  tbs.next(TAG.SEQUENCE); // subject
  tbs.next(TAG.SEQUENCE); // subjectPublicKeyInfo
  tbs.optional(0x81); // issuerUniqueID
  tbs.optional(0x82); // subjectUniqueID
  const wrap = tbs.optional(0xa3);
  if (!tbs.done) throw malformed('TBSCertificate');
  if (!wrap) return [];
  const { reader: list } = derRoot(wrap.value, TAG.SEQUENCE, 'CERT_MALFORMED', "The certificate's extension list");
  const out: Uint8Array[] = [];
  while (!list.done) out.push(list.next(TAG.SEQUENCE).full);
  return out;
}

/** OID, critical flag and value of one Extension SEQUENCE. */
function splitExtension(raw: Uint8Array): CertificateExtension {
  const { reader } = derRoot(raw, TAG.SEQUENCE, 'CERT_MALFORMED', 'A certificate extension');
  const type = oidToString(reader.next(TAG.OID).value);
  const flag = reader.optional(TAG.BOOLEAN);
  if (flag && (flag.value.length !== 1 || (flag.value[0] !== 0 && flag.value[0] !== 0xff))) throw malformed(`extension ${type} (critical flag)`);
  const value = reader.next(TAG.OCTET_STRING).value;
  if (!reader.done) throw malformed(`extension ${type}`);
  return { type, critical: flag !== undefined && flag.value[0] === 0xff, value };
}

/**
 * Reads every part of `der` the RA-TLS checks use.
 * @throws RatlsError CERT_MALFORMED naming the part that cannot be read (never a library exception).
 * @example
 *   const cert = readRatlsCertificate(peerDer);
 *   cert.extensionsOf('2.23.133.5.4.9')[0]?.value; // the evidence extension's value
 */
export function readRatlsCertificate(der: Uint8Array): RatlsCertificateView {
  const cert = readPart('DER structure (not an X.509 certificate)', () => new X509Certificate(toArrayBuffer(der)));
  const subjectNameDer = readPart('subject name', () => new Uint8Array(cert.subjectName.toArrayBuffer()));
  const subject = readPart('subject name', () => cert.subject);
  const issuerNameDer = readPart('issuer name', () => new Uint8Array(cert.issuerName.toArrayBuffer()));
  const issuer = readPart('issuer name', () => cert.issuer);
  const notBefore = validDate(
    readPart('validity', () => cert.notBefore),
    'validity',
  );
  const notAfter = validDate(
    readPart('validity', () => cert.notAfter),
    'validity',
  );
  const spkiDer = readPart('public key', () => {
    const key = cert.publicKey;
    void key.algorithm;
    return new Uint8Array(key.rawData);
  });
  const extensions = readPart('extensions', () => rawExtensions(der)).map((raw) => {
    const ext = readPart('extensions', () => splitExtension(raw));
    // The library's own reading of extensions it knows (names, constraints, key usages): a value
    // it cannot parse is a malformed certificate, whether or not this verifier uses the extension.
    readPart(`${EXTENSION_NAMES[ext.type] ?? 'extension'} ${ext.type}`, () => ExtensionFactory.create(toArrayBuffer(raw)));
    return ext;
  });
  return {
    der,
    subject,
    issuer,
    subjectNameDer,
    issuerNameDer,
    notBefore,
    notAfter,
    spkiDer,
    extensions,
    extensionsOf: (type) => extensions.filter((e) => e.type === type),
    async verifiesWithOwnKey() {
      try {
        return await cert.verify({ signatureOnly: true });
      } catch {
        return undefined;
      }
    },
  };
}
