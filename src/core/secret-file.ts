/**
 * Writes secret files (private keys): the data goes into a fresh temporary file in the target's
 * directory, created exclusively with mode 0600, synced, then renamed over the target. The target
 * thus never exists with other permissions, whatever an earlier file at that path allowed.
 */
import { open, rename, rm } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { basename, dirname, join } from 'node:path';

/** Atomically replaces `path` with `data`, mode 0600. On failure the temporary file is removed. */
export async function writeSecretFile(path: string, data: string | Uint8Array): Promise<void> {
  const tmp = join(dirname(path), `.${basename(path)}.tmp-${randomBytes(6).toString('hex')}`);
  try {
    const fh = await open(tmp, 'wx', 0o600);
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
