/**
 * End to end, as a user runs it: `npm start` (ratls serve --demo) holds two models; `ratls verify`
 * lists both with digests; `ratls policy from` pins them; pulling a third, unknown model through the
 * demo's admin path (open-webui's /ollama/api/pull with the admin's API key) makes that policy refuse
 * the server, naming the event; a policy that allows the new model passes again. `ratls connect`'s
 * /.ratls/status shows the replayed workload.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml';
import { runCli } from '../helpers/cli.ts';
import { startConnectProxy } from '../../src/client/connect.ts';
import { loadPolicyFile } from '../../src/policy/load.ts';

const BIN = join(import.meta.dirname, '../../bin/ratls');

let dir: string;
let server: ChildProcess;
let url: string;
let stderr = '';

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'ratls-e2e-workload-'));
  // what `npm start` runs, on a free port, with its state in a temporary directory and a fast poll
  server = spawn(process.execPath, [BIN, 'serve', '--demo'], {
    cwd: dir,
    env: { ...process.env, PORT: '0', RATLS_MEASUREMENT_POLL: '1s', RATLS_LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  server.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
  url = await new Promise<string>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`no banner within 60 s: ${stderr}`)), 60_000);
    server.stderr!.on('data', () => {
      const m = /listening on https:\/\/127\.0\.0\.1:(\d+)\//.exec(stderr);
      if (m) {
        clearTimeout(t);
        resolve(`https://localhost:${m[1]}`);
      }
    });
    server.once('exit', (code) => reject(new Error(`ratls serve exited ${code}: ${stderr}`)));
  });
});

afterAll(async () => {
  if (server && server.exitCode === null) {
    const exited = new Promise((r) => server.once('exit', r));
    server.kill('SIGTERM');
    await exited;
  }
  rmSync(dir, { recursive: true, force: true });
});

const root = () => join(dir, '.ratls/sim/root.pem');

async function pull(model: string): Promise<void> {
  const key = readFileSync(join(dir, '.ratls/demo/api-key'), 'utf8').trim();
  const { Agent } = await import('undici');
  const res = await fetch(`${url}/ollama/api/pull`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: JSON.stringify({ model, stream: false }),
    // the demo's certificate is checked by the verifier below, not by fetch
    dispatcher: new Agent({ connect: { rejectUnauthorized: false } }),
  } as RequestInit);
  expect(res.status).toBe(200);
}

/** `ratls verify --json` until `done` holds (the server polls Ollama every second and then rotates). */
async function verifyUntil(args: string[], done: (j: Record<string, any>) => boolean): Promise<{ code: number; json: Record<string, any> }> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const r = await runCli('verify', url, '--root', root(), '--json', ...args);
    const json = JSON.parse(r.out) as Record<string, any>;
    if (done(json) || Date.now() > deadline) return { code: r.code, json };
    await new Promise((res) => setTimeout(res, 500));
  }
}

describe('npm start: the measured demo stack', () => {
  let policyFile: string;
  let allowing: string;

  it('ratls verify lists both demo models with their digests, covered by the session evidence', async () => {
    const r = await runCli('verify', url, '--root', root());
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/Binding\s+runtime log extended into RTMR3; \d+ of \d+ events covered by the session evidence/);
    expect(r.out).toMatch(/Models\s+ratls-demo:latest {2}digest [0-9a-f]{64}/);
    expect(r.out).toMatch(/ratls-demo:mini {2}digest [0-9a-f]{64}/);
    expect(r.out).toMatch(/kernel-cmdline\s+RTMR2 #\d+ LOADED_IMAGE::LoadOptions/);
    const j = JSON.parse((await runCli('verify', url, '--root', root(), '--json')).out) as {
      workload: { runtime: { models: Array<{ name: string; digest: string }> } };
    };
    expect(j.workload.runtime.models.map((m) => m.name)).toEqual(['ratls-demo:latest', 'ratls-demo:mini']);
  });

  it('policy from pins the models; a third, unknown model pulled through the admin path is refused; allowing it passes again', async () => {
    policyFile = join(dir, 'policy.yaml');
    const from = await runCli('policy', 'from', '--url', url, '--root', root(), '--out', policyFile);
    expect(from.code).toBe(0);
    const pinned = loadPolicyFile(policyFile).appraisal;
    expect(pinned.workload?.allowedModels?.map((m) => m.name)).toEqual(['ratls-demo:latest', 'ratls-demo:mini']);
    expect(pinned.rtmr3).toBeUndefined();
    expect((await runCli('verify', url, '--policy', policyFile)).code).toBe(0);

    await pull('qwen2.5:0.5b');
    const refused = await verifyUntil(['--policy', policyFile], (j) => j.ok === false);
    expect(refused.code).toBe(1);
    const e = (refused.json.errors as Array<{ code: string; message: string }>).find((x) => x.code === 'WORKLOAD_MODEL_NOT_ALLOWED')!;
    expect(e.message).toMatch(/^RTMR3 runtime event #\d+ \(model-added/);
    expect(e.message).toContain('"qwen2.5:0.5b"');

    // allow it (the digest as ratls verify reports it), keep the others
    const listed = (refused.json.workload.runtime.models as Array<{ name: string; digest: string }>).find((m) => m.name === 'qwen2.5:0.5b')!;
    const doc = parseYaml(readFileSync(policyFile, 'utf8')) as { workload: { models: { allowed: Array<{ name: string; digest: string }> } } };
    doc.workload.models.allowed.push({ name: listed.name, digest: listed.digest });
    allowing = join(dir, 'policy-allowing.yaml');
    writeFileSync(allowing, stringifyYaml(doc));
    const passed = await verifyUntil(['--policy', allowing, '--nonce'], (j) => j.ok === true);
    expect(passed.code).toBe(0);
    expect(passed.json.workload.runtime.pending).toBe(0);
  });

  it("ratls connect's /.ratls/status shows the replayed workload", async () => {
    const proxy = await startConnectProxy({ upstream: url, policy: loadPolicyFile(allowing), listen: { host: '127.0.0.1', port: 0 } });
    try {
      const html = await (await fetch(`${proxy.url}/.ratls/status`)).text();
      expect(html).toContain('id="ratls-workload"');
      expect(html).toContain('ratls-demo:mini');
      expect(html).toContain('qwen2.5:0.5b');
      const json = (await (await fetch(`${proxy.url}/.ratls/status?format=json`)).json()) as { lastWorkload: { report: { runtime: { models: unknown[] } } } };
      expect(json.lastWorkload.report.runtime.models).toHaveLength(3);
    } finally {
      await proxy.close();
    }
  });
});
