/**
 * X.509 extension payloads of the CCC Interoperable RA-TLS profile.
 *
 * Evidence (OID 2.23.133.5.4.9, tcg-dice-conceptual-message-wrapper, non-critical):
 *   60000([ bstr TDX quote, bstr claims-buffer ])
 * Endorsements (OID 2.23.133.5.4.2, tcg-dice-endorsement-manifest, non-critical):
 *   60000([ uint VERSION, bstr TCB_INFO, bstr TCB_ISSUER_CHAIN, bstr CRL_PCK_CERT,
 *           bstr CRL_PCK_PROC_CA, bstr CRL_ISSUER_CHAIN_PCK_CERT, bstr QE_ID_INFO,
 *           bstr QE_ID_ISSUER_CHAIN, ? bstr CREATION_DATETIME ])
 * (entry order from Open Enclave's oe_sgx_endorsements_fields_t, as the spec says).
 *
 * Browser-safe: cbor2 only.
 */
import { encode, encodedNumber, Tag } from 'cbor2';
import { RatlsError } from '../core/errors.ts';
import type { Collateral } from '../core/types.ts';
import { crlToDer } from '../verify/x509.ts';
import { strictCborDecode } from './claims.ts';

export const OID_RATLS_EVIDENCE = '2.23.133.5.4.9';
export const OID_RATLS_ENDORSEMENTS = '2.23.133.5.4.2';
/** dstack's raw-quote extension (optional profile). */
export const OID_DSTACK_QUOTE = '1.3.6.1.4.1.62397.1.1';
/**
 * dstack's event-log extension (JSON list of TDX events). dstack's verifier refuses a certificate
 * with a quote but without it, then replays RTMR3 from its runtime events.
 */
export const OID_DSTACK_EVENT_LOG = '1.3.6.1.4.1.62397.1.2';
/** Intel's PCK SGX-extensions OID. Never placed on an RA-TLS certificate. */
export const OID_SGX_EXTENSIONS = '1.2.840.113741.1.13.1';

/** IANA CBOR tag 60000: Intel TEE quote (SGX/TDX ECDSA). */
export const CBOR_TAG_INTEL_TEE_QUOTE = 60000;

/**
 * Endorsements VERSION. The spec does not fix the value; the CCC repository's issue #3 maps it to
 * sgx_ql_qve_collateral_t.version, a little-endian u32 union of major_version (low 16 bits) and
 * minor_version (high 16 bits). We send 3.1 (PCS v3+ collateral, CRLs as raw DER) = 0x00010003.
 * The value needs four bytes anyway, so the explicit 32-bit width changes nothing on the wire.
 */
export const ENDORSEMENTS_VERSION = 3 | (1 << 16);

const MAX_QUOTE_BYTES = 64 * 1024;
const MAX_ENDORSEMENT_ITEM_BYTES = 1024 * 1024;

/** Encodes the evidence extension value (also served by /.well-known/ratls/evidence). */
export function encodeEvidence(quote: Uint8Array, claimsBuffer: Uint8Array): Uint8Array {
  return encode(new Tag(CBOR_TAG_INTEL_TEE_QUOTE, [quote, claimsBuffer]));
}

/** Decodes an evidence blob (hostile input). Throws RatlsError EVIDENCE_MALFORMED. */
export function decodeEvidence(bytes: Uint8Array): { quote: Uint8Array; claimsBuffer: Uint8Array } {
  const v = strictCborDecode(bytes, 'evidence extension');
  if (!(v instanceof Tag)) throw new RatlsError('EVIDENCE_MALFORMED', 'The evidence must be a tagged CBOR item.');
  if (v.tag !== CBOR_TAG_INTEL_TEE_QUOTE && v.tag !== BigInt(CBOR_TAG_INTEL_TEE_QUOTE)) {
    throw new RatlsError('EVIDENCE_MALFORMED', `The evidence has CBOR tag ${String(v.tag)}; only tag 60000 (Intel TEE quote) is supported.`);
  }
  const arr = v.contents;
  if (!Array.isArray(arr) || arr.length !== 2) {
    throw new RatlsError('EVIDENCE_MALFORMED', 'The evidence must be a two-entry array [quote, claims-buffer].');
  }
  const [quote, claims] = arr as unknown[];
  if (!(quote instanceof Uint8Array) || !(claims instanceof Uint8Array)) {
    throw new RatlsError('EVIDENCE_MALFORMED', 'The evidence entries must both be byte strings.');
  }
  if (quote.length === 0 || quote.length > MAX_QUOTE_BYTES) {
    throw new RatlsError('EVIDENCE_MALFORMED', `The quote in the evidence has an implausible size (${quote.length} bytes).`);
  }
  return { quote, claimsBuffer: claims };
}

const enc = new TextEncoder();

/**
 * Encodes collateral as the endorsements extension value. Text items are written as UTF-8 without a
 * trailing NUL; CRLs as raw DER; CREATION_DATETIME as ISO 8601 text ("YYYY-MM-DDTHH:MM:SSZ").
 */
export function encodeEndorsements(c: Collateral, createdAt?: Date): Uint8Array {
  const items: unknown[] = [
    encodedNumber(ENDORSEMENTS_VERSION, 'i32'),
    enc.encode(c.tcbInfoJson),
    enc.encode(c.tcbInfoIssuerChain),
    c.pckCrl,
    c.rootCaCrl,
    enc.encode(c.pckCrlIssuerChain),
    enc.encode(c.qeIdentityJson),
    enc.encode(c.qeIdentityIssuerChain),
  ];
  if (createdAt) items.push(enc.encode(createdAt.toISOString().replace(/\.\d{3}Z$/, 'Z')));
  return encode(new Tag(CBOR_TAG_INTEL_TEE_QUOTE, items));
}

/** Decoded endorsements. */
export interface DecodedEndorsements {
  version: number;
  collateral: Collateral;
  createdAt?: string;
}

function stripNul(b: Uint8Array): Uint8Array {
  let end = b.length;
  while (end > 0 && b[end - 1] === 0) end--;
  return b.subarray(0, end);
}

function text(b: Uint8Array, name: string): string {
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(stripNul(b));
  } catch {
    throw new RatlsError('COLLATERAL_MALFORMED', `The stapled ${name} is not UTF-8 text.`);
  }
}

/** Decodes the endorsements extension (hostile input). Throws RatlsError COLLATERAL_MALFORMED. */
export function decodeEndorsements(bytes: Uint8Array): DecodedEndorsements {
  let v: unknown;
  try {
    v = strictCborDecode(bytes, 'endorsements extension');
  } catch (err) {
    throw new RatlsError('COLLATERAL_MALFORMED', err instanceof Error ? err.message : 'Malformed endorsements.');
  }
  if (!(v instanceof Tag) || Number(v.tag) !== CBOR_TAG_INTEL_TEE_QUOTE) {
    throw new RatlsError('COLLATERAL_MALFORMED', 'The endorsements must be CBOR tag 60000.');
  }
  const arr = v.contents;
  if (!Array.isArray(arr) || (arr.length !== 8 && arr.length !== 9)) {
    throw new RatlsError('COLLATERAL_MALFORMED', 'The endorsements must be an array of 8 or 9 entries.');
  }
  const [version, ...rest] = arr as unknown[];
  if (typeof version !== 'number' || !Number.isInteger(version) || version < 0) {
    throw new RatlsError('COLLATERAL_MALFORMED', 'The endorsements version must be an unsigned integer.');
  }
  const names = [
    'TCB info',
    'TCB info issuer chain',
    'PCK CRL',
    'root CA CRL',
    'PCK CRL issuer chain',
    'QE identity',
    'QE identity issuer chain',
    'creation time',
  ];
  rest.forEach((x, i) => {
    if (!(x instanceof Uint8Array)) throw new RatlsError('COLLATERAL_MALFORMED', `The stapled ${names[i]} must be a byte string.`);
    if (x.length > MAX_ENDORSEMENT_ITEM_BYTES) throw new RatlsError('COLLATERAL_MALFORMED', `The stapled ${names[i]} is too large.`);
  });
  const b = rest as Uint8Array[];
  const collateral: Collateral = {
    tcbInfoJson: text(b[0]!, names[0]!),
    tcbInfoIssuerChain: text(b[1]!, names[1]!),
    pckCrl: crlToDer(b[2]!, `stapled ${names[2]!}`),
    rootCaCrl: crlToDer(b[3]!, `stapled ${names[3]!}`),
    pckCrlIssuerChain: text(b[4]!, names[4]!),
    qeIdentityJson: text(b[5]!, names[5]!),
    qeIdentityIssuerChain: text(b[6]!, names[6]!),
  };
  const out: DecodedEndorsements = { version, collateral };
  if (b[7]) out.createdAt = text(b[7], names[7]!);
  return out;
}
