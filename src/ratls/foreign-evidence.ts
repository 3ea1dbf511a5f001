/**
 * Names attestation evidence that other projects put into TLS certificates in formats ratls does not
 * verify, so that a refusal says what was found ("an SGX quote in Gramine's legacy extension")
 * instead of only "no evidence". Nothing here is trusted or verified: it only reads OIDs and, for
 * extensions it does not know, peeks at the first bytes for a quote header.
 */
import type { CertificateExtension } from './certificate.ts';

interface KnownFormat {
  /** A whole OID, or a prefix ending in '.'. */
  readonly oid: string;
  readonly what: string;
}

const KNOWN_FORMATS: readonly KnownFormat[] = [
  {
    oid: '1.2.840.113741.1.13.1',
    what: "an SGX quote (Gramine's legacy RA-TLS extension; Intel PCK certificates use the same OID): evidence for SGX enclaves, not TDX",
  },
  {
    oid: '1.2.840.113741.1.5.5.1.6',
    what: 'a TDX quote in the legacy rats-tls / Enclave-TLS format, whose key binding ratls does not implement (current rats-tls writes the CCC format, which ratls verifies)',
  },
  { oid: '1.2.840.113741.1.14.1', what: 'an SGX local-attestation report (rats-tls legacy), which proves nothing to a remote client' },
  {
    oid: '1.2.840.113741.1337.',
    what: "SGX evidence in the legacy Intel sgx-ra-tls layout (Gramine's old RA-TLS, Enclave-TLS, Open Enclave: an SGX quote, report or IAS report): evidence for SGX enclaves, not TDX",
  },
  {
    // Gramine's legacy RA-TLS wrote the OID's own DER tag and length into it, so it decodes with a 0.6.9 prefix.
    oid: '0.6.9.42.840.113741.1337.',
    what: "an SGX quote in Gramine's legacy RA-TLS extension (the 1.2.840.113741.1337.6 OID, mis-encoded): evidence for SGX enclaves, not TDX",
  },
  { oid: '1.3.9900.', what: "an Edgeless Systems aTLS attestation document (Constellation, Contrast), verified with those projects' own tools" },
  { oid: '1.3.6.1.4.1.62397.1.6', what: 'a dstack vTPM (TPM quote) attestation, not a TDX quote' },
];

/** Extensions every TLS certificate may carry: never reported. */
const STANDARD_PREFIXES = ['2.5.29.', '1.3.6.1.5.5.7.', '1.3.6.1.4.1.11129.2.4.'];

const TEE_NAMES: Record<number, string> = { 0x00: 'SGX', 0x81: 'TDX' };

/** What a quote header at the start of `b` says, or undefined when it is not one. */
function quoteHeaderAt(b: Uint8Array): string | undefined {
  if (b.length < 48) return undefined;
  const version = b[0]! | (b[1]! << 8);
  const keyType = b[2]! | (b[3]! << 8);
  const tee = (b[4]! | (b[5]! << 8) | (b[6]! << 16) | (b[7]! << 24)) >>> 0;
  if (version < 3 || version > 5 || (keyType !== 2 && keyType !== 3)) return undefined;
  const teeName = TEE_NAMES[tee];
  return teeName ? `what looks like ${teeName === 'SGX' ? 'an' : 'a'} ${teeName} quote (version ${version})` : undefined;
}

/** The value, and its content when it is one DER OCTET STRING (how most projects wrap raw bytes). */
function candidates(value: Uint8Array): Uint8Array[] {
  const out = [value];
  if (value[0] !== 0x04 || value.length < 2) return out;
  const first = value[1]!;
  let len = first;
  let start = 2;
  if (first & 0x80) {
    const n = first & 0x7f;
    if (n === 0 || n > 4 || value.length < 2 + n) return out;
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + value[2 + i]!;
    start = 2 + n;
  }
  if (start + len <= value.length) out.push(value.subarray(start, start + len));
  return out;
}

/**
 * A sentence naming the foreign evidence found among `extensions` ("Found instead: extension X
 * holds ..."), or undefined when there is none worth naming.
 */
export function describeForeignEvidence(extensions: readonly CertificateExtension[]): string | undefined {
  const found: string[] = [];
  for (const ext of extensions) {
    if (STANDARD_PREFIXES.some((p) => ext.type.startsWith(p))) continue;
    const known = KNOWN_FORMATS.find((f) => (f.oid.endsWith('.') ? ext.type.startsWith(f.oid) : ext.type === f.oid));
    if (known) {
      found.push(`extension ${ext.type} holds ${known.what}`);
      continue;
    }
    const header = candidates(ext.value)
      .map(quoteHeaderAt)
      .find((h) => h !== undefined);
    if (header) found.push(`extension ${ext.type} holds ${header}, in a format whose binding of the quote to the key ratls does not know`);
  }
  if (found.length === 0) return undefined;
  return `Found instead: ${found.slice(0, 3).join('; ')}.`;
}
