/**
 * `ratls serve` with its default routing in front of the open-webui-shaped demo app and the
 * Ollama-shaped backend: every path (/, /api/, /ollama/, /openai/, /ws/socket.io) reaches the app,
 * which authenticates it; Ollama itself is not reachable from the public listener. Login, token
 * streaming on both chat routes, socket.io, uploads and the admin pages' /ollama/ config routes
 * all work through the proxy.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHash, randomBytes } from 'node:crypto';
import { request } from 'undici';
import { io as ioClient } from 'socket.io-client';
import type { ServingIdentity } from '../../src/proxy/identity-source.ts';
import { startRatlsServer, type RunningRatlsServer } from '../../src/proxy/server.ts';
import { startDemoOllama, type RunningDemoOllama } from '../../src/demo/ollama.ts';
import { startDemoWebui, DEMO_WEBUI_VERSION, type RunningDemoWebui } from '../../src/demo/webui.ts';
import { selfSignedSource, testConfig, trustingAgent } from './helpers.ts';

const ADMIN = { name: 'Demo Admin', email: 'admin@example.com', password: 'pw-routing', apiKey: `sk-${'cd'.repeat(16)}` };
const MiB = 1024 * 1024;

let backend: RunningDemoOllama;
let app: RunningDemoWebui;
let srv: RunningRatlsServer<ServingIdentity>;
let agent: ReturnType<typeof trustingAgent>;

beforeAll(async () => {
  backend = await startDemoOllama({ tokenDelayMs: 30 });
  app = await startDemoWebui({ ollamaUrl: backend.url, admin: ADMIN });
  // only the two origins are configured: the routes are the defaults
  const config = testConfig({ upstreams: { openWebui: app.url, ollama: backend.url } });
  expect(config.routes.map((r) => `${r.prefix} ${r.target}`)).toEqual([`/ ${app.url}`]);
  srv = await startRatlsServer(config, { identitySource: selfSignedSource() });
  agent = trustingAgent(srv.identity().certPem);
});
afterAll(async () => {
  await srv?.close({ drainTimeoutMs: 500 });
  await agent?.close();
  await app?.close();
  await backend?.close();
});

async function call(path: string, init: { method?: 'GET' | 'POST' | 'DELETE'; token?: string; body?: unknown } = {}) {
  const headers: Record<string, string> = {};
  if (init.token) headers.authorization = `Bearer ${init.token}`;
  if (init.body !== undefined) headers['content-type'] = 'application/json';
  const r = await request(`${srv.url}${path.replace(/^\//, '')}`, {
    method: init.method ?? (init.body === undefined ? 'GET' : 'POST'),
    headers,
    ...(init.body !== undefined ? { body: JSON.stringify(init.body) } : {}),
    dispatcher: agent,
  });
  const text = await r.body.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: r.statusCode, headers: r.headers, text, json: json as Record<string, unknown> };
}

async function login(): Promise<string> {
  const r = await call('/api/v1/auths/signin', { body: { email: ADMIN.email, password: ADMIN.password } });
  expect(r.status).toBe(200);
  return r.json.token as string;
}

describe('ratls serve default routing: open-webui for every path, Ollama not published', () => {
  it('/, /api/ and /ollama/ reach the open-webui app, not Ollama', async () => {
    const page = await call('/');
    expect(page.text).toContain('id="login-form"');
    expect((await call('/api/version')).json).toEqual({ version: DEMO_WEBUI_VERSION, deployment_id: '' });
    expect((await call('/ollama/')).json).toEqual({ status: true }); // open-webui's answer; Ollama says "Ollama is running"
    expect((await call('/ollama')).text).not.toContain('Ollama is running');
  });

  it("raw Ollama is unreachable: Ollama's own paths are unknown to the app, and /ollama/ wants a login", async () => {
    const before = backend.requestsSeen().length;
    expect(await call('/api/tags')).toMatchObject({ status: 404, json: { detail: 'Not Found' } });
    expect(await call('/api/pull', { body: { name: 'evil:1' } })).toMatchObject({ status: 404 });
    expect(await call('/api/delete', { method: 'DELETE', body: { name: 'ratls-demo:latest' } })).toMatchObject({ status: 404 });
    for (const path of ['/ollama/api/tags', '/ollama/api/version', '/ollama/api/ps', '/ollama/v1/models']) {
      expect(await call(path)).toMatchObject({ status: 401, json: { detail: 'Not authenticated' } });
    }
    expect(await call('/ollama/api/chat', { body: { model: 'ratls-demo:latest', messages: [{ role: 'user', content: 'x' }] } })).toMatchObject({ status: 401 });
    expect(await call('/ollama/api/pull', { body: { name: 'evil:1' } })).toMatchObject({ status: 401 });
    expect(await call('/ollama/api/delete', { method: 'DELETE', body: { name: 'ratls-demo:latest' } })).toMatchObject({ status: 401 });
    expect(await call('/ollama/%61pi/tags')).toMatchObject({ status: 404 });
    // not one of these requests reached the Ollama backend
    expect(backend.requestsSeen().slice(before)).toEqual([]);
    expect(backend.models().map((m) => m.name)).toEqual(['ratls-demo:latest', 'ratls-demo:mini']);
  });

  it('login, then /api/chat/completions streams SSE token by token through the proxy', async () => {
    const token = await login();
    const r = await request(`${srv.url}api/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'ratls-demo:latest', stream: true, messages: [{ role: 'user', content: 'through the proxy' }] }),
      dispatcher: agent,
    });
    expect(r.headers['content-type']).toBe('text/event-stream');
    const arrivals: number[] = [];
    let text = '';
    for await (const chunk of r.body) {
      arrivals.push(performance.now());
      text += (chunk as Buffer).toString();
    }
    expect(text.trim().endsWith('data: [DONE]')).toBe(true);
    expect(text).toContain('through ');
    // 30 ms between tokens upstream: a buffering proxy would deliver everything at once
    expect(arrivals.length).toBeGreaterThan(10);
    expect(arrivals.at(-1)! - arrivals[0]!).toBeGreaterThan(200);
  });

  it('/ollama/api/chat streams NDJSON with a login token and with an API key', async () => {
    for (const token of [await login(), ADMIN.apiKey]) {
      const r = await request(`${srv.url}ollama/api/chat`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'ratls-demo:mini', messages: [{ role: 'user', content: 'ndjson' }] }),
        dispatcher: agent,
      });
      expect(r.headers['content-type']).toBe('application/x-ndjson');
      const arrivals: number[] = [];
      let text = '';
      for await (const chunk of r.body) {
        arrivals.push(performance.now());
        text += (chunk as Buffer).toString();
      }
      const lines = text
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as { done: boolean; message: { content: string } });
      expect(lines.at(-1)!.done).toBe(true);
      expect(lines.map((l) => l.message.content).join('')).toContain('"ndjson"');
      expect(arrivals.length).toBeGreaterThan(10);
    }
  });

  it("the admin pages' /ollama/ and /openai/ config routes reach the app (and need an admin)", async () => {
    const token = await login();
    const cfg = await call('/ollama/config', { token });
    expect(cfg.json).toEqual({ ENABLE_OLLAMA_API: true, OLLAMA_BASE_URLS: [backend.url], OLLAMA_API_CONFIGS: {} });
    const upd = await call('/ollama/config/update', { token, body: { ENABLE_OLLAMA_API: true, OLLAMA_BASE_URLS: [backend.url], OLLAMA_API_CONFIGS: {} } });
    expect(upd.json).toMatchObject({ OLLAMA_BASE_URLS: [backend.url] });
    expect((await call('/ollama/verify', { token, body: { url: backend.url } })).json).toEqual({ version: '0.0.0-ratls-demo' });
    expect((await call('/ollama/api/tags', { token })).json.models).toHaveLength(2);
    expect((await call('/openai/config', { token })).json).toMatchObject({ ENABLE_OPENAI_API: false });
    expect(await call('/ollama/config')).toMatchObject({ status: 401 });
    const user = (await call('/api/v1/auths/signup', { body: { name: 'U', email: 'u@example.com', password: 'pw' } })).json.token as string;
    expect(await call('/ollama/config', { token: user })).toMatchObject({ status: 401, json: { detail: expect.stringMatching(/permission/) as unknown } });
    // pull through the app as admin: Ollama's progress stream passes through
    const pull = await call('/ollama/api/pull', { token, body: { name: 'tiny:1b' } });
    expect(pull.text.trim().split('\n').at(-1)).toBe('{"status":"success"}');
    expect((await call('/ollama/api/delete', { token, method: 'DELETE', body: { name: 'tiny:1b' } })).json).toBe(true);
  });

  for (const transport of ['websocket', 'polling'] as const) {
    it(`socket.io on /ws/socket.io through the proxy (${transport}): user-join with the login token, completion events`, async () => {
      const token = await login();
      const socket = ioClient(srv.url, {
        path: '/ws/socket.io',
        transports: [transport],
        auth: { token },
        ca: srv.identity().certPem,
        reconnection: false,
        forceNew: true,
      });
      try {
        await new Promise<void>((resolve, reject) => {
          socket.once('connect', resolve);
          socket.once('connect_error', reject);
        });
        expect(socket.io.engine.transport.name).toBe(transport);
        expect(await socket.timeout(5000).emitWithAck('user-join', { auth: { token } })).toMatchObject({ name: ADMIN.name });
        let done = false;
        socket.on('events', (e: { data: { data: { done: boolean } } }) => (done ||= e.data.data.done));
        const r = await call('/api/chat/completions', {
          token,
          body: { model: 'ratls-demo:mini', stream: true, chat_id: 'c', id: 'm', messages: [{ role: 'user', content: 'socket' }] },
        });
        expect(r.status).toBe(200);
        const t0 = Date.now();
        while (!done && Date.now() - t0 < 5000) await new Promise((res) => setTimeout(res, 20));
        expect(done).toBe(true);
      } finally {
        socket.disconnect();
      }
    });
  }

  it('uploads a 20 MiB file to /api/v1/files/ through the proxy, intact', async () => {
    const bytes = randomBytes(20 * MiB);
    const { fetch, FormData } = await import('undici');
    const form = new FormData();
    form.append('file', new Blob([bytes]), 'big.bin');
    const r = await fetch(`${srv.url}api/v1/files/`, { method: 'POST', headers: { authorization: `Bearer ${ADMIN.apiKey}` }, body: form, dispatcher: agent });
    const rec = (await r.json()) as { meta: { size: number; file_hash: string } };
    expect(r.status).toBe(200);
    expect(rec.meta.size).toBe(bytes.length);
    expect(rec.meta.file_hash).toBe(createHash('sha256').update(bytes).digest('hex'));
  });
});
