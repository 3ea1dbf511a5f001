/**
 * P13: WebSocket upgrades went upstream with the client's Connection header as sent. Plain
 * requests drop what Connection names (RFC 9110 7.6.1), upgrades did not: `Connection: Upgrade,
 * X-Forwarded-For, X-Forwarded-Proto` reached the upstream, and any proxy between ratls serve and
 * open-webui (a compose network's nginx or traefik) would then drop the X-Forwarded-For and
 * X-Forwarded-Proto ratls set, so the app saw the WebSocket as coming from that proxy over http.
 * Now only `Connection: Upgrade` goes on, and the headers the client named are removed.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import http from 'node:http';
import tls from 'node:tls';
import type { AddressInfo } from 'node:net';
import { startRatlsServer, type RunningRatlsServer } from '../../../src/proxy/server.ts';
import type { ServingIdentity } from '../../../src/proxy/identity-source.ts';
import { selfSignedSource, testConfig } from '../../proxy/helpers.ts';

let upstream: http.Server;
const upgrades: Array<Record<string, string | string[] | undefined>> = [];
let srv: RunningRatlsServer<ServingIdentity>;

beforeAll(async () => {
  upstream = http.createServer((_req, res) => res.end('ok'));
  upstream.on('upgrade', (req: http.IncomingMessage, socket) => {
    upgrades.push(req.headers);
    socket.end('HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok');
  });
  await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`;
  srv = await startRatlsServer(testConfig({ routes: [{ prefix: '/', target: url, name: 'webui' }] }), { identitySource: selfSignedSource() });
});
afterAll(async () => {
  await srv?.close({ drainTimeoutMs: 100 });
  await new Promise<void>((r) => upstream?.close(() => r()));
});

function upgrade(extra: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const s = tls.connect({ host: '127.0.0.1', port: srv.port, rejectUnauthorized: false }, () =>
      s.write(
        `GET /ws/socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n${extra}\r\n`,
      ),
    );
    let got = '';
    // the upstream answers 200 "ok" (no WebSocket): enough to know what it received
    s.on('data', (d: Buffer) => {
      got += d.toString('latin1');
      if (got.endsWith('\r\n\r\nok')) s.destroy();
    });
    s.on('close', () => resolve());
    s.on('error', reject);
  });
}

describe('WebSocket upgrades: the client Connection header ends at the proxy', () => {
  it('headers named in Connection are removed; the proxy forwarding headers survive; only Upgrade is named', async () => {
    await upgrade(
      'Connection: Upgrade, X-Forwarded-For, X-Forwarded-Proto, Cookie, Host\r\nX-Forwarded-For: 6.6.6.6\r\nCookie: token=abc\r\nKeep-Alive: timeout=5\r\nTE: trailers\r\n',
    );
    const h = upgrades.at(-1)!;
    expect(h.connection).toBe('Upgrade');
    expect(h.upgrade).toBe('websocket');
    expect(h['x-forwarded-for']).toBe('127.0.0.1');
    expect(h['x-forwarded-proto']).toBe('https');
    expect(h.cookie).toBeUndefined();
    expect(h['keep-alive']).toBeUndefined();
    expect(h.te).toBeUndefined();
    expect(h.host).toBe('localhost');
  });

  it('an ordinary upgrade keeps its cookie and WebSocket headers', async () => {
    await upgrade('Connection: keep-alive, Upgrade\r\nCookie: token=abc\r\n');
    const h = upgrades.at(-1)!;
    expect(h.connection).toBe('Upgrade');
    expect(h.cookie).toBe('token=abc');
    expect(h['sec-websocket-key']).toBe('dGhlIHNhbXBsZSBub25jZQ==');
  });
});
