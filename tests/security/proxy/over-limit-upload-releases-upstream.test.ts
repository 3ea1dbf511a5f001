/**
 * A chunked upload that passes `limits.maxBody` gets 413, and the upstream request it started is
 * torn down at once, also when the client sent `Expect: 100-continue`. With the http-proxy-3 HTTP
 * path such an upload got its 413 but left the upstream connection and the half-sent request open
 * for good (10 uploads, 10 hanging upstream requests), out of reach of every timeout.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import http from 'node:http';
import tls from 'node:tls';
import type { AddressInfo } from 'node:net';
import type { ServingIdentity } from '../../../src/proxy/identity-source.ts';
import type { RunningRatlsServer } from '../../../src/proxy/server.ts';
import { ENGINE_SETTINGS } from '../../proxy/helpers.ts';
import { startProxy, statusOf } from './raw-peers.ts';

/** An upstream that reads request bodies slowly and records which requests are still open. */
async function slowReadingUpstream() {
  const open = new Set<http.IncomingMessage>();
  let started = 0;
  const server = http.createServer((req) => {
    started++;
    open.add(req);
    req.once('close', () => open.delete(req));
    // never answers: only the proxy can end these requests
    req.on('data', () => {});
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    open,
    started: () => started,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

/** Sends a chunked upload with Expect: 100-continue; after the 100 (or after 300 ms), streams `total` bytes. Resolves with what the proxy answered. */
function expectContinueUpload(port: number, total: number): Promise<string> {
  return new Promise((resolve) => {
    let out = '';
    let sent = false;
    const s = tls.connect({ host: '127.0.0.1', port, servername: 'localhost', rejectUnauthorized: false }, () => {
      s.write('POST /upload HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\nExpect: 100-continue\r\n\r\n');
      setTimeout(send, 300);
    });
    const chunk = Buffer.concat([Buffer.from('1000\r\n'), Buffer.alloc(4096, 0x61), Buffer.from('\r\n')]);
    function send(): void {
      if (sent) return;
      sent = true;
      let n = 0;
      const pump = (): void => {
        while (n < total && !s.destroyed) {
          n += 4096;
          if (!s.write(chunk)) {
            s.once('drain', pump);
            return;
          }
        }
        if (!s.destroyed) s.write('0\r\n\r\n');
      };
      pump();
    }
    s.on('data', (d: Buffer) => {
      out += d.toString('latin1');
      if (out.startsWith('HTTP/1.1 100')) send();
    });
    s.on('error', () => {});
    s.on('close', () => resolve(out));
    setTimeout(() => s.destroy(), 5000);
  });
}

async function until(cond: () => boolean, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (!cond() && Date.now() < end) await new Promise((r) => setTimeout(r, 25));
  return cond();
}

describe.each(ENGINE_SETTINGS)('ratls serve (engine: %s): over-limit chunked uploads with Expect: 100-continue', (engine) => {
  let up: Awaited<ReturnType<typeof slowReadingUpstream>>;
  let srv: RunningRatlsServer<ServingIdentity>;

  beforeAll(async () => {
    up = await slowReadingUpstream();
    srv = await startProxy({ engine, limits: { maxBody: '64KiB' }, routes: [{ prefix: '/', target: up.url, name: 'webui' }] });
  });
  afterAll(async () => {
    await srv?.close({ drainTimeoutMs: 200 });
    await up?.close();
  });

  it('answers 413 and leaves no upstream request open', async () => {
    const answers = await Promise.all(Array.from({ length: 10 }, () => expectContinueUpload(srv.port, 1024 * 1024)));
    for (const a of answers) {
      // the interim 100 may come first; the final answer is the 413
      expect(/HTTP\/1\.1 (?!100)(\d{3})/.exec(a)?.[1] ?? String(statusOf(a)), a.slice(0, 200)).toBe('413');
    }
    expect(up.started()).toBeGreaterThan(0);
    expect(await until(() => up.open.size === 0, 3000), `${up.open.size} upstream requests still open`).toBe(true);
  });
});
