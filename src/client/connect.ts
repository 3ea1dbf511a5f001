/**
 * `ratls connect`: a local plain-HTTP proxy in front of one attested upstream, for browsers and
 * tools that cannot verify RA-TLS themselves. Every upstream connection is made by the attested
 * agent (verified before its first byte); when attestation fails nothing is forwarded and the
 * client gets a page explaining why. /.ratls/status shows the current attestation.
 */
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { createProxyServer } from 'http-proxy-3';
import type { ClientPolicy } from '../verify/policy-file.ts';
import { toVerifyError } from '../core/errors.ts';
import { AttestedAgent } from './agent.ts';
import type { AttestOptions, AttestationEvent } from './attestor.ts';
import type { RatlsVerificationResult } from '../ratls/verify-cert.ts';
import { findAttestationError } from './dispatcher.ts';
import { parseHttpsUrl, probe } from './probe.ts';
import { clean } from './report.ts';
import { refusalHtml, refusalJson, statusHtml, statusJson, type ConnectStatus } from './pages.ts';

/** Prefix of the proxy's own pages; never forwarded. */
export const LOCAL_PREFIX = '/.ratls/';

/** Options of {@link startConnectProxy}. */
export interface ConnectProxyOptions {
  /** https://host[:port] of the RA-TLS server. */
  upstream: string;
  policy: ClientPolicy;
  /** Default 127.0.0.1:0 (ephemeral). */
  listen?: { host: string; port: number };
  attest?: Omit<AttestOptions, 'onVerified' | 'onRejected'>;
  /** While refused, re-attest at most this often when requests arrive (default 1000 ms). */
  retryIntervalMs?: number;
  /** Log lines (no secrets); default none. */
  log?: (line: string) => void;
  /**
   * Extra Host header names (without port) accepted besides localhost, 127.0.0.1, [::1] and the
   * listen address. Other Host values get 421: a web page using DNS rebinding must not be able to
   * drive the proxy and read the attested server's answers.
   */
  allowedHosts?: string[];
}

/** A running local proxy. */
export interface RunningConnectProxy {
  url: string;
  port: number;
  status(): ConnectStatus;
  /** Attests a new upstream connection now and updates the status. */
  reverify(): Promise<ConnectStatus>;
  close(): Promise<void>;
}

function wantsJson(req: http.IncomingMessage): boolean {
  const accept = req.headers.accept ?? '';
  return /application\/json/.test(accept) && !/text\/html/.test(accept);
}

/** Starts the local verifying proxy; resolves once listening and after the first attestation. */
export async function startConnectProxy(opts: ConnectProxyOptions): Promise<RunningConnectProxy> {
  const upstreamUrl = new URL(opts.upstream);
  parseHttpsUrl(opts.upstream); // throws on non-https
  const upstream = upstreamUrl.origin;
  const log = opts.log ?? (() => {});
  const status: ConnectStatus = {
    upstream,
    state: 'unknown',
    lastVerified: null,
    lastFailure: null,
    verifications: 0,
    refusals: 0,
    certificateChanges: 0,
    lastCertificateChangeAt: null,
    policy: opts.policy.appraisal,
  };

  const onVerified = (e: AttestationEvent) => {
    status.verifications++;
    if (status.lastVerified && e.certSha256 !== status.lastVerified.certSha256) {
      status.certificateChanges++;
      status.lastCertificateChangeAt = e.at.toISOString();
      log(`upstream certificate changed (now ${e.certSha256}); it passed attestation`);
    }
    status.lastVerified = e;
    const w = (e.result as RatlsVerificationResult).workload;
    if (w) status.lastWorkload = { at: e.at.toISOString(), report: w };
    status.state = 'verified';
  };
  const onRejected = (e: AttestationEvent) => {
    status.refusals++;
    status.lastFailure = e;
    status.state = 'refused';
    log(clean(`upstream REFUSED: ${e.result.errors.map((x) => `${x.code}: ${x.message}`).join('; ')}`));
  };
  const agent = new AttestedAgent(opts.policy, { ...opts.attest, onVerified, onRejected, agentOptions: { keepAlive: true } });

  let lastRetry = 0;
  let retrying: Promise<void> | undefined;
  const reattest = async (): Promise<void> => {
    try {
      await probe(upstream, opts.policy, { attestor: agent.attestor, workload: 'always' });
    } catch (err) {
      const e = toVerifyError(err, 'CONNECTION_FAILED');
      onRejected({
        peer: upstreamUrl.host,
        result: { ok: false, tcbStatus: null, advisoryIds: [], errors: [e], quote: null, checks: [{ name: 'connect', ok: false, detail: e.message }] },
        nonceVerified: false,
        at: new Date(),
      });
    }
  };
  /** True when requests may be forwarded; while refused, re-attests (rate-limited) first. */
  const admit = async (): Promise<boolean> => {
    if (status.state === 'verified') return true;
    const now = Date.now();
    if (!retrying && now - lastRetry >= (opts.retryIntervalMs ?? 1000)) {
      lastRetry = now;
      retrying = reattest().finally(() => {
        retrying = undefined;
      });
    }
    if (retrying) await retrying;
    return (status.state as ConnectStatus['state']) === 'verified';
  };

  // autoRewrite/protocolRewrite: a redirect to the upstream's own URL would send the browser to the
  // RA-TLS server directly, around attestation; point it back at this proxy (Host was checked)
  const proxy = createProxyServer({
    target: upstream,
    agent,
    changeOrigin: true,
    secure: false,
    xfwd: false,
    ws: true,
    autoRewrite: true,
    protocolRewrite: 'http',
  });

  const refuse = (req: http.IncomingMessage, res: http.ServerResponse, fallback?: { code: string; message: string }) => {
    if (res.headersSent) return void res.destroy();
    const json = wantsJson(req);
    const body = json ? refusalJson(upstream, status.lastFailure, fallback, status.policy) : refusalHtml(upstream, status.lastFailure, fallback, status.policy);
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

  let port = 0;
  const extraHosts = new Set((opts.allowedHosts ?? []).map((h) => h.toLowerCase()));
  const hostNames = new Set(['localhost', '127.0.0.1', '[::1]', ...(opts.allowedHosts ?? []).map((h) => h.toLowerCase())]);
  /** True when the Host header names this proxy (any accepted name, our port). */
  const hostOk = (req: http.IncomingMessage): boolean => {
    const m = /^(\[[^\]]+\]|[^:]+)(?::(\d+))?$/.exec((req.headers.host ?? '').toLowerCase());
    if (!m) return false;
    const p = m[2] ? Number(m[2]) : 80;
    return hostNames.has(m[1]!) && p === port;
  };
  /**
   * True unless a browser says the request comes from another web site. The Host check does not
   * cover this: a page on any site can make the browser send requests (a form POST, a WebSocket, a
   * <script src>) to http://127.0.0.1:PORT with the right Host header, carrying the user's cookies
   * for the attested app. Browsers label those with Origin and Sec-Fetch-Site, which pages cannot forge.
   * Requests without either header (curl, SDKs) are not from a web page and pass.
   */
  const originOk = (req: http.IncomingMessage): boolean => {
    const origin = req.headers.origin;
    if (origin !== undefined) {
      let u: URL;
      try {
        u = new URL(origin);
      } catch {
        return false; // includes "null": sandboxed frames, data: and file: pages
      }
      const name = u.hostname.toLowerCase();
      const p = u.port ? Number(u.port) : u.protocol === 'https:' ? 443 : 80;
      // names given with allowedHosts may sit behind a front end on another port or scheme
      const ours = hostNames.has(name) && (p === port || extraHosts.has(name));
      if ((u.protocol !== 'http:' && u.protocol !== 'https:') || !ours) return false;
    }
    const site = req.headers['sec-fetch-site'];
    if (site === undefined || site === 'same-origin' || site === 'none') return true;
    // a top-level navigation from a link elsewhere is fine (the other site cannot read the page);
    // a cross-site POST navigation carries an Origin and was refused above
    return req.headers['sec-fetch-mode'] === 'navigate';
  };
  const crossSite =
    "ratls connect: refusing a request that a web page on another site made your browser send (Origin / Sec-Fetch-Site); open the app at this proxy's own address instead.\n";
  const misdirected =
    'ratls connect: the Host header does not name this proxy (use http://127.0.0.1:PORT or http://localhost:PORT); refusing, to keep other web sites from using it.\n';

  const server = http.createServer((req, res) => {
    if (!hostOk(req)) {
      res.writeHead(421, { 'content-type': 'text/plain; charset=utf-8' });
      return void res.end(misdirected);
    }
    if (!originOk(req)) {
      res.writeHead(403, { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store' });
      return void res.end(crossSite);
    }
    const path = (req.url ?? '/').split('?')[0]!;
    if (path.startsWith(LOCAL_PREFIX)) {
      if (path === `${LOCAL_PREFIX}status`) {
        const json = wantsJson(req) || /[?&]format=json/.test(req.url ?? '');
        res.writeHead(200, { 'content-type': json ? 'application/json' : 'text/html; charset=utf-8', 'cache-control': 'no-store' });
        return void res.end(json ? statusJson(status) : statusHtml(status));
      }
      res.writeHead(404, { 'content-type': 'text/plain' });
      return void res.end('Unknown ratls connect page; see /.ratls/status\n');
    }
    admit().then(
      (ok) => (ok ? proxy.web(req, res) : refuse(req, res)),
      () => refuse(req, res),
    );
  });
  // Upgraded (WebSocket) sockets leave the HTTP server's books; track them to close them.
  const upgraded = new Set<Duplex>();
  server.on('upgrade', (req: http.IncomingMessage, socket: Duplex, head: Buffer) => {
    socket.on('error', () => {});
    if (!hostOk(req))
      return void socket.end(
        `HTTP/1.1 421 Misdirected Request\r\ncontent-type: text/plain\r\ncontent-length: ${Buffer.byteLength(misdirected)}\r\nconnection: close\r\n\r\n${misdirected}`,
      );
    // WebSockets are exempt from CORS, so without this any page could drive the app's socket
    if (!originOk(req))
      return void socket.end(
        `HTTP/1.1 403 Forbidden\r\ncontent-type: text/plain\r\ncontent-length: ${Buffer.byteLength(crossSite)}\r\nconnection: close\r\n\r\n${crossSite}`,
      );
    upgraded.add(socket);
    socket.once('close', () => upgraded.delete(socket));
    admit().then(
      (ok) => {
        if (ok) return proxy.ws(req, socket, head);
        const body = refusalJson(upstream, status.lastFailure, undefined, status.policy);
        socket.end(
          `HTTP/1.1 502 Bad Gateway\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
        );
      },
      () => socket.destroy(),
    );
  });

  const listen = opts.listen ?? { host: '127.0.0.1', port: 0 };
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(listen.port, listen.host, () => {
      server.removeListener('error', reject);
      resolve();
    });
  });
  port = (server.address() as AddressInfo).port;
  const hostForUrl = listen.host.includes(':') ? `[${listen.host}]` : listen.host;
  hostNames.add(hostForUrl.toLowerCase());
  await reattest();
  return {
    url: `http://${hostForUrl}:${port}`,
    port,
    status: () => status,
    reverify: async () => {
      await reattest();
      return status;
    },
    close: async () => {
      server.closeAllConnections();
      for (const s of upgraded) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
      proxy.close();
      agent.destroy();
    },
  };
}
