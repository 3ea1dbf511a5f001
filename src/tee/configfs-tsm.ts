/**
 * Evidence provider for real TDX guests: the Linux configfs-tsm report interface
 * (Documentation/ABI/testing/configfs-tsm). Node-only.
 *
 *   mkdir <root>/report/<name>       create a report entry
 *   provider                         must read "tdx_guest"
 *   generation                       bumped by the kernel on every write to inblob
 *   inblob  <- 64 bytes REPORTDATA
 *   outblob -> the quote (generated on read)
 *   rmdir <root>/report/<name>
 *
 * A concurrent writer to the same entry would bump generation twice; we then cannot know which
 * inblob the outblob belongs to, so we retry and finally fail closed.
 */
import * as fsp from 'node:fs/promises';
import { access } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { RatlsError } from '../core/errors.ts';
import type { EvidenceProvider } from '../ratls/evidence-provider.ts';

/** Default mount point of configfs-tsm. */
export const DEFAULT_CONFIGFS_TSM_ROOT = '/sys/kernel/config/tsm';

export interface ConfigfsTsmOptions {
  /** configfs-tsm root (default /sys/kernel/config/tsm); tests pass a prepared directory. */
  root?: string;
  /** Attempts before giving up when generation moves unexpectedly (default 3). */
  maxAttempts?: number;
  /** Expected provider name (default "tdx_guest"). */
  expectedProvider?: string;
  /**
   * File operations (default node:fs/promises). Tests substitute a wrapper that does what the
   * kernel would (populate the entry on mkdir, bump generation on write) over a plain directory.
   */
  fs?: TsmFs;
}

/** The four file operations the TSM protocol needs. */
export interface TsmFs {
  mkdir(path: string): Promise<unknown>;
  readFile(path: string): Promise<Uint8Array>;
  writeFile(path: string, data: Uint8Array): Promise<void>;
  rmdir(path: string): Promise<void>;
}

const nodeFs: TsmFs = {
  mkdir: (p) => fsp.mkdir(p),
  readFile: async (p) => new Uint8Array(await fsp.readFile(p)),
  writeFile: (p, d) => fsp.writeFile(p, d),
  rmdir: (p) => fsp.rmdir(p),
};
const utf8 = new TextDecoder();

/** True when `<root>/report` exists (the kernel exposes configfs-tsm). */
export async function configfsTsmAvailable(root: string = DEFAULT_CONFIGFS_TSM_ROOT): Promise<boolean> {
  try {
    await access(join(root, 'report'));
    return true;
  } catch {
    return false;
  }
}

async function readGeneration(fs: TsmFs, dir: string): Promise<number> {
  const raw = utf8.decode(await fs.readFile(join(dir, 'generation'))).trim();
  if (!/^\d+$/.test(raw)) {
    throw new RatlsError('EVIDENCE_PROVIDER_FAILED', `configfs-tsm: ${join(dir, 'generation')} does not hold a number ("${raw.slice(0, 20)}").`);
  }
  return Number(raw);
}

/** Evidence provider backed by configfs-tsm. */
export class ConfigfsTsmProvider implements EvidenceProvider {
  readonly name = 'configfs-tsm';
  readonly simulated = false;
  readonly root: string;
  private readonly maxAttempts: number;
  private readonly expectedProvider: string;
  private readonly fs: TsmFs;

  constructor(opts: ConfigfsTsmOptions = {}) {
    this.root = opts.root ?? DEFAULT_CONFIGFS_TSM_ROOT;
    this.maxAttempts = Math.max(1, opts.maxAttempts ?? 3);
    this.expectedProvider = opts.expectedProvider ?? 'tdx_guest';
    this.fs = opts.fs ?? nodeFs;
  }

  /** Produces a TDX quote whose REPORTDATA is the 64 given bytes. */
  async getQuote(reportData: Uint8Array): Promise<Uint8Array> {
    if (reportData.length !== 64) {
      throw new RatlsError('EVIDENCE_PROVIDER_FAILED', `REPORTDATA must be exactly 64 bytes, got ${reportData.length}.`);
    }
    let lastGen = '';
    for (let attempt = 1; attempt <= this.maxAttempts; attempt++) {
      const dir = join(this.root, 'report', `ratls-${process.pid}-${randomBytes(6).toString('hex')}`);
      try {
        await this.fs.mkdir(dir);
      } catch (err) {
        throw new RatlsError(
          'EVIDENCE_PROVIDER_UNAVAILABLE',
          `configfs-tsm: cannot create a report entry under ${join(this.root, 'report')} (${(err as NodeJS.ErrnoException).code ?? String(err)}); is this a TDX guest with configfs mounted, and do you have permission?`,
        );
      }
      try {
        const provider = utf8.decode(await this.fs.readFile(join(dir, 'provider'))).trim();
        if (provider !== this.expectedProvider) {
          throw new RatlsError(
            'EVIDENCE_PROVIDER_UNAVAILABLE',
            `configfs-tsm: provider is "${provider.slice(0, 40)}", expected "${this.expectedProvider}"; this is not a TDX guest.`,
          );
        }
        const before = await readGeneration(this.fs, dir);
        await this.fs.writeFile(join(dir, 'inblob'), reportData);
        const quote = await this.fs.readFile(join(dir, 'outblob'));
        const after = await readGeneration(this.fs, dir);
        // Exactly one write happened in between, ours; anything else means a racing writer.
        if (after === before + 1 && quote.length > 0) return quote;
        if (quote.length === 0 && after === before + 1) {
          throw new RatlsError('EVIDENCE_PROVIDER_FAILED', 'configfs-tsm: outblob was empty; the kernel produced no quote.');
        }
        lastGen = `generation ${before} -> ${after}`;
      } catch (err) {
        if (err instanceof RatlsError) throw err;
        throw new RatlsError('EVIDENCE_PROVIDER_FAILED', `configfs-tsm: report entry ${dir} failed (${(err as NodeJS.ErrnoException).code ?? String(err)}).`);
      } finally {
        await this.fs.rmdir(dir).catch(() => undefined);
      }
    }
    throw new RatlsError(
      'EVIDENCE_PROVIDER_FAILED',
      `configfs-tsm: another writer raced on the report entry ${this.maxAttempts} times (${lastGen}); the quote cannot be trusted to carry our REPORTDATA.`,
    );
  }
}
