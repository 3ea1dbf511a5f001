/**
 * The hot path: matches a request to an upstream route and streams it there on the raw Node
 * request/response (no Web Request/Response conversion): plain HTTP with undici
 * (undici-forward.ts), WebSocket upgrades with http-proxy-3. Also enforces the body limits (size,
 * stalls), the Ollama admin block, and X-Forwarded-* headers.
 */
import * as http from 'node:http';
import * as https from 'node:https';
import type { Duplex, Readable } from 'node:stream';
import { Transform, type TransformCallback } from 'node:stream';
import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { createProxyServer, type ProxyServer } from 'http-proxy-3';
import { Pool, type Dispatcher } from 'undici';
import { FORWARDING_HEADERS, HOP_BY_HOP, UndiciForward, upstreamRequestHeaders, type UpstreamFailure } from './undici-forward.ts';
import type { Logger } from 'pino';
import type { RouteConfig, ServeConfig } from './config.ts';
import type { ProxyMetrics } from './metrics.ts';
import { formatSize } from './units.ts';

/**
 * Ollama's model and account management, refused when a route sets blockOllamaAdmin: models (pull,
 * push, create, delete, copy, blobs) and, since Ollama 0.12, the server's ollama.com sign-in (`me`
 * shows the account or a sign-in link carrying the server's key, `signout` and `DELETE
 * /api/user/keys/...` disconnect it).
 */
const ADMIN_BLOCKED_MESSAGE =
  'Ollama model management (pull, push, create, delete, copy, blobs) and its ollama.com account routes (me, signout, user keys) are disabled on this proxy.';
const OLLAMA_ADMIN = /^\/api\/(pull|push|create|delete|copy|blobs|me|signout|user)(\/|$)/i;

/**
 * The path as the upstream's router will see it: Go's net/http percent-decodes once, and routers
 * and http-proxy-3 may collapse empty and dot segments. Matching the raw path would let
 * `/%61pi/pull` or `/x/../api/pull` past the block. undefined when it cannot be decoded.
 */
export function routerPath(path: string): string | undefined {
  let decoded: string;
  try {
    decoded = decodeURIComponent(path);
  } catch {
    return undefined;
  }
  if (decoded.includes('\\') || decoded.includes('\0')) return undefined;
  const out: string[] = [];
  for (const seg of decoded.split('/')) {
    if (seg === '' || seg === '.') continue;
    if (seg === '..') out.pop();
    else out.push(seg);
  }
  return '/' + out.join('/');
}

/** 'blocked' for an admin route, 'bad' for a path no router would agree on, else 'ok'. */
function adminCheck(route: CompiledRoute, path: string, rest: string): 'ok' | 'blocked' | 'bad' {
  if (!route.blockOllamaAdmin) return 'ok';
  const p = routerPath(route.stripPrefix ? rest : path);
  if (p === undefined) return 'bad';
  return OLLAMA_ADMIN.test(p) ? 'blocked' : 'ok';
}

interface CompiledRoute extends RouteConfig {
  targetUrl: URL;
  /** Upstream pool for plain HTTP requests. */
  pool: Pool;
  /** Upstream agent of WebSocket upgrades (http-proxy-3). */
  agent: http.Agent;
  /** Duration histogram bound to this route's label (prom-client hashes labels on every unbound call). */
  durationChild: { observe(seconds: number): void };
}

interface RequestState {
  req: http.IncomingMessage;
  res: http.ServerResponse;
  /** The client connection (the request and response let go of it when they end). */
  socket: Socket;
  route: CompiledRoute;
  start: number;
  forward: UndiciForward;
  /** The proxy answered itself (413, 408): what the cancelled upstream request reports next is not an upstream failure. */
  refused: boolean;
  /** `req.socket.bytesRead` when the body last moved, and when that was (performance.now()). */
  bodyBytesSeen: number;
  bodyMovedAt: number;
}

/** Counts request body bytes and fails once the limit is passed (chunked uploads). */
class BodyLimit extends Transform {
  private seen = 0;
  constructor(
    private readonly limit: number,
    private readonly onExceeded: () => void,
  ) {
    super();
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.seen += chunk.length;
    if (this.seen > this.limit) {
      this.onExceeded();
      cb();
      return;
    }
    cb(null, chunk);
  }
}

/** Streams requests and WebSocket upgrades to the configured upstreams. */
export class UpstreamProxy {
  private readonly routes: CompiledRoute[];
  private readonly ws: ProxyServer;
  private readonly sockets = new Set<Duplex>();
  private inFlight = 0;
  /** Requests whose body is still arriving, watched for stalls by one sweep timer. */
  private readonly receiving = new Set<RequestState>();
  private readonly sweepTimer: NodeJS.Timeout | undefined;
  private drainWaiters: Array<() => void> = [];

  constructor(
    private readonly config: ServeConfig,
    private readonly metrics: ProxyMetrics,
    private readonly log: Logger,
  ) {
    // Longest prefix first, so "/ollama/" wins over "/".
    this.routes = [...config.routes]
      .sort((a, b) => b.prefix.length - a.prefix.length)
      .map((r) => {
        const targetUrl = new URL(r.target);
        const opts = { keepAlive: true, keepAliveMsecs: 30_000, maxFreeSockets: 256, scheduling: 'lifo' as const, noDelay: true };
        const agent = targetUrl.protocol === 'https:' ? new https.Agent(opts) : new http.Agent(opts);
        const pool = new Pool(targetUrl.origin, {
          connections: null,
          pipelining: 1,
          keepAliveTimeout: 30_000,
          headersTimeout: config.limits.upstreamTimeoutMs,
          bodyTimeout: 0,
          connect: { noDelay: true },
        });
        return { ...r, targetUrl, agent, pool, durationChild: metrics.duration.labels(r.name) };
      });
    // Read at scrape time: counting up and down per request cost two label hashes each time.
    metrics.activeStreamsFrom(() => this.inFlight);
    this.ws = createProxyServer({ xfwd: false, ws: true });
    // Client vanished while the upstream was still talking: nothing to answer, just stop.
    this.ws.on('econnreset', () => {});
    // One timer for every body in flight: a timer per request cost ~14 us of CPU each.
    const idle = config.limits.bodyIdleTimeoutMs;
    if (idle > 0) {
      this.sweepTimer = setInterval(() => this.sweepStalledBodies(), Math.max(10, Math.min(1000, Math.floor(idle / 4))));
      this.sweepTimer.unref();
    }
  }

  /**
   * Ends requests whose body has not moved for `limits.bodyIdleTimeout`: 408 to the client, the
   * upstream request cancelled (its connection released). Progress is read from the client
   * socket's byte count, so watching costs nothing per chunk. A body the proxy itself is not
   * reading (the upstream is slow to take it, or not connected yet) is never counted as stalled:
   * the client cannot send what nobody reads.
   */
  private sweepStalledBodies(): void {
    const limit = this.config.limits.bodyIdleTimeoutMs;
    const now = performance.now();
    for (const st of this.receiving) {
      const read = st.socket.bytesRead;
      if (read !== st.bodyBytesSeen || st.req.readableFlowing !== true) {
        st.bodyBytesSeen = read;
        st.bodyMovedAt = now;
        continue;
      }
      if (now - st.bodyMovedAt < limit) continue;
      this.receiving.delete(st);
      this.refuseMidBody(
        st,
        408,
        'body_idle_timeout',
        `The request body stopped arriving: no byte for ${fmtMs(limit)} (limits.bodyIdleTimeout). Send the body without long pauses.`,
      );
    }
  }

  /** Ends a request whose body is still arriving with the proxy's own answer, and cancels its upstream request. */
  private refuseMidBody(st: RequestState, status: 408 | 413, reason: string, message: string): void {
    st.refused = true;
    this.receiving.delete(st);
    this.metrics.rejected.inc({ reason });
    const { req, res, socket } = st;
    req.unpipe();
    if (!res.headersSent) {
      sendText(res, status, message, true);
      // Do not read the rest of a body that is refused.
      res.once('finish', () => socket.destroySoon());
    } else {
      res.destroy();
    }
    st.forward.cancel();
  }

  /** Number of proxied HTTP requests in flight. */
  get activeRequests(): number {
    return this.inFlight;
  }

  /** Number of open proxied WebSockets. */
  get activeWebsockets(): number {
    return this.sockets.size;
  }

  private match(path: string): { route: CompiledRoute; rest: string } | undefined {
    for (const route of this.routes) {
      if (path.startsWith(route.prefix)) return { route, rest: path.slice(route.prefix.length - 1) };
      // "/ollama" without the trailing slash still belongs to "/ollama/".
      if (path === route.prefix.slice(0, -1)) return { route, rest: '/' };
    }
    return undefined;
  }

  /** Rewrites the path and forwarding headers of an upgrade request for http-proxy-3. */
  private prepareUpgrade(req: http.IncomingMessage, route: CompiledRoute, rest: string, query: string): void {
    req.url = (route.stripPrefix ? rest : req.url!.split('?')[0]!) + query;
    const h = req.headers;
    // Hop-by-hop (RFC 9110 7.6.1): what the client's Connection header names, and the header itself,
    // end here. Passed on, `Connection: Upgrade, X-Forwarded-For` would make any proxy further along
    // drop the X-Forwarded-For set below. Only the upgrade itself goes on.
    const named = typeof h.connection === 'string' ? h.connection.toLowerCase().split(',') : [];
    for (const t of named) {
      const name = t.trim();
      if (name !== '' && name !== 'upgrade' && name !== 'host' && h[name] !== undefined) delete h[name];
    }
    for (const name of HOP_BY_HOP) if (name !== 'upgrade' && name !== 'connection' && h[name] !== undefined) delete h[name];
    h.connection = 'Upgrade';
    // `delete` only when present: deleting turns the headers object into a slow dictionary.
    for (const name of FORWARDING_HEADERS) if (h[name] !== undefined) delete h[name];
    h['x-forwarded-for'] = req.socket.remoteAddress ?? '';
    h['x-forwarded-proto'] = (req.socket as TLSSocket).encrypted ? 'https' : 'http';
    if (h.host) h['x-forwarded-host'] = h.host;
    const port = req.socket.localPort;
    if (port) h['x-forwarded-port'] = String(port);
  }

  /** Handles one HTTP request that is not a control route. */
  handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const rawUrl = req.url ?? '/';
    const q = rawUrl.indexOf('?');
    const path = q < 0 ? rawUrl : rawUrl.slice(0, q);
    const query = q < 0 ? '' : rawUrl.slice(q);
    const start = performance.now();
    const m = this.match(path);
    if (!m) {
      this.reject(req, res, 404, 'no_route', `No upstream route matches ${path}.`, 'none', start, path);
      return;
    }
    const { route, rest } = m;
    const admin = adminCheck(route, path, rest);
    if (admin === 'blocked') {
      this.reject(req, res, 403, 'admin_blocked', ADMIN_BLOCKED_MESSAGE, route.name, start, path);
      return;
    }
    if (admin === 'bad') {
      this.reject(req, res, 400, 'bad_path', 'The request path is not valid percent-encoding or contains a backslash or NUL.', route.name, start, path);
      return;
    }
    const limit = this.config.limits.maxBodyBytes;
    const declared = req.headers['content-length'];
    if (declared !== undefined && Number(declared) > limit) {
      this.reject(
        req,
        res,
        413,
        'body_too_large',
        `Request body of ${declared} bytes is larger than the limit of ${formatSize(limit)} (limits.maxBody).`,
        route.name,
        start,
        path,
        true,
      );
      return;
    }

    const headers = upstreamRequestHeaders(req.rawHeaders, {
      rewriteHost: route.rewriteHost,
      remoteAddress: req.socket.remoteAddress ?? '',
      proto: (req.socket as TLSSocket).encrypted ? 'https' : 'http',
      localPort: req.socket.localPort,
    });
    const st: RequestState = {
      req,
      res,
      socket: req.socket,
      route,
      start,
      refused: false,
      bodyBytesSeen: -1,
      bodyMovedAt: start,
      forward: new UndiciForward(res, (failure) => this.upstreamFailed(st, failure)),
    };
    this.inFlight++;
    res.once('close', () => this.finish(st, path));

    const hasBody = declared !== undefined ? declared !== '0' : req.headers['transfer-encoding'] !== undefined;
    let body: Readable | null = null;
    if (hasBody) {
      body = req;
      // Only bodies without a declared length need counting; Node stops a declared body at its length.
      if (declared === undefined) {
        const counted = new BodyLimit(limit, () =>
          this.refuseMidBody(st, 413, 'body_too_large', `Request body is larger than the limit of ${formatSize(limit)} (limits.maxBody).`),
        );
        req.pipe(counted);
        body = counted;
      }
      if (this.sweepTimer && !req.complete) {
        this.receiving.add(st);
        req.once('end', () => this.receiving.delete(st));
      }
    }
    const upstreamPath = route.stripPrefix ? rest + query : rawUrl;
    route.pool.dispatch({ path: upstreamPath, method: req.method as Dispatcher.HttpMethod, headers, body }, st.forward);
  }

  /** What the upstream leg reported: a client error (400), a timeout (504), or an upstream failure (502, or a cut stream). */
  private upstreamFailed(st: RequestState, f: UpstreamFailure): void {
    if (st.refused || st.res.destroyed) return;
    if (f.kind === 'client') {
      // undici refused to send what the client sent: the client's fault, not an upstream outage
      this.metrics.rejected.inc({ reason: 'invalid_request' });
      if (!st.res.headersSent) sendText(st.res, 400, `The request cannot be forwarded: ${f.message}`, true);
      else st.res.destroy();
      return;
    }
    this.answerError(st.route, st.res, f.kind === 'timeout' ? 'TIMEOUT' : f.code, f.message, f.kind === 'timeout');
  }

  /** Handles an HTTP upgrade (WebSocket) that is not a control route. */
  handleUpgrade(req: http.IncomingMessage, socket: Duplex, head: Buffer): void {
    const rawUrl = req.url ?? '/';
    const q = rawUrl.indexOf('?');
    const path = q < 0 ? rawUrl : rawUrl.slice(0, q);
    const m = this.match(path);
    if (!m) {
      socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
      return;
    }
    const { route, rest } = m;
    const admin = adminCheck(route, path, rest);
    if (admin !== 'ok') {
      const [status, text] = admin === 'blocked' ? ['403 Forbidden', ADMIN_BLOCKED_MESSAGE] : ['400 Bad Request', 'Invalid request path.'];
      this.metrics.rejected.inc({ reason: admin === 'blocked' ? 'admin_blocked' : 'bad_path' });
      socket.end(`HTTP/1.1 ${status}\r\nConnection: close\r\nContent-Type: text/plain\r\nContent-Length: ${Buffer.byteLength(text) + 1}\r\n\r\n${text}\n`);
      return;
    }
    this.prepareUpgrade(req, route, rest, q < 0 ? '' : rawUrl.slice(q));
    this.sockets.add(socket);
    this.metrics.activeWebsockets.inc();
    const start = performance.now();
    socket.once('close', () => {
      this.sockets.delete(socket);
      this.metrics.activeWebsockets.dec();
      this.log.info(
        { method: 'GET', path, status: 101, upstream: route.name, websocket: true, durationMs: round(performance.now() - start) },
        'websocket closed',
      );
      this.notifyDrain();
    });
    this.ws.ws(req, socket, head, { target: route.targetUrl, agent: route.agent, changeOrigin: route.rewriteHost }, (err) => {
      const code = (err as NodeJS.ErrnoException).code ?? 'ERROR';
      this.metrics.upstreamErrors.inc({ route: route.name, code });
      this.log.warn({ path, upstream: route.name, code }, 'websocket upstream failed');
      if (socket.writable) {
        socket.end(`HTTP/1.1 502 Bad Gateway\r\nConnection: close\r\nContent-Type: text/plain\r\n\r\nUpstream "${route.name}" is not reachable (${code}).\n`);
      } else socket.destroy();
    });
  }

  /** Counts, logs and answers an upstream failure: 502/504 before the response started, a cut after. */
  private answerError(route: CompiledRoute, res: http.ServerResponse, code: string, message: string, timedOut: boolean): void {
    this.metrics.upstreamErrors.inc({ route: route.name, code });
    this.log.warn({ upstream: route.name, target: route.target, code, error: message }, 'upstream request failed');
    if (res.headersSent) {
      // The status line is gone; cutting the connection is the only honest signal left.
      res.destroy();
      return;
    }
    if (timedOut) {
      sendText(
        res,
        504,
        `Upstream "${route.name}" (${route.target}) did not answer within ${fmtMs(this.config.limits.upstreamTimeoutMs)} (limits.upstreamTimeout).`,
      );
    } else {
      sendText(res, 502, `Upstream "${route.name}" (${route.target}) is not reachable (${code}). The proxy is running; check that the upstream service is up.`);
    }
  }

  private reject(
    req: http.IncomingMessage,
    res: http.ServerResponse,
    status: number,
    reason: string,
    message: string,
    route: string,
    start: number,
    path: string,
    close = false,
  ): void {
    this.metrics.rejected.inc({ reason });
    res.once('close', () => {
      const durationMs = round(performance.now() - start);
      this.metrics.requests.inc({ route, method: req.method ?? '', status: String(status) });
      this.log.info({ method: req.method, path, status, durationMs, bytes: 0, upstream: route, rejected: reason }, 'request');
    });
    sendText(res, status, message, close);
    // Do not read a body we are refusing; closing is cheaper than draining 100 MiB.
    const socket = req.socket;
    if (close) res.once('finish', () => socket.destroySoon());
  }

  private finish(st: RequestState, path: string): void {
    const { req, res, route } = st;
    this.receiving.delete(st);
    const complete = res.writableFinished;
    // Client went away before the end: stop the upstream request so the model stops generating.
    if (!complete) st.forward.cancel();
    this.inFlight--;
    const seconds = (performance.now() - st.start) / 1000;
    const status = res.statusCode;
    const method = req.method ?? '';
    this.metrics.countRequest(route.name, method, status);
    route.durationChild.observe(seconds);
    this.log.info(
      { method, path, status, durationMs: round(seconds * 1000), bytes: st.forward.bytes, upstream: route.name, ...(complete ? {} : { aborted: true }) },
      'request',
    );
    this.notifyDrain();
  }

  private notifyDrain(): void {
    if (this.inFlight === 0 && this.sockets.size === 0 && this.drainWaiters.length) {
      const w = this.drainWaiters;
      this.drainWaiters = [];
      for (const f of w) f();
    }
  }

  /** Resolves true when all in-flight requests and WebSockets ended, false at the deadline. */
  drain(deadlineMs: number): Promise<boolean> {
    if (this.inFlight === 0 && this.sockets.size === 0) return Promise.resolve(true);
    return new Promise((resolve) => {
      const t = setTimeout(() => resolve(false), deadlineMs);
      this.drainWaiters.push(() => {
        clearTimeout(t);
        resolve(true);
      });
    });
  }

  /** Cuts remaining WebSockets and closes upstream keep-alive sockets. */
  close(): void {
    if (this.sweepTimer) clearInterval(this.sweepTimer);
    for (const s of this.sockets) s.destroy();
    for (const r of this.routes) {
      r.agent.destroy();
      void r.pool.destroy();
    }
  }
}

function fmtMs(ms: number): string {
  return ms < 1000 ? `${ms} ms` : `${Math.round(ms / 1000)} s`;
}

function round(ms: number): number {
  return Math.round(ms * 100) / 100;
}

/** Writes a short plain-text answer (the proxy's own errors are meant to be read by people). */
export function sendText(res: http.ServerResponse, status: number, message: string, close = false): void {
  const body = `${message}\n`;
  const headers: http.OutgoingHttpHeaders = {
    'content-type': 'text/plain; charset=utf-8',
    'content-length': Buffer.byteLength(body),
    'cache-control': 'no-store',
  };
  if (close) headers.connection = 'close';
  res.writeHead(status, headers);
  res.end(body);
}
