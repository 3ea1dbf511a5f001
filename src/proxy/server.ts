/**
 * The attested reverse proxy: an HTTPS server whose certificate carries the RA-TLS evidence,
 * control routes on Hono, upstream traffic on undici, WebSockets on http-proxy-3 (src/proxy/upstream.ts),
 * certificate rotation and graceful shutdown, and the opt-in Ollama listener (a second listener on
 * the same identity, behind access-guard.ts). Node-only. This file is the wiring; the pieces are
 * identity-rotation.ts (with recent-identities.ts and rotation-schedule.ts), collateral-memo.ts,
 * control.ts, dispatch.ts, listener.ts and access-guard.ts.
 */
import type * as https from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { getRequestListener } from '@hono/node-server';
import type { Logger } from 'pino';
import { createProxyLogger, type ProxyLogger } from './logger.ts';
import { ollamaListenerRoute, type ServeConfig } from './config.ts';
import { guardWithToken } from './access-guard.ts';
import { checkAccessToken, loadAccessToken } from '../core/access-token.ts';
import { CollateralMemo } from './collateral-memo.ts';
import { createControlApp, createSessionRoute, type ControlContext } from './control.ts';
import { createEvidenceService } from './evidence-service.ts';
import type { SessionClaimsHook } from '../ratls/session-quoter.ts';
import { createDispatch, routeUpstreamThroughHono } from './dispatch.ts';
import type { IdentitySource, ServingIdentity } from './identity-source.ts';
import { IdentityRotation } from './identity-rotation.ts';
import { listenRatls, type RatlsListener } from './listener.ts';
import { createMetrics, type ProxyMetrics } from './metrics.ts';
import { UpstreamProxy } from './upstream.ts';
import type { RatlsIdentity } from '../ratls/identity.ts';

export { rotationDelay } from './rotation-schedule.ts';

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
  /**
   * The Ollama listener's access token. Default: read from `config.ollamaListener.tokenFile`, else
   * from the environment variable it names (`tokenEnv`) in `env`.
   */
  ollamaToken?: string;
  /** Environment the token is read from (default process.env). */
  env?: NodeJS.ProcessEnv;
  /** Schedule rotations automatically at config.tls.rotateAt of the lifetime (default true). */
  autoRotate?: boolean;
  /**
   * 'raw' (default): only control routes go through Hono; upstream traffic is handed to the
   * engine on the raw Node request. 'hono': everything enters Hono first (kept for the
   * benchmark that measured the difference; see docs/serve.md).
   */
  hotPath?: 'raw' | 'hono';
  /** Extra claims for every session evidence batch quote (e.g. the runtime event log's "runtime-log"). */
  sessionClaims?: SessionClaimsHook;
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
  /** The opt-in Ollama listener, when `config.ollamaListener` is set. */
  ollama?: { url: string; port: number; host: string; server: https.Server };
}

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
  // before anything starts: no Ollama listener without a strong token (and no key was made in vain)
  const ollamaToken = config.ollamaListener ? ollamaAccessToken(config, deps) : undefined;
  const ownLogger: ProxyLogger | undefined = deps.logger ? undefined : createProxyLogger({ level: config.log.level });
  const log = deps.logger ?? ownLogger!.logger;
  for (const warning of config.warnings) log.warn(warning);
  const source: IdentitySource<I> = deps.identitySource ?? ((await defaultIdentitySource(config)) as unknown as IdentitySource<I>);
  const metrics = createMetrics();
  source.attach?.({ registry: metrics.registry, logger: log });

  const collateral = new CollateralMemo(source.collateral ? () => source.collateral!(now()) : undefined);
  const report = rotationReports(metrics, log);
  const identities = await IdentityRotation.issue<I>({
    source,
    now,
    rotateAt: config.tls.rotateAt,
    onRotated: (id) => {
      collateral.invalidate();
      report.rotated(id);
    },
    onRotationFailed: report.failed,
  });
  let draining = false;

  const upstream = new UpstreamProxy(config, metrics, log);
  const controlContext: ControlContext<I> = {
    identityFor: (der) => identities.forCertificate(der),
    soleIdentity: () => identities.sole(),
    evidence: createEvidenceService<I>({
      ...(source.quote ? { quote: (rd: Uint8Array) => source.quote!(rd) } : {}),
      ...(source.evidence ? { nonceEvidence: (id: I, nonce: Uint8Array) => source.evidence!(id, nonce) } : {}),
      maxQueued: config.evidence.maxQueued,
      maxBatch: config.evidence.maxBatch,
      maxPerPeer: config.evidence.maxPerPeer,
      ...(deps.sessionClaims ? { sessionClaims: deps.sessionClaims } : {}),
      metrics,
    }),
    collateral: () => collateral.get(),
    ready: () => !draining,
    metrics,
  };
  const app = createControlApp<I>(controlContext);
  const hotPath = deps.hotPath ?? 'raw';
  if (hotPath === 'hono') routeUpstreamThroughHono(app, upstream);
  // session evidence (one request per session-bound connection) skips Hono; other listeners of
  // this server (another port, same identity) must answer it through the same context
  const sessionRoute = createSessionRoute<I>(controlContext);
  const honoListener = getRequestListener(app.fetch);
  const control = (req: IncomingMessage, res: ServerResponse): unknown => sessionRoute(req, res) || honoListener(req, res);
  const dispatch = createDispatch({ control, upstream, hotPath, draining: () => draining, metrics, log });
  const listener = await listenRatls({ listen: config.listen, tls: config.tls, limits: config.limits, identity: identities, dispatch, log });

  // The Ollama listener: same identity and control routes, its own upstream engine and token gate.
  let ollama: { upstream: UpstreamProxy; listener: RatlsListener } | undefined;
  if (config.ollamaListener && ollamaToken !== undefined) {
    const ol = config.ollamaListener;
    const ollamaUpstream = new UpstreamProxy({ ...config, routes: [ollamaListenerRoute(config.upstreams.ollama, ol.blockAdmin)] }, metrics, log);
    const guarded = guardWithToken(createDispatch({ control, upstream: ollamaUpstream, hotPath: 'raw', draining: () => draining, metrics, log }), {
      token: ollamaToken,
      realm: 'ollama',
      route: 'ollama-listener',
      metrics,
      log,
    });
    try {
      const l = await listenRatls({ listen: ol.listen, tls: config.tls, limits: config.limits, identity: identities, dispatch: guarded, log });
      ollama = { upstream: ollamaUpstream, listener: l };
    } catch (err) {
      ollamaUpstream.close();
      upstream.close();
      listener.server.closeAllConnections();
      await listener.stopAccepting();
      throw err;
    }
    log.info({ url: ollama.listener.url, ollama: config.upstreams.ollama, blockAdmin: ol.blockAdmin }, 'Ollama listener: Bearer token required');
  }

  report.serving(identities.current());
  if (deps.autoRotate !== false) identities.autoRotate();

  let closing: Promise<void> | undefined;
  const close = (opts?: { drainTimeoutMs?: number }): Promise<void> => {
    closing ??= (async () => {
      draining = true;
      identities.stop();
      const closed = [listener.stopAccepting(), ...(ollama ? [ollama.listener.stopAccepting()] : [])];
      const deadline = opts?.drainTimeoutMs ?? config.shutdown.drainTimeoutMs;
      const engines = [upstream, ...(ollama ? [ollama.upstream] : [])];
      const drained = (await Promise.all(engines.map((e) => e.drain(deadline)))).every(Boolean);
      if (!drained) {
        const requests = engines.reduce((n, e) => n + e.activeRequests, 0);
        const websockets = engines.reduce((n, e) => n + e.activeWebsockets, 0);
        log.warn({ requests, websockets }, 'drain deadline reached; closing remaining connections');
      }
      for (const e of engines) e.close();
      listener.server.closeAllConnections();
      ollama?.listener.server.closeAllConnections();
      await Promise.all(closed);
      log.info({ drained }, 'server closed');
      ownLogger?.stop();
    })();
    return closing;
  };

  return {
    url: listener.url,
    port: listener.port,
    host: listener.host,
    identity: () => identities.current(),
    rotate: async () => {
      await identities.rotate();
    },
    source,
    close,
    metrics,
    server: listener.server,
    ...(ollama ? { ollama: { url: ollama.listener.url, port: ollama.listener.port, host: ollama.listener.host, server: ollama.listener.server } } : {}),
  };
}

/** The Ollama listener's token, checked; the listener refuses to start without a strong one. */
function ollamaAccessToken(config: ServeConfig, deps: Pick<StartDeps, 'ollamaToken' | 'env'>): string {
  const what = 'the Ollama listener';
  if (deps.ollamaToken !== undefined) {
    checkAccessToken(deps.ollamaToken, what);
    return deps.ollamaToken;
  }
  const ol = config.ollamaListener!;
  return loadAccessToken({ ...(ol.tokenFile ? { file: ol.tokenFile } : {}), envName: ol.tokenEnv, env: deps.env ?? process.env, what });
}

/** What rotations leave in metrics and logs. */
function rotationReports(metrics: ProxyMetrics, log: Logger) {
  const serving = (id: ServingIdentity): void => metrics.certExpiry.set(Math.floor(id.notAfter.getTime() / 1000));
  return {
    serving,
    rotated(id: ServingIdentity): void {
      serving(id);
      metrics.rotations.inc({ result: 'ok' });
      log.info({ fingerprintSha256: id.fingerprintSha256, notAfter: id.notAfter.toISOString() }, 'certificate rotated');
    },
    failed(err: unknown, retryMs: number): void {
      metrics.rotations.inc({ result: 'error' });
      log.error({ err: err instanceof Error ? err.message : String(err), retryMs }, 'certificate rotation failed');
    },
  };
}

async function defaultIdentitySource(config: ServeConfig): Promise<IdentitySource<RatlsIdentity>> {
  const mod = await import('./ratls-source.ts');
  return mod.createRatlsIdentitySource(config);
}
