/**
 * SHA-384 for event logs. Replay hashes once per event, and WebCrypto's one-promise-per-hash costs
 * about 20 times the hash itself on logs of a hundred events (bench/README.md, eventlog), so where
 * Node's crypto is at hand (process.getBuiltinModule, Node 20.16+) it is used synchronously; browsers
 * use WebCrypto. No static import of a Node module, so this stays browser-safe.
 */
import type * as NodeCrypto from 'node:crypto';
import { concatBytes, digest } from '../core/bytes.ts';

type BuiltinLoader = { getBuiltinModule?: (id: string) => unknown };
const nodeCrypto = ((globalThis as { process?: BuiltinLoader }).process?.getBuiltinModule?.('node:crypto') as typeof NodeCrypto | undefined) ?? undefined;

/** SHA-384 of the concatenation of `parts`. */
export async function sha384(...parts: Uint8Array[]): Promise<Uint8Array> {
  if (nodeCrypto) {
    const h = nodeCrypto.createHash('sha384');
    for (const p of parts) h.update(p);
    return new Uint8Array(h.digest());
  }
  return digest('SHA-384', parts.length === 1 ? parts[0]! : concatBytes(...parts));
}
