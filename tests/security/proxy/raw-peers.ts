/**
 * Peers for black-box tests of `ratls serve`: raw request bytes on a TLS socket (no client library
 * normalises them) and a recording upstream that shows what actually arrived.
 */
import http from 'node:http';
import tls from 'node:tls';
import type { AddressInfo } from 'node:net';
import type { ServingIdentity } from '../../../src/proxy/identity-source.ts';
import type { RawConfig } from '../../../src/proxy/config.ts';
import { startRatlsServer, type RunningRatlsServer } from '../../../src/proxy/server.ts';
import { selfSignedSource, testConfig } from '../../proxy/helpers.ts';

/** One request as the upstream received it. */
export interface Arrival {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  upgrade: boolean;
}

/** A loopback HTTP upstream that records every request and upgrade that reaches it and answers 200. */
export async function recordingUpstream(): Promise<{ url: string; seen: Arrival[]; server: http.Server; close(): Promise<void> }> {
  const seen: Arrival[] = [];
  const server = http.createServer((req, res) => {
    seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, upgrade: false });
    req.resume();
    req.on('end', () => res.writeHead(200, { 'content-type': 'text/plain' }).end('upstream ok\n'));
  });
  server.on('upgrade', (req, socket) => {
    seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, upgrade: true });
    socket.on('error', () => {});
    socket.end('HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    seen,
    server,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

/** Writes `raw` on a fresh TLS connection and resolves with everything read until close (or `waitMs`). */
export function rawExchange(port: number, raw: string | Buffer, waitMs = 1500): Promise<string> {
  return new Promise((resolve) => {
    const s = tls.connect({ host: '127.0.0.1', port, servername: 'localhost', rejectUnauthorized: false, ALPNProtocols: ['http/1.1'] }, () => s.write(raw));
    let out = '';
    const done = () => {
      clearTimeout(t);
      s.destroy();
      resolve(out);
    };
    const t = setTimeout(done, waitMs);
    s.on('data', (d: Buffer) => (out += d.toString('latin1')));
    s.on('end', done);
    s.on('close', done);
    s.on('error', done);
  });
}

/** The status code of the first response in `resp`, 0 when there is none. */
export const statusOf = (resp: string): number => Number(/^HTTP\/1\.1 (\d{3})/.exec(resp)?.[1] ?? 0);

/** A WebSocket upgrade request line and headers for `path`. */
export const upgradeRequest = (path: string, extraHeaders = 'Host: localhost\r\n'): string =>
  `GET ${path} HTTP/1.1\r\n${extraHeaders}Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n`;

/** Starts `ratls serve` with a self-signed identity on an ephemeral loopback port. */
export function startProxy(raw: RawConfig): Promise<RunningRatlsServer<ServingIdentity>> {
  return startRatlsServer(testConfig(raw), { identitySource: selfSignedSource() });
}

/** The value of one Prometheus sample of `srv`, 0 when absent. */
export async function metricValue(srv: RunningRatlsServer<ServingIdentity>, name: string, labels: Record<string, string> = {}): Promise<number> {
  const metric = (await srv.metrics.registry.getMetricsAsJSON()).find((m) => m.name === name);
  const values = (metric?.values ?? []) as Array<{ value: number; labels: Record<string, string | number> }>;
  return values.filter((v) => Object.entries(labels).every(([k, x]) => String(v.labels[k]) === x)).reduce((a, v) => a + v.value, 0);
}
