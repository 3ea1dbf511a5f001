/**
 * The image's user, state directory and modes, and deploy/compose.yaml's `user: "0:0"` with
 * `cap_drop: [ALL]` and `no-new-privileges`, reproduced without a container engine: the image's
 * ENTRYPOINT runs under `setpriv` with the same uid, gid and (no) capabilities, against a directory
 * made the way the Dockerfile makes /var/lib/ratls (owner, group and mode read from its RUN line).
 * The container test (tests/container) checks the same in Docker; this one runs with the suite.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, spawnSync } from 'node:child_process';
import { chmod, chown, mkdir, mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { compose, exampleEnv, imageFacts, ROOT } from './compose-file.ts';

/** uid and gid of the names the Dockerfile uses, as in node:22-slim (user and group "node" are 1000). */
const IDS: Record<string, number> = { root: 0, node: 1000 };
const id = (name: string): number => (/^\d+$/.test(name) ? Number(name) : IDS[name]!);

const canSetpriv = process.getuid?.() === 0 && spawnSync('setpriv', ['--version']).status === 0;
const image = imageFacts();
const ratls = compose(exampleEnv()).services.ratls!;

interface Identity {
  uid: number;
  gid: number;
  /** cap_drop: [ALL] */
  dropCaps: boolean;
  /** security_opt: no-new-privileges */
  noNewPrivs: boolean;
}

/** The compose service's identity: its `user`, `cap_drop` and `security_opt`. */
function composeIdentity(): Identity {
  const [u, g] = ratls.user!.split(':');
  return {
    uid: id(u!),
    gid: id(g ?? u!),
    dropCaps: ratls.cap_drop?.includes('ALL') === true,
    noNewPrivs: ratls.security_opt?.some((o) => /^no-new-privileges(:true)?$/.test(o)) === true,
  };
}
/** The image's own USER, as `docker run` without `user:` would start it, with the compose file's other settings. */
const imageIdentity = (): Identity => ({ ...composeIdentity(), uid: id(image.user), gid: id(image.user) });

function setprivArgs(who: Identity): string[] {
  const args = [`--reuid=${who.uid}`, `--regid=${who.gid}`, '--clear-groups'];
  // For uid 0 an empty bounding and inheritable set leaves no capability after exec (root's file caps are masked by both).
  if (who.dropCaps) args.push('--inh-caps=-all', '--ambient-caps=-all', '--bounding-set=-all');
  if (who.noNewPrivs) args.push('--no-new-privs');
  return [...args, '--'];
}

let base: string;
beforeAll(async () => {
  if (!canSetpriv) return;
  base = await mkdtemp(join(tmpdir(), 'ratls-perm-'));
  await chmod(base, 0o755); // uid 1000 must be able to reach the state directories below
});
afterAll(async () => {
  if (base) await rm(base, { recursive: true, force: true });
});

/** A state directory made as the Dockerfile makes it (or with other owner/mode, as an older image did). */
async function stateRoot(name: string, owner = image.stateDir.owner, group = image.stateDir.group, mode = image.stateDir.mode): Promise<string> {
  const dir = join(base, name);
  await mkdir(dir);
  await chown(dir, id(owner), id(group));
  await chmod(dir, mode);
  return dir;
}

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const { port } = s.address() as AddressInfo;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

/** The image's and the service's environment, with the state directory moved to `root`. */
function serveEnv(root: string, extra: Record<string, string>): NodeJS.ProcessEnv {
  const move = (v: string): string => v.replace(image.stateDir.path, root);
  const env: NodeJS.ProcessEnv = { PATH: process.env.PATH, HOME: root, RATLS_LOG_LEVEL: 'warn' };
  for (const [k, v] of Object.entries({ ...image.env, ...ratls.environment })) env[k] = move(v);
  return { ...env, ...extra };
}

interface Run {
  pid: number;
  exited: Promise<number | null>;
  stderr: () => string;
  stop(): Promise<number | null>;
}

/** Runs an exec-form command of the image (ENTRYPOINT, HEALTHCHECK) as `who`, from the repository (the image's WORKDIR holds the same files). */
function runAs(who: Identity, command: string[], env: NodeJS.ProcessEnv): Run {
  const [cmd, ...args] = command;
  expect(cmd).toBe('node');
  const child = spawn('setpriv', [...setprivArgs(who), process.execPath, ...args], { cwd: ROOT, env, stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  child.stderr!.on('data', (c: Buffer) => (err += c.toString()));
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  return {
    pid: child.pid!,
    exited,
    stderr: () => err,
    async stop() {
      child.kill('SIGTERM');
      return exited;
    },
  };
}
const runEntrypoint = (who: Identity, env: NodeJS.ProcessEnv): Run => runAs(who, image.entrypoint, env);

async function untilListening(run: Run): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (!/listening on https:/.test(run.stderr())) {
    const code = await Promise.race([run.exited, new Promise((r) => setTimeout(() => r('wait'), 100))]);
    if (code !== 'wait') throw new Error(`ratls serve exited ${String(code)} before listening:\n${run.stderr()}`);
    if (Date.now() > deadline) throw new Error(`ratls serve did not listen within 30 s:\n${run.stderr()}`);
  }
}

/** Uid, Gid, CapEff, CapBnd and NoNewPrivs of a running process. */
async function processStatus(pid: number): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const line of (await readFile(`/proc/${pid}/status`, 'utf8')).split('\n')) {
    const m = /^(\w+):\s*(.*)$/.exec(line);
    if (m) out[m[1]!] = m[2]!;
  }
  return out;
}

async function owner(path: string): Promise<{ uid: number; gid: number; mode: number }> {
  const st = await stat(path);
  return { uid: st.uid, gid: st.gid, mode: st.mode & 0o7777 };
}

describe.runIf(canSetpriv)('the image and compose settings under setpriv (same uid, gid, no capabilities)', () => {
  it('reads what it tests from the Dockerfile and deploy/compose.yaml', () => {
    expect(image.user).toBe('node');
    expect(image.stateDir.path).toBe('/var/lib/ratls');
    expect(image.env.RATLS_SIM_DIR!.startsWith(`${image.stateDir.path}/`)).toBe(true);
    expect(composeIdentity()).toEqual({ uid: 0, gid: 0, dropCaps: true, noNewPrivs: true });
    // nobody but the owner and group 0 may touch the state (private keys of the simulated world live there)
    expect(image.stateDir.mode & 0o007).toBe(0);
  });

  it('compose settings (uid 0, every capability dropped): starts, makes its state 0700 and its own, answers the HEALTHCHECK', async () => {
    const root = await stateRoot('compose');
    const port = await freePort();
    const env = serveEnv(root, { RATLS_LISTEN: `127.0.0.1:${port}`, RATLS_EVIDENCE_PROVIDER: 'simulated' });
    const run = runEntrypoint(composeIdentity(), env);
    try {
      await untilListening(run);
      const st = await processStatus(run.pid);
      expect(st.Uid!.split(/\s+/)).toEqual(['0', '0', '0', '0']);
      expect(st.Gid!.split(/\s+/)).toEqual(['0', '0', '0', '0']);
      expect(BigInt(`0x${st.CapEff}`)).toBe(0n);
      expect(BigInt(`0x${st.CapBnd}`)).toBe(0n);
      expect(st.NoNewPrivs).toBe('1');
      // the image's HEALTHCHECK, run as Docker runs it: same user, same environment
      expect(await runAs(composeIdentity(), image.healthcheck, env).exited).toBe(0);
      expect(await owner(join(root, 'sim'))).toEqual({ uid: 0, gid: 0, mode: 0o700 });
      expect((await owner(join(root, 'sim', 'root.pem'))).uid).toBe(0);
      expect(await owner(root)).toEqual({ uid: id(image.stateDir.owner), gid: id(image.stateDir.group), mode: image.stateDir.mode });
    } finally {
      expect(await run.stop()).toBe(0);
    }
  });

  it("the image's own user (compose without `user:`, as for the simulated provider): starts and owns its state", async () => {
    const root = await stateRoot('image-user');
    const run = runEntrypoint(imageIdentity(), serveEnv(root, { RATLS_LISTEN: '127.0.0.1:0', RATLS_EVIDENCE_PROVIDER: 'simulated' }));
    try {
      await untilListening(run);
      expect((await processStatus(run.pid)).Uid!.split(/\s+/)[0]).toBe('1000');
      expect(await owner(join(root, 'sim'))).toEqual({ uid: 1000, gid: 1000, mode: 0o700 });
    } finally {
      expect(await run.stop()).toBe(0);
    }
  });

  it('real-TDX settings: uid 0 without capabilities creates configfs-tsm report entries and its collateral cache', async () => {
    const root = await stateRoot('tdx');
    // configfs-tsm's report directory is root's, 0755; this stand-in has no kernel behind it, so the
    // provider gets past mkdir and then finds no "provider" attribute in the new entry.
    const tsm = join(base, 'tsm');
    await mkdir(join(tsm, 'report'), { recursive: true, mode: 0o755 });
    await chmod(tsm, 0o755);
    const env = serveEnv(root, { RATLS_LISTEN: '127.0.0.1:0', RATLS_CONFIGFS_ROOT: tsm, RATLS_PCCS_URL: 'http://127.0.0.1:9' });
    expect(env.RATLS_EVIDENCE_PROVIDER).toBe('configfs-tsm');

    const asRoot = runEntrypoint(composeIdentity(), env);
    expect(await asRoot.exited).toBe(2);
    expect(asRoot.stderr()).toMatch(/configfs-tsm: report entry \S+\/report\/ratls-\S+ failed \(ENOENT\)/);
    expect(asRoot.stderr()).not.toMatch(/EACCES|cannot listen/);
    expect(await owner(join(root, 'collateral'))).toEqual({ uid: 0, gid: 0, mode: 0o700 });

    // Why the compose file needs uid 0 there: the image's user cannot make a report entry.
    const asNode = runEntrypoint(imageIdentity(), serveEnv(await stateRoot('tdx-node'), { ...env, RATLS_COLLATERAL_CACHE_DIR: '' }));
    expect(await asNode.exited).toBe(2);
    expect(asNode.stderr()).toMatch(/cannot create a report entry under \S+\/report \(EACCES\)/);
  });

  it('a state volume made by an older image (node:node 0755) is reported as what it is, not as a port problem', async () => {
    const root = await stateRoot('old-volume', 'node', 'node', 0o755);
    const run = runEntrypoint(composeIdentity(), serveEnv(root, { RATLS_LISTEN: '127.0.0.1:0', RATLS_EVIDENCE_PROVIDER: 'simulated' }));
    expect(await run.exited).toBe(2);
    const err = run.stderr();
    expect(err).toContain(`mkdir ${root}/sim failed with EACCES`);
    expect(err).toContain(`${root} belongs to uid 1000, gid 1000, mode 0755, and ratls runs as uid 0, gid 0 without CAP_DAC_OVERRIDE`);
    expect(err).toContain('[STATE_DIR_UNUSABLE]');
    expect(err).not.toContain('cannot listen');
  });

  it('a collateral cache directory of another user is refused at start, not silently ignored', async () => {
    const root = await stateRoot('foreign-cache');
    // writable through the group, so only ownership is wrong: the cache would ignore every entry in it
    await mkdir(join(root, 'collateral'));
    await chown(join(root, 'collateral'), 1000, 0);
    await chmod(join(root, 'collateral'), 0o770);
    const run = runEntrypoint(composeIdentity(), serveEnv(root, { RATLS_LISTEN: '127.0.0.1:0', RATLS_PCCS_URL: 'http://127.0.0.1:9' }));
    expect(await run.exited).toBe(2);
    expect(run.stderr()).toContain(`The collateral cache ${root}/collateral belongs to uid 1000, but ratls runs as uid 0`);
    expect(run.stderr()).toContain('[STATE_DIR_UNUSABLE]');
  });

  it('a port it may not bind is reported as a port problem', async () => {
    const privileged = Number((await readFile('/proc/sys/net/ipv4/ip_unprivileged_port_start', 'utf8')).trim());
    expect(privileged).toBeGreaterThan(443); // the host's default (1024); containers often lower it
    const run = runEntrypoint(composeIdentity(), serveEnv(await stateRoot('port'), { RATLS_LISTEN: '127.0.0.1:443', RATLS_EVIDENCE_PROVIDER: 'simulated' }));
    expect(await run.exited).toBe(2);
    expect(run.stderr()).toContain('cannot listen on 127.0.0.1:443: permission denied (EACCES; ports below 1024 need CAP_NET_BIND_SERVICE)');
  });
});
