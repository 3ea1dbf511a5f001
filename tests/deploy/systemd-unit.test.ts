/**
 * deploy/ratls-proxy.service and the /etc/ratls/ratls.yaml it reads (deploy/ratls.yaml): the unit
 * passes `systemd-analyze verify`, its hardening is what docs/deploy.md says, and its ExecStart
 * starts `ratls serve` as written (flags and config file), on a machine without TDX with the
 * simulated provider added. Also the refusal an admin sees on a guest without configfs-tsm.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile, spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile, mkdir } from 'node:fs/promises';
import https from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readConfigFile, validateConfig } from '../../src/proxy/config.ts';
import { read, ROOT } from './compose-file.ts';

const UNIT = 'deploy/ratls-proxy.service';
/** Where the unit expects things on the VM, and where they are in this checkout. */
const INSTALLED = { bin: '/opt/ratls-proxy/bin/ratls', config: '/etc/ratls/ratls.yaml' };
const LOCAL = { bin: join(ROOT, 'bin/ratls'), config: join(ROOT, 'deploy/ratls.yaml') };

/** The unit's [Service] settings; repeated keys keep every value in order. */
function serviceSection(text: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  let section = '';
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#') || line.startsWith(';')) continue;
    const s = /^\[(.+)\]$/.exec(line);
    if (s) {
      section = s[1]!;
      continue;
    }
    const eq = line.indexOf('=');
    if (section !== 'Service' || eq < 0) continue;
    const key = line.slice(0, eq).trim();
    out.set(key, [...(out.get(key) ?? []), line.slice(eq + 1).trim()]);
  }
  return out;
}

/** systemd time spans as the unit and the config use them: 45s, 30s, 1min, 2m. */
function seconds(span: string): number {
  const m = /^(\d+)\s*(ms|s|sec|m|min|h)?$/.exec(span);
  if (!m) throw new Error(`not a time span: ${span}`);
  const n = Number(m[1]);
  return { ms: n / 1000, s: n, sec: n, m: n * 60, min: n * 60, h: n * 3600 }[m[2] ?? 's']!;
}

/** ExecStart, split as systemd does for a command line without quotes (it has none). */
function execStart(service: Map<string, string[]>): string[] {
  const v = service.get('ExecStart') ?? [];
  expect(v).toHaveLength(1);
  expect(v[0]).not.toMatch(/["'\\$%]/);
  return v[0]!.split(/\s+/);
}

function run(cmd: string, args: string[], env: NodeJS.ProcessEnv = process.env): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(cmd, args, { env, timeout: 60_000, encoding: 'utf8' }, (err, stdout, stderr) =>
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout, stderr }),
    );
  });
}

/** GET https://127.0.0.1:PORT/readyz without checking the (RA-TLS, self-signed) certificate. */
function readyz(port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    https
      .get({ host: '127.0.0.1', port, path: '/readyz', rejectUnauthorized: false, timeout: 10_000 }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      })
      .on('error', reject);
  });
}

let work: string;
const unitText = read(UNIT);
const service = serviceSection(unitText);
const one = (key: string): string | undefined => service.get(key)?.at(-1);

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'ratls-unit-'));
});
afterAll(async () => {
  if (work) await rm(work, { recursive: true, force: true });
});

describe('deploy/ratls-proxy.service', () => {
  it('passes systemd-analyze verify (with ExecStart pointing at this checkout)', async () => {
    const dir = join(work, 'verify');
    await mkdir(dir);
    const unit = join(dir, 'ratls-proxy.service');
    await writeFile(unit, unitText.replace(INSTALLED.bin, LOCAL.bin));
    const r = await run('systemd-analyze', ['verify', unit]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr.trim()).toBe('');
  });

  it('runs ratls serve with the config in /etc/ratls, and stops later than the drain timeout', () => {
    expect(execStart(service)).toEqual([INSTALLED.bin, 'serve', '--config', INSTALLED.config]);
    const config = validateConfig(readConfigFile(LOCAL.config));
    expect(seconds(one('TimeoutStopSec')!)).toBeGreaterThan(config.shutdown.drainTimeoutMs / 1000 + 5);
    expect(one('KillSignal') ?? 'SIGTERM').toBe('SIGTERM');
    expect(one('Restart')).toBe('on-failure');
  });

  it('is hardened: no capabilities, no new privileges, a read-only system but its state and configfs-tsm', () => {
    expect(one('NoNewPrivileges')).toBe('yes');
    expect(one('CapabilityBoundingSet')).toBe('');
    expect(one('AmbientCapabilities')).toBe('');
    expect(one('ProtectSystem')).toBe('strict');
    expect(one('PrivateTmp')).toBe('yes');
    expect(one('StateDirectory')).toBe('ratls');
    expect(one('StateDirectoryMode')).toBe('0700');
    expect(service.get('ReadWritePaths')).toEqual(['-/sys/kernel/config/tsm']);
    // Node's JIT needs writable executable memory
    expect(service.has('MemoryDenyWriteExecute')).toBe(false);
  });

  it('writes only where the unit lets it: the state directory and configfs-tsm; upstreams on loopback', () => {
    const config = validateConfig(readConfigFile(LOCAL.config));
    const state = `/var/lib/${one('StateDirectory')}/`;
    expect(config.evidence.simDir.startsWith(state)).toBe(true);
    expect(config.collateral.cacheDir?.startsWith(state)).toBe(true);
    expect(service.get('ReadWritePaths')!.map((p) => p.replace(/^-/, ''))).toContain(config.evidence.configfsRoot);
    expect(config.evidence.provider).toBe('configfs-tsm');
    expect(config.listen).toEqual({ host: '0.0.0.0', port: 8443 });
    expect(new URL(config.upstreams.openWebui).hostname).toBe('127.0.0.1');
    expect(new URL(config.upstreams.ollama).hostname).toBe('127.0.0.1');
  });

  it('starts as ExecStart says (plus --simulate here, no TDX), serves, and drains on SIGTERM', async () => {
    const [, ...args] = execStart(service).map((a) => (a === INSTALLED.config ? LOCAL.config : a));
    const child = spawn(process.execPath, [LOCAL.bin, ...args, '--simulate', '--sim-dir', join(work, 'sim'), '--listen', '127.0.0.1:0'], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let err = '';
    child.stderr.on('data', (c: Buffer) => (err += c.toString()));
    // 'close', not 'exit': the last stderr lines may arrive after the process has exited
    const exited = new Promise<number | null>((r) => child.once('close', (code) => r(code)));
    const banner = await Promise.race([
      new Promise<boolean>((r) => child.stderr.on('data', () => /listening on https:\/\/127\.0\.0\.1:\d+\//.test(err) && r(true))),
      exited.then(() => false),
      new Promise<boolean>((r) => setTimeout(() => r(false), 60_000)),
    ]);
    expect(banner, err).toBe(true);
    // /readyz answering means the event loop runs, so the start (signal handlers included) is over
    const port = Number(/listening on https:\/\/127\.0\.0\.1:(\d+)\//.exec(err)![1]);
    expect(await readyz(port)).toBe(200);
    child.kill('SIGTERM');
    const code = await exited;
    expect(err).toMatch(/route \/\s+-> http:\/\/127\.0\.0\.1:8080/);
    expect(err, `exit ${code}: ${err.slice(-400)}`).toMatch(/SIGTERM received, draining/);
    expect(code).toBe(0);
  }, 90_000);

  it('on a TDX guest without configfs-tsm: exit 2 with the sentence docs/deploy.md quotes', async () => {
    const r = await run(process.execPath, [LOCAL.bin, 'serve', '--config', LOCAL.config, '--listen', '127.0.0.1:0'], {
      ...process.env,
      RATLS_CONFIGFS_ROOT: join(work, 'no-configfs'),
    });
    expect(r.code).toBe(2);
    const shown = r.stderr.trim().replaceAll(join(work, 'no-configfs'), '/sys/kernel/config/tsm');
    expect(shown).toMatch(/^ratls serve: No TDX evidence provider: \/sys\/kernel\/config\/tsm\/report does not exist .*\[EVIDENCE_PROVIDER_UNAVAILABLE\]$/);
    // the docs quote it word for word (wrapped over lines)
    expect(read('docs/deploy.md').replace(/\s+/g, ' ')).toContain(shown);
  });
});
