/**
 * Starts the attestation service: key store, policies, verifier, rate limiter, HTTP server
 * (@hono/node-server, plain HTTP; put TLS in front or pass `tls`), scheduled key rotation.
 */
import { serve, type HttpBindings } from '@hono/node-server';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import type { Context } from 'hono';
import { KeyStore, type SigningAlg } from './keys.ts';
import { loadPolicies } from './policies.ts';
import { createAttestApp, type ServiceLogger } from './app.ts';
import { RateLimiter } from './rate-limit.ts';
import { createServiceMetrics } from './metrics.ts';
import type { EvidenceVerifier } from './evidence.ts';
import { createDcapEvidenceVerifier } from './verifier.ts';
import type { CollateralSource } from '../collateral/types.ts';

/** Configuration of {@link startAttestService}. Paths are used as given. */
export interface AttestServiceConfig {
  /** Default 127.0.0.1. */
  host?: string;
  /** Default 0 (ephemeral; read the chosen port from the handle). */
  port?: number;
  /** Directory of signing keys (created 0700; keys 0600). */
  keyDir: string;
  /** Directory of policy files; must contain the default policy. */
  policiesDir: string;
  /** Name of the policy used when a request names none. Default "default". */
  defaultPolicy?: string;
  /** Trusted roots (PEM text) replacing every policy's roots; the only way to trust a simulated root. */
  roots?: string[];
  /** Algorithm of new signing keys. Default ES256. */
  alg?: SigningAlg;
  /** Token lifetime in seconds. Default 300. */
  tokenTtlSeconds?: number;
  /** `iss` claim. Default the service's own base URL. */
  issuer?: string;
  /** `aud` claim, when relying parties check one. */
  audience?: string;
  /** Retire the current signing key at start. */
  rotateKey?: boolean;
  /** Rotate the signing key when it is older than this many seconds (checked hourly). Default 30 days; 0 disables. */
  keyRotationSeconds?: number;
  /** Maximum request body. Default 256 KiB. */
  bodyLimitBytes?: number;
  /** Per-client token bucket, or false to disable. Default 20/s, burst 40. */
  rateLimit?: { ratePerSecond: number; burst: number } | false;
  /** Give up on one verification after this long (503). Default 15 s. */
  verifyTimeoutMs?: number;
  /** Collateral directories (seven-file layout, one subdirectory per platform) and/or a PCCS. */
  collateralDirs?: string[];
  pccsUrl?: string;
  /** Disk cache for collateral fetched from PCCS/PCS. */
  collateralCacheDir?: string;
  /** Never fetch collateral over the network (directories, cache and given sources only). Default false. */
  offline?: boolean;
  /** Programmatic collateral sources, tried before the directories and the PCCS. */
  collateralSources?: CollateralSource[];
  /** Replaces the DCAP verifier (tests of the HTTP layer only). */
  verifier?: EvidenceVerifier;
  /** Bearer token enabling POST /v1/admin/rotate-key. */
  adminToken?: string;
  /** Optional TLS termination in-process (PEM). */
  tls?: { cert: string; key: string };
  /** Token and rate-limit clock. Default real time. */
  clock?: () => Date;
  /**
   * Appraisal clock. Default: the token clock. Tests pin it to the time the vectors were valid; in
   * production leave it alone, since an old time makes expired collateral look fresh.
   */
  verifyAt?: () => Date;
  logger?: ServiceLogger;
  /** Collect Node process metrics too. Default false. */
  processMetrics?: boolean;
}

/** A running service. */
export interface AttestServiceHandle {
  url: string;
  port: number;
  keys: KeyStore;
  close(): Promise<void>;
}

const HOUR_MS = 3_600_000;

/** Starts the service and resolves once it listens. */
export async function startAttestService(config: AttestServiceConfig): Promise<AttestServiceHandle> {
  const clock = config.clock ?? (() => new Date());
  const tokenTtlSeconds = config.tokenTtlSeconds ?? 300;
  if (!Number.isInteger(tokenTtlSeconds) || tokenTtlSeconds < 1 || tokenTtlSeconds > 7 * 86400) {
    throw new RangeError('tokenTtlSeconds must be a whole number between 1 and 604800');
  }
  const policies = loadPolicies(config.policiesDir, { defaultName: config.defaultPolicy, rootsOverride: config.roots });
  const keys = await KeyStore.open(config.keyDir, { alg: config.alg ?? 'ES256', maxTokenTtlSeconds: tokenTtlSeconds, now: clock });
  if (config.rotateKey) await keys.rotate();
  const verifier =
    config.verifier ??
    createDcapEvidenceVerifier({
      sources: config.collateralSources,
      directories: config.collateralDirs,
      pccsUrl: config.pccsUrl,
      cacheDir: config.collateralCacheDir,
      offline: config.offline ?? false,
      onSourceError: (err) => config.logger?.warn({ err: err instanceof Error ? err.message : String(err) }, 'collateral lookup failed'),
    });
  const limiter =
    config.rateLimit === false ? undefined : new RateLimiter({ ...(config.rateLimit ?? { ratePerSecond: 20, burst: 40 }), now: () => clock().getTime() });
  const metrics = createServiceMetrics(config.processMetrics ?? false);

  let baseUrl = '';
  const app = createAttestApp({
    keys,
    policies,
    verifier,
    metrics,
    limiter,
    clientId: (c: Context) => (c.env as HttpBindings | undefined)?.incoming?.socket?.remoteAddress ?? 'unknown',
    issuer: () => config.issuer ?? baseUrl,
    audience: config.audience,
    tokenTtlSeconds,
    bodyLimitBytes: config.bodyLimitBytes ?? 256 * 1024,
    verifyTimeoutMs: config.verifyTimeoutMs ?? 15_000,
    clock,
    verifyAt: config.verifyAt ?? clock,
    adminToken: config.adminToken,
    logger: config.logger,
  });

  const host = config.host ?? '127.0.0.1';
  const server = await new Promise<Server>((resolve, reject) => {
    const s = serve(
      {
        fetch: app.fetch,
        port: config.port ?? 0,
        hostname: host,
        ...(config.tls ? { createServer: createHttpsServer, serverOptions: { cert: config.tls.cert, key: config.tls.key } } : {}),
      },
      () => resolve(s as Server),
    ) as Server;
    s.once('error', reject);
  });
  // slow-loris protection: whole request within 30 s, headers within 10 s, idle keep-alive 5 s
  server.requestTimeout = 30_000;
  server.headersTimeout = 10_000;
  server.keepAliveTimeout = 5_000;

  const port = (server.address() as AddressInfo).port;
  const urlHost = host.includes(':') ? `[${host}]` : host === '0.0.0.0' ? '127.0.0.1' : host;
  baseUrl = `${config.tls ? 'https' : 'http'}://${urlHost}:${port}`;

  const timers: NodeJS.Timeout[] = [];
  if (limiter) timers.push(setInterval(() => limiter.sweep(), 60_000));
  const rotation = config.keyRotationSeconds ?? 30 * 86400;
  const checkRotation = async () => {
    try {
      await keys.prune();
      if (rotation > 0 && clock().getTime() - keys.current().createdAt.getTime() >= rotation * 1000) {
        const previous = keys.current().kid;
        const kid = await keys.rotate();
        config.logger?.info({ previous, kid }, 'signing key rotated on schedule');
      }
    } catch (err) {
      config.logger?.error({ err: err instanceof Error ? err.message : String(err) }, 'scheduled key rotation failed');
    }
  };
  await checkRotation();
  timers.push(setInterval(() => void checkRotation(), rotation > 0 ? Math.min(HOUR_MS, Math.max(1000, rotation * 100)) : HOUR_MS));
  for (const t of timers) t.unref();

  return {
    url: baseUrl,
    port,
    keys,
    close: () =>
      new Promise<void>((resolve, reject) => {
        for (const t of timers) clearInterval(t);
        server.close((err) => (err ? reject(err) : resolve()));
        server.closeIdleConnections?.();
      }),
  };
}
