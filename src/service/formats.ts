/**
 * What a relying party posted, told apart by its first bytes before any parser sees it: a raw TDX
 * quote, CCC RA-TLS evidence (what `ratls serve` answers on /.well-known/ratls/evidence), or an
 * X.509 certificate (DER, or PEM text). Without this a CCC evidence blob in the `quote` field is
 * read as a quote of version 60121 (the CBOR tag bytes d9 ea), which tells nobody what went wrong.
 *
 * The signatures never overlap: a quote starts with its version as a little-endian u16 (04 00 or
 * 05 00), CBOR tag 60000 is d9 ea 60, a DER certificate is a SEQUENCE (30) and PEM is text
 * starting with "-----BEGIN".
 */
import { RatlsError } from '../core/errors.ts';
import { fromBase64, toHex } from '../core/bytes.ts';

/** The kinds of evidence the service can tell apart. */
export type EvidenceFormat = 'tdx-quote' | 'ccc-evidence' | 'x509-der' | 'x509-pem' | 'unknown';

/** The request field each format belongs in. */
export type EvidenceField = 'quote' | 'evidence' | 'certificate';

const CBOR_TAG_60000 = [0xd9, 0xea, 0x60];
const PEM_BEGIN = '-----BEGIN ';
const PEM_CERTIFICATE = /-----BEGIN CERTIFICATE-----\s*([A-Za-z0-9+/=\s]+?)-----END CERTIFICATE-----/;

const DESCRIPTIONS: Record<EvidenceFormat, string> = {
  'tdx-quote': 'a raw TDX quote',
  'ccc-evidence': 'CCC RA-TLS evidence (CBOR tag 60000 [quote, claims], as /.well-known/ratls/evidence serves it)',
  'x509-der': 'an X.509 certificate (DER)',
  'x509-pem': 'an X.509 certificate (PEM)',
  unknown: 'none of the known formats',
};

const FIELD_OF: Record<Exclude<EvidenceFormat, 'unknown'>, EvidenceField> = {
  'tdx-quote': 'quote',
  'ccc-evidence': 'evidence',
  'x509-der': 'certificate',
  'x509-pem': 'certificate',
};

/** Skips a UTF-8 byte order mark and leading ASCII whitespace (PEM files often start with either). */
function textStart(b: Uint8Array): number {
  let i = b[0] === 0xef && b[1] === 0xbb && b[2] === 0xbf ? 3 : 0;
  while (i < b.length && (b[i] === 0x20 || b[i] === 0x09 || b[i] === 0x0a || b[i] === 0x0d)) i++;
  return i;
}

/** Names the format of `bytes` from its first bytes; never throws. */
export function detectEvidenceFormat(bytes: Uint8Array): EvidenceFormat {
  if (bytes.length >= 3 && CBOR_TAG_60000.every((v, i) => bytes[i] === v)) return 'ccc-evidence';
  if (bytes.length >= 2 && (bytes[0] === 4 || bytes[0] === 5) && bytes[1] === 0) return 'tdx-quote';
  // a certificate is a SEQUENCE long enough to need a long-form length (0x81-0x84 length bytes)
  if (bytes.length >= 2 && bytes[0] === 0x30 && bytes[1]! >= 0x81 && bytes[1]! <= 0x84) return 'x509-der';
  const start = textStart(bytes);
  const head = new TextDecoder('latin1').decode(bytes.subarray(start, start + PEM_BEGIN.length));
  if (head === PEM_BEGIN) return 'x509-pem';
  return 'unknown';
}

/** A readable name of the format, for messages. */
export function describeFormat(f: EvidenceFormat): string {
  return DESCRIPTIONS[f];
}

/**
 * Refuses bytes that are plainly another known format than `field` takes, naming the field they
 * belong in. Bytes of no known format pass through: the field's own parser names what is wrong
 * with them (QUOTE_TRUNCATED, CERT_MALFORMED, EVIDENCE_MALFORMED...).
 * @throws RatlsError EVIDENCE_FORMAT_MISMATCH
 */
export function checkFieldFormat(field: EvidenceField, bytes: Uint8Array): EvidenceFormat {
  const f = detectEvidenceFormat(bytes);
  if (f === 'unknown' || FIELD_OF[f] === field) return f;
  const hint =
    f === 'ccc-evidence'
      ? ' Send it as "evidence", with the server\'s certificate as "certificate" so its key binding is checked.'
      : f === 'tdx-quote'
        ? ' Send it as "quote"; its nonce binding is then SHA-512(nonce || runtimeData) in REPORTDATA.'
        : ' Send it as "certificate".';
  throw new RatlsError(
    'EVIDENCE_FORMAT_MISMATCH',
    `"${field}" holds ${DESCRIPTIONS[f]}, not ${expected(field)}: its first bytes are ${toHex(bytes.subarray(0, 4))}.${hint}`,
  );
}

function expected(field: EvidenceField): string {
  return field === 'quote' ? DESCRIPTIONS['tdx-quote'] : field === 'evidence' ? DESCRIPTIONS['ccc-evidence'] : 'an X.509 certificate (DER or PEM)';
}

/**
 * The DER of a certificate posted as DER or PEM text. A PEM without a CERTIFICATE block (a key, a
 * CSR) is refused here, with its label, rather than handed to the DER parser.
 * @throws RatlsError CERT_MALFORMED
 */
export function certificateDer(bytes: Uint8Array): Uint8Array {
  if (detectEvidenceFormat(bytes) !== 'x509-pem') return bytes;
  const text = new TextDecoder('latin1').decode(bytes);
  const m = PEM_CERTIFICATE.exec(text);
  if (!m) {
    const label = /-----BEGIN ([A-Z0-9 ]{1,40})-----/.exec(text)?.[1] ?? 'unknown';
    throw new RatlsError('CERT_MALFORMED', `"certificate" is PEM text without a CERTIFICATE block (it holds "${label}"); send the server's certificate.`);
  }
  const der = fromBase64(m[1]!);
  if (!der || der.length === 0) throw new RatlsError('CERT_MALFORMED', '"certificate" is a PEM CERTIFICATE block whose content is not base64.');
  return der;
}
