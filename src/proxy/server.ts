/**
 * The attested reverse proxy: an HTTPS server whose certificate carries the RA-TLS evidence,
 * control routes on Hono, upstream traffic on undici or http-proxy-3 (src/proxy/upstream.ts),
 * certificate rotation and graceful
 * shutdown. Node-only.
 */
import * as https from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { getRequestListener } from '@hono/node-server';
import { RESPONSE_ALREADY_SENT } from '@hono/node-server/utils/response';
import type { Logger } from 'pino';
import { createProxyLogger, type ProxyLogger } from './logger.ts';
import type { ServeConfig } from './config.ts';
import type { Collateral } from '../core/types.ts';
import { createControlApp, isControlPath, certFingerprint } from './control.ts';
import type { IdentitySource, ServingIdentity } from './identity-source.ts';
import { createMetrics, type ProxyMetrics } from './metrics.ts';
import { UpstreamProxy } from './upstream.ts';
import type { RatlsIdentity } from '../ratls/identity.ts';
import type { RatlsIdentitySource } from './ratls-source.ts';
import { startMeasurement, type Measurement } from './measurement.ts';

/** Optional collaborators of {@link startRatlsServer}. */
export interface StartDeps<I extends ServingIdentity = RatlsIdentity> {
  /**
   * Where keys, quotes and certificates come from. Default: RA-TLS issuance with the evidence
   * provider chosen by `config.evidence` (see src/proxy/ratls-source.ts).
   */
  identitySource?: IdentitySource<I>;
  /**
   * Default: pino JSON to stdout at config.log.level, buffered (lines reach stdout within 1 s; see
   * src/proxy/logger.ts).
   */
  logger?: Logger;
  /** Clock, for tests. */
  now?: () => Date;
  /** Schedule rotations automatically at config.tls.rotateAt of the lifetime (default true). */
  autoRotate?: boolean;
  /**
   * 'raw' (default): only control routes go through Hono; upstream traffic is handed to the
   * engine on the raw Node request. 'hono': everything enters Hono first (kept for the
   * benchmark that measured the difference; see docs/serve.md).
   */
  hotPath?: 'raw' | 'hono';
  /**
   * The measured workload (src/proxy/measurement.ts). Default: started from config.measurement with
   * the default identity source's evidence provider; none with a custom identity source. false: none.
   */
  measurement?: Measurement | false;
}

/** A running proxy. */
export interface RunningRatlsServer<I extends ServingIdentity = RatlsIdentity> {
  /** https://HOST:PORT/ (IPv6 hosts in brackets). */
  url: string;
  port: number;
  host: string;
  /** The identity currently served to new connections. */
  identity(): I;
  /** Makes a new key, quote and certificate now and serves it to new connections. */
  rotate(): Promise<void>;
  /** The identity source in use (for banners: measurements). */
  source: IdentitySource<I>;
  /** Stops accepting, drains in-flight requests up to shutdown.drainTimeout, then closes. */
  close(opts?: { drainTimeoutMs?: number }): Promise<void>;
  /** Prometheus registry and metrics of this instance. */
  metrics: ProxyMetrics;
  /** The underlying Node server (for advanced tests). */
  server: https.Server;
  /** The measured workload and event logs, when measured. */
  measurement: Measurement | undefined;
}

/** Most setTimeout accepts; longer rotation delays are re-armed in steps. */
const MAX_TIMER_MS = 2 ** 31 - 1;
/** How many previous identities stay answerable for evidence on old connections. */
const KEEP_IDENTITIES = 3;

/**
 * Starts the attested reverse proxy.
 * @param config a validated configuration (see validateConfig / loadServeConfig)
 * @param deps identity source, logger and clock; defaults give the production behaviour
 */
export async function startRatlsServer<I extends ServingIdentity = RatlsIdentity>(
  config: ServeConfig,
  deps: StartDeps<I> = {},
): Promise<RunningRatlsServer<I>> {
  const now = deps.now ?? (() => new Date());
  const ownLogger: ProxyLogger | undefined = deps.logger ? undefined : createProxyLogger({ level: config.log.level });
  const log = deps.logger ?? ownLogger!.logger;
  let measurement: Measurement | undefined = deps.measurement || undefined;
  let source: IdentitySource<I>;
  if (deps.identitySource) source = deps.identitySource;
  else {
    const rs = await defaultIdentitySource(config, () => measurement?.runtimeLogClaim());
    source = rs as unknown as IdentitySource<I>;
    // Measured before the first certificate, so its evidence already covers the workload.
    if (deps.measurement === undefined) measurement = await startMeasurement(config, rs.provider, log);
  }
  const metrics = createMetrics();
  source.attach?.({ registry: metrics.registry, logger: log });

  let current = await source.issue(now());
  if (measurement && 'quote' in current && current.quote instanceof Uint8Array) await measurement.checkBootLog(current.quote);
  // Old connections keep their certificate after a rotation; evidence must match that one.
  const recent: Array<{ fp: string; id: I }> = [{ fp: current.fingerprintSha256, id: current }];
  let collateralCache: { at: number; value: Collateral | undefined } | undefined;
  let draining = false;
  let rotationTimer: NodeJS.Timeout | undefined;

  const tlsOptions = (id: I): https.ServerOptions => ({
    key: id.keyPem,
    cert: id.certPem,
    minVersion: config.tls.minVersion,
    ALPNProtocols: ['http/1.1'],
  });

  const upstream = new UpstreamProxy(config, metrics, log);
  const app = createControlApp<I>({
    identityFor: (der) => {
      if (der) {
        const fp = certFingerprint(der);
        const hit = recent.find((r) => r.fp === fp);
        if (hit) return hit.id;
      }
      return current;
    },
    ...(source.evidence ? { evidence: (id: I, nonce: Uint8Array) => source.evidence!(id, nonce) } : {}),
    collateral: async () => {
      if (!source.collateral) return undefined;
      // Collateral changes rarely; re-signing or re-fetching per request would be wasteful.
      if (collateralCache && Date.now() - collateralCache.at < 300_000) return collateralCache.value;
      const value = await source.collateral(now());
      collateralCache = { at: Date.now(), value };
      return value;
    },
    ready: () => !draining,
    metrics,
    ...(measurement ? { eventLog: measurement } : {}),
  });

  const hotPath = deps.hotPath ?? 'raw';
  if (hotPath === 'hono') {
    app.all('*', (c) => {
      upstream.handle(c.env.incoming, c.env.outgoing);
      return RESPONSE_ALREADY_SENT;
    });
  }
  const honoListener = getRequestListener(app.fetch);
  const onRequest = (req: IncomingMessage, res: ServerResponse): void => {
    if (draining) res.setHeader('connection', 'close');
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const path = q < 0 ? url : url.slice(0, q);
    if (isControlPath(path)) {
      const start = performance.now();
      res.once('close', () => {
        metrics.requests.inc({ route: 'control', method: req.method ?? '', status: String(res.statusCode) });
        log.info(
          { method: req.method, path, status: res.statusCode, durationMs: Math.round((performance.now() - start) * 100) / 100, upstream: 'control' },
          'request',
        );
      });
      void honoListener(req, res);
      return;
    }
    if (hotPath === 'hono') {
      void honoListener(req, res);
      return;
    }
    upstream.handle(req, res);
  };

  const server = https.createServer(
    {
      ...tlsOptions(current),
      // Nagle would hold back small token chunks.
      noDelay: true,
      headersTimeout: config.limits.headersTimeoutMs,
      requestTimeout: config.limits.requestTimeoutMs,
      keepAliveTimeout: config.limits.keepAliveTimeoutMs,
    },
    onRequest,
  );
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    const path = (req.url ?? '/').split('?')[0]!;
    if (draining || isControlPath(path)) {
      socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
      return;
    }
    upstream.handleUpgrade(req, socket, head);
  });
  // TLS handshake failures from scanners are routine; log at debug, never crash.
  server.on('tlsClientError', (err) => log.debug({ code: (err as NodeJS.ErrnoException).code }, 'TLS handshake failed'));
  server.on('clientError', (err, socket) => {
    log.debug({ code: (err as NodeJS.ErrnoException).code }, 'client error');
    if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n');
    else socket.destroy();
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.listen.port, config.listen.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  server.on('error', (err) => log.error({ err }, 'server error'));
  const addr = server.address() as AddressInfo;
  const hostForUrl = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
  const urlHost = addr.address === '0.0.0.0' || addr.address === '::' ? 'localhost' : hostForUrl;

  const setExpiry = (id: I): void => metrics.certExpiry.set(Math.floor(id.notAfter.getTime() / 1000));
  setExpiry(current);

  const rotate = async (): Promise<void> => {
    const next = await source.issue(now());
    server.setSecureContext(tlsOptions(next));
    current = next;
    recent.unshift({ fp: next.fingerprintSha256, id: next });
    recent.length = Math.min(recent.length, KEEP_IDENTITIES);
    collateralCache = undefined;
    setExpiry(next);
    metrics.rotations.inc({ result: 'ok' });
    log.info({ fingerprintSha256: next.fingerprintSha256, notAfter: next.notAfter.toISOString() }, 'certificate rotated');
  };

  const schedule = (delayMs: number): void => {
    if (draining || deps.autoRotate === false) return;
    clearTimeout(rotationTimer);
    const step = Math.max(0, Math.min(delayMs, MAX_TIMER_MS));
    rotationTimer = setTimeout(() => {
      if (step < delayMs) return schedule(delayMs - step);
      rotate().then(
        () => schedule(rotationDelay(current, config.tls.rotateAt, now())),
        (err: unknown) => {
          metrics.rotations.inc({ result: 'error' });
          // Keep serving the old certificate and retry soon; it is still valid for a third of its life.
          const retry = Math.max(1000, Math.min(60_000, (current.notAfter.getTime() - now().getTime()) / 10));
          log.error({ err: err instanceof Error ? err.message : String(err), retryMs: retry }, 'certificate rotation failed');
          schedule(retry);
        },
      );
    }, step);
    rotationTimer.unref();
  };
  schedule(rotationDelay(current, config.tls.rotateAt, now()));

  // A changed workload (a model pulled or deleted, an upgrade) gets new certificate evidence at once,
  // so new connections see it covered; changes recorded together share one rotation.
  let workloadRotation: NodeJS.Timeout | undefined;
  measurement?.onChange((change) => {
    if (draining) return;
    clearTimeout(workloadRotation);
    workloadRotation = setTimeout(() => {
      rotate().then(
        () => {
          log.info({ events: change.length }, 'new certificate evidence after a workload change');
          schedule(rotationDelay(current, config.tls.rotateAt, now()));
        },
        (err: unknown) =>
          log.error({ err: err instanceof Error ? err.message : String(err) }, 'rotation after a workload change failed; the next scheduled rotation retries'),
      );
    }, 200);
    workloadRotation.unref();
  });

  let closing: Promise<void> | undefined;
  const close = (opts?: { drainTimeoutMs?: number }): Promise<void> => {
    closing ??= (async () => {
      draining = true;
      clearTimeout(rotationTimer);
      clearTimeout(workloadRotation);
      measurement?.stop();
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      const deadline = opts?.drainTimeoutMs ?? config.shutdown.drainTimeoutMs;
      const drained = await upstream.drain(deadline);
      if (!drained) {
        log.warn({ requests: upstream.activeRequests, websockets: upstream.activeWebsockets }, 'drain deadline reached; closing remaining connections');
      }
      upstream.close();
      server.closeAllConnections();
      await closed;
      log.info({ drained }, 'server closed');
      ownLogger?.stop();
    })();
    return closing;
  };

  return {
    url: `https://${urlHost}:${addr.port}/`,
    port: addr.port,
    host: addr.address,
    identity: () => current,
    rotate,
    source,
    close,
    metrics,
    server,
    measurement,
  };
}

/** Milliseconds from `now` until the rotation point of `id` (never negative). */
export function rotationDelay(id: ServingIdentity, rotateAt: number, now: Date): number {
  const nb = id.notBefore.getTime();
  const life = id.notAfter.getTime() - nb;
  return Math.max(0, nb + life * rotateAt - now.getTime());
}

async function defaultIdentitySource(config: ServeConfig, runtimeLogClaim: () => Uint8Array | undefined): Promise<RatlsIdentitySource> {
  const mod = await import('./ratls-source.ts');
  return mod.createRatlsIdentitySource(config, undefined, { runtimeLogClaim });
}
