import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as http from 'node:http';
import { createHash, randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import { request } from 'undici';
import { Server as IoServer } from 'socket.io';
import { io as ioClient } from 'socket.io-client';
import type { ServingIdentity } from '../../src/proxy/identity-source.ts';
import { startRatlsServer, type RunningRatlsServer } from '../../src/proxy/server.ts';
import { ENGINES, selfSignedSource, testConfig, trustingAgent } from './helpers.ts';

const MiB = 1024 * 1024;

/** A deterministic pseudo-random body of `size` bytes, produced in 1 MiB pieces. */
function bigBody(size: number, hash = createHash('sha256')): { stream: Readable; hash: ReturnType<typeof createHash> } {
  const block = randomBytes(MiB);
  let sent = 0;
  const stream = new Readable({
    read() {
      if (sent >= size) return void this.push(null);
      const n = Math.min(MiB, size - sent);
      const piece = block.subarray(0, n);
      block[0] = (block[0]! + 1) & 0xff; // vary blocks so reordering would show
      hash.update(piece);
      sent += n;
      this.push(Buffer.from(piece));
    },
  });
  return { stream, hash };
}

describe.each(ENGINES)('ratls serve (%s): WebSockets (socket.io) and uploads', (engine) => {
  let upstream: http.Server;
  let ioServer: IoServer;
  let srv: RunningRatlsServer<ServingIdentity>;
  let agent: ReturnType<typeof trustingAgent>;
  const received: string[] = [];

  beforeAll(async () => {
    upstream = http.createServer((req, res) => {
      if (!req.url?.startsWith('/upload')) return; // socket.io handles its own path
      const h = createHash('sha256');
      let n = 0;
      req.on('data', (c: Buffer) => {
        h.update(c);
        n += c.length;
      });
      req.on('end', () => {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ sha256: h.digest('hex'), bytes: n }));
      });
    });
    ioServer = new IoServer(upstream, { path: '/ws/socket.io' });
    ioServer.on('connection', (s) => {
      s.on('chat', (msg: string, ack: (r: string) => void) => {
        received.push(msg);
        ack(`echo:${msg}:${String(s.handshake.headers['x-forwarded-proto'])}`);
      });
    });
    await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
    const target = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`;
    srv = await startRatlsServer(testConfig({ engine, routes: [{ prefix: '/', target }] }), { identitySource: selfSignedSource() });
    agent = trustingAgent(srv.identity().certPem);
  });
  afterAll(async () => {
    await srv?.close({ drainTimeoutMs: 500 });
    await agent?.close();
    await new Promise((r) => ioServer.close(() => r(undefined)));
  });

  for (const transports of [['websocket'], ['polling']] as const) {
    it(`socket.io-client talks to a real socket.io server through /ws/socket.io (${transports[0]})`, async () => {
      const socket = ioClient(srv.url, { path: '/ws/socket.io', transports: [...transports], ca: srv.identity().certPem, reconnection: false, forceNew: true });
      try {
        await new Promise<void>((resolve, reject) => {
          socket.once('connect', resolve);
          socket.once('connect_error', reject);
        });
        expect(socket.io.engine.transport.name).toBe(transports[0]);
        const reply = await socket.timeout(5000).emitWithAck('chat', `hello-${transports[0]}`);
        expect(reply).toBe(`echo:hello-${transports[0]}:https`);
      } finally {
        socket.disconnect();
      }
    });
  }

  it('counts open websockets in metrics', async () => {
    const socket = ioClient(srv.url, { path: '/ws/socket.io', transports: ['websocket'], ca: srv.identity().certPem, reconnection: false, forceNew: true });
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('connect_error', reject);
    });
    const m = await (await request(`${srv.url}metrics`, { dispatcher: agent })).body.text();
    expect(m).toMatch(/ratls_active_websockets [1-9]/);
    socket.disconnect();
  });

  it('a 100 MiB upload arrives intact (declared length)', async () => {
    const { stream, hash } = bigBody(100 * MiB);
    const r = await request(`${srv.url}upload`, { method: 'POST', body: stream, headers: { 'content-length': String(100 * MiB) }, dispatcher: agent });
    const body = (await r.body.json()) as { sha256: string; bytes: number };
    expect(r.statusCode).toBe(200);
    expect(body.bytes).toBe(100 * MiB);
    expect(body.sha256).toBe(hash.digest('hex'));
  });

  it('a 100 MiB chunked upload arrives intact', async () => {
    const { stream, hash } = bigBody(100 * MiB);
    const r = await request(`${srv.url}upload`, { method: 'POST', body: stream, dispatcher: agent });
    const body = (await r.body.json()) as { sha256: string; bytes: number };
    expect(body.bytes).toBe(100 * MiB);
    expect(body.sha256).toBe(hash.digest('hex'));
  });

  it('answers 413 above the limit (declared length), before reading the body', async () => {
    const https = await import('node:https');
    const { status, text } = await new Promise<{ status: number; text: string }>((resolve, reject) => {
      const req = https.request(
        `${srv.url}upload`,
        { method: 'POST', ca: srv.identity().certPem, agent: false, headers: { 'content-length': String(100 * MiB + 1) } },
        (res) => {
          let text = '';
          res.on('data', (c: Buffer) => (text += c.toString()));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
        },
      );
      req.on('error', reject);
      // Send only a little: the answer must come without the proxy waiting for 100 MiB.
      req.write(Buffer.alloc(64 * 1024));
    });
    expect(status).toBe(413);
    expect(text).toMatch(/larger than the limit of 100 MiB \(limits\.maxBody\)/);
  });

  it('answers 413 when a chunked body passes the limit', async () => {
    const small = await startRatlsServer(
      testConfig({ engine, routes: [{ prefix: '/', target: `http://127.0.0.1:${(upstream.address() as AddressInfo).port}` }], limits: { maxBody: '1MiB' } }),
      { identitySource: selfSignedSource() },
    );
    const a = trustingAgent(small.identity().certPem);
    try {
      const { stream } = bigBody(3 * MiB);
      const r = await request(`${small.url}upload`, { method: 'POST', body: stream, dispatcher: a });
      expect(r.statusCode).toBe(413);
      expect(await r.body.text()).toMatch(/1 MiB/);
    } finally {
      await a.close();
      await small.close({ drainTimeoutMs: 500 });
    }
  });
});
