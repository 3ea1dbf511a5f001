/**
 * Black-box attacks on `ratls serve`. Requests are written byte for byte on a raw TLS socket so no client library normalises them.
 * The upstream records what arrives and how a Go server (Ollama: net/http + gin) would route it:
 * net/http percent-decodes the path before gin matches it.
 *
 * Findings P1-P3 (admin block bypasses) were fixed in src/proxy/upstream.ts by matching the path
 * as the upstream's router sees it (decoded once, empty and dot segments collapsed); their tests
 * failed before that fix.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import http from 'node:http';
import tls from 'node:tls';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import pino from 'pino';
import type { ServingIdentity } from '../../../src/proxy/identity-source.ts';
import { startRatlsServer, type RunningRatlsServer } from '../../../src/proxy/server.ts';
import { ENGINE_SETTINGS, selfSignedSource, testConfig } from '../../proxy/helpers.ts';

interface Seen {
  method: string;
  raw: string;
  /** Path as Go's net/http hands it to gin (percent-decoded). */
  goPath: string;
  headers: http.IncomingHttpHeaders;
  body: string;
}

const ADMIN = /^\/api\/(pull|push|create|delete|copy|blobs)(\/|$)/;

/** What a lenient upstream could make of a path: decoded, slashes collapsed, dot segments resolved. */
function normalised(p: string): string {
  let s: string;
  try {
    s = decodeURIComponent(p);
  } catch {
    s = p;
  }
  s = s.replace(/\/+/g, '/');
  const out: string[] = [];
  for (const seg of s.split('/')) {
    if (seg === '..') out.pop();
    else if (seg !== '.') out.push(seg);
  }
  return out.join('/') || '/';
}

async function recordingUpstream() {
  const seen: Seen[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const raw = req.url ?? '';
      let goPath = raw.split('?')[0]!;
      try {
        goPath = decodeURIComponent(goPath);
      } catch {
        // Go would answer 400; keep the raw path
      }
      seen.push({ method: req.method ?? '', raw, goPath, headers: req.headers, body: Buffer.concat(chunks).toString() });
      res.writeHead(200, { 'content-type': 'text/plain' }).end('upstream ok\n');
    });
  });
  // a Go server ignores Upgrade on a route that does not speak WebSocket and answers normally
  server.on('upgrade', (req, socket) => {
    seen.push({ method: req.method ?? '', raw: req.url ?? '', goPath: decodeURIComponent((req.url ?? '').split('?')[0]!), headers: req.headers, body: '' });
    socket.on('error', () => {});
    socket.end('HTTP/1.1 200 OK\r\ncontent-length: 12\r\nconnection: close\r\n\r\nupstream ok\n');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    seen,
    adminReached: (from = 0) => seen.slice(from).filter((s) => ADMIN.test(normalised(s.raw.split('?')[0]!))),
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

/** Writes `raw` on a fresh TLS connection and resolves with everything read until close (or 1.5 s). */
function rawExchange(port: number, raw: string): Promise<string> {
  return new Promise((resolve) => {
    const s = tls.connect({ host: '127.0.0.1', port, servername: 'localhost', rejectUnauthorized: false, ALPNProtocols: ['http/1.1'] }, () => s.write(raw));
    let out = '';
    const done = () => {
      clearTimeout(t);
      s.destroy();
      resolve(out);
    };
    const t = setTimeout(done, 1500);
    s.on('data', (d: Buffer) => (out += d.toString('latin1')));
    s.on('end', done);
    s.on('close', done);
    s.on('error', done);
  });
}

const status = (resp: string) => Number(/^HTTP\/1\.1 (\d{3})/.exec(resp)?.[1] ?? 0);

describe.each(ENGINE_SETTINGS)('ratls serve (engine: %s) black-box', (engine) => {
  let up: Awaited<ReturnType<typeof recordingUpstream>>;
  let webui: Awaited<ReturnType<typeof recordingUpstream>>;
  let srv: RunningRatlsServer<ServingIdentity>;
  const post = (path: string, extra = '') =>
    `POST ${path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 15\r\n${extra}Connection: close\r\n\r\n{"model":"bad"}`;

  beforeAll(async () => {
    up = await recordingUpstream();
    webui = await recordingUpstream();
    srv = await startRatlsServer(
      testConfig({
        engine,
        routes: [
          { prefix: '/ollama/', target: up.url, stripPrefix: true, rewriteHost: true, blockOllamaAdmin: true, name: 'ollama' },
          { prefix: '/', target: webui.url, name: 'webui' },
        ],
      }),
      { identitySource: selfSignedSource() },
    );
  });
  afterAll(async () => {
    await srv?.close({ drainTimeoutMs: 500 });
    await up?.close();
    await webui?.close();
  });

  it('blocks the plain admin route (baseline)', async () => {
    const from = up.seen.length;
    expect(status(await rawExchange(srv.port, post('/ollama/api/pull')))).toBe(403);
    expect(up.adminReached(from)).toEqual([]);
  });

  // FINDING P1 (high when blockOllamaAdmin is relied on): the block matches the raw path, but Go's
  // net/http percent-decodes it before gin routes, so /ollama/%61pi/pull is Ollama's /api/pull.
  it('does not let a percent-encoded path reach an admin route (/ollama/%61pi/pull)', async () => {
    const from = up.seen.length;
    await rawExchange(srv.port, post('/ollama/%61pi/pull'));
    await rawExchange(srv.port, post('/ollama/api/%70ull'));
    expect(
      up.seen
        .slice(from)
        .filter((s) => ADMIN.test(s.goPath))
        .map((s) => s.raw),
    ).toEqual([]);
  });

  // FINDING P2 (medium): paths that only normalise to an admin route are forwarded; whether they
  // reach it depends on the upstream's router, except that the http-proxy-3 engine itself
  // resolves dot segments: /ollama/api/../api/pull and /ollama/./api/pull arrive as /api/pull at any
  // upstream (a working bypass). Fail closed: refuse such paths or normalise before matching.
  it('does not forward paths that normalise to an admin route (//, dot segments)', async () => {
    const from = up.seen.length;
    for (const p of ['/ollama//api/pull', '/ollama/api/../api/pull', '/ollama/./api/pull', '/ollama/api//pull']) {
      await rawExchange(srv.port, post(p));
    }
    expect(up.adminReached(from).map((s) => s.raw)).toEqual([]);
  });

  it('refuses undecodable paths on admin-blocked routes and still forwards ordinary ones', async () => {
    const from = up.seen.length;
    expect(status(await rawExchange(srv.port, post('/ollama/api/%zzpull')))).toBe(400);
    expect(status(await rawExchange(srv.port, post('/ollama/api/chat')))).toBe(200);
    expect(up.seen.slice(from).map((s) => s.raw)).toEqual(['/api/chat']);
  });

  // FINDING P3 (low against Ollama today): the upgrade path skips the admin block. A GET with
  // "Upgrade: websocket" to an admin route is forwarded (http-proxy-3 drops non-GET upgrades, and
  // Ollama's admin routes are POST/DELETE, so this is defence in depth, not a working pull).
  it('applies the admin block to WebSocket upgrade requests', async () => {
    const from = up.seen.length;
    const resp = await rawExchange(
      srv.port,
      'GET /ollama/api/pull HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n',
    );
    expect(up.adminReached(from).map((s) => `${s.method} ${s.raw}`)).toEqual([]);
    expect(status(resp)).toBe(403);
  });

  it('rejects Content-Length together with Transfer-Encoding (no smuggled second request)', async () => {
    const before = up.seen.length + webui.seen.length;
    const smuggle =
      'POST /ollama/api/tags HTTP/1.1\r\nHost: localhost\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n' +
      '0\r\n\r\nPOST /ollama/api/pull HTTP/1.1\r\nHost: localhost\r\nContent-Length: 2\r\n\r\n{}';
    const resp = await rawExchange(srv.port, smuggle);
    expect(status(resp)).toBe(400);
    expect(up.seen.length + webui.seen.length).toBe(before);
  });

  it('rejects duplicate, differing Content-Length headers', async () => {
    const before = up.seen.length + webui.seen.length;
    const resp = await rawExchange(srv.port, 'POST /x HTTP/1.1\r\nHost: localhost\r\nContent-Length: 2\r\nContent-Length: 40\r\n\r\n{}');
    expect(status(resp)).toBe(400);
    expect(up.seen.length + webui.seen.length).toBe(before);
  });

  it('drops client X-Forwarded-* / Forwarded / X-Real-IP instead of passing them on', async () => {
    const resp = await rawExchange(
      srv.port,
      'GET /who HTTP/1.1\r\nHost: localhost\r\nX-Forwarded-For: 10.9.9.9\r\nx-forwarded-for: 10.8.8.8\r\nForwarded: for=10.7.7.7\r\nX-Real-IP: 10.6.6.6\r\nX-Forwarded-Proto: http\r\nConnection: close\r\n\r\n',
    );
    expect(status(resp)).toBe(200);
    const h = webui.seen.at(-1)!.headers;
    expect(h['x-forwarded-for']).toBe('127.0.0.1');
    expect(h['x-forwarded-proto']).toBe('https');
    expect(h.forwarded).toBeUndefined();
    expect(h['x-real-ip']).toBeUndefined();
  });
});

describe('ratls serve logs', () => {
  it('never logs Authorization, cookies, query strings or bodies', async () => {
    const up = await recordingUpstream();
    let logged = '';
    const sink = new Writable({
      write(chunk, _enc, cb) {
        logged += String(chunk);
        cb();
      },
    });
    const srv = await startRatlsServer(testConfig({ log: { level: 'debug' }, routes: [{ prefix: '/', target: up.url, name: 'webui' }] }), {
      identitySource: selfSignedSource(),
      logger: pino({ level: 'trace' }, sink),
    });
    try {
      await rawExchange(
        srv.port,
        'POST /api/chat?api_key=QUERYSECRET HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer AUTHSECRET\r\nCookie: token=COOKIESECRET\r\nContent-Type: application/json\r\nContent-Length: 24\r\nConnection: close\r\n\r\n{"prompt":"BODYSECRET!"}',
      );
      await new Promise((r) => setTimeout(r, 100));
      expect(logged.length).toBeGreaterThan(0);
      for (const secret of ['AUTHSECRET', 'COOKIESECRET', 'QUERYSECRET', 'BODYSECRET']) expect(logged).not.toContain(secret);
    } finally {
      await srv.close({ drainTimeoutMs: 200 });
      await up.close();
    }
  });
});
