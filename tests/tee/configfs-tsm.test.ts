/**
 * configfs-tsm against prepared directory trees. What this proves: the provider speaks the
 * protocol (mkdir entry, check provider, write inblob, read outblob, generation check, rmdir),
 * fails closed on a wrong provider or a racing writer, and never leaves entries behind. What it
 * cannot prove: that a real kernel behaves like the fake (only a TDX guest can show that), nor
 * anything about the quote's contents, which the kernel and the TDX module produce.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { mkdtemp, mkdir, readFile, readdir, rm, writeFile, rmdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { ConfigfsTsmProvider, configfsTsmAvailable, type TsmFs } from '../../src/tee/configfs-tsm.ts';
import { selectEvidenceProvider } from '../../src/tee/select.ts';
import { RatlsError } from '../../src/core/errors.ts';

let root: string;
beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'ratls-tsm-'));
  await mkdir(join(root, 'report'));
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

/**
 * A fake kernel over a plain directory: mkdir populates provider/generation, a write to inblob
 * bumps generation and makes outblob "QUOTE:" + inblob. `extraBumps` simulates a racing writer.
 */
function fakeKernel(opts: { provider?: string; extraBumps?: number; emptyOutblob?: boolean } = {}): TsmFs & { writes: number } {
  const fs = {
    writes: 0,
    async mkdir(p: string) {
      await mkdir(p);
      await writeFile(join(p, 'provider'), `${opts.provider ?? 'tdx_guest'}\n`);
      await writeFile(join(p, 'generation'), '0\n');
    },
    readFile: async (p: string) => new Uint8Array(await readFile(p)),
    async writeFile(p: string, d: Uint8Array) {
      fs.writes++;
      const dir = dirname(p);
      const gen = Number((await readFile(join(dir, 'generation'), 'utf8')).trim());
      await writeFile(p, d);
      await writeFile(join(dir, 'outblob'), opts.emptyOutblob ? new Uint8Array(0) : Buffer.concat([Buffer.from('QUOTE:'), d]));
      await writeFile(join(dir, 'generation'), `${gen + 1 + (opts.extraBumps ?? 0)}\n`);
    },
    async rmdir(p: string) {
      await rm(p, { recursive: true });
    },
  };
  return fs;
}

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'resolved';
  } catch (e) {
    return e instanceof RatlsError ? e.code : `not RatlsError: ${String(e)}`;
  }
}

const rd = new Uint8Array(64).map((_, i) => i);

describe('configfs-tsm provider', () => {
  it('writes REPORTDATA to inblob, returns outblob and removes its entry', async () => {
    const p = new ConfigfsTsmProvider({ root, fs: fakeKernel() });
    const q = await p.getQuote(rd);
    expect(Buffer.from(q).subarray(0, 6).toString()).toBe('QUOTE:');
    expect(q.subarray(6)).toEqual(rd);
    expect(await readdir(join(root, 'report'))).toEqual([]);
    expect(p.simulated).toBe(false);
    expect(p.name).toBe('configfs-tsm');
  });

  it('refuses a provider other than tdx_guest', async () => {
    const p = new ConfigfsTsmProvider({ root, fs: fakeKernel({ provider: 'sev_guest' }) });
    await expect(p.getQuote(rd)).rejects.toThrow(/sev_guest/);
    expect(await codeOf(p.getQuote(rd))).toBe('EVIDENCE_PROVIDER_UNAVAILABLE');
  });

  it('retries when generation moved by more than our write, then fails closed', async () => {
    const k = fakeKernel({ extraBumps: 1 });
    const p = new ConfigfsTsmProvider({ root, fs: k, maxAttempts: 3 });
    const err = await p.getQuote(rd).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RatlsError);
    expect((err as RatlsError).code).toBe('EVIDENCE_PROVIDER_FAILED');
    expect((err as RatlsError).message).toMatch(/raced .*3 times/);
    expect(k.writes).toBe(3);
    expect(await readdir(join(root, 'report'))).toEqual([]);
  });

  it('fails closed on an empty outblob and on wrong REPORTDATA sizes', async () => {
    expect(await codeOf(new ConfigfsTsmProvider({ root, fs: fakeKernel({ emptyOutblob: true }) }).getQuote(rd))).toBe('EVIDENCE_PROVIDER_FAILED');
    expect(await codeOf(new ConfigfsTsmProvider({ root, fs: fakeKernel() }).getQuote(new Uint8Array(32)))).toBe('EVIDENCE_PROVIDER_FAILED');
  });

  it('with the real file system on a plain directory (no kernel), generation never moves: fails closed', async () => {
    // Plain mkdir creates an empty entry: no provider file. The provider must not hang or return garbage.
    const p = new ConfigfsTsmProvider({ root });
    expect(await codeOf(p.getQuote(rd))).toBe('EVIDENCE_PROVIDER_FAILED');
  });

  it('reports an unavailable root clearly', async () => {
    const p = new ConfigfsTsmProvider({ root: join(root, 'nope') });
    const err = (await p.getQuote(rd).catch((e: unknown) => e)) as RatlsError;
    expect(err.code).toBe('EVIDENCE_PROVIDER_UNAVAILABLE');
    expect(err.message).toMatch(/TDX guest/);
  });
});

describe('selectEvidenceProvider', () => {
  it('picks configfs-tsm when <root>/report exists', async () => {
    expect(await configfsTsmAvailable(root)).toBe(true);
    const p = await selectEvidenceProvider({ configfsRoot: root });
    expect(p.name).toBe('configfs-tsm');
  });

  it('refuses without configfs-tsm unless simulation is asked for, and says how', async () => {
    await rmdir(join(root, 'report'));
    const err = (await selectEvidenceProvider({ configfsRoot: root }).catch((e: unknown) => e)) as RatlsError;
    expect(err.code).toBe('EVIDENCE_PROVIDER_UNAVAILABLE');
    expect(err.message).toMatch(/--simulate/);
    expect(await codeOf(selectEvidenceProvider({ simulate: true }))).toBe('EVIDENCE_PROVIDER_UNAVAILABLE');
    const sim = await selectEvidenceProvider({ simulate: true, simDir: join(root, 'world'), configfsRoot: root });
    expect(sim.name).toBe('simulated');
    expect(sim.simulated).toBe(true);
  });
});
