/**
 * Signing-key store of the attestation service: ECDSA keys kept as JWK files in a directory only the
 * service user can read (dir 0700, files 0600), reused across restarts, rotated on demand or on a
 * schedule. A rotated-out key stays in the published JWKS until the last token it signed has expired,
 * so relying parties never see a valid token whose key vanished.
 */
import { mkdir, readdir, rm, stat, chmod } from 'node:fs/promises';
import { join } from 'node:path';
import { calculateJwkThumbprint, exportJWK, generateKeyPair, importJWK, type JWK } from 'jose';
import { RatlsError } from '../core/errors.ts';
import { writeSecretFile } from '../core/secret-file.ts';
import { checkTrustedDirectory, readTrustedFile } from '../core/trusted-path.ts';

/** Token signing algorithms the service supports. */
export type SigningAlg = 'ES256' | 'ES384';

/** One key as stored on disk. */
interface StoredKey {
  kid: string;
  alg: SigningAlg;
  /** ISO time the key was created. */
  createdAt: string;
  /** ISO time the key stopped signing; absent for the active key. */
  retiredAt?: string;
  /** ISO time after which no token signed by this key is valid any more (retiredAt + max TTL). */
  publishUntil?: string;
  privateJwk: JWK;
}

/** The active key, ready to sign. */
export interface ActiveKey {
  kid: string;
  alg: SigningAlg;
  createdAt: Date;
  privateKey: CryptoKey;
}

/** Options for {@link KeyStore.open}. */
export interface KeyStoreOptions {
  /** Algorithm of newly created keys. Existing keys keep theirs. */
  alg: SigningAlg;
  /** Longest token lifetime in seconds; a retired key stays published this long. */
  maxTokenTtlSeconds: number;
  /** Clock; tests pass a fixed one. */
  now?: () => Date;
}

const KEY_FILE = /^key-[A-Za-z0-9_-]{8,64}\.json$/;
const KEY_DIR = { what: 'signing key directory', kind: 'state', code: 'KEY_STORE_FAILED' } as const;
const KEY_FILE_TRUST = { what: 'signing key file', kind: 'state', private: true, code: 'KEY_STORE_FAILED' } as const;

/**
 * Keys on disk plus the in-memory active key. All methods that change the directory are serialised
 * through one promise chain, so a scheduled rotation and an admin rotation cannot interleave.
 */
export class KeyStore {
  readonly dir: string;
  private readonly opts: Required<KeyStoreOptions>;
  private keys: StoredKey[] = [];
  private active!: ActiveKey;
  private queue: Promise<unknown> = Promise.resolve();

  private constructor(dir: string, opts: KeyStoreOptions) {
    this.dir = dir;
    this.opts = { now: () => new Date(), ...opts };
  }

  /**
   * Opens (creating when needed) the key directory. Creates a first key when none is active.
   * Refuses to use a directory or key file that others can read, rather than silently fixing it,
   * because a key that was readable may already be compromised; and one that another user owns,
   * could write or could swap (a link, a parent others can write), because a key planted there
   * would sign tokens and be published in the JWKS.
   */
  static async open(dir: string, opts: KeyStoreOptions): Promise<KeyStore> {
    const store = new KeyStore(dir, opts);
    await store.load();
    return store;
  }

  private async load(): Promise<void> {
    try {
      await mkdir(this.dir, { recursive: true, mode: 0o700 });
      const st = await stat(this.dir);
      if (!st.isDirectory()) throw new RatlsError('KEY_STORE_FAILED', `Key directory ${this.dir} is not a directory.`);
      checkTrustedDirectory(this.dir, KEY_DIR);
      if ((st.mode & 0o077) !== 0) {
        // a directory we created ourselves may have been widened by the umask of an older tool; tighten
        // it only when it is empty of keys, otherwise refuse
        const existing = (await readdir(this.dir)).filter((n) => KEY_FILE.test(n));
        if (existing.length > 0) {
          throw new RatlsError(
            'KEY_STORE_FAILED',
            `Key directory ${this.dir} is accessible to group or others (mode ${(st.mode & 0o777).toString(8)}); run chmod 700 on it and check whether the keys in it leaked.`,
          );
        }
        await chmod(this.dir, 0o700);
      }
      const names = (await readdir(this.dir)).filter((n) => KEY_FILE.test(n)).sort();
      const keys: StoredKey[] = [];
      for (const name of names) {
        const path = join(this.dir, name);
        const fst = await stat(path);
        if ((fst.mode & 0o077) !== 0) {
          throw new RatlsError(
            'KEY_STORE_FAILED',
            `Key file ${path} is readable by group or others (mode ${(fst.mode & 0o777).toString(8)}); delete it or chmod 600 it after checking it did not leak.`,
          );
        }
        keys.push(parseStoredKey(readTrustedFile(path, KEY_FILE_TRUST).toString('utf8'), path));
      }
      this.keys = keys;
    } catch (err) {
      if (err instanceof RatlsError) throw err;
      throw new RatlsError('KEY_STORE_FAILED', `Cannot open key directory ${this.dir}: ${(err as Error).message}`, { cause: err });
    }
    await this.pruneNow();
    const current = this.keys.filter((k) => !k.retiredAt).sort((a, b) => b.createdAt.localeCompare(a.createdAt));
    if (current.length === 0) {
      await this.createKey();
    } else {
      // more than one unretired key can only come from a crash mid-rotation: keep the newest
      for (const old of current.slice(1)) await this.retire(old);
      await this.activate(current[0]!);
    }
  }

  /** The key that signs new tokens. */
  current(): ActiveKey {
    return this.active;
  }

  /**
   * Public keys to publish: the active key and every retired key whose tokens may still be valid.
   */
  jwks(): { keys: JWK[] } {
    const now = this.opts.now().getTime();
    const keys = this.keys.filter((k) => !k.publishUntil || Date.parse(k.publishUntil) > now).map((k) => publicJwk(k));
    return { keys };
  }

  /** Retires the active key and creates a new one. Resolves to the new kid. */
  rotate(): Promise<string> {
    const run = this.queue.then(async () => {
      const old = this.keys.find((k) => k.kid === this.active.kid);
      if (old) await this.retire(old);
      await this.createKey();
      await this.pruneNow();
      return this.active.kid;
    });
    this.queue = run.catch(() => undefined);
    return run;
  }

  /** Deletes key files whose tokens have all expired. */
  prune(): Promise<void> {
    const run = this.queue.then(() => this.pruneNow());
    this.queue = run.catch(() => undefined);
    return run;
  }

  private async pruneNow(): Promise<void> {
    const now = this.opts.now().getTime();
    const keep: StoredKey[] = [];
    for (const k of this.keys) {
      if (k.publishUntil && Date.parse(k.publishUntil) <= now) {
        await rm(join(this.dir, fileName(k.kid)), { force: true });
      } else {
        keep.push(k);
      }
    }
    this.keys = keep;
  }

  private async createKey(): Promise<void> {
    const { privateKey } = await generateKeyPair(this.opts.alg, { extractable: true });
    const jwk = await exportJWK(privateKey);
    const kid = await calculateJwkThumbprint({ kty: jwk.kty!, crv: jwk.crv!, x: jwk.x!, y: jwk.y! }, 'sha256');
    const stored: StoredKey = { kid, alg: this.opts.alg, createdAt: this.opts.now().toISOString(), privateJwk: { ...jwk, kid, alg: this.opts.alg } };
    await this.write(stored);
    this.keys.push(stored);
    await this.activate(stored);
  }

  private async retire(k: StoredKey): Promise<void> {
    const now = this.opts.now();
    k.retiredAt = now.toISOString();
    // one second of slack covers tokens signed in the same second as the rotation
    k.publishUntil = new Date(now.getTime() + (this.opts.maxTokenTtlSeconds + 1) * 1000).toISOString();
    await this.write(k);
  }

  private async activate(k: StoredKey): Promise<void> {
    const privateKey = (await importJWK(k.privateJwk, k.alg)) as CryptoKey;
    this.active = { kid: k.kid, alg: k.alg, createdAt: new Date(k.createdAt), privateKey };
  }

  /** Writes a key file atomically with mode 0600 (created that way, never widened first). */
  private async write(k: StoredKey): Promise<void> {
    const final = join(this.dir, fileName(k.kid));
    try {
      await writeSecretFile(final, JSON.stringify(k, null, 2) + '\n');
    } catch (err) {
      throw new RatlsError('KEY_STORE_FAILED', `Cannot write signing key to ${this.dir}: ${(err as Error).message}`, { cause: err });
    }
  }
}

function fileName(kid: string): string {
  return `key-${kid}.json`;
}

function publicJwk(k: StoredKey): JWK {
  const { kty, crv, x, y } = k.privateJwk;
  return { kty, crv, x, y, kid: k.kid, alg: k.alg, use: 'sig' } as JWK;
}

function parseStoredKey(text: string, path: string): StoredKey {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    throw new RatlsError('KEY_STORE_FAILED', `Key file ${path} is not valid JSON; move it away or restore it from backup.`);
  }
  const o = v as Partial<StoredKey>;
  const ok =
    typeof o === 'object' &&
    o !== null &&
    typeof o.kid === 'string' &&
    (o.alg === 'ES256' || o.alg === 'ES384') &&
    typeof o.createdAt === 'string' &&
    !Number.isNaN(Date.parse(o.createdAt)) &&
    (o.retiredAt === undefined || typeof o.retiredAt === 'string') &&
    (o.publishUntil === undefined || typeof o.publishUntil === 'string') &&
    typeof o.privateJwk === 'object' &&
    o.privateJwk !== null &&
    o.privateJwk.kty === 'EC' &&
    typeof o.privateJwk.d === 'string';
  if (!ok) throw new RatlsError('KEY_STORE_FAILED', `Key file ${path} does not hold a signing key this service wrote; move it away.`);
  return o as StoredKey;
}
