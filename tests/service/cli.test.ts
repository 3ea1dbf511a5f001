/** `ratls attest-service` as a user runs it: a child process, real HTTP, SIGTERM to stop. */
import { describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { loadManifest, readTestFile, TESTDATA_DIR } from '../helpers/testdata.ts';

const BIN = resolve(import.meta.dirname, '../../bin/ratls');

describe('ratls attest-service (CLI)', () => {
  it('starts, creates a 0600 key, verifies a genuine quote at --verify-at, and stops on SIGTERM', async () => {
    const d = mkdtempSync(join(tmpdir(), 'ratls-svc-cli-'));
    const q = loadManifest().quotes.find((x) => x.id === 'v4-b0c06f000000-dcapqvl.dat')!;
    const child = spawn(
      process.execPath,
      [
        BIN,
        'attest-service',
        '--listen',
        '127.0.0.1:0',
        '--key-dir',
        join(d, 'keys'),
        '--offline',
        '--collateral-dir',
        join(TESTDATA_DIR, 'collateral'),
        '--verify-at',
        q.verification_time!.iso,
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    try {
      const url = await new Promise<string>((res, rej) => {
        let out = '';
        child.stdout.on('data', (b: Buffer) => {
          out += b.toString();
          const m = /listening on (http:\/\/\S+)/.exec(out);
          if (m) res(m[1]!);
        });
        child.once('exit', (c) => rej(new Error(`exited ${c}`)));
      });
      const files = readdirSync(join(d, 'keys'));
      expect(files).toHaveLength(1);
      expect(statSync(join(d, 'keys', files[0]!)).mode & 0o777).toBe(0o600);
      expect(statSync(join(d, 'keys')).mode & 0o777).toBe(0o700);
      const r = await fetch(`${url}/v1/attest`, { method: 'POST', body: JSON.stringify({ quote: Buffer.from(readTestFile(q.file)).toString('base64') }) });
      expect(r.status).toBe(200);
      const body = (await r.json()) as { result: { ok: boolean; tcbStatus: string } };
      expect(body.result).toMatchObject({ ok: true, tcbStatus: 'UpToDate' });
      const exited = new Promise<number | null>((res) => child.once('exit', (c) => res(c)));
      child.kill('SIGTERM');
      expect(await exited).toBe(0);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
      rmSync(d, { recursive: true, force: true });
    }
  });

  it('exits 2 with a readable message for a bad --listen', async () => {
    const child = spawn(process.execPath, [BIN, 'attest-service', '--listen', 'nope'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let err = '';
    child.stderr.on('data', (b: Buffer) => (err += b.toString()));
    const code = await new Promise<number | null>((res) => child.once('exit', (c) => res(c)));
    expect(code).toBe(2);
    expect(err).toMatch(/not HOST:PORT/);
  });
});
