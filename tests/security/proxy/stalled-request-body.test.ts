/**
 * A client that starts a request body and then stops sending used to pin an upstream connection for
 * up to `limits.requestTimeout` (1 h): 500 slow uploaders held 500 upstream connections. Now a body
 * that does not move for `limits.bodyIdleTimeout` gets 408 and its upstream request is cancelled.
 * The idle timeout measures pauses, not duration: a slow but steady 100 MiB upload passes, and
 * neither does a pause that the upstream causes (it is slow to read) count against the client.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import http from 'node:http';
import tls from 'node:tls';
import { createHash } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import type { ServingIdentity } from '../../../src/proxy/identity-source.ts';
import type { RunningRatlsServer } from '../../../src/proxy/server.ts';
import { validateConfig } from '../../../src/proxy/config.ts';
import { ENGINE_SETTINGS } from '../../proxy/helpers.ts';
import { metricValue, startProxy } from './raw-peers.ts';

const IDLE_MS = 1000;

/** An upstream that hashes request bodies; `/slow-reader` stops reading for 3 idle periods first. */
async function hashingUpstream() {
  const open = new Set<http.IncomingMessage>();
  const server = http.createServer((req, res) => {
    open.add(req);
    req.once('close', () => open.delete(req));
    const hash = createHash('sha256');
    let bytes = 0;
    const read = () => {
      req.on('data', (c: Buffer) => {
        bytes += c.length;
        hash.update(c);
      });
      req.on('end', () => {
        const body = JSON.stringify({ bytes, sha256: hash.digest('hex') });
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) }).end(body);
      });
    };
    if (req.url === '/slow-reader') setTimeout(read, 3 * IDLE_MS);
    else read();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    open,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

/** A raw TLS client: writes the head, then body pieces on a schedule; resolves with the answer and when it came. */
function upload(port: number, head: string, pieces: Array<{ afterMs: number; data: Buffer | string }>): Promise<{ answer: string; ms: number }> {
  return new Promise((resolve) => {
    const started = Date.now();
    let answer = '';
    const s = tls.connect({ host: '127.0.0.1', port, servername: 'localhost', rejectUnauthorized: false }, async () => {
      s.write(head);
      for (const p of pieces) {
        if (s.destroyed) return;
        await new Promise((r) => setTimeout(r, p.afterMs));
        if (s.destroyed) return;
        if (!s.write(p.data)) await new Promise((r) => s.once('drain', r));
      }
    });
    s.on('data', (d: Buffer) => (answer += d.toString('latin1')));
    s.on('error', () => {});
    s.on('close', () => resolve({ answer, ms: Date.now() - started }));
    setTimeout(() => s.destroy(), 60_000);
  });
}

const statusOf = (answer: string) => Number(/^HTTP\/1\.1 (\d{3})/.exec(answer)?.[1] ?? 0);

async function until(cond: () => boolean, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (!cond() && Date.now() < end) await new Promise((r) => setTimeout(r, 25));
  return cond();
}

describe('limits.bodyIdleTimeout', () => {
  it('is a duration, 60 s by default, 0 for none', () => {
    expect(validateConfig({}).limits.bodyIdleTimeoutMs).toBe(60_000);
    expect(validateConfig({ limits: { bodyIdleTimeout: '0' } }).limits.bodyIdleTimeoutMs).toBe(0);
    expect(() => validateConfig({ limits: { bodyIdleTimeout: 'soon' } })).toThrow(/limits\.bodyIdleTimeout/);
  });
});

describe.each(ENGINE_SETTINGS)('ratls serve (engine: %s): stalled request bodies', (engine) => {
  let up: Awaited<ReturnType<typeof hashingUpstream>>;
  let srv: RunningRatlsServer<ServingIdentity>;

  beforeAll(async () => {
    up = await hashingUpstream();
    srv = await startProxy({
      engine,
      limits: { bodyIdleTimeout: `${IDLE_MS}ms`, maxBody: '200MiB' },
      routes: [{ prefix: '/', target: up.url, name: 'webui' }],
    });
  });
  afterAll(async () => {
    await srv?.close({ drainTimeoutMs: 200 });
    await up?.close();
  });

  it('answers 408 to bodies that stop arriving and releases their upstream requests', async () => {
    const stalled = [
      ...Array.from({ length: 10 }, () =>
        upload(srv.port, 'POST /api/v1/files/ HTTP/1.1\r\nHost: localhost\r\nContent-Length: 100000\r\n\r\n', [{ afterMs: 0, data: 'x'.repeat(100) }]),
      ),
      ...Array.from({ length: 10 }, () =>
        upload(srv.port, 'POST /api/v1/files/ HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n', [
          { afterMs: 0, data: '64\r\n' + 'x'.repeat(100) + '\r\n' },
        ]),
      ),
    ];
    expect(await until(() => up.open.size === 20, 5000)).toBe(true);
    const answers = await Promise.all(stalled);
    for (const a of answers) {
      expect(statusOf(a.answer), a.answer.slice(0, 120)).toBe(408);
      expect(a.answer).toContain('limits.bodyIdleTimeout');
      // within the idle time plus the sweep's granularity, with slack for a loaded machine
      expect(a.ms).toBeLessThan(IDLE_MS * 6);
    }
    expect(await until(() => up.open.size === 0, 3000), `${up.open.size} upstream requests still open`).toBe(true);
    expect(await metricValue(srv, 'ratls_rejected_requests_total', { reason: 'body_idle_timeout' })).toBe(20);
    expect(await metricValue(srv, 'ratls_upstream_errors_total')).toBe(0);
  });

  it('lets a slow but steady 100 MiB upload through (many times the idle timeout in total)', async () => {
    const piece = Buffer.alloc(1024 * 1024);
    for (let i = 0; i < piece.length; i++) piece[i] = (i * 31) & 0xff;
    const pieces = Array.from({ length: 100 }, () => ({ afterMs: 60, data: piece }));
    const expected = createHash('sha256');
    for (let i = 0; i < 100; i++) expected.update(piece);
    const { answer, ms } = await upload(
      srv.port,
      `POST /api/v1/files/ HTTP/1.1\r\nHost: localhost\r\nContent-Length: ${100 * piece.length}\r\nConnection: close\r\n\r\n`,
      pieces,
    );
    expect(statusOf(answer), answer.slice(0, 200)).toBe(200);
    expect(JSON.parse(answer.slice(answer.indexOf('\r\n\r\n') + 4))).toEqual({ bytes: 100 * piece.length, sha256: expected.digest('hex') });
    expect(ms).toBeGreaterThan(3 * IDLE_MS);
  }, 60_000);

  it('does not count pauses the upstream causes against the client', async () => {
    const piece = Buffer.alloc(4 * 1024 * 1024, 0x62);
    const { answer } = await upload(
      srv.port,
      `POST /slow-reader HTTP/1.1\r\nHost: localhost\r\nContent-Length: ${8 * piece.length}\r\nConnection: close\r\n\r\n`,
      [...Array.from({ length: 8 }, () => ({ afterMs: 0, data: piece }))],
    );
    expect(statusOf(answer), answer.slice(0, 200)).toBe(200);
    expect(JSON.parse(answer.slice(answer.indexOf('\r\n\r\n') + 4)).bytes).toBe(8 * piece.length);
  }, 60_000);
});
