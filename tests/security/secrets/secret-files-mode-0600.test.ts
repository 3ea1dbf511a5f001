import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chmod, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeSecretFile } from '../../../src/core/secret-file.ts';
import { runCli } from '../../helpers/cli.ts';

const run = runCli;

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ratls-secret-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('secret files end mode 0600', () => {
  it('writeSecretFile replaces an existing 0644 file and leaves no temp file', async () => {
    const p = join(dir, 'unit.pem');
    await writeFile(p, 'old', { mode: 0o644 });
    await chmod(p, 0o644);
    await writeSecretFile(p, 'secret');
    expect((await stat(p)).mode & 0o777).toBe(0o600);
    expect(await readFile(p, 'utf8')).toBe('secret');
    expect((await readdir(dir)).filter((n) => n.includes('tmp'))).toEqual([]);
  });

  it('ratls cert issue --out-key over an existing 0644 file leaves it 0600', async () => {
    const key = join(dir, 'k.pem');
    await writeFile(key, 'placeholder\n', { mode: 0o644 });
    await chmod(key, 0o644);
    const r = await run(
      'cert',
      'issue',
      '--simulate',
      '--sim-dir',
      join(dir, 'world'),
      '--out-cert',
      join(dir, 'c.pem'),
      '--out-key',
      key,
      '--host',
      'localhost',
    );
    expect(r.code).toBe(0);
    expect((await stat(key)).mode & 0o777).toBe(0o600);
    expect(await readFile(key, 'utf8')).toMatch(/BEGIN PRIVATE KEY/);
  });
});
