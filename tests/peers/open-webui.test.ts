/**
 * The real open-webui (PyPI) behind `ratls serve` with one route, / -> open-webui, reached with
 * the attested clients of src/client: the official `openai` and `ollama` npm packages and
 * socket.io-client. Everything open-webui's own frontend calls on its origin must work through the
 * proxy, including its /ollama/ and /openai/ routes (its authenticated proxies to the backends),
 * and open-webui must see the client's address and the https scheme.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import OpenAI from 'openai';
import { Ollama } from 'ollama';
import { io as ioClient } from 'socket.io-client';
import { createAttestedAgent, createAttestedFetch } from '../../src/client/index.ts';
import { peers, peersPolicy } from './context.ts';

const P = peers();
const policy = peersPolicy(P.rootPem);
const model = P.models[0]!.name;
const messages = [{ role: 'user' as const, content: 'Is this attested?' }];
let fetchA: ReturnType<typeof createAttestedFetch>;
let token: string;
let apiKey: string;

const json = async (res: Response): Promise<any> => {
  const text = await res.text();
  try {
    return JSON.parse(text);
  } catch {
    throw new Error(`expected JSON, got HTTP ${res.status}: ${text.slice(0, 300)}`);
  }
};
const auth = (t: string) => ({ authorization: `Bearer ${t}` });

/** The tiny model's answer straight from Ollama (no proxy, no open-webui): the reference. */
async function directAnswer(): Promise<string> {
  const res = await fetch(`${P.ollamaUrl}/api/chat`, { method: 'POST', body: JSON.stringify({ model, messages, stream: false }) });
  return ((await res.json()) as { message: { content: string } }).message.content;
}

beforeAll(async () => {
  fetchA = createAttestedFetch(policy);
  const res = await fetchA(`${P.serveUrl}/api/v1/auths/signin`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ email: P.admin.email, password: P.admin.password }),
  });
  expect(res.status).toBe(200);
  token = (await json(res)).token;
  const key = await fetchA(`${P.serveUrl}/api/v1/auths/api_key`, { method: 'POST', headers: auth(token) });
  expect(key.status).toBe(200);
  apiKey = (await json(key)).api_key;
  expect(apiKey).toMatch(/^sk-/);
});
afterAll(async () => {
  await fetchA?.close();
});

describe('sign-up and login through ratls serve', () => {
  it('made the first user admin, and signs them in with a JWT', async () => {
    expect(P.admin.role).toBe('admin');
    const me = await json(await fetchA(`${P.serveUrl}/api/v1/auths/`, { headers: auth(token) }));
    expect(me).toMatchObject({ email: P.admin.email, role: 'admin' });
  });

  it('refuses a wrong password and further sign-ups; a user the admin adds is not admin', async () => {
    const post = (path: string, body: unknown, headers: Record<string, string> = {}) =>
      fetchA(`${P.serveUrl}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });
    expect((await post('/api/v1/auths/signin', { email: P.admin.email, password: 'wrong' })).status).toBe(400);
    // open-webui turns sign-up off once its first (admin) account exists
    const email = `user-${randomBytes(4).toString('hex')}@peers.test`;
    expect((await post('/api/v1/auths/signup', { name: 'Late', email, password: 'late-password-1' })).status).toBe(403);
    const added = await post('/api/v1/auths/add', { name: 'User', email, password: 'user-password-1', role: 'user' }, auth(token));
    expect(added.status).toBe(200);
    const signin = await post('/api/v1/auths/signin', { email, password: 'user-password-1' });
    expect(signin.status).toBe(200);
    const user = await json(signin);
    expect(user.role).toBe('user');
    // open-webui's own authorisation holds behind the proxy: the admin's Ollama settings are not theirs
    const cfg = await fetchA(`${P.serveUrl}/ollama/config`, { headers: auth(user.token) });
    expect(cfg.status).toBe(401);
  });
});

describe('chat through open-webui, official clients over attested connections', () => {
  it('streams the tiny model through /api/chat/completions with the openai client and an API key', async () => {
    const openai = new OpenAI({ baseURL: `${P.serveUrl}/api`, apiKey, fetch: fetchA });
    const stream = await openai.chat.completions.create({ model, messages, stream: true });
    const parts: string[] = [];
    for await (const chunk of stream) {
      const c = chunk.choices[0]?.delta?.content;
      if (c) parts.push(c);
    }
    expect(parts.length).toBeGreaterThan(1);
    expect(parts.join('')).toBe(await directAnswer());
  });

  it('streams NDJSON through open-webui /ollama/api/chat with the ollama client and the JWT', async () => {
    const ollama = new Ollama({ host: `${P.serveUrl}/ollama`, fetch: fetchA, headers: auth(token) });
    const parts: string[] = [];
    let last: { done: boolean; eval_count?: number } | undefined;
    for await (const part of await ollama.chat({ model, messages, stream: true })) {
      parts.push(part.message.content);
      last = part;
    }
    expect(last?.done).toBe(true);
    expect(parts.filter(Boolean).length).toBeGreaterThan(1);
    expect(parts.join('')).toBe(await directAnswer());
  });

  it("lists Ollama's models with their real digests through open-webui's /ollama/api/tags", async () => {
    const ollama = new Ollama({ host: `${P.serveUrl}/ollama`, fetch: fetchA, headers: auth(apiKey) });
    const listed = (await ollama.list()).models;
    for (const m of P.models) expect(listed.find((x) => x.name === m.name)?.digest).toBe(m.digest);
    expect(new Set(P.models.map((m) => m.digest)).size).toBe(P.models.length);
    expect((await ollama.version()).version).toBe(P.ollamaVersion);
  });

  it("answers /ollama/ with open-webui's login, not raw Ollama", async () => {
    const res = await fetchA(`${P.serveUrl}/ollama/api/tags`);
    expect(res.status).toBe(401);
    // raw Ollama would have answered its model list to anyone
    expect(JSON.stringify(await json(res))).not.toContain(P.models[0]!.digest);
  });
});

describe("open-webui's admin connection settings reach its own /ollama/ and /openai/ routes", () => {
  it('reads, verifies and saves the Ollama connection (what Admin > Settings > Connections calls)', async () => {
    const cfg = await json(await fetchA(`${P.serveUrl}/ollama/config`, { headers: auth(token) }));
    expect(cfg.ENABLE_OLLAMA_API).toBe(true);
    expect(cfg.OLLAMA_BASE_URLS).toEqual([P.ollamaUrl]);
    const verified = await fetchA(`${P.serveUrl}/ollama/verify`, {
      method: 'POST',
      headers: { ...auth(token), 'content-type': 'application/json' },
      body: JSON.stringify({ url: P.ollamaUrl, key: '' }),
    });
    expect(verified.status).toBe(200);
    expect(await json(verified)).toEqual({ version: P.ollamaVersion });
    const saved = await fetchA(`${P.serveUrl}/ollama/config/update`, {
      method: 'POST',
      headers: { ...auth(token), 'content-type': 'application/json' },
      body: JSON.stringify({ ENABLE_OLLAMA_API: true, OLLAMA_BASE_URLS: cfg.OLLAMA_BASE_URLS, OLLAMA_API_CONFIGS: cfg.OLLAMA_API_CONFIGS ?? {} }),
    });
    expect(saved.status).toBe(200);
    expect((await json(saved)).OLLAMA_BASE_URLS).toEqual([P.ollamaUrl]);
    const perUrl = await json(await fetchA(`${P.serveUrl}/ollama/api/version/0`, { headers: auth(token) }));
    expect(perUrl.version).toBe(P.ollamaVersion);
    const openai = await json(await fetchA(`${P.serveUrl}/openai/config`, { headers: auth(token) }));
    expect(openai.ENABLE_OPENAI_API).toBe(false);
  });
});

describe('socket.io and uploads', () => {
  /** socket.io-client over an attested WebSocket (open-webui's default transport is WebSocket only). */
  const connectSocket = async (origin: string) => {
    const agent = createAttestedAgent(policy);
    // In Node, engine.io-client hands `agent` to ws; the typings only know the browser's options.
    const socket = ioClient(P.serveUrl, {
      path: '/ws/socket.io',
      transports: ['websocket'],
      auth: { token },
      agent: agent as unknown as string,
      extraHeaders: { origin },
      reconnection: false,
      forceNew: true,
    });
    const outcome = await new Promise<'connected' | Error>((resolve) => {
      socket.once('connect', () => resolve('connected'));
      socket.once('connect_error', (e) => resolve(e));
    });
    return {
      socket,
      outcome,
      close: () => {
        socket.disconnect();
        agent.destroy();
      },
    };
  };

  it('connects socket.io over a WebSocket on /ws/socket.io and joins as the user', async () => {
    const c = await connectSocket(P.serveUrl);
    try {
      expect(c.outcome).toBe('connected');
      expect(c.socket.io.engine.transport.name).toBe('websocket');
      const joined = await c.socket.timeout(10_000).emitWithAck('user-join', { auth: { token } });
      expect(joined).toMatchObject({ name: P.admin.name });
    } finally {
      c.close();
    }
  });

  it("accepts socket.io only from CORS_ALLOW_ORIGIN's origin, which ratls connect presents for its own page", async () => {
    // CORS_ALLOW_ORIGIN lists the proxy's URL only; the connect address is not in it
    const direct = await connectSocket(P.connectUrl);
    direct.close();
    expect(direct.outcome).toBeInstanceOf(Error);
    const foreign = await connectSocket('https://elsewhere.example');
    foreign.close();
    expect(foreign.outcome).toBeInstanceOf(Error);
    // a page served by ratls connect sends the connect origin; connect rewrites it to the upstream's
    const socket = ioClient(P.connectUrl, {
      path: '/ws/socket.io',
      transports: ['websocket'],
      auth: { token },
      extraHeaders: { origin: P.connectUrl },
      reconnection: false,
      forceNew: true,
    });
    const outcome = await new Promise<'connected' | Error>((resolve) => {
      socket.once('connect', () => resolve('connected'));
      socket.once('connect_error', (e) => resolve(e));
    });
    socket.disconnect();
    expect(outcome).toBe('connected');
  });

  it('uploads a file to /api/v1/files/ and reads the same bytes back', async () => {
    const text = randomBytes(192 * 1024).toString('base64');
    const form = new FormData();
    form.append('file', new Blob([text], { type: 'text/plain' }), 'peers-upload.txt');
    const up = await fetchA(`${P.serveUrl}/api/v1/files/`, { method: 'POST', headers: auth(token), body: form });
    expect(up.status).toBe(200);
    const file = await json(up);
    expect(file.filename).toBe('peers-upload.txt');
    const back = await fetchA(`${P.serveUrl}/api/v1/files/${file.id}/content`, { headers: auth(token) });
    expect(back.status).toBe(200);
    expect(await back.text()).toBe(text);
  });
});

describe('what open-webui sees of the client', () => {
  it('records the real client address and the https URL (X-Forwarded-For/Proto trusted from the proxy)', async () => {
    // Connect from 127.0.0.2 so the client's address differs from the proxy's (127.0.0.1).
    const f2 = createAttestedFetch(policy, { agentOptions: { localAddress: '127.0.0.2' } });
    const ua = `ratls-peers-${randomBytes(6).toString('hex')}`;
    try {
      const form = new FormData();
      form.append('file', new Blob(['forwarded?'], { type: 'text/plain' }), 'forwarded.txt');
      const up = await f2(`${P.serveUrl}/api/v1/files/`, { method: 'POST', headers: { ...auth(token), 'user-agent': ua }, body: form });
      expect(up.status).toBe(200);
    } finally {
      await f2.close();
    }
    // open-webui's audit log (AUDIT_LOG_LEVEL=METADATA) writes the request as it understood it
    let entry: any;
    for (let i = 0; i < 50 && !entry; i++) {
      const lines = readFileSync(join(P.openWebuiDataDir, 'audit.log'), 'utf8').split('\n');
      entry = lines.filter((l) => l.includes(ua)).map((l) => JSON.parse(l))[0];
      if (!entry) await new Promise((r) => setTimeout(r, 200));
    }
    expect(entry, 'audit log entry for the request').toBeTruthy();
    expect(entry.source_ip).toBe('127.0.0.2');
    expect(entry.request_uri).toBe(`${P.serveUrl}/api/v1/files/`);
  });

  it('links to WEBUI_URL, the proxy address', async () => {
    const res = await fetchA(`${P.serveUrl}/opensearch.xml`);
    expect(res.status).toBe(200);
    expect(await res.text()).toContain(`${P.serveUrl}/?q=`);
  });
});
