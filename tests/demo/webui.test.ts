/**
 * The open-webui-shaped demo app: open-webui's routes, login, API keys, 401 bodies and JSON shapes
 * (recorded from open-webui 0.12.4's answers), in front of the Ollama-shaped backend.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHash, randomBytes } from 'node:crypto';
import { io as ioClient } from 'socket.io-client';
import { startDemoOllama, type RunningDemoOllama } from '../../src/demo/ollama.ts';
import { startDemoWebui, DEMO_WEBUI_VERSION, type RunningDemoWebui } from '../../src/demo/webui.ts';
import { defaultDemoModels, demoModel } from '../../src/demo/models.ts';

const ADMIN = { name: 'Demo Admin', email: 'admin@example.com', password: 'correct horse', apiKey: `sk-${'ab'.repeat(16)}` };
const NOT_AUTHENTICATED = { detail: 'Not authenticated' };
const PROHIBITED = { detail: 'You do not have permission to access this resource. Please contact your administrator for assistance.' };

let backend: RunningDemoOllama;
let app: RunningDemoWebui;

beforeAll(async () => {
  backend = await startDemoOllama({ tokenDelayMs: 5 });
  app = await startDemoWebui({ ollamaUrl: backend.url, admin: ADMIN, maxUploadBytes: 2 * 1024 * 1024 });
});
afterAll(async () => {
  await app?.close();
  await backend?.close();
});

type Json = Record<string, unknown>;
async function call(path: string, init: { method?: string; token?: string; body?: unknown; headers?: Record<string, string> } = {}) {
  const headers: Record<string, string> = { ...(init.headers ?? {}) };
  if (init.token) headers.authorization = `Bearer ${init.token}`;
  if (init.body !== undefined) headers['content-type'] ??= 'application/json';
  const r = await fetch(`${app.url}${path}`, {
    method: init.method ?? (init.body === undefined ? 'GET' : 'POST'),
    headers,
    ...(init.body !== undefined ? { body: typeof init.body === 'string' ? init.body : JSON.stringify(init.body) } : {}),
  });
  const text = await r.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: r.status, headers: r.headers, text, json: json as Json };
}

async function signin(email = ADMIN.email, password = ADMIN.password): Promise<string> {
  const r = await call('/api/v1/auths/signin', { body: { email, password } });
  expect(r.status).toBe(200);
  return r.json.token as string;
}

describe('demo open-webui: public routes and login', () => {
  it('answers the routes open-webui serves without a login', async () => {
    expect((await call('/health')).json).toEqual({ status: true });
    expect((await call('/api/version')).json).toEqual({ version: DEMO_WEBUI_VERSION, deployment_id: '' });
    expect((await call('/api/config')).json).toMatchObject({ status: true, features: { auth: true, enable_login_form: true } });
    expect((await call('/ollama/')).json).toEqual({ status: true });
    const page = await call('/');
    expect(page.headers.get('content-type')).toMatch(/text\/html/);
    expect(page.text).toContain('id="login-form"');
    expect((await call('/api/nothing')).json).toEqual({ detail: 'Not Found' });
  });

  it("signin returns a JWT and sets the token cookie; wrong passwords get open-webui's 400", async () => {
    const r = await call('/api/v1/auths/signin', { body: { email: 'ADMIN@example.com', password: ADMIN.password } });
    expect(r.status).toBe(200);
    expect(r.json).toMatchObject({ name: ADMIN.name, email: ADMIN.email, role: 'admin', token_type: 'Bearer' });
    const token = r.json.token as string;
    expect(token.split('.')).toHaveLength(3);
    expect(JSON.parse(Buffer.from(token.split('.')[0]!, 'base64url').toString())).toEqual({ alg: 'HS256', typ: 'JWT' });
    expect(r.headers.get('set-cookie')).toMatch(/^token=[^;]+; HttpOnly; Max-Age=\d+; Path=\/; SameSite=Lax$/);
    const bad = await call('/api/v1/auths/signin', { body: { email: ADMIN.email, password: 'nope' } });
    expect(bad.status).toBe(400);
    expect(bad.json).toEqual({ detail: 'The email or password provided is incorrect. Please check for typos and try logging in again.' });
    // the cookie alone authenticates, as it does for open-webui's own pages
    const me = await call('/api/v1/auths/', { headers: { cookie: `token=${token}` } });
    expect(me.json).toMatchObject({ email: ADMIN.email, role: 'admin', token });
  });

  it("answers missing, forged and unknown credentials with open-webui's 401 bodies", async () => {
    const token = await signin();
    expect(await call('/api/models')).toMatchObject({ status: 401, json: NOT_AUTHENTICATED });
    expect(await call('/api/models', { token: 'garbage' })).toMatchObject({ status: 401, json: { detail: '401 Unauthorized' } });
    const [h, p, sig] = token.split('.') as [string, string, string];
    const forged = `${h}.${Buffer.from(JSON.stringify({ id: 'x', exp: 9e9, jti: 'j' })).toString('base64url')}.${sig}`;
    expect(await call('/api/models', { token: forged })).toMatchObject({ status: 401, json: { detail: '401 Unauthorized' } });
    expect(await call('/api/models', { token: `${h}.${p}.${sig.slice(0, -2)}AA` })).toMatchObject({ status: 401 });
    expect(await call('/api/models', { token: `sk-${'00'.repeat(16)}` })).toMatchObject({
      status: 401,
      json: { detail: 'Your session has expired or the token is invalid. Please sign in again.' },
    });
    expect(await call('/api/models', { headers: { authorization: `Basic ${token}` } })).toMatchObject({ status: 401, json: NOT_AUTHENTICATED });
  });

  it('signup makes users (role "user"), who cannot reach the admin routes; signout revokes the token', async () => {
    const r = await call('/api/v1/auths/signup', { body: { name: 'Bo', email: 'bo@example.com', password: 'pw-bo' } });
    expect(r.status).toBe(200);
    expect(r.json).toMatchObject({ role: 'user', email: 'bo@example.com' });
    const bo = r.json.token as string;
    expect((await call('/api/models', { token: bo })).status).toBe(200);
    expect(await call('/ollama/config', { token: bo })).toMatchObject({ status: 401, json: PROHIBITED });
    expect(await call('/ollama/api/pull', { token: bo, body: { name: 'x:1' } })).toMatchObject({ status: 401, json: PROHIBITED });
    expect(await call('/ollama/api/tags/0', { token: bo })).toMatchObject({ status: 401, json: PROHIBITED });
    const taken = await call('/api/v1/auths/signup', { body: { name: 'Bo2', email: 'bo@example.com', password: 'x' } });
    expect(taken.status).toBe(400);
    expect(String(taken.json.detail)).toMatch(/already registered/);
    expect((await call('/api/v1/auths/signup', { body: { name: 'x', email: 'not-an-email', password: 'x' } })).status).toBe(400);
    expect((await call('/api/v1/auths/signout', { token: bo, body: {} })).json).toEqual({ status: true });
    expect(await call('/api/models', { token: bo })).toMatchObject({ status: 401, json: { detail: '401 Unauthorized' } });
  });

  it('manages sk- API keys as open-webui does (one per user; a new one replaces the old)', async () => {
    const token = await signin();
    expect((await call('/api/v1/auths/api_key', { token })).json).toEqual({ api_key: ADMIN.apiKey });
    expect((await call('/api/models', { token: ADMIN.apiKey })).status).toBe(200);
    const made = await call('/api/v1/auths/api_key', { token, method: 'POST' });
    const key = made.json.api_key as string;
    expect(key).toMatch(/^sk-[0-9a-f]{32}$/);
    expect((await call('/api/models', { token: ADMIN.apiKey })).status).toBe(401);
    expect((await call('/api/models', { token: key })).status).toBe(200);
    expect((await call('/api/v1/auths/api_key', { token, method: 'DELETE' })).json).toBe(true);
    expect((await call('/api/models', { token: key })).status).toBe(401);
    expect((await call('/api/v1/auths/api_key', { token })).status).toBe(404);
    // put the original back for the other tests
    const admin = await call('/api/v1/auths/', { token });
    expect(admin.status).toBe(200);
  });
});

describe('demo open-webui: models and chat', () => {
  let key: string;
  beforeAll(async () => {
    const token = await signin();
    key = (await call('/api/v1/auths/api_key', { token, method: 'POST' })).json.api_key as string;
  });

  it("lists the backend models in open-webui's /api/models shape", async () => {
    const r = await call('/api/models', { token: key });
    const data = r.json.data as Json[];
    expect(data.map((m) => m.id)).toEqual(defaultDemoModels().map((m) => m.name));
    expect(data[0]).toMatchObject({
      object: 'model',
      owned_by: 'ollama',
      connection_type: 'local',
      ollama: { digest: defaultDemoModels()[0]!.digest, urls: [0] },
    });
    expect((await call('/api/v1/models', { token: key })).json).toEqual(r.json);
  });

  it('streams /api/chat/completions as OpenAI SSE (role in the first chunk, usage in the last, [DONE])', async () => {
    const r = await call('/api/chat/completions', {
      token: key,
      body: { model: 'ratls-demo:latest', stream: true, messages: [{ role: 'user', content: 'hi sse' }] },
    });
    expect(r.headers.get('content-type')).toBe('text/event-stream');
    const events = r.text.split('\n\n').filter(Boolean);
    expect(events.at(-1)).toBe('data: [DONE]');
    const chunks = events.slice(0, -1).map((e) => JSON.parse(e.replace(/^data: /, '')) as Json & { choices: Array<Json & { delta: Json }> });
    expect(chunks[0]).toMatchObject({ object: 'chat.completion.chunk', model: 'ratls-demo:latest', choices: [{ index: 0, delta: { role: 'assistant' } }] });
    expect(chunks.at(-1)).toMatchObject({ choices: [{ finish_reason: 'stop', delta: {} }], usage: { completion_tokens: chunks.length - 1 } });
    expect(chunks.map((c) => c.choices[0]!.delta.content ?? '').join('')).toMatch(/^You said: "hi sse"/);
    const plain = await call('/api/chat/completions', {
      token: key,
      body: { model: 'ratls-demo:mini', messages: [{ role: 'user', content: [{ type: 'text', text: 'parts' }] }] },
    });
    expect(plain.json).toMatchObject({ object: 'chat.completion', choices: [{ finish_reason: 'stop', message: { role: 'assistant' } }] });
    expect(String((plain.json.choices as Array<{ message: { content: string } }>)[0]!.message.content)).toContain('"parts"');
    expect(await call('/api/chat/completions', { token: key, body: { model: 'nope', messages: [] } })).toMatchObject({
      status: 400,
      json: { detail: 'Model not found' },
    });
  });

  it('forwards /ollama/api/chat and /api/generate as NDJSON after the login check; refuses what open-webui refuses', async () => {
    const chat = await call('/ollama/api/chat', { token: key, body: { model: 'ratls-demo:mini', messages: [{ role: 'user', content: 'via ollama' }] } });
    expect(chat.headers.get('content-type')).toBe('application/x-ndjson');
    const lines = chat.text
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { message: { content: string }; done: boolean });
    expect(lines.at(-1)!.done).toBe(true);
    expect(lines.map((l) => l.message.content).join('')).toContain('via ollama');
    const gen = await call('/ollama/api/generate', { token: key, body: { model: 'ratls-demo:latest', prompt: 'gen', stream: false } });
    expect(gen.json).toMatchObject({ model: 'ratls-demo:latest', done: true });
    expect(await call('/ollama/api/chat', { body: { model: 'ratls-demo:mini', messages: [] } })).toMatchObject({ status: 401, json: NOT_AUTHENTICATED });
    expect(await call('/ollama/api/chat', { token: key, body: { model: 'ratls-demo', messages: [] } })).toMatchObject({
      status: 400,
      json: { detail: "Model 'ratls-demo' was not found" },
    });
    // like FastAPI, a body not declared as JSON is a 422 (curl -d without -H content-type)
    const form = await call('/ollama/api/chat', { token: key, body: '{}', headers: { 'content-type': 'application/x-www-form-urlencoded' } });
    expect(form.status).toBe(422);
    expect(JSON.stringify(form.json)).toMatch(/valid dictionary/);
    expect((await call('/ollama/api/tags', { token: key })).json.models).toHaveLength(2);
    expect((await call('/ollama/api/version', { token: key })).json).toEqual({ version: '0.0.0-ratls-demo' });
    const show = await call('/ollama/api/show', { token: key, body: { name: 'ratls-demo:mini' } });
    expect(show.json).toMatchObject({ details: { quantization_level: 'Q8_0' } });
  });

  it('a client that leaves a /ollama/api/chat stream stops the backend generating', async () => {
    const slow = await startDemoOllama({ tokenDelayMs: 200 });
    const front = await startDemoWebui({ ollamaUrl: slow.url, admin: ADMIN });
    try {
      const ac = new AbortController();
      const r = await fetch(`${front.url}/ollama/api/chat`, {
        method: 'POST',
        headers: { authorization: `Bearer ${ADMIN.apiKey}`, 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'ratls-demo:latest', messages: [{ role: 'user', content: 'long' }] }),
        signal: ac.signal,
      });
      await r.body!.getReader().read();
      expect(slow.activeStreams()).toBe(1);
      ac.abort();
      const t0 = Date.now();
      while (slow.activeStreams() > 0 && Date.now() - t0 < 3000) await new Promise((res) => setTimeout(res, 20));
      expect(slow.activeStreams()).toBe(0);
    } finally {
      await front.close();
      await slow.close();
    }
  });
});

describe('demo open-webui: admin routes the real frontend calls', () => {
  it('reads and changes the Ollama connection (/ollama/config, /config/update, /verify), and pulls and deletes models', async () => {
    const token = await signin();
    expect((await call('/ollama/config', { token })).json).toEqual({ ENABLE_OLLAMA_API: true, OLLAMA_BASE_URLS: [backend.url], OLLAMA_API_CONFIGS: {} });
    const other = await startDemoOllama({ models: [demoModel('other:7b')] });
    try {
      expect((await call('/ollama/verify', { token, body: { url: other.url, key: '' } })).json).toEqual({ version: '0.0.0-ratls-demo' });
      const up = await call('/ollama/config/update', { token, body: { ENABLE_OLLAMA_API: true, OLLAMA_BASE_URLS: [`${other.url}/`], OLLAMA_API_CONFIGS: {} } });
      expect(up.json).toMatchObject({ OLLAMA_BASE_URLS: [other.url] });
      expect(app.ollamaUrls()).toEqual([other.url]);
      expect(((await call('/api/models', { token })).json.data as Json[]).map((m) => m.id)).toEqual(['other:7b']);
      await call('/ollama/config/update', { token, body: { ENABLE_OLLAMA_API: false, OLLAMA_BASE_URLS: [backend.url], OLLAMA_API_CONFIGS: {} } });
      expect(await call('/ollama/api/chat', { token, body: { model: 'ratls-demo:latest', messages: [] } })).toMatchObject({ status: 503 });
      expect(((await call('/api/models', { token })).json.data as Json[]).length).toBe(0);
    } finally {
      await call('/ollama/config/update', { token, body: { ENABLE_OLLAMA_API: true, OLLAMA_BASE_URLS: [backend.url], OLLAMA_API_CONFIGS: {} } });
      await other.close();
    }
    const pull = await call('/ollama/api/pull', { token, body: { name: 'qwen2.5:0.5b' } });
    expect(pull.headers.get('content-type')).toBe('application/x-ndjson');
    expect(pull.text.trim().split('\n').at(-1)).toBe('{"status":"success"}');
    expect(((await call('/api/models', { token })).json.data as Json[]).map((m) => m.id)).toContain('qwen2.5:0.5b');
    expect((await call('/ollama/api/delete', { token, method: 'DELETE', body: { name: 'qwen2.5:0.5b' } })).json).toBe(true);
    expect(backend.models().map((m) => m.name)).not.toContain('qwen2.5:0.5b');
    expect((await call('/ollama/api/ps', { token })).json).toEqual({ models: [] });
  });

  it('answers /openai/ as an open-webui without OpenAI connections', async () => {
    const token = await signin();
    expect((await call('/openai/config', { token })).json).toMatchObject({ ENABLE_OPENAI_API: false });
    expect(await call('/openai/models', { token })).toMatchObject({ status: 503, json: { detail: 'OpenAI API is disabled' } });
  });

  it('says "WebUI could not connect to Ollama" when the backend is down, and lists no models', async () => {
    const gone = await startDemoOllama();
    const url = gone.url;
    await gone.close();
    const front = await startDemoWebui({ ollamaUrl: url, admin: ADMIN });
    try {
      const v = await fetch(`${front.url}/ollama/api/version`, { headers: { authorization: `Bearer ${ADMIN.apiKey}` } });
      expect(v.status).toBe(500);
      expect(((await v.json()) as { detail: string }).detail).toMatch(/^WebUI could not connect to Ollama/);
      const m = await fetch(`${front.url}/api/models`, { headers: { authorization: `Bearer ${ADMIN.apiKey}` } });
      expect(await m.json()).toEqual({ data: [] });
    } finally {
      await front.close();
    }
  });
});

describe('demo open-webui: files and socket.io', () => {
  it('uploads a file (multipart), reports its SHA-256 and serves it back to its owner only', async () => {
    const token = await signin();
    const bytes = randomBytes(300_000);
    const form = new FormData();
    form.append('file', new Blob([bytes], { type: 'application/octet-stream' }), 'blob.bin');
    const r = await fetch(`${app.url}/api/v1/files/`, { method: 'POST', headers: { authorization: `Bearer ${token}` }, body: form });
    const rec = (await r.json()) as Json & { meta: Json };
    expect(r.status).toBe(200);
    expect(rec).toMatchObject({ filename: 'blob.bin', status: true, meta: { name: 'blob.bin', size: bytes.length, content_type: 'application/octet-stream' } });
    expect(rec.meta.file_hash).toBe(createHash('sha256').update(bytes).digest('hex'));
    const back = await fetch(`${app.url}/api/v1/files/${String(rec.id)}/content`, { headers: { authorization: `Bearer ${token}` } });
    expect(Buffer.from(await back.arrayBuffer()).equals(bytes)).toBe(true);
    const other = (await call('/api/v1/auths/signup', { body: { name: 'Cy', email: 'cy@example.com', password: 'pw' } })).json.token as string;
    expect(await call(`/api/v1/files/${String(rec.id)}`, { token: other })).toMatchObject({ status: 404 });
    expect((await call(`/api/v1/files/${String(rec.id)}`, { token })).json).toMatchObject({ id: rec.id });
    const big = new FormData();
    big.append('file', new Blob([randomBytes(3 * 1024 * 1024)]), 'big.bin');
    const tooBig = await fetch(`${app.url}/api/v1/files/`, { method: 'POST', headers: { authorization: `Bearer ${token}` }, body: big });
    expect(tooBig.status).toBe(413);
    expect((await fetch(`${app.url}/api/v1/files/`, { method: 'POST', body: form })).status).toBe(401);
  });

  it('socket.io on /ws/socket.io: user-join acks {id, name} for a valid token, nothing for a bad one; completions emit events', async () => {
    const token = await signin();
    const me = (await call('/api/v1/auths/', { token })).json;
    const s = ioClient(app.url, { path: '/ws/socket.io', auth: { token }, transports: ['websocket'] });
    try {
      await new Promise<void>((res, rej) => {
        s.once('connect', () => res());
        s.once('connect_error', rej);
      });
      expect(await s.timeout(5000).emitWithAck('user-join', { auth: { token } })).toEqual({ id: me.id, name: ADMIN.name });
      expect(await s.timeout(5000).emitWithAck('user-join', { auth: { token: 'garbage' } })).toBeUndefined();
      const seen: Array<{ chat_id: string; data: { type: string; data: { content: string; done: boolean } } }> = [];
      s.on('events', (e: (typeof seen)[number]) => seen.push(e));
      const r = await call('/api/chat/completions', {
        token,
        body: { model: 'ratls-demo:latest', stream: true, chat_id: 'c1', id: 'm1', messages: [{ role: 'user', content: 'over the socket' }] },
      });
      expect(r.status).toBe(200);
      const t0 = Date.now();
      while (!seen.some((e) => e.data.data.done) && Date.now() - t0 < 5000) await new Promise((res) => setTimeout(res, 20));
      expect(seen.length).toBeGreaterThan(5);
      expect(seen.every((e) => e.chat_id === 'c1' && e.data.type === 'chat:completion')).toBe(true);
      expect(seen.at(-1)!.data.data).toMatchObject({ done: true });
      expect(seen.at(-1)!.data.data.content).toContain('over the socket');
    } finally {
      s.close();
    }
  });
});
