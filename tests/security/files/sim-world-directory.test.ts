/**
 * `ratls sim init --dir DIR` writes private keys and certificates into DIR. It used to follow
 * symbolic links: pointed at a directory another user controls, it wrote through a link the
 * attacker had planted there and overwrote the file the link pointed at. Now the world directory
 * must be this user's own (not a link, not writable by others, under directories others cannot
 * write), and every file is created afresh and renamed into place, never written through a link.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  chmodSync,
  chownSync,
  existsSync,
  lchownSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli } from '../../helpers/cli.ts';
import { initSimulatedWorld, loadWorld } from '../../../src/tee/simulated/world.ts';

/** Planting files as another user needs root; the refusals that need no other user run everywhere. */
const asRoot = process.getuid?.() === 0;
const OTHER = 4242;

let base: string;
let victim: string;
const VICTIM_TEXT = 'precious data of the user running ratls\n';

beforeAll(() => {
  base = mkdtempSync(join(tmpdir(), 'ratls-sim-links-'));
  chmodSync(base, 0o755);
  victim = join(base, 'victim.txt');
  writeFileSync(victim, VICTIM_TEXT, { mode: 0o600 });
});
afterAll(() => rmSync(base, { recursive: true, force: true }));

const victimIntact = () => expect(readFileSync(victim, 'utf8')).toBe(VICTIM_TEXT);

describe('ratls sim init --dir: directories and links others control', () => {
  it.runIf(asRoot)('refuses a directory another user made (with a link to a file of ours planted in it)', async () => {
    const dir = join(base, 'theirs');
    mkdirSync(dir, { mode: 0o777 });
    chmodSync(dir, 0o777);
    chownSync(dir, OTHER, OTHER);
    symlinkSync(victim, join(dir, 'root.pem'));
    lchownSync(join(dir, 'root.pem'), OTHER, OTHER);
    const r = await runCli('sim', 'init', '--dir', dir);
    expect(r.code).toBe(2);
    expect(r.err).toContain('PATH_UNTRUSTED');
    expect(r.err).toContain(`belongs to uid ${OTHER}`);
    victimIntact();
    expect(readdirSync(dir)).toEqual(['root.pem']);
  });

  it('refuses a world directory that is a symbolic link (planted in /tmp, pointing at a directory of ours)', async () => {
    const ours = join(base, 'ours');
    mkdirSync(ours, { mode: 0o700 });
    const link = join(base, 'shared-sim');
    symlinkSync(ours, link);
    const r = await runCli('sim', 'init', '--dir', link);
    expect(r.code).toBe(2);
    expect(r.err).toContain('PATH_UNTRUSTED');
    expect(r.err).toContain('is a symbolic link');
    expect(readdirSync(ours)).toEqual([]);
  });

  it('refuses a world directory every user can write to, and one below such a directory', async () => {
    const open = join(base, 'open');
    mkdirSync(open);
    chmodSync(open, 0o777);
    let r = await runCli('sim', 'init', '--dir', open);
    expect(r.code).toBe(2);
    expect(r.err).toContain('is writable by every user (mode 0777)');
    r = await runCli('sim', 'init', '--dir', join(open, 'sim'));
    expect(r.code).toBe(2);
    expect(r.err).toContain(`lies in ${open}, which is writable by every user`);
  });

  it('never writes through a link found in its own directory: the link is replaced, its target untouched', async () => {
    const dir = join(base, 'mine');
    mkdirSync(dir, { mode: 0o700 });
    for (const f of ['root.pem', 'root.key', 'pck.pem', 'README.txt', '.gitignore']) symlinkSync(victim, join(dir, f));
    const info = await initSimulatedWorld(dir);
    expect(info.created).toBe(true);
    victimIntact();
    for (const f of ['root.pem', 'root.key', 'pck.pem', 'README.txt', '.gitignore']) expect(lstatSync(join(dir, f)).isSymbolicLink(), f).toBe(false);
    expect(lstatSync(join(dir, 'root.key')).mode & 0o777).toBe(0o600);
    await expect(loadWorld(dir)).resolves.toMatchObject({ dir });
  });

  it('does not take a planted world.json link for an existing world', async () => {
    const dir = join(base, 'planted-world');
    mkdirSync(dir, { mode: 0o700 });
    symlinkSync(victim, join(dir, 'world.json'));
    const r = await runCli('sim', 'init', '--dir', dir);
    expect(r.code).toBe(2);
    expect(r.err).toContain(`${join(dir, 'world.json')} is a symbolic link`);
    victimIntact();
  });

  it('does not load a world whose key file was replaced by a link', async () => {
    const dir = join(base, 'loaded');
    await initSimulatedWorld(dir);
    rmSync(join(dir, 'attestation.key'));
    symlinkSync(victim, join(dir, 'attestation.key'));
    await expect(loadWorld(dir)).rejects.toMatchObject({ code: 'PATH_UNTRUSTED' });
  });

  it('creates a world in a fresh directory (baseline)', async () => {
    const dir = join(base, 'fresh', 'sim');
    const r = await runCli('sim', 'init', '--dir', dir);
    expect(r.code, r.err).toBe(0);
    expect(existsSync(join(dir, 'world.json'))).toBe(true);
    expect(lstatSync(dir).mode & 0o777).toBe(0o700);
  });
});
