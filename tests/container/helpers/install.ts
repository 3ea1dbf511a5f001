/**
 * An "existing install": a directory holding open-webui-shaped compose files (tests/container/
 * existing-install) and a `.env`, run with docker-compose from that directory as its admin runs it.
 * The compose project's name is the directory's name (compose's default, so no `-p`), and it starts
 * with "ratlsct" so that scripts/container/run.sh sweeps it up after an interrupted run.
 */
import { copyFile, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { docker, DOCKER, ok, ROOT, run, type Exec } from './stack.ts';

export class Install {
  /** The compose project: the install directory's name. */
  readonly project = `ratlsct${randomBytes(4).toString('hex')}`;
  /** The admin's directory (open-webui's checkout, where its docker-compose.yaml lives). */
  readonly dir: string;
  /** The -f files of the next compose command, relative to `dir` or absolute. */
  files: string[] = [];

  constructor(parent: string) {
    this.dir = join(parent, this.project);
  }

  /** Copies the fixture's compose files into the install directory and writes its .env. */
  async create(files: string[], env: Record<string, string>): Promise<void> {
    await mkdir(this.dir, { recursive: true });
    for (const f of files) await copyFile(join(ROOT, 'tests/container/existing-install', f), join(this.dir, f));
    await this.setEnv(env);
  }

  /** Adds to (or changes) the .env the admin keeps next to the compose file. */
  async setEnv(vars: Record<string, string>): Promise<void> {
    const path = join(this.dir, '.env');
    const current = await readFile(path, 'utf8').catch(() => '');
    const env = new Map(
      current
        .split('\n')
        .filter(Boolean)
        .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)] as const),
    );
    for (const [k, v] of Object.entries(vars)) env.set(k, v);
    await writeFile(path, [...env].map(([k, v]) => `${k}=${v}\n`).join(''), { mode: 0o600 });
  }

  /** docker-compose with the current -f files, run in the install directory. */
  compose(...args: string[]): Promise<Exec> {
    return run('docker-compose', ['--ansi', 'never', ...this.files.flatMap((f) => ['-f', f]), ...args], {
      cwd: this.dir,
      env: { ...process.env, COMPOSE_INTERACTIVE_NO_CLI: '1' },
      timeoutMs: 180_000,
    });
  }

  async composeOk(...args: string[]): Promise<string> {
    const r = await this.compose(...args);
    if (r.code !== 0) throw new Error(`docker-compose ${args.join(' ')} exited ${r.code}\n${r.stdout}\n${r.stderr}`);
    return r.stdout;
  }

  /** Container id of a service (asked of the engine by compose's labels: docker-compose starts slowly). */
  async id(service: string): Promise<string> {
    return (
      await docker('ps', '-aq', '--filter', `label=com.docker.compose.project=${this.project}`, '--filter', `label=com.docker.compose.service=${service}`)
    ).trim();
  }

  async inspect<T = unknown>(service: string, format: string): Promise<T> {
    return JSON.parse(await docker('inspect', '-f', `{{json ${format}}}`, await this.id(service))) as T;
  }

  /** Runs a command in a service's container (`docker-compose exec` without its slow start). */
  exec(service: string, ...cmd: string[]): Promise<string> {
    return this.id(service).then((id) => docker('exec', id, ...cmd));
  }

  /** Waits until the service's container reports healthy; fails at once if it exits. */
  async waitHealthy(service: string, timeoutMs = 120_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const id = await this.id(service);
      if (id) {
        const state = JSON.parse(await docker('inspect', '-f', '{{json .State}}', id)) as { Status: string; Health?: { Status: string } };
        if (state.Health?.Status === 'healthy') return;
        if (state.Status === 'exited' || state.Status === 'dead' || Date.now() > deadline) {
          const logs = await run(DOCKER, ['logs', id]);
          throw new Error(`${service} is ${state.Status}/${state.Health?.Status ?? 'no health'}:\n${logs.stdout}${logs.stderr}`);
        }
      } else if (Date.now() > deadline) throw new Error(`${service} has no container`);
      await new Promise((r) => setTimeout(r, 250));
    }
  }

  /** Name -> creation time of the project's volumes. */
  async volumes(): Promise<Record<string, string>> {
    const names = (await docker('volume', 'ls', '-q', '--filter', `label=com.docker.compose.project=${this.project}`)).trim().split('\n').filter(Boolean);
    const out: Record<string, string> = {};
    for (const n of names) out[n] = (await ok(DOCKER, ['volume', 'inspect', '-f', '{{.CreatedAt}}', n])).trim();
    return out;
  }

  /** Removes the project's containers, network and volumes (the files given last decide which services it knows). */
  async down(): Promise<void> {
    if (this.files.length) await this.compose('down', '--volumes', '--remove-orphans', '--timeout', '5');
  }
}
