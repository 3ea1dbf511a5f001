/**
 * P10: the admin block (the Ollama listener's default, and `blockOllamaAdmin` routes) covered
 * Ollama's model management only. Ollama 0.12+ also manages the server's ollama.com sign-in over
 * its API: `POST /api/me` answers the account (or a sign-in link carrying the server's public key,
 * which connects the server to whoever opens it), `POST /api/signout` and `DELETE
 * /api/user/keys/<key>` disconnect it. Any token holder could call them. They are blocked now,
 * in every spelling the model routes are, for requests and WebSocket upgrades; inference routes
 * and look-alike paths still pass.
 */
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import tls from 'node:tls';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRatlsServer, type RunningRatlsServer } from '../../../src/proxy/server.ts';
import type { ServingIdentity } from '../../../src/proxy/identity-source.ts';
import { selfSignedSource, testConfig } from '../../proxy/helpers.ts';

const TOKEN = randomBytes(32).toString('hex');

/** An upstream that records every request line that reaches it. */
async function recordingUpstream(): Promise<{ url: string; seen: string[]; close(): Promise<void> }> {
  const seen: string[] = [];
  const server = http.createServer((req, res) => {
    seen.push(`${req.method} ${req.url}`);
    req.resume();
    res.writeHead(200, { 'content-type': 'text/plain' }).end('upstream ok\n');
  });
  server.on('upgrade', (req, socket) => {
    seen.push(`UPGRADE ${req.url}`);
    socket.end('HTTP/1.1 200 OK\r\ncontent-length: 12\r\nconnection: close\r\n\r\nupstream ok\n');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    seen,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

/** One raw request on a fresh TLS connection; the status code of the answer. */
function exchange(port: number, request: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false }, () => s.write(request));
    let got = '';
    s.on('data', (d: Buffer) => (got += d.toString('latin1')));
    s.on('close', () => resolve(Number(/^HTTP\/1\.1 (\d{3})/.exec(got)?.[1] ?? 0)));
    s.on('error', reject);
  });
}

const ACCOUNT_ROUTES: Array<[string, string]> = [
  ['POST', '/api/me'],
  ['POST', '/api/signout'],
  ['DELETE', '/api/user/keys/c3NoLWVkMjU1MTk'],
  ['POST', '/API/ME'],
  ['POST', '/api/%6De'],
  ['POST', '/api/./signout'],
  ['POST', '/api//signout/'],
  ['POST', '/x/../api/me'],
  ['DELETE', '/api/%75ser/keys/k'],
];
const STILL_FORWARDED: Array<[string, string]> = [
  ['GET', '/api/tags'],
  ['POST', '/api/chat'],
  ['POST', '/api/show'],
  ['GET', '/api/meta'],
  ['GET', '/api/users'],
];

describe('Ollama account routes are part of the admin block', () => {
  let up: Awaited<ReturnType<typeof recordingUpstream>>;
  let srv: RunningRatlsServer<ServingIdentity>;

  beforeAll(async () => {
    up = await recordingUpstream();
    srv = await startRatlsServer(
      testConfig({
        upstreams: { openWebui: 'http://127.0.0.1:9', ollama: up.url },
        ollamaListener: { listen: '127.0.0.1:0' },
        routes: [
          { prefix: '/ollama/', target: up.url, stripPrefix: true, rewriteHost: true, blockOllamaAdmin: true, name: 'ollama' },
          { prefix: '/', target: 'http://127.0.0.1:9', name: 'webui' },
        ],
      }),
      { identitySource: selfSignedSource(), ollamaToken: TOKEN, autoRotate: false },
    );
  });
  afterAll(async () => {
    await srv?.close({ drainTimeoutMs: 200 });
    await up?.close();
  });

  const req = (method: string, path: string, auth: boolean) =>
    `${method} ${path} HTTP/1.1\r\nHost: localhost\r\n${auth ? `Authorization: Bearer ${TOKEN}\r\n` : ''}Content-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}`;
  const upgrade = (path: string, auth: boolean) =>
    `GET ${path} HTTP/1.1\r\nHost: localhost\r\n${auth ? `Authorization: Bearer ${TOKEN}\r\n` : ''}Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\n\r\n`;

  it.each(ACCOUNT_ROUTES)('Ollama listener, with the token: %s %s is 403 and reaches nothing', async (method, path) => {
    const from = up.seen.length;
    expect(await exchange(srv.ollama!.port, req(method, path, true))).toBe(403);
    expect(await exchange(srv.ollama!.port, upgrade(path, true))).toBe(403);
    expect(up.seen.slice(from)).toEqual([]);
  });

  it.each(ACCOUNT_ROUTES)('blockOllamaAdmin route: %s /ollama%s is 403 and reaches nothing', async (method, path) => {
    const from = up.seen.length;
    expect(await exchange(srv.port, req(method, `/ollama${path}`, false))).toBe(403);
    expect(up.seen.slice(from)).toEqual([]);
  });

  it.each(STILL_FORWARDED)('inference and look-alike routes still pass: %s %s', async (method, path) => {
    const from = up.seen.length;
    expect(await exchange(srv.ollama!.port, req(method, path, true))).toBe(200);
    expect(up.seen.slice(from)).toEqual([`${method} ${path}`]);
  });
});
