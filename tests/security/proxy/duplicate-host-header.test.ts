/**
 * Two Host headers are a client error (RFC 9112 3.2: 400). They used to reach the upstream client,
 * which refused the request: the client got a 502 and `ratls_upstream_errors_total` went up, so any
 * client could page the operator with false "upstream down" alerts. Now: 400 before routing,
 * counted in `ratls_rejected_requests_total{reason="duplicate_host"}`, for every engine setting and
 * for WebSocket upgrades.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ServingIdentity } from '../../../src/proxy/identity-source.ts';
import type { RunningRatlsServer } from '../../../src/proxy/server.ts';
import { ENGINE_SETTINGS } from '../../proxy/helpers.ts';
import { metricValue, rawExchange, recordingUpstream, startProxy, statusOf, upgradeRequest } from './raw-peers.ts';

describe.each(ENGINE_SETTINGS)('ratls serve (engine: %s) with two Host headers', (engine) => {
  let webui: Awaited<ReturnType<typeof recordingUpstream>>;
  let srv: RunningRatlsServer<ServingIdentity>;

  beforeAll(async () => {
    webui = await recordingUpstream();
    srv = await startProxy({ engine, routes: [{ prefix: '/', target: webui.url, name: 'webui' }] });
  });
  afterAll(async () => {
    await srv?.close({ drainTimeoutMs: 500 });
    await webui?.close();
  });

  it('answers 400, forwards nothing and counts a client error, not an upstream error', async () => {
    for (const hosts of ['Host: localhost\r\nHost: evil.example\r\n', 'Host: localhost\r\nhost: localhost\r\n', 'HOST: a\r\nHost: b\r\n']) {
      const resp = await rawExchange(srv.port, `GET /api/models HTTP/1.1\r\n${hosts}Connection: close\r\n\r\n`);
      expect(statusOf(resp), hosts).toBe(400);
      expect(resp).toContain('more than one Host header');
    }
    const post = await rawExchange(srv.port, 'POST /api/chat HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\nHost: b\r\nConnection: close\r\n\r\n{}');
    expect(statusOf(post)).toBe(400);
    expect(webui.seen).toEqual([]);
    expect(await metricValue(srv, 'ratls_upstream_errors_total')).toBe(0);
    expect(await metricValue(srv, 'ratls_rejected_requests_total', { reason: 'duplicate_host' })).toBe(4);
    expect(await metricValue(srv, 'ratls_http_requests_total', { status: '502' })).toBe(0);
  });

  it('answers 400 to a WebSocket upgrade with two Host headers', async () => {
    const resp = await rawExchange(srv.port, upgradeRequest('/ws/socket.io/?EIO=4&transport=websocket', 'Host: localhost\r\nHost: other\r\n'));
    expect(statusOf(resp)).toBe(400);
    expect(webui.seen).toEqual([]);
    expect(await metricValue(srv, 'ratls_upstream_errors_total')).toBe(0);
  });

  it('forwards a request with one Host header (baseline)', async () => {
    expect(statusOf(await rawExchange(srv.port, 'GET /api/models HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n'))).toBe(200);
    expect(webui.seen.map((a) => a.headers.host)).toEqual(['localhost']);
  });
});
