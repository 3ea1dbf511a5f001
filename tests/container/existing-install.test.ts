/**
 * docs/deploy.md, "In front of an existing open-webui + Ollama", as an admin follows it: an install
 * made with open-webui-shaped compose files (tests/container/existing-install: open-webui published
 * like open-webui's 3000 -> 8080, Ollama like its docker-compose.api.yaml's 11434, named volumes)
 * holds state, then deploy/existing-install.override.yaml (and the opt-in Ollama listener file) is
 * applied in the same compose project. Compose v1 cannot remove published ports from an override,
 * so with v1 the test does what the docs tell v1 users (delete open-webui's `ports:` and leave
 * docker-compose.api.yaml out); with v2 it passes deploy/existing-install.unpublish.yaml instead.
 * Everything is checked from the host.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import OpenAI from 'openai';
import { Ollama } from 'ollama';
import { parseDocument } from 'yaml';
import { createAttestedFetch, defaultClientPolicy, type AttestedFetch } from '../../src/client/index.ts';
import { docker, DOCKER, freePort, imageUnderTest, ok, ROOT, run } from './helpers/stack.ts';
import { Install } from './helpers/install.ts';

let work: string;
let install: Install;
/** docker-compose's version decides what the admin does about open-webui's published ports (see above). */
const COMPOSE_VERSION = execFileSync('docker-compose', ['version', '--short'], { encoding: 'utf8' }).trim();
const composeV2 = /^v?2\./.test(COMPOSE_VERSION);
const ports = { webui: 0, ollama: 0, ratls: 0, ollamaListener: 0 };
const admin = { email: '', password: '', apiKey: '' };
let volumesBefore: Record<string, string>;
/** What answered on the upstreams' published ports before the override: open-webui's login, Ollama's model list. */
const before = { signin: 0, tags: 0 };
let ollamaToken: string;
let attested: AttestedFetch & { close(): Promise<void> };
let url: string;

/** Resolves with the error code of a TCP connection to 127.0.0.1:port, or "connected". */
function tryConnect(port: number): Promise<string> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      resolve('connected');
    });
    s.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
  });
}

/** Signs in on open-webui's route; returns the status and the session token. */
async function signin(fetchFn: typeof fetch, base: string): Promise<{ status: number; token?: string }> {
  const r = await fetchFn(`${base}/api/v1/auths/signin`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ email: admin.email, password: admin.password }),
  });
  const body = (await r.json()) as { token?: string };
  return { status: r.status, ...(body.token ? { token: body.token } : {}) };
}

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'ratls-ct-existing-'));
  install = new Install(work);
  ports.webui = await freePort();
  ports.ollama = await freePort();
  ports.ratls = await freePort();
  ports.ollamaListener = await freePort();

  // 1. The install as it runs today: open-webui on "3000", Ollama on "11434" (loopback here).
  await install.create(['docker-compose.yaml', 'docker-compose.api.yaml'], {
    OPEN_WEBUI_PORT: `127.0.0.1:${ports.webui}`,
    OLLAMA_WEBAPI_PORT: `127.0.0.1:${ports.ollama}`,
    CT_IMAGE: imageUnderTest(),
    CT_PROJECT: install.project,
  });
  install.files = ['docker-compose.yaml', 'docker-compose.api.yaml'];
  await install.composeOk('up', '-d');
  await Promise.all(['open-webui', 'ollama'].map((s) => install.waitHealthy(s)));

  // 2. State made before the proxy: the admin account (the stand-in keeps it in open-webui's volume,
  // as open-webui keeps its users in webui.db there), a file standing for the chats, a model file.
  admin.email = 'admin@example.com';
  admin.password = (await install.exec('open-webui', 'cat', '/app/backend/data/admin-password')).trim();
  admin.apiKey = (await install.exec('open-webui', 'cat', '/app/backend/data/api-key')).trim();
  before.signin = (await signin(fetch, `http://127.0.0.1:${ports.webui}`)).status;
  before.tags = (await fetch(`http://127.0.0.1:${ports.ollama}/api/tags`)).status;
  await install.exec('open-webui', 'sh', '-c', 'echo "chat history" > /app/backend/data/webui.db');
  await install.exec('ollama', 'sh', '-c', 'mkdir -p /root/.ollama/models/manifests && echo "model manifest" > /root/.ollama/models/manifests/ratls-demo');
  volumesBefore = await install.volumes();

  // 3. What the docs tell the admin to do. The token file of the Ollama listener: root's, mode 600.
  ollamaToken = randomBytes(32).toString('hex');
  const tokenFile = join(work, 'ollama-token');
  await writeFile(tokenFile, `${ollamaToken}\n`, { mode: 0o600 });
  const tsm = join(work, 'no-tsm');
  await mkdir(tsm);
  await install.setEnv({
    PUBLIC_HOST: 'localhost',
    RATLS_PORT: `127.0.0.1:${ports.ratls}`,
    RATLS_IMAGE: imageUnderTest(),
    WEBUI_SECRET_KEY: randomBytes(16).toString('hex'),
    RATLS_EVIDENCE_PROVIDER: 'simulated',
    RATLS_OLLAMA_PORT: `127.0.0.1:${ports.ollamaListener}`,
    RATLS_OLLAMA_TOKEN_FILE: tokenFile,
    CT_TSM: tsm,
  });
  const deploy = (f: string): string => join(ROOT, 'deploy', f);
  if (composeV2) {
    install.files = [
      'docker-compose.yaml',
      'docker-compose.api.yaml',
      deploy('existing-install.override.yaml'),
      deploy('existing-install.ollama-listener.yaml'),
      join(ROOT, 'tests/container/existing-install/no-tdx.yaml'),
      deploy('existing-install.unpublish.yaml'),
    ];
  } else {
    // compose v1: delete open-webui's published port from docker-compose.yaml, leave the api file out
    const path = join(install.dir, 'docker-compose.yaml');
    const doc = parseDocument(await readFile(path, 'utf8'));
    doc.deleteIn(['services', 'open-webui', 'ports']);
    await writeFile(path, doc.toString());
    install.files = [
      'docker-compose.yaml',
      deploy('existing-install.override.yaml'),
      deploy('existing-install.ollama-listener.yaml'),
      join(ROOT, 'tests/container/existing-install/no-tdx.yaml'),
    ];
  }
  await install.composeOk('up', '-d');
  await Promise.all(['ratls', 'open-webui', 'ollama'].map((s) => install.waitHealthy(s)));

  await docker('cp', `${await install.id('ratls')}:/var/lib/ratls/sim/root.pem`, join(work, 'root.pem'));
  const policy = defaultClientPolicy();
  policy.trustedRoots = [await readFile(join(work, 'root.pem'), 'utf8')];
  policy.collateral = { offline: true };
  attested = createAttestedFetch(policy);
  url = `https://127.0.0.1:${ports.ratls}`;
});

afterAll(async () => {
  await attested?.close();
  await install?.down();
  if (work) await rm(work, { recursive: true, force: true });
});

describe(`an existing open-webui + Ollama install, then deploy/existing-install.override.yaml (compose ${COMPOSE_VERSION}: ${
  composeV2 ? 'existing-install.unpublish.yaml' : "open-webui's ports deleted from docker-compose.yaml"
})`, () => {
  it('publishes only the proxy: the old open-webui and Ollama ports no longer answer from the host', async () => {
    const published: Record<string, string[]> = {};
    for (const service of ['ratls', 'open-webui', 'ollama']) {
      const p = await install.inspect<Record<string, Array<{ HostIp: string; HostPort: string }> | null>>(service, '.NetworkSettings.Ports');
      published[service] = Object.entries(p ?? {})
        .flatMap(([port, b]) => (b ?? []).map((x) => `${x.HostIp}:${x.HostPort}->${port}`))
        .sort();
    }
    expect(published).toEqual({
      ratls: [`127.0.0.1:${ports.ollamaListener}->11443/tcp`, `127.0.0.1:${ports.ratls}->8443/tcp`].sort(),
      'open-webui': [],
      ollama: [],
    });
    // before: open-webui's login and Ollama's API answered anyone on the host's ports; now nothing listens there
    expect(before).toEqual({ signin: 200, tags: 200 });
    expect(await tryConnect(ports.webui)).toBe('ECONNREFUSED');
    expect(await tryConnect(ports.ollama)).toBe('ECONNREFUSED');
    // what `ss -ltnp` shows as docker-proxy listeners: the proxy's two ports, nothing for the upstreams
    const listening = (await ok('ss', ['-Hltnp'])).split('\n').filter((l) => l.includes('docker-proxy'));
    const forThis = (port: number): boolean => listening.some((l) => l.includes(`127.0.0.1:${port} `));
    expect([ports.webui, ports.ollama].map(forThis)).toEqual([false, false]);
    expect([ports.ratls, ports.ollamaListener].map(forThis)).toEqual([true, true]);
  });

  it('keeps the install project: same network, same open-webui and Ollama volumes with their data, one new volume', async () => {
    const after = await install.volumes();
    const p = install.project;
    expect(Object.keys(after).sort()).toEqual([`${p}_ollama`, `${p}_open-webui`, `${p}_ratls-state`]);
    expect(after[`${p}_ollama`]).toBe(volumesBefore[`${p}_ollama`]);
    expect(after[`${p}_open-webui`]).toBe(volumesBefore[`${p}_open-webui`]);
    expect(await install.exec('open-webui', 'cat', '/app/backend/data/webui.db')).toBe('chat history\n');
    expect(await install.exec('ollama', 'cat', '/root/.ollama/models/manifests/ratls-demo')).toBe('model manifest\n');
    const networks = await install.inspect<Record<string, unknown>>('ratls', '.NetworkSettings.Networks');
    expect(Object.keys(networks)).toEqual([`${p}_default`]);
  });

  it("runs the proxy with deploy/compose.yaml's security settings", async () => {
    const hc = await install.inspect<{ ReadonlyRootfs: boolean; CapDrop: string[]; SecurityOpt: string[] }>('ratls', '.HostConfig');
    expect(hc.ReadonlyRootfs).toBe(true);
    expect(hc.CapDrop).toEqual(['ALL']);
    expect(hc.SecurityOpt).toContain('no-new-privileges:true');
    expect(await install.inspect('ratls', '.Config.User')).toBe('0:0');
  });

  it('passes `ratls verify` with the simulated root copied out of the state volume', async () => {
    const r = await run(process.execPath, [join(ROOT, 'bin/ratls'), 'verify', url, '--root', join(work, 'root.pem'), '--nonce'], { timeoutMs: 60_000 });
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toMatch(/SIMULATED/);
  });

  it('tells open-webui its public URL and a stable secret key', async () => {
    const env = Object.fromEntries(
      (await install.inspect<string[]>('open-webui', '.Config.Env')).map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]),
    );
    // the documented https://PUBLIC_HOST:RATLS_PORT; RATLS_PORT holds a bind address here, to keep the test on loopback
    expect(env.WEBUI_URL).toBe(`https://localhost:127.0.0.1:${ports.ratls}`);
    expect(env.CORS_ALLOW_ORIGIN).toBe(env.WEBUI_URL);
    expect(env.WEBUI_SECRET_KEY).toMatch(/^[0-9a-f]{32}$/);
    expect(env.OLLAMA_BASE_URL).toBe('http://ollama:11434');
  });

  it('logs the same admin in through the proxy, and streams a chat with the session', async () => {
    const s = await signin(attested, url);
    expect(s.status).toBe(200);
    const openai = new OpenAI({ baseURL: `${url}/api`, apiKey: s.token!, fetch: attested, maxRetries: 0 });
    const stream = await openai.chat.completions.create({
      model: 'ratls-demo:latest',
      stream: true,
      messages: [{ role: 'user', content: 'after the override' }],
    });
    let text = '';
    let parts = 0;
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta?.content ?? '';
      parts++;
    }
    expect(parts).toBeGreaterThan(10);
    expect(text).toContain('You said: "after the override".');
    // the API key made before the proxy still works, and a wrong password is still refused
    const tags = await attested(`${url}/ollama/api/tags`, { headers: { authorization: `Bearer ${admin.apiKey}` } });
    expect(tags.status).toBe(200);
    await tags.arrayBuffer();
    const wrong = await attested(`${url}/api/v1/auths/signin`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ email: admin.email, password: `${admin.password}x` }),
    });
    expect(wrong.status).toBe(400);
    await wrong.arrayBuffer();
  });

  it('serves the opt-in Ollama listener with the token from the secret file, and refuses requests without it', async () => {
    const listener = `https://127.0.0.1:${ports.ollamaListener}`;
    const ollama = new Ollama({ host: listener, fetch: attested, headers: { authorization: `Bearer ${ollamaToken}` } });
    const reply = await ollama.chat({ model: 'ratls-demo:latest', messages: [{ role: 'user', content: 'direct' }], stream: false });
    expect(reply.message.content).toContain('You said: "direct".');
    const anonymous = await attested(`${listener}/api/tags`);
    expect(anonymous.status).toBe(401);
    await anonymous.arrayBuffer();
    // the token is in no container's configuration, only in the mounted file
    expect(JSON.stringify(await install.inspect('ratls', '.Config'))).not.toContain(ollamaToken);
    const mounted = await run(DOCKER, ['exec', await install.id('ratls'), 'cat', '/run/secrets/ratls-ollama-token']);
    expect(mounted.stdout.trim()).toBe(ollamaToken);
  });
});
