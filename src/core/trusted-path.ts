/**
 * Files and directories ratls lets decide what it does: its state (signing keys, the simulated
 * world, the collateral cache) and its configuration (config files, policies, trusted roots, the
 * admin token). Whoever can write one of them controls the process, so each is used only when no
 * other user could have written it or could swap it:
 *
 * - it is owned by this process's user (state), or by this user or root (configuration);
 * - it is writable by nobody else: not by every user, and by its group only when that group is this
 *   process's own group or root's (per-user groups with umask 002 leave one's own files
 *   group-writable);
 * - no directory above it is writable by anybody else (unless sticky, as /tmp: others cannot
 *   rename or delete what is ours there), so it cannot be replaced;
 * - state is never reached through a symbolic link at its last component, and a symbolic link on
 *   the way to any of them belongs to this user or root (as Linux's protected_symlinks requires in
 *   sticky directories);
 * - private ones (keys, tokens) are not readable by group or others either.
 *
 * Checks are synchronous (policy loading is) and cost a few stat calls. On Windows, or where the
 * process has no uid, nothing is checked. Node-only.
 */
import { closeSync, constants, fstatSync, lstatSync, openSync, readFileSync, realpathSync, statSync, mkdirSync, type Stats } from 'node:fs';
import { dirname, join, parse, resolve, sep } from 'node:path';
import { RatlsError, type ErrorCode } from './errors.ts';

/** How a path is trusted. */
export interface TrustOptions {
  /** What the path is, in messages: "policy file", "signing key directory". */
  what: string;
  /**
   * 'state': written by this process, owned by its user, never a symbolic link. 'config':
   * installed by an administrator, owned by this user or root; symbolic links owned by them are
   * followed.
   */
  kind: 'state' | 'config';
  /** Not readable by group or others either (private keys, tokens). */
  private?: boolean;
  /** Code of the RatlsError thrown. Default PATH_UNTRUSTED. */
  code?: ErrorCode;
}

/** Why a path is not trusted: what is wrong and what to do about it. */
export interface Distrust {
  problem: string;
  fix: string;
}

const mode = (st: Stats): string => (st.mode & 0o7777).toString(8).padStart(4, '0');

/** Who besides the owner can write `st`, or undefined when nobody can. */
function otherWriters(st: Stats, gid: number): string | undefined {
  if (st.mode & 0o002) return 'every user';
  if (st.mode & 0o020 && st.gid !== gid && st.gid !== 0) return `group ${st.gid}`;
  return undefined;
}

/**
 * Why `path` (a 'directory' or 'file') is not trusted under `opts`, or undefined when it is.
 * Errors of the file system (ENOENT, EACCES) are thrown as they are.
 */
export function distrust(path: string, type: 'directory' | 'file', opts: Pick<TrustOptions, 'kind' | 'private'>): Distrust | undefined {
  const uid = process.getuid?.();
  const gid = process.getgid?.();
  if (process.platform === 'win32' || uid === undefined || gid === undefined) return undefined;
  const abs = resolve(path);
  const owners = opts.kind === 'state' ? `uid ${uid}` : uid === 0 ? 'root' : `uid ${uid} or root`;

  // Symbolic links on the way, as written.
  const root = parse(abs).root;
  const parts = abs.slice(root.length).split(sep).filter(Boolean);
  let at = root;
  for (let i = 0; i < parts.length; i++) {
    at = join(at, parts[i]!);
    const l = lstatSync(at);
    if (!l.isSymbolicLink()) continue;
    if (i === parts.length - 1 && opts.kind === 'state') {
      return {
        problem: 'is a symbolic link',
        fix: `Whoever can change where it points could make ratls write or read elsewhere. Remove the link, or use what it points to (${realpathSync(abs)}) directly.`,
      };
    }
    if (l.uid !== uid && l.uid !== 0) {
      return {
        problem: `is reached through the symbolic link ${at}, which belongs to uid ${l.uid}`,
        fix: `That user decides where it leads. Use the real path (${realpathSync(abs)}) or a link owned by ${owners}.`,
      };
    }
  }

  // The path itself.
  const real = realpathSync(abs);
  const st = statSync(real);
  if (type === 'directory' && !st.isDirectory()) return { problem: 'is not a directory', fix: 'Point the setting at a directory.' };
  if (type === 'file' && !st.isFile()) return { problem: 'is not a regular file', fix: 'Point the setting at a file.' };
  const ownedOk = st.uid === uid || (opts.kind === 'config' && st.uid === 0);
  if (!ownedOk) {
    return {
      problem: `belongs to uid ${st.uid}, but ratls runs as uid ${uid}`,
      fix:
        opts.kind === 'state'
          ? `Only what its own user owns is trusted with its state. Give it to uid ${uid} (chown -R ${uid} ${abs}) or remove it so that it is created again.`
          : `Another user could change it at will. Make it belong to ${owners} (chown), or copy it to a file that does.`,
    };
  }
  const writers = otherWriters(st, gid);
  if (writers) {
    return {
      problem: `is writable by ${writers} (mode ${mode(st)})`,
      fix: `${type === 'directory' ? 'They could add, remove or replace what is in it' : 'They could change what it says'}. Remove that write access (chmod go-w ${abs}).`,
    };
  }
  if (opts.private && st.mode & 0o077) {
    return {
      problem: `is accessible to group or others (mode ${mode(st)})`,
      fix: `It holds secrets: chmod ${type === 'directory' ? '700' : '600'} ${abs}, and replace what is in it if others may have read it.`,
    };
  }

  // Every directory above it: whoever can write one could swap what is below it.
  for (let dir = dirname(real); ; dir = dirname(dir)) {
    const d = statSync(dir);
    const w = (d.mode & 0o1000) === 0 ? otherWriters(d, gid) : undefined;
    if (w) {
      return {
        problem: `lies in ${dir}, which is writable by ${w} (mode ${mode(d)})`,
        fix: `They could replace it. Remove that write access (chmod go-w ${dir}, or set the sticky bit as /tmp has) or use a path under directories only their owners can write.`,
      };
    }
    if (dirname(dir) === dir) break;
  }
  return undefined;
}

function refuse(path: string, d: Distrust, opts: TrustOptions): RatlsError {
  return new RatlsError(opts.code ?? 'PATH_UNTRUSTED', `The ${opts.what} ${path} ${d.problem}. ${d.fix}`);
}

/**
 * Throws unless `path` is a directory trusted under `opts`.
 * @throws RatlsError (opts.code, default PATH_UNTRUSTED) naming the problem and the fix; file
 *   system errors (ENOENT, EACCES) as they are.
 */
export function checkTrustedDirectory(path: string, opts: TrustOptions): void {
  const d = distrust(path, 'directory', opts);
  if (d) throw refuse(path, d, opts);
}

/**
 * Creates `path` (mode 0700, parents too) unless it exists, then checks it as
 * {@link checkTrustedDirectory} does. mkdir never replaces anything, and the check sees what is
 * there, whoever made it.
 * @example
 *   ensureTrustedDirectory('.ratls/sim', { what: 'simulated TDX world', kind: 'state' });
 */
export function ensureTrustedDirectory(path: string, opts: TrustOptions): void {
  mkdirSync(path, { recursive: true, mode: 0o700 });
  checkTrustedDirectory(path, opts);
}

/**
 * Reads a file trusted under `opts`. State files are opened with O_NOFOLLOW; the opened file is
 * checked again (owner, type, mode), so a file swapped after the path check is not read.
 * @throws RatlsError (opts.code, default PATH_UNTRUSTED); file system errors as they are.
 * @example
 *   const text = readTrustedFile('/etc/ratls/policy.yaml', { what: 'policy file', kind: 'config' }).toString('utf8');
 */
export function readTrustedFile(path: string, opts: TrustOptions): Buffer {
  const d = distrust(path, 'file', opts);
  if (d) throw refuse(path, d, opts);
  const noFollow = opts.kind === 'state' && process.platform !== 'win32' ? constants.O_NOFOLLOW : 0;
  const fd = openSync(path, constants.O_RDONLY | noFollow);
  try {
    const uid = process.getuid?.();
    const gid = process.getgid?.();
    if (uid !== undefined && gid !== undefined && process.platform !== 'win32') {
      const st = fstatSync(fd);
      const again = !st.isFile() || !(st.uid === uid || (opts.kind === 'config' && st.uid === 0)) || otherWriters(st, gid) || (opts.private && st.mode & 0o077);
      if (again) throw refuse(path, { problem: 'changed while it was being opened', fix: 'Check who else writes to it.' }, opts);
    }
    return readFileSync(fd);
  } finally {
    closeSync(fd);
  }
}
