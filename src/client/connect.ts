/**
 * `ratls connect`: a local plain-HTTP proxy in front of one attested upstream, for browsers and
 * tools that cannot verify RA-TLS themselves. Every upstream connection is made by the attested
 * agent (verified before its first byte); when attestation fails nothing is forwarded and the
 * client gets a page explaining why. /.ratls/status shows the current attestation.
 *
 * This file is the wiring; the pieces are browser-guard.ts (Host and Origin checks),
 * upstream-attestation.ts (state, status, re-attestation) and attested-forward.ts (forwarding).
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import type { ClientPolicy } from '../verify/policy-file.ts';
import { AttestedAgent } from './agent.ts';
import { createAttestedForward, wantsJson } from './attested-forward.ts';
import type { AttestOptions } from './attestor.ts';
import { browserGuardPolicy, guardRequests, guardUpgrades } from './browser-guard.ts';
import { parseHttpsUrl, probe } from './probe.ts';
import { statusHtml, statusJson, type ConnectStatus } from './pages.ts';
import { UpstreamAttestation } from './upstream-attestation.ts';

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

/** Serves the proxy's own pages under {@link LOCAL_PREFIX}. */
function localPage(req: http.IncomingMessage, res: http.ServerResponse, path: string, status: ConnectStatus): void {
  if (path === `${LOCAL_PREFIX}status`) {
    const json = wantsJson(req) || /[?&]format=json/.test(req.url ?? '');
    res.writeHead(200, { 'content-type': json ? 'application/json' : 'text/html; charset=utf-8', 'cache-control': 'no-store' });
    return void res.end(json ? statusJson(status) : statusHtml(status));
  }
  res.writeHead(404, { 'content-type': 'text/plain' });
  res.end('Unknown ratls connect page; see /.ratls/status\n');
}

/** Starts the local verifying proxy; resolves once listening and after the first attestation. */
export async function startConnectProxy(opts: ConnectProxyOptions): Promise<RunningConnectProxy> {
  const upstreamUrl = new URL(opts.upstream);
  parseHttpsUrl(opts.upstream); // throws on non-https
  const upstream = upstreamUrl.origin;
  const log = opts.log ?? (() => {});

  // check() runs only after start-up, when the agent below exists.
  const attestation = new UpstreamAttestation({
    upstream,
    peer: upstreamUrl.host,
    policy: opts.policy.appraisal,
    check: () => probe(upstream, opts.policy, { attestor: agent.attestor }),
    ...(opts.retryIntervalMs !== undefined ? { retryIntervalMs: opts.retryIntervalMs } : {}),
    log,
  });
  const agent = new AttestedAgent(opts.policy, {
    ...opts.attest,
    onVerified: (e) => attestation.verified(e),
    onRejected: (e) => attestation.rejected(e),
    agentOptions: { keepAlive: true },
  });
  const forward = createAttestedForward({ upstream, agent, gate: attestation, log, ages: agent.ages });

  const server = http.createServer();
  const listen = opts.listen ?? { host: '127.0.0.1', port: 0 };
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(listen.port, listen.host, () => {
      server.removeListener('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  const hostForUrl = listen.host.includes(':') ? `[${listen.host}]` : listen.host;

  // The guards need the port, known only now; no connection is accepted before this code yields.
  const guard = browserGuardPolicy({ port, hosts: ['localhost', '127.0.0.1', '[::1]', hostForUrl], frontEndHosts: opts.allowedHosts ?? [] });
  server.on(
    'request',
    guardRequests(guard, (req, res) => {
      const path = (req.url ?? '/').split('?')[0]!;
      if (path.startsWith(LOCAL_PREFIX)) return localPage(req, res, path, attestation.status);
      forward.web(req, res);
    }),
  );
  const guardedUpgrade = guardUpgrades(guard, (req, socket, head) => forward.ws(req, socket, head));
  server.on('upgrade', (req: http.IncomingMessage, socket: Duplex, head: Buffer) => {
    socket.on('error', () => {});
    guardedUpgrade(req, socket, head);
  });

  await attestation.reattest();
  return {
    url: `http://${hostForUrl}:${port}`,
    port,
    status: () => attestation.status,
    reverify: async () => {
      await attestation.reattest();
      return attestation.status;
    },
    close: async () => {
      server.closeAllConnections();
      forward.close();
      await new Promise<void>((r) => server.close(() => r()));
      agent.destroy();
    },
  };
}
