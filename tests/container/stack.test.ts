/**
 * deploy/compose.yaml as an admin without TDX runs it (RATLS_EVIDENCE_PROVIDER=simulated in the
 * env file), with open-webui and Ollama swapped for the project's demo apps (`ratls demo webui`,
 * `ratls demo ollama`) and every security setting of the proxy service kept. Everything is checked from the host, through the published port only.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Ollama } from 'ollama';
import { createAttestedFetch, defaultClientPolicy, type AttestedFetch } from '../../src/client/index.ts';
import { docker, DOCKER, ROOT, run, Stack } from './helpers/stack.ts';

const stack = new Stack({ overrides: ['tests/container/compose.stand-ins.yaml'], env: { RATLS_EVIDENCE_PROVIDER: 'simulated' } });
let work: string;
let rootPem: string;
let attested: AttestedFetch & { close(): Promise<void> };
let apiKey: string;
/** A model the demo Ollama backend holds from the start. */
let MODEL: string;

/** The simulated world's root, copied out of the ratls-state volume through the container. */
async function copyRoot(name: string): Promise<string> {
  const dest = join(work, name);
  await docker('cp', `${await stack.id('ratls')}:/var/lib/ratls/sim/root.pem`, dest);
  return readFile(dest, 'utf8');
}

/** `ratls verify` from the host's checkout, as a client would run it. */
const verify = (root: string) => run(process.execPath, [join(ROOT, 'bin/ratls'), 'verify', stack.url, '--root', root, '--nonce'], { timeoutMs: 60_000 });

/**
 * Streams a chat with the official client through the proxy's /ollama/, which open-webui serves
 * behind its API keys (as open-webui documents for programmatic clients); records when each part arrived.
 */
async function chat(onPart?: (n: number) => void): Promise<{ text: string; times: number[]; done: boolean }> {
  const ollama = new Ollama({ host: `${stack.url}/ollama`, fetch: attested, headers: { authorization: `Bearer ${apiKey}` } });
  const stream = await ollama.chat({ model: MODEL, messages: [{ role: 'user', content: 'through the container' }], stream: true });
  let text = '';
  let done = false;
  const times: number[] = [];
  for await (const part of stream) {
    text += part.message.content;
    done ||= part.done;
    times.push(performance.now());
    onPart?.(times.length);
  }
  return { text, times, done };
}

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'ratls-ct-host-'));
  await stack.up();
  await Promise.all(['ratls', 'open-webui', 'ollama'].map((s) => stack.waitHealthy(s)));
  rootPem = await copyRoot('root.pem');
  const policy = defaultClientPolicy();
  policy.trustedRoots = [rootPem];
  policy.collateral = { offline: true }; // only what the certificate staples
  attested = createAttestedFetch(policy);
  // the demo app's admin API key, from open-webui's data volume (where `ratls demo webui --state-dir` keeps it)
  await docker('cp', `${await stack.id('open-webui')}:/app/backend/data/api-key`, join(work, 'api-key'));
  apiKey = (await readFile(join(work, 'api-key'), 'utf8')).trim();
  const tags = await attested(`${stack.url}/ollama/api/tags`, { headers: { authorization: `Bearer ${apiKey}` } });
  MODEL = ((await tags.json()) as { models: Array<{ name: string }> }).models[0]!.name;
});

afterAll(async () => {
  await attested?.close();
  await stack.down();
  if (work) await rm(work, { recursive: true, force: true });
});

describe('deploy/compose.yaml with the simulated provider, from the host', () => {
  it("runs the proxy with the compose file's security settings", async () => {
    const hc = await stack.inspect<{ ReadonlyRootfs: boolean; CapDrop: string[]; SecurityOpt: string[]; Tmpfs: Record<string, string> }>(
      'ratls',
      '.HostConfig',
    );
    expect(hc.ReadonlyRootfs).toBe(true);
    expect(hc.CapDrop).toEqual(['ALL']);
    expect(hc.SecurityOpt).toContain('no-new-privileges:true');
    expect(Object.keys(hc.Tmpfs)).toEqual(['/tmp']);
    expect(await stack.inspect('ratls', '.Config.User')).toBe('0:0');
    const mounts = await stack.inspect<Array<{ Type: string; Name?: string; Destination: string }>>('ratls', '.Mounts');
    expect(mounts.find((m) => m.Destination === '/var/lib/ratls')).toMatchObject({ Type: 'volume', Name: `${stack.project}_ratls-state` });
  });

  it('reports healthy through the image HEALTHCHECK', async () => {
    const health = await stack.inspect<{ Status: string; Log: Array<{ ExitCode: number }> }>('ratls', '.State.Health');
    expect(health.Status).toBe('healthy');
    expect(health.Log.at(-1)!.ExitCode).toBe(0);
  });

  it('publishes only the proxy: the upstreams have no port on the host', async () => {
    const published: Record<string, string[]> = {};
    for (const service of ['ratls', 'open-webui', 'ollama']) {
      const ports = await stack.inspect<Record<string, Array<{ HostIp: string; HostPort: string }> | null>>(service, '.NetworkSettings.Ports');
      published[service] = Object.entries(ports ?? {}).flatMap(([p, b]) => (b ?? []).map((x) => `${x.HostIp}:${x.HostPort}->${p}`));
    }
    expect(published).toEqual({ ratls: [`127.0.0.1:${stack.port}->8443/tcp`], 'open-webui': [], ollama: [] });
    // and the engine forwards nothing else to these containers (one docker-proxy per published port)
    const ips = new Set<string>();
    for (const service of ['ratls', 'open-webui', 'ollama']) {
      const nets = await stack.inspect<Record<string, { IPAddress: string }>>(service, '.NetworkSettings.Networks');
      for (const n of Object.values(nets)) ips.add(n.IPAddress);
    }
    const proxies = (await run('pgrep', ['-a', 'docker-proxy'])).stdout.split('\n').filter((l) => [...ips].some((ip) => l.includes(`-container-ip ${ip} `)));
    expect(proxies).toHaveLength(1);
    expect(proxies[0]).toMatch(new RegExp(`-host-port ${stack.port} .*-container-port 8443\\b`));
  });

  it('passes `ratls verify` with the simulated root copied out of the state volume', async () => {
    const r = await verify(join(work, 'root.pem'));
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toMatch(/SIMULATED/);
  });

  it('streams a chat through open-webui to Ollama, verified by the client; Ollama itself is not reachable', async () => {
    const { text, times, done } = await chat();
    expect(text).toContain('You said: "through the container".');
    expect(done).toBe(true);
    expect(times.length).toBeGreaterThan(10);
    // tokens 100 ms apart: parts arrive as they are made, not all at once at the end
    expect(times.at(-1)! - times[0]!).toBeGreaterThan(times.length * 50);
    // /ollama/ is open-webui's, behind its login: without a key it answers open-webui's 401, where raw Ollama would list its models
    const anonymous = await attested(`${stack.url}/ollama/api/tags`);
    expect(anonymous.status).toBe(401);
    expect(((await anonymous.json()) as { detail?: string }).detail).toBeTruthy();
    const page = await attested(`${stack.url}/`);
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('open-webui-shaped');
  });

  it('drains an open stream on `docker stop`, then exits 0', async () => {
    const id = await stack.id('ratls');
    let stopping: Promise<string> | undefined;
    // a stream of about 2 s, well inside RATLS_DRAIN_TIMEOUT (30 s); the proxy is stopped after its third part
    const streamed = await chat((n) => {
      if (n === 3) stopping = docker('stop', id);
    });
    expect(stopping).toBeDefined();
    await stopping;
    expect(streamed.done).toBe(true);
    expect(streamed.text).toContain('through the attested TLS proxy.');
    expect(await stack.inspect('ratls', '.State.ExitCode')).toBe(0);
    expect(await stack.logs('ratls')).toMatch(/SIGTERM received, draining/);
  });

  it('keeps the simulated world across a restart: same root, and the old root still verifies', async () => {
    await docker('start', await stack.id('ratls'));
    await stack.waitHealthy('ratls');
    expect(await copyRoot('root-after-restart.pem')).toBe(rootPem);
    // a new key and certificate, still under the old root (the client trusts nothing else)
    const page = await attested(`${stack.url}/`);
    expect(page.status).toBe(200);
    await page.arrayBuffer();
  });

  it('keeps its file system read-only: nothing written outside the volume and /tmp', async () => {
    const id = await stack.id('ratls');
    expect(await stack.writesOutsideMounts('ratls')).toEqual([]);
    const write = await run(DOCKER, ['exec', id, 'touch', '/app/written']);
    expect(write.code).not.toBe(0);
    expect(write.stderr).toMatch(/Read-only file system/);
    // what the volume holds: the world only (the simulated provider staples its own collateral)
    expect((await docker('exec', id, 'ls', '-A', '/var/lib/ratls')).trim().split('\n')).toEqual(['sim']);
  });
});
