/**
 * deploy/compose.yaml run as an admin runs it (docker-compose up -d), plus the test overrides in
 * tests/container, under a project name of its own so that `down` removes exactly what it made:
 * containers, the network and the named volumes.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';

export const ROOT = join(import.meta.dirname, '../../..');
/** Debian's docker CLI when present: the one that matches Debian's engine (see scripts/container/common.sh). */
export const DOCKER = existsSync('/usr/bin/docker') ? '/usr/bin/docker' : 'docker';

/** The project image scripts/container/setup.sh built; the tests refuse to guess one. */
export function imageUnderTest(): string {
  const image = process.env.RATLS_CONTAINER_IMAGE;
  if (!image) throw new Error('RATLS_CONTAINER_IMAGE is not set: run the container test with `npm run test:container` (it builds the image first).');
  return image;
}

export interface Exec {
  stdout: string;
  stderr: string;
  code: number;
}

/** Runs a command; resolves with its output and exit code (never rejects on a non-zero exit). */
export function run(cmd: string, args: string[], opts: { timeoutMs?: number; env?: NodeJS.ProcessEnv; cwd?: string } = {}): Promise<Exec> {
  return new Promise((resolve, reject) => {
    execFile(
      cmd,
      args,
      { timeout: opts.timeoutMs ?? 120_000, maxBuffer: 16 << 20, env: opts.env ?? process.env, cwd: opts.cwd ?? ROOT, encoding: 'utf8' },
      (err, stdout, stderr) => {
        if (err && typeof err.code !== 'number') return reject(new Error(`${cmd} ${args.join(' ')}: ${err.message}\n${stderr}`));
        resolve({ stdout, stderr, code: err ? (err.code as number) : 0 });
      },
    );
  });
}

/** Like run(), but throws with the output when the command fails. */
export async function ok(cmd: string, args: string[], opts?: Parameters<typeof run>[2]): Promise<string> {
  const r = await run(cmd, args, opts);
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.code}\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

export const docker = (...args: string[]): Promise<string> => ok(DOCKER, args);

/** A loopback port nobody listens on right now. */
export async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const { port } = s.address() as AddressInfo;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

export interface StackOptions {
  /** Compose files after deploy/compose.yaml, relative to the repository. */
  overrides: string[];
  /** Variables for deploy/.env and the overrides (as an admin's deploy/.env, written to a temporary file). */
  env: Record<string, string>;
}

/** A running compose project. */
export class Stack {
  readonly project = `ratlsct${randomBytes(4).toString('hex')}`;
  /** The proxy's published port on 127.0.0.1. */
  port = 0;
  private dir = '';
  private envFile = '';

  constructor(private readonly opts: StackOptions) {}

  get url(): string {
    return `https://127.0.0.1:${this.port}`;
  }

  /** docker-compose with this project's name, files and env file. */
  compose(...args: string[]): Promise<Exec> {
    const files = ['deploy/compose.yaml', ...this.opts.overrides].flatMap((f) => ['-f', join(ROOT, f)]);
    return run('docker-compose', ['--ansi', 'never', '-p', this.project, ...files, '--env-file', this.envFile, ...args], {
      // docker-compose talks to the engine itself; a DOCKER_HOST etc. of the caller still applies
      env: { ...process.env, COMPOSE_INTERACTIVE_NO_CLI: '1' },
      timeoutMs: 180_000,
    });
  }

  async composeOk(...args: string[]): Promise<string> {
    const r = await this.compose(...args);
    if (r.code !== 0) throw new Error(`docker-compose ${args.join(' ')} exited ${r.code}\n${r.stdout}\n${r.stderr}`);
    return r.stdout;
  }

  /** Writes the env file and starts every service (no build: the image under test is given). */
  async up(): Promise<void> {
    this.dir = await mkdtemp(join(tmpdir(), 'ratls-ct-'));
    this.port = await freePort();
    const env = {
      PUBLIC_HOST: 'localhost',
      // published on loopback only: the test binds nothing on other interfaces
      RATLS_PORT: `127.0.0.1:${this.port}`,
      WEBUI_SECRET_KEY: randomBytes(16).toString('hex'),
      CT_IMAGE: imageUnderTest(),
      CT_TESTS: join(ROOT, 'tests'),
      // what /run/tsm mounts when the test brings no configfs-tsm: an empty directory
      CT_TSM: join(this.dir, 'no-tsm'),
      ...this.opts.env,
    };
    await mkdir(env.CT_TSM, { recursive: true });
    this.envFile = join(this.dir, '.env');
    await writeFile(
      this.envFile,
      Object.entries(env)
        .map(([k, v]) => `${k}=${v}\n`)
        .join(''),
      { mode: 0o600 },
    );
    await this.composeOk('up', '-d', '--no-build');
  }

  /** Container id of a service, running or not (empty when it has none). Asks the engine by compose's labels: docker-compose itself starts slowly. */
  async id(service: string): Promise<string> {
    const out = await docker(
      'ps',
      '-aq',
      '--filter',
      `label=com.docker.compose.project=${this.project}`,
      '--filter',
      `label=com.docker.compose.service=${service}`,
    );
    return out.trim();
  }

  async inspect<T = unknown>(service: string, format: string): Promise<T> {
    return JSON.parse(await docker('inspect', '-f', `{{json ${format}}}`, await this.id(service))) as T;
  }

  /**
   * Waits until the service's container reports healthy; fails at once if it exits. "unhealthy" is
   * not final: on a busy machine a slow start fails a few probes before one passes.
   */
  async waitHealthy(service: string, timeoutMs = 120_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const state = await this.inspect<{ Status: string; Health?: { Status: string } }>(service, '.State');
      if (state.Health?.Status === 'healthy') return;
      if (state.Status === 'exited' || state.Status === 'dead' || Date.now() > deadline) {
        throw new Error(`${service} is ${state.Status}/${state.Health?.Status ?? 'no health'}:\n${await this.logs(service)}`);
      }
      await new Promise((r) => setTimeout(r, 250));
    }
  }

  /**
   * `docker diff` of a service's container, less what the engine itself did: it adds the mount
   * points the image lacks (and so changes their parents). What is left was written by the process.
   */
  async writesOutsideMounts(service: string): Promise<string[]> {
    const mounts = await this.inspect<Array<{ Destination: string }>>(service, '.Mounts');
    const byEngine = new Set(
      mounts.flatMap((m) =>
        m.Destination.split('/')
          .map((_, i, parts) => parts.slice(0, i + 1).join('/'))
          .filter(Boolean),
      ),
    );
    const changes = (await docker('diff', await this.id(service))).trim().split('\n').filter(Boolean);
    return changes.filter((c) => !/^[AC] /.test(c) || !byEngine.has(c.slice(2)));
  }

  /** The service container's output, stdout and stderr (from the engine: docker-compose starts slowly). */
  async logs(service: string): Promise<string> {
    const r = await run(DOCKER, ['logs', await this.id(service)]);
    return r.stdout + r.stderr;
  }

  /** Stops and removes the containers, the network and the named volumes of this project. */
  async down(): Promise<void> {
    if (!this.envFile) return;
    await this.compose('down', '--volumes', '--remove-orphans', '--timeout', '5');
    await rm(this.dir, { recursive: true, force: true });
  }

  /** A scratch directory of this stack (removed by down()). */
  get scratch(): string {
    return this.dir;
  }
}
