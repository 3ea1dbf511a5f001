/** The rules of src/core/trusted-path.ts, one by one (the attacks they stop: tests/security/files, service, collateral). */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chmodSync, chownSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { checkTrustedDirectory, distrust, ensureTrustedDirectory, readTrustedFile } from '../../src/core/trusted-path.ts';

const asRoot = process.getuid?.() === 0;
let base: string;
beforeAll(() => {
  base = mkdtempSync(join(tmpdir(), 'ratls-trust-'));
  chmodSync(base, 0o755);
});
afterAll(() => rmSync(base, { recursive: true, force: true }));

const dir = (name: string, mode = 0o700): string => {
  const p = join(base, name);
  mkdirSync(p, { recursive: true });
  chmodSync(p, mode);
  return p;
};
const file = (path: string, mode = 0o644): string => {
  writeFileSync(path, 'x');
  chmodSync(path, mode);
  return path;
};
const STATE = { kind: 'state' } as const;
const CONFIG = { kind: 'config' } as const;

describe('trusted paths', () => {
  it('trusts a directory and a file of our own that only we can write', () => {
    expect(distrust(dir('own'), 'directory', STATE)).toBeUndefined();
    expect(readTrustedFile(file(join(dir('own'), 'f')), { what: 'test file', ...STATE }).toString()).toBe('x');
  });

  it('trusts what lies in a sticky world-writable directory (as /tmp), not in a plain world-writable one', () => {
    const sticky = dir('sticky', 0o1777);
    expect(distrust(dir('sticky/inner'), 'directory', STATE)).toBeUndefined();
    const open = dir('open', 0o777);
    expect(distrust(dir('open/inner'), 'directory', STATE)?.problem).toBe(`lies in ${open}, which is writable by every user (mode 0777)`);
    expect(sticky).toBeDefined();
  });

  it('refuses a target writable by every user, even with the sticky bit', () => {
    expect(distrust(dir('ww-sticky', 0o1777), 'directory', STATE)?.problem).toBe('is writable by every user (mode 1777)');
  });

  it('tolerates group write by our own group (per-user groups, umask 002)', () => {
    expect(distrust(file(join(dir('gw'), 'f'), 0o664), 'file', CONFIG)).toBeUndefined();
  });

  it('private: refuses group or other access', () => {
    expect(distrust(file(join(dir('priv'), 'key'), 0o640), 'file', { ...STATE, private: true })?.problem).toBe('is accessible to group or others (mode 0640)');
    expect(distrust(file(join(dir('priv'), 'key2'), 0o600), 'file', { ...STATE, private: true })).toBeUndefined();
  });

  it('state: never a symbolic link at the last component; config: links of our own are followed', () => {
    const target = file(join(dir('links'), 'real'));
    symlinkSync(target, join(base, 'links', 'link'));
    expect(distrust(join(base, 'links', 'link'), 'file', STATE)?.problem).toBe('is a symbolic link');
    expect(distrust(join(base, 'links', 'link'), 'file', CONFIG)).toBeUndefined();
    expect(() => readTrustedFile(join(base, 'links', 'link'), { what: 'state file', ...STATE })).toThrow(expect.objectContaining({ code: 'PATH_UNTRUSTED' }));
  });

  it('wrong type: a file where a directory is expected and the other way round', () => {
    expect(distrust(file(join(dir('types'), 'f')), 'directory', STATE)?.problem).toBe('is not a directory');
    expect(distrust(dir('types/d'), 'file', CONFIG)?.problem).toBe('is not a regular file');
  });

  it('file system errors come through as they are (a missing file is not "untrusted")', () => {
    expect(() => distrust(join(base, 'missing'), 'file', CONFIG)).toThrow(expect.objectContaining({ code: 'ENOENT' }));
  });

  it('ensureTrustedDirectory creates 0700 and checks; the code of the error is the caller’s', () => {
    const p = join(base, 'made', 'deeper');
    ensureTrustedDirectory(p, { what: 'state directory', ...STATE });
    expect(distrust(p, 'directory', { ...STATE, private: true })).toBeUndefined();
    chmodSync(p, 0o777);
    expect(() => checkTrustedDirectory(p, { what: 'state directory', ...STATE, code: 'STATE_DIR_UNUSABLE' })).toThrow(
      expect.objectContaining({
        code: 'STATE_DIR_UNUSABLE',
        message: `The state directory ${p} is writable by every user (mode 0777). They could add, remove or replace what is in it. Remove that write access (chmod go-w ${p}).`,
      }),
    );
  });

  it.runIf(asRoot)('owner: state must be ours; configuration ours or root’s; a link owned by another user is refused', () => {
    const theirs = dir('theirs');
    chownSync(theirs, 4242, 4242);
    expect(distrust(theirs, 'directory', STATE)?.problem).toBe(`belongs to uid 4242, but ratls runs as uid 0`);
    expect(distrust(theirs, 'directory', CONFIG)?.problem).toBe(`belongs to uid 4242, but ratls runs as uid 0`);
    const g = file(join(dir('foreign-group'), 'f'), 0o664);
    chownSync(g, 0, 4242);
    expect(distrust(g, 'file', CONFIG)?.problem).toBe('is writable by group 4242 (mode 0664)');
  });
});
