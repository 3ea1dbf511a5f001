/**
 * The directories `ratls serve` writes to (the simulated world, the collateral cache), made and
 * probed before anything else starts. A state directory the process cannot write is the classic
 * container mistake (uid 0 with every capability dropped on a directory another uid owns): found
 * here, it is reported as what it is, naming the path, the operation, the owner and mode, and the
 * user the proxy runs as, instead of surfacing later as a failed listen or a never-stapled certificate.
 */
import { mkdir, open, readFile, stat, unlink } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { randomBytes } from 'node:crypto';
import { RatlsError } from '../core/errors.ts';
import { checkTrustedDirectory } from '../core/trusted-path.ts';
import type { ServeConfig } from './config.ts';

/** A state directory and what it is for, as named in messages. */
export interface StateDir {
  path: string;
  purpose: string;
  /** Config key an admin changes to move it. */
  key: string;
}

/** The state directories `config` makes the proxy write to. */
export function stateDirsFor(config: ServeConfig): StateDir[] {
  const dirs: StateDir[] = [];
  if (config.evidence.provider === 'simulated') {
    dirs.push({ path: config.evidence.simDir, purpose: 'simulated TDX world', key: 'evidence.simDir (RATLS_SIM_DIR, --sim-dir)' });
  }
  // The simulated provider staples collateral of its own; only a real provider fills the cache.
  if (config.collateral.cacheDir && config.evidence.provider !== 'simulated' && config.tls.stapleCollateral) {
    dirs.push({ path: config.collateral.cacheDir, purpose: 'collateral cache', key: 'collateral.cacheDir (RATLS_COLLATERAL_CACHE_DIR)' });
  }
  return dirs;
}

/**
 * Creates every state directory of `config` (mode 0700, parents too) and checks that this process
 * can create files in it and that it may trust it (src/core/trusted-path.ts): its own user's, not
 * a symbolic link, writable by nobody else, under no directory others can write. The world holds
 * private keys, and the cache ignores entries in a directory it does not trust. Throws
 * STATE_DIR_UNUSABLE with a sentence saying what to change.
 */
export async function prepareStateDirs(config: ServeConfig): Promise<StateDir[]> {
  const dirs = stateDirsFor(config);
  for (const d of dirs) {
    const fail = async (op: string, path: string, err: unknown): Promise<never> => {
      throw new RatlsError(
        'STATE_DIR_UNUSABLE',
        `Cannot use ${d.path} as the ${d.purpose}: ${await explainFsError(err, op, path)} Or point ${d.key} at a directory this user can write.`,
        { cause: err },
      );
    };
    try {
      await mkdir(d.path, { recursive: true, mode: 0o700 });
    } catch (err) {
      await fail('mkdir', d.path, err);
    }
    const probe = join(d.path, `.ratls-write-probe-${process.pid}-${randomBytes(4).toString('hex')}`);
    try {
      await (await open(probe, 'wx', 0o600)).close();
    } catch (err) {
      await fail('create a file in', d.path, err);
    }
    await unlink(probe).catch(() => undefined);
    try {
      checkTrustedDirectory(d.path, { what: d.purpose, kind: 'state', code: 'STATE_DIR_UNUSABLE' });
    } catch (err) {
      if (!(err instanceof RatlsError)) throw err;
      throw new RatlsError('STATE_DIR_UNUSABLE', `${err.message} Or point ${d.key} elsewhere.`);
    }
  }
  return dirs;
}

/** CAP_DAC_OVERRIDE lets a process ignore file modes; without it, uid 0 is bound by them too. */
const CAP_DAC_OVERRIDE = 1n;

/** Whether this process holds CAP_DAC_OVERRIDE; undefined where /proc cannot say. */
async function hasDacOverride(): Promise<boolean | undefined> {
  try {
    const m = /^CapEff:\s*([0-9a-f]+)$/m.exec(await readFile('/proc/self/status', 'utf8'));
    return m ? ((BigInt(`0x${m[1]}`) >> CAP_DAC_OVERRIDE) & 1n) === 1n : undefined;
  } catch {
    return undefined;
  }
}

/** The nearest existing directory at or above `path`, with its owner and mode. */
async function nearestExisting(path: string): Promise<{ path: string; uid: number; gid: number; mode: number } | undefined> {
  let p = resolve(path);
  for (;;) {
    try {
      const st = await stat(p);
      return { path: p, uid: st.uid, gid: st.gid, mode: st.mode & 0o7777 };
    } catch {
      const up = dirname(p);
      if (up === p) return undefined;
      p = up;
    }
  }
}

/**
 * One or two sentences for a failed file operation: which operation on which path failed, and for
 * a permission error, who owns what is in the way and who this process is.
 *
 * @example
 *   await explainFsError(err, 'mkdir', '/var/lib/ratls/sim')
 *   // "mkdir /var/lib/ratls/sim failed with EACCES (permission denied): /var/lib/ratls belongs to
 *   //  uid 1000, gid 1000, mode 0755, and ratls runs as uid 0, gid 0 without CAP_DAC_OVERRIDE, so
 *   //  only those mode bits count. Make it writable for uid 0 (chown or chmod) or run as its owner."
 */
export async function explainFsError(err: unknown, op: string, path: string): Promise<string> {
  const e = err as NodeJS.ErrnoException;
  const code = typeof e?.code === 'string' ? e.code : undefined;
  const head = `${op} ${path} failed${code ? ` with ${code}` : ''}`;
  if (code !== 'EACCES' && code !== 'EPERM' && code !== 'EROFS') {
    return `${head}: ${e instanceof Error ? e.message : String(err)}.`;
  }
  if (code === 'EROFS') return `${head} (read-only file system): mount a writable volume there.`;
  const uid = process.getuid?.();
  const gid = process.getgid?.();
  const at = await nearestExisting(path);
  if (uid === undefined || !at) return `${head} (permission denied).`;
  const dac = await hasDacOverride();
  const who = `ratls runs as uid ${uid}, gid ${gid}${uid === 0 && dac === false ? ' without CAP_DAC_OVERRIDE, so only those mode bits count' : ''}`;
  return (
    `${head} (permission denied): ${at.path} belongs to uid ${at.uid}, gid ${at.gid}, mode ${at.mode.toString(8).padStart(4, '0')}, and ${who}. ` +
    `Make it writable for uid ${uid} (chown or chmod) or run as its owner.`
  );
}
