/**
 * When the upstream's connection breaks while a response is streaming, the client's response is
 * cut at once (its connection closed: the status line is gone, so that is the only honest signal),
 * and the failure is logged and counted. With the http-proxy-3 HTTP path the client was left
 * waiting for 100 s and more, and nothing was logged.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import pino from 'pino';
import { request } from 'undici';
import type { ServingIdentity } from '../../../src/proxy/identity-source.ts';
import { startRatlsServer, type RunningRatlsServer } from '../../../src/proxy/server.ts';
import { ENGINE_SETTINGS, selfSignedSource, testConfig, trustingAgent } from '../../proxy/helpers.ts';
import { metricValue } from './raw-peers.ts';

/** How the upstream breaks off, by request path. */
const BREAKS: Record<string, (socket: import('node:net').Socket) => void> = {
  '/fin': (s) => s.end(), // closes cleanly, but in the middle of a chunked body
  '/rst': (s) => s.resetAndDestroy(),
  '/short': (s) => s.destroy(), // closes before the declared Content-Length
};

/** An upstream that starts an NDJSON stream, sends two lines, then breaks its connection off. */
async function resettingUpstream() {
  const server = http.createServer((req, res) => {
    res.writeHead(200, { 'content-type': 'application/x-ndjson', ...(req.url === '/short' ? { 'content-length': '1000' } : {}) });
    res.write('{"token":"a"}\n');
    setTimeout(() => {
      res.write('{"token":"b"}\n');
      setTimeout(() => BREAKS[req.url!]!(req.socket), 100);
    }, 100);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

describe.each(ENGINE_SETTINGS)('ratls serve (engine: %s): upstream reset in the middle of a stream', (engine) => {
  let up: Awaited<ReturnType<typeof resettingUpstream>>;
  let srv: RunningRatlsServer<ServingIdentity>;
  let logged = '';

  beforeAll(async () => {
    up = await resettingUpstream();
    const sink = new Writable({
      write(chunk, _enc, cb) {
        logged += String(chunk);
        cb();
      },
    });
    srv = await startRatlsServer(testConfig({ engine, routes: [{ prefix: '/', target: up.url, name: 'webui' }] }), {
      identitySource: selfSignedSource(),
      logger: pino({ level: 'info' }, sink),
    });
  });
  afterAll(async () => {
    await srv?.close({ drainTimeoutMs: 200 });
    await up?.close();
  });

  it.each(Object.keys(BREAKS))('cuts the client response within seconds and logs and counts the upstream failure (%s)', async (path) => {
    const agent = trustingAgent(srv.identity().certPem);
    const errorsBefore = await metricValue(srv, 'ratls_upstream_errors_total', { route: 'webui' });
    logged = '';
    try {
      const started = Date.now();
      const r = await request(`${srv.url}${path.slice(1)}`, { dispatcher: agent, method: 'POST', body: '{}', headersTimeout: 5000, bodyTimeout: 10_000 });
      expect(r.statusCode).toBe(200);
      let got = '';
      const read = (async () => {
        for await (const c of r.body) got += String(c);
      })();
      await expect(read).rejects.toThrow();
      expect(Date.now() - started).toBeLessThan(5000);
      expect(got).toContain('{"token":"a"}');
      expect(await metricValue(srv, 'ratls_upstream_errors_total', { route: 'webui' })).toBe(errorsBefore + 1);
      expect(logged).toContain('upstream request failed');
    } finally {
      await agent.close();
    }
  });
});
