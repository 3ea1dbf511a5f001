/**
 * `ratls demo ollama` and `ratls demo webui` as processes (what a container runs): they listen where
 * told, the app reaches the backend, the admin's credentials are kept 0600 in the state directory
 * and reused, and SIGTERM stops them with exit 0.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const BIN = join(import.meta.dirname, '../../bin/ratls');

interface Proc {
  child: ChildProcess;
  url: string;
  stderr: () => string;
  exited: Promise<number | null>;
}

async function spawnDemo(args: string[], pattern: RegExp): Promise<Proc> {
  const child = spawn(process.execPath, [BIN, 'demo', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  child.stderr!.on('data', (c: Buffer) => (err += c.toString()));
  child.stdout!.resume();
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  const url = await new Promise<string>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`no banner within 30 s: ${err}`)), 30_000);
    child.stderr!.on('data', () => {
      const m = pattern.exec(err);
      if (m) {
        clearTimeout(t);
        resolve(m[1]!);
      }
    });
    void exited.then((code) => {
      clearTimeout(t);
      reject(new Error(`exited ${code}: ${err}`));
    });
  });
  return { child, url, stderr: () => err, exited };
}

describe('ratls demo ollama | webui (processes)', () => {
  let dir: string;
  let backend: Proc;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'ratls-demo-cli-'));
    backend = await spawnDemo(['ollama', '--listen', '127.0.0.1:0', '--token-delay', '1'], /listening on (http:\/\/\S+) /);
  });
  afterAll(() => {
    backend?.child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });

  it('the backend answers like Ollama, without authentication', async () => {
    expect(backend.stderr()).toMatch(/models: ratls-demo:latest, ratls-demo:mini/);
    const tags = (await (await fetch(`${backend.url}/api/tags`)).json()) as { models: Array<{ name: string }> };
    expect(tags.models.map((m) => m.name)).toEqual(['ratls-demo:latest', 'ratls-demo:mini']);
  });

  it('the app uses --ollama, prints and keeps its credentials (0600), reuses them at restart, and stops on SIGTERM', async () => {
    const state = join(dir, 'state');
    const args = ['webui', '--listen', '127.0.0.1:0', '--ollama', backend.url, '--state-dir', state];
    const first = await spawnDemo(args, /listening on (http:\/\/\S+),/);
    const key = readFileSync(join(state, 'api-key'), 'utf8').trim();
    const password = readFileSync(join(state, 'admin-password'), 'utf8').trim();
    try {
      expect(key).toMatch(/^sk-[0-9a-f]{32}$/);
      expect(first.stderr()).toContain(key);
      expect(first.stderr()).toContain(`admin@example.com / ${password}`);
      expect(statSync(join(state, 'api-key')).mode & 0o777).toBe(0o600);
      expect(statSync(join(state, 'admin-password')).mode & 0o777).toBe(0o600);
      expect(statSync(state).mode & 0o777).toBe(0o700);
      const models = await fetch(`${first.url}/api/models`, { headers: { authorization: `Bearer ${key}` } });
      expect(((await models.json()) as { data: Array<{ id: string }> }).data.map((m) => m.id)).toContain('ratls-demo:mini');
      const login = await fetch(`${first.url}/api/v1/auths/signin`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ email: 'admin@example.com', password }),
      });
      expect(login.status).toBe(200);
    } finally {
      first.child.kill('SIGTERM');
    }
    expect(await first.exited).toBe(0);
    const second = await spawnDemo(args, /listening on (http:\/\/\S+),/);
    try {
      expect(readFileSync(join(state, 'api-key'), 'utf8').trim()).toBe(key);
      const again = await fetch(`${second.url}/api/models`, { headers: { authorization: `Bearer ${key}` } });
      expect(again.status).toBe(200);
    } finally {
      second.child.kill('SIGTERM');
    }
    expect(await second.exited).toBe(0);
  });

  it('refuses bad flags with exit 2 and a sentence naming the flag', async () => {
    for (const [args, msg] of [
      [['webui', '--listen', 'nowhere'], /--listen/],
      [['webui', '--ollama', 'ftp://x'], /--ollama must be an http\(s\) origin/],
      [['ollama', '--token-delay', '-1'], /--token-delay/],
    ] as const) {
      const child = spawn(process.execPath, [BIN, 'demo', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
      let err = '';
      child.stderr.on('data', (c: Buffer) => (err += c.toString()));
      expect(await new Promise((r) => child.once('exit', r))).toBe(2);
      expect(err).toMatch(msg);
    }
  });
});
