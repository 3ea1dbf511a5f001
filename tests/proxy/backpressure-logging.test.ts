import { describe, expect, it } from 'vitest';
import * as http from 'node:http';
import * as tls from 'node:tls';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { request } from 'undici';
import type { ServingIdentity } from '../../src/proxy/identity-source.ts';
import { startRatlsServer } from '../../src/proxy/server.ts';
import { createProxyLogger } from '../../src/proxy/logger.ts';
import { upstreamRequestHeaders } from '../../src/proxy/undici-forward.ts';
import { ENGINES, selfSignedSource, testConfig, trustingAgent } from './helpers.ts';

const MiB = 1024 * 1024;

/** Upstream that writes 1 MiB chunks as fast as the proxy accepts them, up to `total`, and counts. */
async function firehose(total: number) {
  const state = { written: 0, done: false };
  const server = http.createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(total) });
    const chunk = Buffer.alloc(MiB, 0x61);
    const pump = (): void => {
      while (state.written < total) {
        state.written += chunk.length;
        if (!res.write(chunk)) {
          res.once('drain', pump);
          return;
        }
      }
      state.done = true;
      res.end();
    };
    pump();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    state,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

describe.each(ENGINES)('ratls serve (%s): backpressure and headers', (engine) => {
  it('does not buffer a response the client is not reading, and delivers all of it once it reads', async () => {
    const total = 256 * MiB;
    const up = await firehose(total);
    const srv = await startRatlsServer<ServingIdentity>(testConfig({ engine, routes: [{ prefix: '/', target: up.url }] }), {
      identitySource: selfSignedSource(),
    });
    // A raw TLS socket that is paused: nothing is read until we say so.
    const sock = tls.connect({ host: '127.0.0.1', port: srv.port, ca: srv.identity().certPem, servername: 'localhost' });
    try {
      await new Promise<void>((r) => sock.once('secureConnect', () => r()));
      sock.write('GET /big HTTP/1.1\r\nHost: localhost\r\n\r\n');
      sock.pause();
      await new Promise((r) => setTimeout(r, 800));
      // Socket buffers on the way (client, proxy, upstream kernel buffers) hold some MiB, never all.
      expect(up.state.written).toBeLessThan(64 * MiB);
      expect(up.state.done).toBe(false);
      let received = 0;
      sock.on('data', (c: Buffer) => {
        received += c.length;
      });
      sock.resume();
      const t0 = Date.now();
      while (received < total && Date.now() - t0 < 20_000) await new Promise((r) => setTimeout(r, 20));
      expect(received).toBeGreaterThan(total); // body plus the status line and headers
      expect(up.state.done).toBe(true);
    } finally {
      sock.destroy();
      await srv.close({ drainTimeoutMs: 100 });
      await up.close();
    }
  }, 30_000);

  it('drops hop-by-hop response headers and keeps end-to-end ones, repeated ones included', async () => {
    const upstream = http.createServer((_req, res) => {
      res.writeHead(
        200,
        [
          ['Content-Type', 'text/plain'],
          ['Keep-Alive', 'timeout=5'],
          ['Connection', 'keep-alive'],
          ['Set-Cookie', 'a=1'],
          ['Set-Cookie', 'b=2'],
          ['X-Custom', 'yes'],
        ].flat(),
      );
      res.end('hello');
    });
    await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
    const target = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`;
    const srv = await startRatlsServer<ServingIdentity>(testConfig({ engine, routes: [{ prefix: '/', target }] }), { identitySource: selfSignedSource() });
    const agent = trustingAgent(srv.identity().certPem);
    try {
      const r = await request(`${srv.url}x`, { dispatcher: agent });
      expect(await r.body.text()).toBe('hello');
      // The upstream's Keep-Alive is dropped; Node may add its own (this server's keepAliveTimeout).
      expect(r.headers['keep-alive']).not.toBe('timeout=5');
      expect(r.headers['x-custom']).toBe('yes');
      expect(r.headers['set-cookie']).toEqual(['a=1', 'b=2']);
    } finally {
      await agent.close();
      await srv.close({ drainTimeoutMs: 100 });
      await new Promise<void>((r) => upstream.close(() => r()));
    }
  });
});

describe('upstreamRequestHeaders', () => {
  it('drops hop-by-hop, Connection-named and client forwarding headers, and sets its own', () => {
    const out = upstreamRequestHeaders(
      [
        'Host',
        'example.org',
        'Connection',
        'keep-alive, X-Secret',
        'X-Secret',
        's',
        'X-Forwarded-For',
        '6.6.6.6',
        'Forwarded',
        'for=x',
        'TE',
        'trailers',
        'Accept',
        '*/*',
        'Cookie',
        'a=1',
        'Cookie',
        'b=2',
      ],
      { rewriteHost: false, remoteAddress: '10.0.0.1', proto: 'https', localPort: 8443 },
    );
    expect(out).toEqual([
      'Host',
      'example.org',
      'Accept',
      '*/*',
      'Cookie',
      'a=1',
      'Cookie',
      'b=2',
      'x-forwarded-for',
      '10.0.0.1',
      'x-forwarded-proto',
      'https',
      'x-forwarded-host',
      'example.org',
      'x-forwarded-port',
      '8443',
    ]);
  });

  it('leaves Host out when the target host is to be sent, but still reports it as X-Forwarded-Host', () => {
    const out = upstreamRequestHeaders(['host', 'proxy.example:8443'], { rewriteHost: true, remoteAddress: '::1', proto: 'https', localPort: undefined });
    expect(out).toEqual(['x-forwarded-for', '::1', 'x-forwarded-proto', 'https', 'x-forwarded-host', 'proxy.example:8443']);
  });
});

describe('createProxyLogger', () => {
  it('batches lines, writes pending lines within the flush interval, and on flush()', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ratls-log-'));
    const file = join(dir, 'log.jsonl');
    try {
      const { logger, flush } = createProxyLogger({ level: 'info', dest: file, flushIntervalMs: 100 });
      logger.info({ n: 1 }, 'request');
      // Below the batch size: not written yet, but within the interval.
      expect(readFileSync(file, 'utf8')).toBe('');
      await new Promise((r) => setTimeout(r, 400));
      expect(readFileSync(file, 'utf8')).toMatch(/"n":1.*"msg":"request"/);
      logger.info({ n: 2 }, 'request');
      flush();
      const lines = readFileSync(file, 'utf8')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as { n: number; service: string });
      expect(lines.map((l) => l.n)).toEqual([1, 2]);
      expect(lines[0]!.service).toBe('ratls-serve');
      // A full batch goes out at once.
      for (let i = 0; i < 100; i++) logger.info({ i, pad: 'x'.repeat(50) }, 'request');
      expect(readFileSync(file, 'utf8').split('\n').length).toBeGreaterThan(50);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
