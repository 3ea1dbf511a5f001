/**
 * Validation of `POST /v1/attest` bodies. Everything here is hostile input: each field is checked for
 * type, encoding and size before any verifier sees it, and every rejection is a RatlsError with a
 * code the HTTP layer turns into a 400.
 */
import { RatlsError } from '../core/errors.ts';
import { fromBase64 } from '../core/bytes.ts';
import { certificateDer, checkFieldFormat } from './formats.ts';

/**
 * A validated attestation request. `evidence` is CCC RA-TLS evidence (CBOR tag 60000
 * [quote, claims]); the server's certificate may come with it, so the claims' pubkey-hash is
 * checked against the certificate's key. Certificates are DER here, whether posted as DER or PEM.
 */
export type AttestRequest =
  | { kind: 'quote'; quote: Uint8Array; nonce?: Uint8Array; runtimeData?: Uint8Array; policy?: string }
  | { kind: 'certificate'; certificate: Uint8Array; nonce?: Uint8Array; runtimeData?: undefined; policy?: string }
  | { kind: 'evidence'; evidence: Uint8Array; certificate?: Uint8Array; nonce?: Uint8Array; runtimeData?: undefined; policy?: string };

/** Per-field size limits in decoded bytes. */
export const LIMITS = {
  /** Real quotes are 5-8 KiB; 64 KiB leaves room for long PCK chains and trailing padding. */
  quote: 64 * 1024,
  certificate: 64 * 1024,
  /** A quote plus a claims buffer of a few hundred bytes. */
  evidence: 64 * 1024,
  nonce: 256,
  runtimeData: 16 * 1024,
  policyName: 64,
} as const;

const POLICY_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
const KNOWN_FIELDS = new Set(['quote', 'evidence', 'certificate', 'nonce', 'runtimeData', 'policy']);

/** Parses the raw body text into a request, or throws RatlsError (REQUEST_MALFORMED, REQUEST_BASE64_INVALID). */
export function parseAttestRequest(text: string): AttestRequest {
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw new RatlsError('REQUEST_MALFORMED', 'The request body is not valid JSON; send {"quote": "<base64>"} with Content-Type: application/json.');
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new RatlsError('REQUEST_MALFORMED', 'The request body must be a JSON object such as {"quote": "<base64>"}.');
  }
  const o = body as Record<string, unknown>;
  for (const k of Object.keys(o)) {
    if (!KNOWN_FIELDS.has(k)) {
      throw new RatlsError(
        'REQUEST_MALFORMED',
        `Unknown field "${k.slice(0, 40)}"; allowed fields are quote, evidence, certificate, nonce, runtimeData and policy.`,
      );
    }
  }
  const hasQuote = o.quote !== undefined;
  const hasEvidence = o.evidence !== undefined;
  const hasCert = o.certificate !== undefined;
  // evidence may bring the certificate whose key it names; otherwise exactly one kind of evidence
  if ([hasQuote, hasEvidence, hasCert && !hasEvidence].filter(Boolean).length !== 1) {
    throw new RatlsError(
      'REQUEST_MALFORMED',
      'Send exactly one of "quote" (base64 TDX quote), "evidence" (base64 CCC RA-TLS evidence, optionally with "certificate") or "certificate" (base64 RA-TLS certificate, DER or PEM).',
    );
  }
  const nonce = optionalB64(o, 'nonce', LIMITS.nonce);
  // zero bytes would still count as "a nonce was sent" and satisfy requireNonce without any freshness
  if (nonce && nonce.length === 0)
    throw new RatlsError('NONCE_INVALID', '"nonce" is empty; send the random bytes you expect in the token (base64), or leave the field out.');
  const policy = optionalPolicy(o);
  if (hasQuote) {
    const quote = requiredB64(o, 'quote', LIMITS.quote);
    checkFieldFormat('quote', quote);
    const runtimeData = optionalB64(o, 'runtimeData', LIMITS.runtimeData);
    if (runtimeData && runtimeData.length === 0) throw new RatlsError('REQUEST_MALFORMED', '"runtimeData" is empty; leave the field out instead.');
    return { kind: 'quote', quote, nonce, runtimeData, policy };
  }
  if (o.runtimeData !== undefined) {
    throw new RatlsError('REQUEST_MALFORMED', '"runtimeData" applies to raw quotes only; RA-TLS evidence binds its claims (public key, nonce) instead.');
  }
  const certificate = hasCert ? requiredCertificate(o) : undefined;
  if (hasEvidence) {
    const evidence = requiredB64(o, 'evidence', LIMITS.evidence);
    checkFieldFormat('evidence', evidence);
    return { kind: 'evidence', evidence, ...(certificate ? { certificate } : {}), nonce, policy };
  }
  return { kind: 'certificate', certificate: certificate!, nonce, policy };
}

function requiredCertificate(o: Record<string, unknown>): Uint8Array {
  const bytes = requiredB64(o, 'certificate', LIMITS.certificate);
  checkFieldFormat('certificate', bytes);
  return certificateDer(bytes);
}

function requiredB64(o: Record<string, unknown>, field: string, max: number): Uint8Array {
  const v = optionalB64(o, field, max);
  if (!v || v.length === 0) throw new RatlsError('REQUEST_MALFORMED', `"${field}" must not be empty.`);
  return v;
}

function optionalB64(o: Record<string, unknown>, field: string, max: number): Uint8Array | undefined {
  const v = o[field];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string') throw new RatlsError('REQUEST_MALFORMED', `"${field}" must be a base64 string.`);
  // reject before decoding so a huge string costs no allocation beyond the body limit
  if (v.length > Math.ceil((max * 4) / 3) + 4) {
    throw new RatlsError('REQUEST_MALFORMED', `"${field}" is longer than the ${max}-byte limit.`);
  }
  const bytes = fromBase64(v);
  if (!bytes) {
    throw new RatlsError(
      'REQUEST_BASE64_INVALID',
      `"${field}" is not valid base64 (standard alphabet as \`openssl rand -base64 32\` prints it, or URL-safe; padding optional).`,
    );
  }
  if (bytes.length > max) throw new RatlsError('REQUEST_MALFORMED', `"${field}" is longer than the ${max}-byte limit.`);
  return bytes;
}

function optionalPolicy(o: Record<string, unknown>): string | undefined {
  const v = o.policy;
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string' || !POLICY_NAME.test(v)) {
    throw new RatlsError('REQUEST_MALFORMED', '"policy" must be a policy name (letters, digits, ".", "_", "-"; at most 64 characters); see GET /v1/policies.');
  }
  return v;
}
