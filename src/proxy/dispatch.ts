/**
 * Which part of the proxy answers a request: the control routes (Hono) or the upstream engine
 * (the hot path, on the raw Node request). WebSocket upgrades only ever go upstream.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Hono } from 'hono';
import type { HttpBindings } from '@hono/node-server';
import { RESPONSE_ALREADY_SENT } from '@hono/node-server/utils/response';
import type { Logger } from 'pino';
import { isControlPath } from './control.ts';
import type { ProxyMetrics } from './metrics.ts';
import { refuseBeforeRouting, type RequestRefusal } from './request-guard.ts';

/** Where requests that are not control requests go (src/proxy/upstream.ts). */
export interface UpstreamHandler {
  handle(req: IncomingMessage, res: ServerResponse): void;
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void;
}

/** The two entry points of one HTTPS listener. */
export interface Dispatch {
  request(req: IncomingMessage, res: ServerResponse): void;
  upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void;
}

/** Options of {@link createDispatch}. */
export interface DispatchOptions {
  /** The control app as a Node request listener (`getRequestListener(app.fetch)`). */
  control: (req: IncomingMessage, res: ServerResponse) => unknown;
  upstream: UpstreamHandler;
  /**
   * 'raw': upstream requests go to the engine directly. 'hono': they go through `control` too,
   * whose app must then end in {@link routeUpstreamThroughHono}.
   */
  hotPath: 'raw' | 'hono';
  /** True once shutdown began: responses close their connection and upgrades are refused. */
  draining(): boolean;
  metrics: Pick<ProxyMetrics, 'requests' | 'rejected'>;
  log: Logger;
}

const NOT_FOUND = 'HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n';

/** A 400 with the refusal's sentence; the connection is closed, since the client is not speaking HTTP as the upstream would read it. */
function badRequest(r: RequestRefusal): { head: string; body: string } {
  const body = `${r.message}\n`;
  return {
    head: `HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n`,
    body,
  };
}

/** True when the request declares a body (a length other than 0, or a transfer coding). */
function hasBody(req: IncomingMessage): boolean {
  const len = req.headers['content-length'];
  return (len !== undefined && len !== '0') || req.headers['transfer-encoding'] !== undefined;
}

/** The request target without its query string. */
function pathOf(url: string | undefined): string {
  const u = url ?? '/';
  const q = u.indexOf('?');
  return q < 0 ? u : u.slice(0, q);
}

/** Builds the request and upgrade handlers of one listener. */
export function createDispatch(o: DispatchOptions): Dispatch {
  const { control, upstream, metrics, log } = o;
  const throughHono = o.hotPath === 'hono';

  /** Upstream requests are counted and logged by the engine; control requests here. */
  const observeControl = (req: IncomingMessage, res: ServerResponse, path: string): void => {
    const start = performance.now();
    res.once('close', () => {
      metrics.requests.inc({ route: 'control', method: req.method ?? '', status: String(res.statusCode) });
      log.info(
        { method: req.method, path, status: res.statusCode, durationMs: Math.round((performance.now() - start) * 100) / 100, upstream: 'control' },
        'request',
      );
    });
  };

  /** Counts and logs a refusal made before routing (the path is logged without query or fragment). */
  const refused = (req: IncomingMessage, r: RequestRefusal): void => {
    metrics.rejected.inc({ reason: r.reason });
    metrics.requests.inc({ route: 'none', method: req.method ?? '', status: '400' });
    log.info({ method: req.method, path: pathOf(req.url).split('#')[0], status: 400, upstream: 'none', rejected: r.reason }, 'request');
  };

  return {
    request(req, res) {
      const refusal = refuseBeforeRouting(req);
      if (refusal) {
        refused(req, refusal);
        const { body } = badRequest(refusal);
        res.writeHead(400, {
          'content-type': 'text/plain; charset=utf-8',
          'content-length': Buffer.byteLength(body),
          'cache-control': 'no-store',
          connection: 'close',
        });
        res.end(body);
        // Do not read a body whose request is refused (the response lets go of the socket when it finishes).
        const socket = req.socket;
        res.once('finish', () => socket.destroySoon());
        return;
      }
      if (o.draining()) res.setHeader('connection', 'close');
      const path = pathOf(req.url);
      if (isControlPath(path)) {
        observeControl(req, res, path);
        // Control routes take no body. One that is declared is never read: the connection closes
        // after the answer, instead of waiting for the body up to limits.requestTimeout (1 h).
        if (hasBody(req)) {
          res.setHeader('connection', 'close');
          const socket = req.socket;
          res.once('finish', () => socket.destroySoon());
        }
        void control(req, res);
        return;
      }
      if (throughHono) {
        void control(req, res);
        return;
      }
      upstream.handle(req, res);
    },
    upgrade(req, socket, head) {
      const refusal = refuseBeforeRouting(req);
      if (refusal) {
        refused(req, refusal);
        const { head: h, body } = badRequest(refusal);
        socket.end(h + body);
        return;
      }
      if (o.draining() || isControlPath(pathOf(req.url))) {
        socket.end(NOT_FOUND);
        return;
      }
      upstream.handleUpgrade(req, socket, head);
    },
  };
}

/** Makes `app` hand every request its own routes do not answer to the upstream engine. */
export function routeUpstreamThroughHono(app: Hono<{ Bindings: HttpBindings }>, upstream: UpstreamHandler): void {
  app.all('*', (c) => {
    upstream.handle(c.env.incoming, c.env.outgoing);
    return RESPONSE_ALREADY_SENT;
  });
}
