/**
 * A request-target never carries a fragment (RFC 9112 3.2: origin-form is absolute-path ["?" query]).
 * When one arrives anyway, the proxy's checks and the upstream can disagree about the path: the
 * admin block saw `/api/pull#x` while http-proxy-3 dropped `#x` and Ollama received `/api/pull`. So
 * such a request is refused with 400 before routing, for plain requests and WebSocket upgrades,
 * whatever `engine` says.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ServingIdentity } from '../../../src/proxy/identity-source.ts';
import { startRatlsServer, type RunningRatlsServer } from '../../../src/proxy/server.ts';
import { ENGINE_SETTINGS, selfSignedSource, testConfig } from '../../proxy/helpers.ts';
import { metricValue, rawExchange, recordingUpstream, startProxy, statusOf, upgradeRequest } from './raw-peers.ts';

describe.each(ENGINE_SETTINGS)('ratls serve (engine: %s) refuses request-targets with a fragment', (engine) => {
  let ollama: Awaited<ReturnType<typeof recordingUpstream>>;
  let webui: Awaited<ReturnType<typeof recordingUpstream>>;
  let srv: RunningRatlsServer<ServingIdentity>;
  const arrived = () => [...ollama.seen, ...webui.seen].map((a) => `${a.upgrade ? 'UPGRADE' : a.method} ${a.url}`);

  beforeAll(async () => {
    ollama = await recordingUpstream();
    webui = await recordingUpstream();
    srv = await startProxy({
      engine,
      routes: [
        { prefix: '/ollama/', target: ollama.url, stripPrefix: true, rewriteHost: true, blockOllamaAdmin: true, name: 'ollama' },
        { prefix: '/', target: webui.url, name: 'webui' },
      ],
    });
  });
  afterAll(async () => {
    await srv?.close({ drainTimeoutMs: 500 });
    await ollama?.close();
    await webui?.close();
  });

  const post = (target: string) =>
    `POST ${target} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 15\r\nConnection: close\r\n\r\n{"model":"bad"}`;

  it('answers 400 to admin routes with a fragment and forwards nothing', async () => {
    for (const admin of ['pull', 'push', 'create', 'delete', 'copy']) {
      const resp = await rawExchange(srv.port, post(`/ollama/api/${admin}#x`));
      expect(statusOf(resp), admin).toBe(400);
      expect(resp).toContain('fragment');
    }
    expect(arrived()).toEqual([]);
  });

  it('answers 400 on every route and on the control routes, before routing', async () => {
    expect(statusOf(await rawExchange(srv.port, post('/api/chat/completions#'))), 'empty fragment').toBe(400);
    expect(statusOf(await rawExchange(srv.port, post('/ollama/api/chat?x=1#y')))).toBe(400);
    expect(statusOf(await rawExchange(srv.port, 'GET /.well-known/ratls/certificate#x HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n'))).toBe(400);
    expect(statusOf(await rawExchange(srv.port, 'GET /healthz#x HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n'))).toBe(400);
    expect(arrived()).toEqual([]);
  });

  it('answers 400 to WebSocket upgrades with a fragment (no 101) and forwards nothing', async () => {
    for (const target of ['/ollama/api/pull#x', '/ws/socket.io/?EIO=4&transport=websocket#x', '/#']) {
      const resp = await rawExchange(srv.port, upgradeRequest(target));
      expect(statusOf(resp), target).toBe(400);
    }
    expect(arrived()).toEqual([]);
  });

  it('counts the refusals as client errors, not upstream errors', async () => {
    expect(await metricValue(srv, 'ratls_rejected_requests_total', { reason: 'bad_request_target' })).toBeGreaterThanOrEqual(12);
    expect(await metricValue(srv, 'ratls_upstream_errors_total')).toBe(0);
  });

  it('still forwards ordinary targets, including a "#" that is percent-encoded', async () => {
    expect(statusOf(await rawExchange(srv.port, post('/api/chat/completions')))).toBe(200);
    expect(statusOf(await rawExchange(srv.port, post('/api/files/a%23b')))).toBe(200);
    expect(arrived()).toEqual(['POST /api/chat/completions', 'POST /api/files/a%23b']);
  });
});

describe('the opt-in Ollama listener refuses request-targets with a fragment (admin routes blocked there by default)', () => {
  const TOKEN = 'q7Vf3kR9xM2pL8wZ4nB6tY1cH5jD0sGa';
  let ollama: Awaited<ReturnType<typeof recordingUpstream>>;
  let srv: RunningRatlsServer<ServingIdentity>;
  let port: number;

  beforeAll(async () => {
    ollama = await recordingUpstream();
    srv = await startRatlsServer(testConfig({ upstreams: { ollama: ollama.url }, ollamaListener: { listen: '127.0.0.1:0' } }), {
      identitySource: selfSignedSource(),
      ollamaToken: TOKEN,
    });
    port = srv.ollama!.port;
  });
  afterAll(async () => {
    await srv?.close({ drainTimeoutMs: 500 });
    await ollama?.close();
  });

  it('answers 400 with a valid token, for requests and upgrades, and forwards nothing', async () => {
    const auth = `Host: localhost\r\nAuthorization: Bearer ${TOKEN}\r\n`;
    const post = `POST /api/pull#x HTTP/1.1\r\n${auth}Content-Type: application/json\r\nContent-Length: 15\r\nConnection: close\r\n\r\n{"model":"bad"}`;
    expect(statusOf(await rawExchange(port, post))).toBe(400);
    expect(statusOf(await rawExchange(port, upgradeRequest('/api/pull#x', auth)))).toBe(400);
    expect(ollama.seen).toEqual([]);
    // baseline: the same admin route without the fragment is blocked, an ordinary one forwarded
    expect(statusOf(await rawExchange(port, post.replace('/api/pull#x', '/api/pull')))).toBe(403);
    expect(statusOf(await rawExchange(port, post.replace('/api/pull#x', '/api/chat')))).toBe(200);
    expect(ollama.seen.map((a) => a.url)).toEqual(['/api/chat']);
  });
});
