/**
 * The state directories `ratls serve` makes and probes before it starts (src/proxy/state-dirs.ts).
 * Permission cases under other users and without capabilities: tests/deploy/state-permissions.test.ts.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, rm, stat, writeFile, readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defaultServeConfig, type ServeConfig } from '../../src/proxy/config.ts';
import { explainFsError, prepareStateDirs, stateDirsFor } from '../../src/proxy/state-dirs.ts';
import { RatlsError } from '../../src/core/errors.ts';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ratls-state-dirs-'));
});
afterAll(() => rm(dir, { recursive: true, force: true }));

function config(provider: ServeConfig['evidence']['provider'], cacheDir?: string): ServeConfig {
  const c = defaultServeConfig();
  c.evidence.provider = provider;
  c.evidence.simDir = join(dir, provider, 'sim');
  if (cacheDir) c.collateral.cacheDir = cacheDir;
  return c;
}

describe('state directories of ratls serve', () => {
  it('are the world for the simulated provider, the collateral cache for a real one', () => {
    expect(stateDirsFor(config('simulated', '/x/cache')).map((d) => d.purpose)).toEqual(['simulated TDX world']);
    expect(stateDirsFor(config('configfs-tsm', '/x/cache')).map((d) => d.path)).toEqual(['/x/cache']);
    expect(stateDirsFor(config('configfs-tsm'))).toEqual([]);
    const unstapled = config('configfs-tsm', '/x/cache');
    unstapled.tls.stapleCollateral = false;
    expect(stateDirsFor(unstapled)).toEqual([]);
  });

  it('are created 0700 with their parents and left without the write probe', async () => {
    const c = config('simulated');
    await prepareStateDirs(c);
    expect((await stat(c.evidence.simDir)).mode & 0o777).toBe(0o700);
    expect(await readdir(c.evidence.simDir)).toEqual([]);
    await prepareStateDirs(c); // an existing directory is fine
  });

  it('refuse a path that is a file, naming the path and the operation', async () => {
    const file = join(dir, 'a-file');
    await writeFile(file, 'x');
    const err = await prepareStateDirs(config('configfs-tsm', join(file, 'cache'))).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RatlsError);
    expect((err as RatlsError).code).toBe('STATE_DIR_UNUSABLE');
    expect((err as RatlsError).message).toContain(
      `Cannot use ${join(file, 'cache')} as the collateral cache: mkdir ${join(file, 'cache')} failed with ENOTDIR`,
    );
    expect((err as RatlsError).message).toContain('collateral.cacheDir (RATLS_COLLATERAL_CACHE_DIR)');
  });
});

describe('explainFsError', () => {
  it('says which operation on which path failed, and why', async () => {
    const enoent = Object.assign(new Error('ENOENT: no such file or directory'), { code: 'ENOENT' });
    expect(await explainFsError(enoent, 'open', '/nowhere/x')).toBe('open /nowhere/x failed with ENOENT: ENOENT: no such file or directory.');
    const erofs = Object.assign(new Error('EROFS'), { code: 'EROFS' });
    expect(await explainFsError(erofs, 'mkdir', '/app/x')).toBe('mkdir /app/x failed with EROFS (read-only file system): mount a writable volume there.');
  });

  it('names owner, mode and user for a permission error', async () => {
    const eacces = Object.assign(new Error('EACCES'), { code: 'EACCES' });
    const msg = await explainFsError(eacces, 'mkdir', join(dir, 'missing', 'deeper'));
    const st = await stat(dir);
    expect(msg).toContain(`${dir} belongs to uid ${st.uid}, gid ${st.gid}, mode 0700, and ratls runs as uid ${process.getuid!()}`);
  });
});
