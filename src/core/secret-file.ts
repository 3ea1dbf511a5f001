/**
 * Writes files atomically: the data goes into a fresh temporary file in the target's directory,
 * created exclusively (O_EXCL: never through a symbolic link someone planted, never into an
 * existing file), synced, then renamed over the target (rename replaces a link, it does not follow
 * it). The target thus never exists half-written or with other permissions, whatever an earlier
 * file at that path was. Node-only.
 */
import { open, rename, rm } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { basename, dirname, join } from 'node:path';

/** Atomically replaces `path` with `data`, created with `mode`. On failure the temporary file is removed. */
export async function writeFileAtomic(path: string, data: string | Uint8Array, mode: number): Promise<void> {
  const tmp = join(dirname(path), `.${basename(path)}.tmp-${randomBytes(6).toString('hex')}`);
  try {
    const fh = await open(tmp, 'wx', mode);
    try {
      await fh.writeFile(data);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, path);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
}

/** Atomically replaces `path` with `data`, mode 0600 (private keys). */
export function writeSecretFile(path: string, data: string | Uint8Array): Promise<void> {
  return writeFileAtomic(path, data, 0o600);
}
