/**
 * Signs attestation tokens with the key store's active key: a compact JWS (ES256/ES384) with the
 * key id in the header, so relying parties pick the right JWKS entry across rotations.
 */
import { SignJWT } from 'jose';
import { randomUUID } from 'node:crypto';
import type { KeyStore } from './keys.ts';
import type { AttestationClaims } from './claims.ts';

/** Registered claims the signer fills in. */
export interface SignOptions {
  issuer: string;
  ttlSeconds: number;
  audience?: string;
  /** Issuance time (the service clock). */
  now: Date;
}

/** A signed token and the identifiers a log line or a response needs. */
export interface SignedToken {
  token: string;
  kid: string;
  jti: string;
  exp: number;
}

/** Signs `claims` as a JWT with the currently active key. */
export async function signAttestationToken(keys: KeyStore, claims: AttestationClaims, opts: SignOptions): Promise<SignedToken> {
  const key = keys.current();
  const iat = Math.floor(opts.now.getTime() / 1000);
  const exp = iat + opts.ttlSeconds;
  const jti = randomUUID();
  let jwt = new SignJWT(claims)
    .setProtectedHeader({ alg: key.alg, kid: key.kid, typ: 'JWT' })
    .setIssuer(opts.issuer)
    .setIssuedAt(iat)
    .setNotBefore(iat)
    .setExpirationTime(exp)
    .setJti(jti);
  if (opts.audience) jwt = jwt.setAudience(opts.audience);
  const token = await jwt.sign(key.privateKey);
  return { token, kid: key.kid, jti, exp };
}
