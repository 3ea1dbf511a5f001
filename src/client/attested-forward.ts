/**
 * The forwarding leg of `ratls connect`: requests and WebSockets go to the upstream through the
 * attested agent (every upstream connection verified before its first byte), and only while the
 * upstream is admitted; otherwise the client gets the refusal page with the reasons.
 */
import http from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { createProxyServer } from 'http-proxy-3';
import { findAttestationError } from './dispatcher.ts';
import { refusalHtml, refusalJson, type ConnectStatus } from './pages.ts';
import { clean } from './report.ts';
import type { ConnectionAges } from './connection-age.ts';
import { limitWebSocketAge } from './ws-close.ts';

/** True when the client asked for JSON rather than a page. */
export function wantsJson(req: http.IncomingMessage): boolean {
  const accept = req.headers.accept ?? '';
  return /application\/json/.test(accept) && !/text\/html/.test(accept);
}

/** What forwarding needs from the upstream's attestation state. */
export interface AdmissionGate {
  /** True when requests may be forwarded now. */
  admit(): Promise<boolean>;
  readonly status: Pick<ConnectStatus, 'lastFailure' | 'policy'>;
}

/** Options of {@link createAttestedForward}. */
export interface AttestedForwardOptions {
  /** Origin of the upstream (https://host:port). */
  upstream: string;
  /** The attested agent: makes every upstream connection and verifies it first. */
  agent: http.Agent;
  gate: AdmissionGate;
  /** Log lines (no secrets). */
  log: (line: string) => void;
  /**
   * When attested connections reach freshness.maxConnectionAge (the agent's clock): WebSockets on
   * them are then closed with code 1001 between two frames (src/client/ws-close.ts).
   */
  ages?: ConnectionAges;
}

/** Forwards admitted requests and WebSockets. */
export interface AttestedForward {
  web(req: http.IncomingMessage, res: http.ServerResponse): void;
  ws(req: http.IncomingMessage, socket: Duplex, head: Buffer): void;
  /** Destroys the open WebSockets (they left the HTTP server's books) and stops the proxy. */
  close(): void;
}

/** Builds the forwarding leg for one upstream. */
export function createAttestedForward(o: AttestedForwardOptions): AttestedForward {
  const { upstream, gate, log } = o;
  // autoRewrite/protocolRewrite: a redirect to the upstream's own URL would send the browser to the
  // RA-TLS server directly, around attestation; point it back at this proxy (Host was checked)
  const proxy = createProxyServer({
    target: upstream,
    agent: o.agent,
    changeOrigin: true,
    secure: false,
    xfwd: false,
    ws: true,
    autoRewrite: true,
    protocolRewrite: 'http',
  });
  // HTTP connections end at maxConnectionAge in the agent; WebSockets here
  if (o.ages) limitWebSocketAge(proxy, o.ages);

  // The browser guard let only this proxy's own origin through. Upstream apps that check Origin
  // (open-webui's CORS_ALLOW_ORIGIN also gates its socket.io) should see the origin they serve, not
  // the local one, so they need no entry for every address users run connect on. The proxy copies
  // the incoming headers, so they are rewritten there before forwarding.
  const toUpstreamOrigin = (req: http.IncomingMessage): void => {
    const h = req.headers;
    if (h.origin !== undefined) h.origin = upstream;
    if (h.referer === undefined) return;
    let u: URL | undefined;
    try {
      u = new URL(h.referer);
    } catch {
      u = undefined;
    }
    if (u && u.host === h.host) h.referer = upstream + u.pathname + u.search;
    else delete h.referer;
  };

  const refuse = (req: http.IncomingMessage, res: http.ServerResponse): void => {
    if (res.headersSent) return void res.destroy();
    const json = wantsJson(req);
    const { lastFailure, policy } = gate.status;
    const body = json ? refusalJson(upstream, lastFailure, undefined, policy) : refusalHtml(upstream, lastFailure, undefined, policy);
    res.writeHead(502, { 'content-type': json ? 'application/json' : 'text/html; charset=utf-8', 'cache-control': 'no-store', 'x-ratls-refused': '1' });
    res.end(body);
  };

  proxy.on('error', (err: Error, req: http.IncomingMessage, target: http.ServerResponse | Socket) => {
    const att = findAttestationError(err);
    if (!(target instanceof http.ServerResponse)) return void (target as Duplex).destroy();
    if (att) return refuse(req, target);
    if (target.headersSent) return void target.destroy();
    log(clean(`upstream error: ${err.message}`));
    const json = wantsJson(req);
    target.writeHead(502, { 'content-type': json ? 'application/json' : 'text/plain; charset=utf-8' });
    target.end(
      json
        ? JSON.stringify({ error: 'UPSTREAM_UNREACHABLE', message: err.message }) + '\n'
        : `ratls connect: the upstream ${upstream} is unreachable: ${err.message}\n`,
    );
  });

  const upgraded = new Set<Duplex>();
  return {
    web(req, res) {
      gate.admit().then(
        (ok) => {
          if (!ok) return refuse(req, res);
          toUpstreamOrigin(req);
          proxy.web(req, res);
        },
        () => refuse(req, res),
      );
    },
    ws(req, socket, head) {
      upgraded.add(socket);
      socket.once('close', () => upgraded.delete(socket));
      gate.admit().then(
        (ok) => {
          if (ok) {
            toUpstreamOrigin(req);
            return proxy.ws(req, socket, head);
          }
          const body = refusalJson(upstream, gate.status.lastFailure, undefined, gate.status.policy);
          socket.end(
            `HTTP/1.1 502 Bad Gateway\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
          );
        },
        () => socket.destroy(),
      );
    },
    close() {
      for (const s of upgraded) s.destroy();
      proxy.close();
    },
  };
}
