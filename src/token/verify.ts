/**
 * Relying-party side of the attestation service: verifies a token's signature against the
 * service's JWKS (or given keys), its lifetime, issuer, audience and nonce, and returns the claims.
 * Only ES256 and ES384 are accepted: `alg: none`, HMAC and RSA tokens are rejected before any key is
 * looked at, so a key confusion attack has nothing to confuse.
 */
import { createLocalJWKSet, createRemoteJWKSet, decodeProtectedHeader, errors as joseErrors, jwtVerify, type JWK, type JWTVerifyGetKey } from 'jose';
import { RatlsError } from '../core/errors.ts';
import { constantTimeEqual, fromBase64 } from '../core/bytes.ts';
import type { AttestationClaims } from './claims.ts';

export type { AttestationClaims } from './claims.ts';

/** Where the verification keys come from. */
export type TokenKeySource = { jwksUrl: string } | { keys: JWK[] };

/** Checks beyond the signature. */
export interface VerifyAttestationTokenOptions {
  /** Required `iss`. Strongly recommended: without it any service whose keys you trust is accepted. */
  issuer?: string;
  /** Required `aud` (when the service is configured with one). */
  audience?: string;
  /**
   * Required service policy (`x-ratls-policy`, its name as in GET /v1/policies). Strongly
   * recommended when you did not request the token yourself: whoever asked for it chose the policy,
   * and a service usually offers more lenient ones (e.g. `permissive-tcb`) whose `ok: true` means less.
   */
  policy?: string;
  /**
   * The nonce you sent with the evidence; the token's `eat_nonce` must carry the same bytes. Give
   * the bytes, or the same text you sent the service as `"nonce"`: base64, standard alphabet (what
   * `openssl rand -base64 32` prints) or URL-safe, padding optional. A hex string is not read as
   * hex: every hex string is also valid base64, so it would mean other bytes; pass
   * `Buffer.from(hex, 'hex')` instead.
   */
  expectedNonce?: Uint8Array | string;
  /** Verification time. Default: now. */
  now?: Date;
  /** Allowed clock skew in seconds. Default 30. */
  clockToleranceSeconds?: number;
  /** Accept tokens whose verdict is false (to read the failure reasons). Default false. */
  allowFailedVerdict?: boolean;
  /** Accept tokens from a service that trusted a simulated root. Default false. */
  allowSimulated?: boolean;
  /**
   * Most seconds between the appraisal (`x-ratls-verified-at`) and issuance (`iat`). Default 300.
   * A larger gap means the service appraised at another time than now (its testing-only
   * `--verify-at`, or a broken clock), so expired collateral may have passed.
   */
  maxAppraisalSkewSeconds?: number;
  /** Accept tokens appraised at a fixed earlier time (tests replaying recorded vectors). Default false. */
  allowBackdatedAppraisal?: boolean;
}

/** A verified token. */
export interface VerifiedAttestationToken {
  claims: AttestationClaims;
  kid: string;
  alg: 'ES256' | 'ES384';
}

const ALGS = ['ES256', 'ES384'] as const;

// remote JWKS fetchers cache keys and refetch on an unknown kid; one per URL
const remoteSets = new Map<string, JWTVerifyGetKey>();

/**
 * Verifies an attestation token from `ratls attest-service`.
 * @throws RatlsError TOKEN_KEYS_INSECURE (http JWKS URL off this machine), TOKEN_ALG_NOT_ALLOWED, TOKEN_KEY_UNKNOWN, TOKEN_SIGNATURE_INVALID, TOKEN_EXPIRED,
 *   TOKEN_CLAIM_MISMATCH, NONCE_MISMATCH, SIMULATED_EVIDENCE, or TOKEN_INVALID.
 */
export async function verifyAttestationToken(jwt: string, source: TokenKeySource, opts: VerifyAttestationTokenOptions = {}): Promise<VerifiedAttestationToken> {
  if (typeof jwt !== 'string' || jwt.length > 64 * 1024 || jwt.split('.').length !== 3) {
    throw new RatlsError('TOKEN_INVALID', 'The attestation token is not a compact JWS (three base64url parts).');
  }
  let header: { alg?: string; kid?: string };
  try {
    header = decodeProtectedHeader(jwt);
  } catch {
    throw new RatlsError('TOKEN_INVALID', 'The attestation token header cannot be decoded.');
  }
  if (!header.alg || !(ALGS as readonly string[]).includes(header.alg)) {
    throw new RatlsError(
      'TOKEN_ALG_NOT_ALLOWED',
      `Token algorithm "${String(header.alg)}" is not accepted; attestation tokens are signed with ES256 or ES384.`,
    );
  }
  if (typeof header.kid !== 'string' || header.kid.length === 0) {
    throw new RatlsError('TOKEN_KEY_UNKNOWN', 'The token header has no "kid"; the service always names its signing key.');
  }

  let getKey: JWTVerifyGetKey;
  if ('jwksUrl' in source) {
    checkJwksUrl(source.jwksUrl);
    getKey = remoteSets.get(source.jwksUrl) ?? createRemoteJWKSet(new URL(source.jwksUrl), { timeoutDuration: 5000, cooldownDuration: 10_000 });
    remoteSets.set(source.jwksUrl, getKey);
  } else {
    // keys without a kid would match any token header; the service always sets one
    getKey = createLocalJWKSet({ keys: source.keys.filter((k) => typeof k.kid === 'string') });
  }

  let payload: AttestationClaims;
  try {
    const res = await jwtVerify<AttestationClaims>(jwt, getKey, {
      algorithms: [...ALGS],
      ...(opts.issuer ? { issuer: opts.issuer } : {}),
      ...(opts.audience ? { audience: opts.audience } : {}),
      currentDate: opts.now ?? new Date(),
      clockTolerance: opts.clockToleranceSeconds ?? 30,
      requiredClaims: ['iat', 'exp', 'jti'],
    });
    payload = res.payload;
  } catch (err) {
    throw mapJoseError(err);
  }

  if (opts.expectedNonce !== undefined) {
    const want = expectedNonceBytes(opts.expectedNonce);
    // eat_nonce is base64url (EAT); compared as bytes, so how the caller spelled the base64 does not matter
    const got = typeof payload.eat_nonce === 'string' ? fromBase64(payload.eat_nonce) : undefined;
    if (!got || !constantTimeEqual(got, want)) {
      throw new RatlsError(
        'NONCE_MISMATCH',
        `The token was not issued for the nonce you sent (eat_nonce differs${typeof opts.expectedNonce === 'string' ? '; a string expectedNonce is read as base64' : ''}); request a new attestation.`,
      );
    }
  }
  if (!opts.allowBackdatedAppraisal) {
    const at = payload['x-ratls-verified-at'];
    const skew = opts.maxAppraisalSkewSeconds ?? 300;
    if (typeof at !== 'number' || typeof payload.iat !== 'number' || Math.abs(payload.iat - at) > skew) {
      throw new RatlsError(
        'TOKEN_CLAIM_MISMATCH',
        `The evidence was appraised at ${typeof at === 'number' ? new Date(at * 1000).toISOString() : 'an unrecorded time'}, not when the token was issued; the service runs with a fixed appraisal time (--verify-at, testing only) or a wrong clock.`,
      );
    }
  }
  if (opts.policy !== undefined && payload['x-ratls-policy'] !== opts.policy) {
    const got = typeof payload['x-ratls-policy'] === 'string' ? `"${payload['x-ratls-policy'].slice(0, 80)}"` : 'no policy';
    throw new RatlsError(
      'TOKEN_CLAIM_MISMATCH',
      `The token was appraised under the service's policy ${got}, not "${opts.policy}" as required; whoever requested it chose that policy. Ask for a token under "${opts.policy}".`,
    );
  }
  if (payload['x-ratls-simulated'] === true && !opts.allowSimulated) {
    throw new RatlsError(
      'SIMULATED_EVIDENCE',
      'The token is from a service that trusts a simulated (non-Intel) root; accept it only in development (allowSimulated).',
    );
  }
  if (payload['x-ratls-ok'] !== true && !opts.allowFailedVerdict) {
    const codes = Array.isArray(payload['x-ratls-errors']) ? payload['x-ratls-errors'].map((e) => e.code).join(', ') : '';
    throw new RatlsError(
      'TOKEN_CLAIM_MISMATCH',
      `The attestation service rejected the evidence${codes ? ` (${codes})` : ''}; the token records a failed verdict.`,
    );
  }
  return { claims: payload, kid: header.kid, alg: header.alg as 'ES256' | 'ES384' };
}

const LOOPBACK_HOSTS = new Set(['localhost', '127.0.0.1', '[::1]']);

/**
 * The keys decide which tokens are genuine, so they must come over an authenticated channel:
 * https, or plain http to this machine only (a service on localhost, tests).
 */
function checkJwksUrl(url: string): void {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new RatlsError('TOKEN_KEYS_INSECURE', `The JWKS URL "${url}" is not a URL.`);
  }
  if (u.protocol === 'https:') return;
  if (u.protocol === 'http:' && LOOPBACK_HOSTS.has(u.hostname.toLowerCase())) return;
  throw new RatlsError(
    'TOKEN_KEYS_INSECURE',
    `Refusing to fetch signing keys from ${u.origin}: over plain http anyone on the network path could substitute their own keys and forge tokens. Use the service's https URL, or pass the keys with { keys }.`,
  );
}

/** The bytes of `expectedNonce`: as given, or decoded from base64 text (either alphabet, padding optional). */
function expectedNonceBytes(v: Uint8Array | string): Uint8Array {
  const bytes = typeof v === 'string' ? fromBase64(v) : v;
  if (!bytes || bytes.length === 0) {
    throw new RatlsError(
      'NONCE_INVALID',
      'expectedNonce must be the nonce bytes, or the base64 text sent to the service as "nonce" (standard alphabet as `openssl rand -base64 32` prints it, or URL-safe; padding optional). For hex, pass Buffer.from(hex, "hex").',
    );
  }
  return bytes;
}

function mapJoseError(err: unknown): RatlsError {
  if (err instanceof joseErrors.JWTExpired) return new RatlsError('TOKEN_EXPIRED', 'The attestation token has expired; request a new one.', { cause: err });
  if (err instanceof joseErrors.JWKSNoMatchingKey) {
    return new RatlsError(
      'TOKEN_KEY_UNKNOWN',
      "No key in the JWKS matches the token's kid; the token is not from this service or its key was retired long ago.",
      { cause: err },
    );
  }
  if (err instanceof joseErrors.JWSSignatureVerificationFailed) {
    return new RatlsError('TOKEN_SIGNATURE_INVALID', 'The attestation token signature does not verify; it was altered or signed by another key.', {
      cause: err,
    });
  }
  if (err instanceof joseErrors.JOSEAlgNotAllowed) return new RatlsError('TOKEN_ALG_NOT_ALLOWED', 'The token algorithm is not ES256/ES384.', { cause: err });
  if (err instanceof joseErrors.JWTClaimValidationFailed) {
    return new RatlsError('TOKEN_CLAIM_MISMATCH', `The token's "${err.claim}" claim is not acceptable (${err.reason}); check the issuer/audience you expect.`, {
      cause: err,
    });
  }
  if (err instanceof joseErrors.JWKSTimeout || (err instanceof Error && /fetch|ECONNREFUSED|network/i.test(err.message))) {
    return new RatlsError('CONNECTION_FAILED', `Cannot fetch the service's JWKS: ${(err as Error).message}`, { cause: err });
  }
  return new RatlsError('TOKEN_INVALID', `The attestation token is invalid: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
}
