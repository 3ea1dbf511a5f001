/**
 * Validation of `POST /v1/attest` bodies. Everything here is hostile input: each field is checked for
 * type, encoding and size before any verifier sees it, and every rejection is a RatlsError with a
 * code the HTTP layer turns into a 400.
 */
import { RatlsError } from '../core/errors.ts';
import { fromBase64 } from '../core/bytes.ts';

/** A validated attestation request. */
export type AttestRequest =
  | { kind: 'quote'; quote: Uint8Array; nonce?: Uint8Array; runtimeData?: Uint8Array; policy?: string }
  | { kind: 'certificate'; certificate: Uint8Array; nonce?: Uint8Array; runtimeData?: undefined; policy?: string };

/** Per-field size limits in decoded bytes. */
export const LIMITS = {
  /** Real quotes are 5-8 KiB; 64 KiB leaves room for long PCK chains and trailing padding. */
  quote: 64 * 1024,
  certificate: 64 * 1024,
  nonce: 256,
  runtimeData: 16 * 1024,
  policyName: 64,
} as const;

const POLICY_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
const KNOWN_FIELDS = new Set(['quote', 'certificate', 'nonce', 'runtimeData', 'policy']);

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
      throw new RatlsError('REQUEST_MALFORMED', `Unknown field "${k.slice(0, 40)}"; allowed fields are quote, certificate, nonce, runtimeData and policy.`);
    }
  }
  const hasQuote = o.quote !== undefined;
  const hasCert = o.certificate !== undefined;
  if (hasQuote === hasCert) {
    throw new RatlsError('REQUEST_MALFORMED', 'Send exactly one of "quote" (base64 TDX quote) or "certificate" (base64 DER RA-TLS certificate).');
  }
  const nonce = optionalB64(o, 'nonce', LIMITS.nonce);
  // zero bytes would still count as "a nonce was sent" and satisfy requireNonce without any freshness
  if (nonce && nonce.length === 0)
    throw new RatlsError('NONCE_INVALID', '"nonce" is empty; send the random bytes you expect in the token (base64), or leave the field out.');
  const policy = optionalPolicy(o);
  if (hasQuote) {
    const quote = requiredB64(o, 'quote', LIMITS.quote);
    const runtimeData = optionalB64(o, 'runtimeData', LIMITS.runtimeData);
    if (runtimeData && runtimeData.length === 0) throw new RatlsError('REQUEST_MALFORMED', '"runtimeData" is empty; leave the field out instead.');
    return { kind: 'quote', quote, nonce, runtimeData, policy };
  }
  if (o.runtimeData !== undefined) {
    throw new RatlsError('REQUEST_MALFORMED', '"runtimeData" applies to raw quotes only; an RA-TLS certificate binds its own public key.');
  }
  const certificate = requiredB64(o, 'certificate', LIMITS.certificate);
  return { kind: 'certificate', certificate, nonce, policy };
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
