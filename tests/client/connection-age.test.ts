/**
 * freshness.maxConnectionAge: an attested connection is closed after its current response once it
 * is that old, so long sessions are attested again. WebSockets through `ratls connect` get close
 * code 1001 between two frames, and socket.io reconnects through a new, attested connection.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { Server as IoServer } from 'socket.io';
import { io as ioClient } from 'socket.io-client';
import { WebSocket, request as undiciRequest } from 'undici';
import { startRatlsServer, type RunningRatlsServer } from '../../src/proxy/server.ts';
import { validateConfig } from '../../src/proxy/config.ts';
import { startConnectProxy, type RunningConnectProxy } from '../../src/client/connect.ts';
import { createAttestedAgent } from '../../src/client/agent.ts';
import { createAttestedDispatcher } from '../../src/client/dispatcher.ts';
import { FrameGate, closeFrame } from '../../src/client/ws-close.ts';
import { makeWorld, simPolicy, simulatedSource, type World } from './helpers.ts';

let world: World;
let upstream: http.Server;
let ioServer: IoServer;
let srv: RunningRatlsServer;
let tdConnections = 0;
const MAX_AGE = 2;

beforeAll(async () => {
  world = await makeWorld();
  upstream = http.createServer((req, res) => {
    if (req.url?.startsWith('/socket.io')) return; // socket.io answers its own path
    if (req.url === '/slow') {
      res.writeHead(200, { 'content-type': 'text/plain' });
      let n = 0;
      const t = setInterval(() => {
        res.write(`chunk ${n}\n`);
        if (++n === 6) {
          clearInterval(t);
          res.end();
        }
      }, 500);
      return;
    }
    res.end(`ok ${req.url}`);
  });
  ioServer = new IoServer(upstream);
  ioServer.on('connection', (s) => s.on('ping-me', (m: string, ack: (x: string) => void) => ack(`pong ${m}`)));
  await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
  srv = await startRatlsServer(
    validateConfig({
      listen: '127.0.0.1:0',
      log: { level: 'silent' },
      routes: [{ prefix: '/', target: `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`, name: 'app' }],
    }),
    { identitySource: await simulatedSource(world), autoRotate: false },
  );
  srv.server.on('secureConnection', () => tdConnections++);
});
afterAll(async () => {
  await srv?.close({ drainTimeoutMs: 200 });
  await ioServer?.close();
  await new Promise<void>((r) => (upstream ? upstream.close(() => r()) : r()));
});

const aged = () => simPolicy(world, (p) => (p.freshness.maxConnectionAgeSeconds = MAX_AGE));

function get(url: string, agent: https.Agent): Promise<string> {
  return new Promise((resolve, reject) => {
    https
      .get(url, { agent }, (res) => {
        let body = '';
        res.on('data', (c: Buffer) => (body += c.toString()));
        res.on('end', () => resolve(body));
      })
      .on('error', reject);
  });
}

describe('maxConnectionAge on HTTP connections', () => {
  it('the agent: an idle connection past the limit is closed, a busy one after its response; the next request is attested again', async () => {
    let verified = 0;
    const agent = createAttestedAgent(aged(), { onVerified: () => verified++ });
    try {
      expect(await get(`${srv.url}a`, agent)).toBe('ok /a');
      expect(verified).toBe(1);
      // a response that outlives the limit is not cut...
      const slow = await get(`${srv.url}slow`, agent);
      expect(slow.split('\n').filter(Boolean)).toHaveLength(6);
      // ...but its connection is not reused afterwards
      expect(await get(`${srv.url}b`, agent)).toBe('ok /b');
      expect(verified).toBe(2);
      // an idle one is closed when it reaches the limit
      await new Promise((r) => setTimeout(r, MAX_AGE * 1000 + 500));
      expect(Object.values(agent.freeSockets).flat()).toHaveLength(0);
      expect(await get(`${srv.url}c`, agent)).toBe('ok /c');
      expect(verified).toBe(3);
    } finally {
      agent.destroy();
    }
  });

  it('the undici dispatcher: the same, and a young connection is reused', async () => {
    let verified = 0;
    const d = createAttestedDispatcher(aged(), { onVerified: () => verified++ });
    try {
      // undici returns a socket to its pool a moment after the response: wait, so requests share one
      const text = async (path: string) => {
        const body = await (await undiciRequest(`${srv.url}${path}`, { dispatcher: d })).body.text();
        await new Promise((r) => setTimeout(r, 50));
        return body;
      };
      expect(await text('a')).toBe('ok /a');
      expect(await text('b')).toBe('ok /b');
      expect(verified).toBe(1);
      expect((await text('slow')).split('\n').filter(Boolean)).toHaveLength(6); // runs past the limit, not cut
      await new Promise((r) => setTimeout(r, 400)); // the expired socket is closed once idle
      expect(await text('c')).toBe('ok /c');
      expect(verified).toBe(2);
      await new Promise((r) => setTimeout(r, MAX_AGE * 1000 + 500));
      expect(await text('d')).toBe('ok /d');
      expect(verified).toBe(3);
    } finally {
      await d.close();
    }
  });
});

describe('maxConnectionAge on WebSockets through ratls connect', () => {
  let proxy: RunningConnectProxy;
  beforeAll(async () => {
    proxy = await startConnectProxy({ upstream: srv.url, policy: aged() });
  });
  afterAll(async () => proxy?.close());

  it('closes an old WebSocket with code 1001 and socket.io reconnects through a new attested connection', async () => {
    const before = proxy.status().verifications;
    const tdBefore = tdConnections;
    const socket = ioClient(proxy.url, { transports: ['websocket'], forceNew: true, reconnectionDelay: 100, reconnectionDelayMax: 200 });
    const events: string[] = [];
    socket.on('disconnect', (reason) => events.push(`disconnect ${reason}`));
    try {
      await new Promise<void>((resolve, reject) => {
        socket.once('connect', () => resolve());
        socket.once('connect_error', reject);
      });
      expect(await socket.timeout(2000).emitWithAck('ping-me', 'one')).toBe('pong one');
      // it is closed at the limit and comes back by itself
      await new Promise<void>((resolve) => socket.io.once('reconnect', () => resolve()));
      expect(events[0]).toBe('disconnect transport close');
      expect(await socket.timeout(2000).emitWithAck('ping-me', 'two')).toBe('pong two');
      // the reconnection was attested again, on a new TLS connection to the TD
      expect(proxy.status().verifications).toBeGreaterThan(before + 1);
      expect(tdConnections).toBeGreaterThan(tdBefore + 1);
    } finally {
      socket.close();
    }
  });

  it('a plain WebSocket sees close code 1001 with the reason', async () => {
    const ws = new WebSocket(`${proxy.url.replace('http', 'ws')}/socket.io/?EIO=4&transport=websocket`);
    const opened = Date.now();
    const closed = await new Promise<{ code: number; reason: string }>((resolve) => {
      ws.onclose = (e) => resolve({ code: e.code, reason: e.reason });
    });
    expect(closed.code).toBe(1001);
    expect(closed.reason).toMatch(/maxConnectionAge/);
    expect(Date.now() - opened).toBeGreaterThanOrEqual(MAX_AGE * 1000 - 500);
  });
});

describe('FrameGate', () => {
  it('passes frames through and closes only between two frames, masked towards the server', async () => {
    const g = new FrameGate(true);
    const out: Buffer[] = [];
    g.on('data', (b: Buffer) => out.push(b));
    const ended = new Promise<void>((r) => g.on('end', () => r()));
    // a masked 300-byte frame (16-bit length), written in pieces across its header and payload
    const payload = Buffer.alloc(300, 7);
    const frame = Buffer.concat([Buffer.from([0x82, 0x80 | 126, 0x01, 0x2c, 1, 2, 3, 4]), payload]);
    g.write(frame.subarray(0, 3));
    g.closeAtBoundary(1001, 'bye'); // mid-frame: waits
    g.write(frame.subarray(3, 100));
    g.write(Buffer.concat([frame.subarray(100), Buffer.from([0x81, 0x80 | 1, 9, 9, 9, 9, 0x41])])); // the rest, then a frame that must not pass
    await ended;
    const all = Buffer.concat(out);
    expect(all.subarray(0, frame.length).equals(frame)).toBe(true);
    const close = all.subarray(frame.length);
    expect(close[0]).toBe(0x88);
    expect(close[1]! & 0x80).toBe(0x80); // masked: client to server
    const key = close.subarray(2, 6);
    const body = Buffer.from(close.subarray(6).map((b, i) => b ^ key[i % 4]!));
    expect(body.readUInt16BE(0)).toBe(1001);
    expect(body.subarray(2).toString()).toBe('bye');
    expect(closeFrame(1001, 'x', false).equals(Buffer.from([0x88, 3, 0x03, 0xe9, 0x78]))).toBe(true);
  });
});
