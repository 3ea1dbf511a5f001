/**
 * What the proxy needs from certificate issuance, kept behind a small interface so the server does
 * not depend on how keys, quotes and certificates are made (RA-TLS in production, a self-signed
 * certificate in some tests).
 */
import type { Collateral } from '../core/types.ts';
import type { Registry } from 'prom-client';
import type { Logger } from 'pino';

/**
 * The key and certificate the proxy serves. Structurally a subset of the RA-TLS identity from
 * src/ratls/identity.ts, so that one can be passed as is.
 */
export interface ServingIdentity {
  certPem: string;
  certDer: Uint8Array;
  /** PEM private key; kept in memory only, never logged or written. */
  keyPem: string;
  notBefore: Date;
  notAfter: Date;
  /** Lower-case hex SHA-256 of certDer. */
  fingerprintSha256: string;
  simulated: boolean;
  providerName: string;
}

/** Measurements shown in the start-up banner (lower-case hex). */
export interface IdentityMeasurements {
  mrTd: string;
  rtmr0: string;
  rtmr1: string;
  rtmr2: string;
  rtmr3: string;
}

/** Makes identities and nonce evidence. */
export interface IdentitySource<I extends ServingIdentity = ServingIdentity> {
  /** Creates a fresh key pair, quote and certificate valid from `now`. */
  issue(now: Date): Promise<I>;
  /**
   * Evidence (the CBOR extension value: tag 60000 over [quote, claims]) whose claims hold the same
   * pubkey-hash as `identity` and the given nonce. Absent when the source cannot make evidence.
   */
  evidence?(identity: I, nonce: Uint8Array): Promise<Uint8Array>;
  /**
   * One quote whose REPORTDATA is these 64 bytes, for session evidence batches (the server calls it
   * one at a time). Absent when the source cannot quote; the session route then answers 501.
   */
  quote?(reportData: Uint8Array): Promise<Uint8Array>;
  /** Collateral for the platform, valid at `now`, when the source has any. */
  collateral?(now: Date): Promise<Collateral | undefined>;
  /**
   * Called once by the server before the first issue(): the server's metrics registry and logger,
   * so the source can report what only it knows (e.g. whether collateral could be stapled).
   */
  attach?(telemetry: { registry: Registry; logger: Logger }): void;
  /** MRTD/RTMRs for the banner. */
  measurements?(identity: I): IdentityMeasurements | undefined;
}
