/**
 * Disk cache in front of another source (normally PCCS/PCS). One JSON file per (FMSPC, PCK CA),
 * written atomically, so it survives restarts and concurrent readers never see half a file.
 * An entry is served only while `now` is before the earliest nextUpdate of its four parts; after
 * that the upstream is asked again. What is cached is exactly what the upstream served: the
 * verifier checks its signatures on every use, so a bad entry can block but never pass. To keep
 * others from planting entries that block (or that pin an older, still-signed TCB info), entries are
 * read only from a directory and files this user owns and nobody else can write or swap (not a
 * symbolic link, no parent writable by others: src/core/trusted-path.ts), and nothing is written
 * into any other directory.
 */
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { distrust, readTrustedFile } from '../core/trusted-path.ts';
import type { Collateral } from '../core/types.ts';
import { collateralMatches } from './inspect.ts';
import { fromBase64, toBase64 } from '../core/bytes.ts';
import type { CollateralRequest, CollateralSource } from './types.ts';

interface CacheRecord {
  format: 'ratls-collateral-cache/1';
  savedAt: string;
  source: string;
  tcbInfoJson: string;
  tcbInfoIssuerChain: string;
  qeIdentityJson: string;
  qeIdentityIssuerChain: string;
  pckCrl: string;
  pckCrlIssuerChain: string;
  rootCaCrl: string;
}

function decodeRecord(text: string): Collateral | undefined {
  try {
    const r = JSON.parse(text) as Partial<CacheRecord>;
    if (r.format !== 'ratls-collateral-cache/1') return undefined;
    const strings = [r.tcbInfoJson, r.tcbInfoIssuerChain, r.qeIdentityJson, r.qeIdentityIssuerChain, r.pckCrl, r.pckCrlIssuerChain, r.rootCaCrl];
    if (!strings.every((s) => typeof s === 'string')) return undefined;
    // a CRL that is not well-formed base64 makes the entry corrupt: a miss, not garbage bytes
    const pckCrl = fromBase64(r.pckCrl!);
    const rootCaCrl = fromBase64(r.rootCaCrl!);
    if (!pckCrl || !rootCaCrl) return undefined;
    return {
      tcbInfoJson: r.tcbInfoJson!,
      tcbInfoIssuerChain: r.tcbInfoIssuerChain!,
      qeIdentityJson: r.qeIdentityJson!,
      qeIdentityIssuerChain: r.qeIdentityIssuerChain!,
      pckCrl,
      pckCrlIssuerChain: r.pckCrlIssuerChain!,
      rootCaCrl,
    };
  } catch {
    return undefined;
  }
}

/** Options for {@link DiskCacheCollateralSource}. */
export interface DiskCacheOptions {
  /** Cache directory (created on first write). */
  dir: string;
  /** Where to get collateral the cache lacks or holds past nextUpdate; none = cache only (offline). */
  upstream?: CollateralSource;
}

/** Disk cache source; with an upstream it is a read-through cache. */
export class DiskCacheCollateralSource implements CollateralSource {
  readonly name: string;
  /** Counters, for tests and the status page. */
  readonly stats = { hits: 0, misses: 0, stores: 0 };
  private readonly dir: string;
  private readonly upstream: CollateralSource | undefined;

  constructor(opts: DiskCacheOptions) {
    this.dir = opts.dir;
    this.upstream = opts.upstream;
    this.name = `cache:${opts.dir}${opts.upstream ? `+${opts.upstream.name}` : ''}`;
  }

  /** Cache file for a request; FMSPC is validated as hex so it can never escape the directory. */
  fileFor(request: Pick<CollateralRequest, 'fmspc' | 'pckCa'>): string {
    const fmspc = request.fmspc.toLowerCase();
    if (!/^[0-9a-f]{12}$/.test(fmspc)) throw new Error(`invalid FMSPC "${request.fmspc}"`);
    const ca = request.pckCa === 'processor' ? 'processor' : 'platform';
    return join(this.dir, `tdx-${fmspc}-${ca}.json`);
  }

  async get(request: CollateralRequest): Promise<Collateral | undefined> {
    const file = this.fileFor(request);
    let cached: Collateral | undefined;
    try {
      if (trustedCacheDir(this.dir)) cached = decodeRecord(readTrustedFile(file, CACHE_FILE).toString('utf8'));
    } catch {
      cached = undefined;
    }
    if (cached && collateralMatches(cached, request)) {
      this.stats.hits++;
      return cached;
    }
    this.stats.misses++;
    if (!this.upstream) return undefined;
    const fresh = await this.upstream.get(request);
    if (fresh && collateralMatches(fresh, request)) {
      await this.store(request, fresh, this.upstream.name);
      return fresh;
    }
    return fresh;
  }

  /** Writes an entry (atomically: temporary file then rename). */
  async store(request: Pick<CollateralRequest, 'fmspc' | 'pckCa'>, c: Collateral, source = 'manual'): Promise<void> {
    const file = this.fileFor(request);
    const record: CacheRecord = {
      format: 'ratls-collateral-cache/1',
      savedAt: new Date().toISOString(),
      source,
      tcbInfoJson: c.tcbInfoJson,
      tcbInfoIssuerChain: c.tcbInfoIssuerChain,
      qeIdentityJson: c.qeIdentityJson,
      qeIdentityIssuerChain: c.qeIdentityIssuerChain,
      pckCrl: toBase64(c.pckCrl),
      pckCrlIssuerChain: c.pckCrlIssuerChain,
      rootCaCrl: toBase64(c.rootCaCrl),
    };
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    // an entry written into a directory others control would not be read back anyway
    if (!trustedCacheDir(this.dir)) return;
    const tmp = `${file}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`;
    try {
      await writeFile(tmp, JSON.stringify(record), { mode: 0o644, flag: 'wx' });
      await rename(tmp, file);
      this.stats.stores++;
    } catch (err) {
      await rm(tmp, { force: true });
      throw err;
    }
  }
}

const CACHE_DIR = { what: 'collateral cache directory', kind: 'state' } as const;
const CACHE_FILE = { what: 'collateral cache entry', kind: 'state' } as const;

/**
 * Whether the cache directory may be read and written: this user's own, not a symbolic link, not
 * writable by others, under no directory others can write. A directory that is not is skipped,
 * never an error: the cache is an optimisation, and the upstream still answers.
 */
function trustedCacheDir(dir: string): boolean {
  try {
    return distrust(dir, 'directory', CACHE_DIR) === undefined;
  } catch {
    return false;
  }
}
