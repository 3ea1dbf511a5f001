/**
 * ECDSA verification through WebCrypto with content-keyed memoisation.
 *
 * A signature that verified once verifies forever: validity is a pure function of (key, data,
 * signature), so remembering successes keyed by the exact bytes can never change a verdict.
 * Failures are not remembered. Time-dependent checks are never cached here.
 */
import { toArrayBuffer } from '../core/bytes.ts';
import type { Curve, Hash, SignedObject } from './x509.ts';

const MAX_ENTRIES = 4096;

/** Insertion-ordered map that forgets its oldest entries beyond a bound. */
export class BoundedCache<V> {
  private readonly map = new Map<string, V>();
  constructor(private readonly max: number = MAX_ENTRIES) {}
  get(k: string): V | undefined {
    return this.map.get(k);
  }
  set(k: string, v: V): void {
    if (this.map.size >= this.max) {
      const oldest = this.map.keys().next();
      if (!oldest.done) this.map.delete(oldest.value);
    }
    this.map.set(k, v);
  }
  delete(k: string): void {
    this.map.delete(k);
  }
  clear(): void {
    this.map.clear();
  }
}

/** The bytes as a string usable as a Map key (one char per byte; exact, no hashing collisions). */
export function bytesKey(bytes: Uint8Array): string {
  let s = '';
  for (let i = 0; i < bytes.length; i += 4096) {
    s += String.fromCharCode.apply(null, bytes.subarray(i, Math.min(bytes.length, i + 4096)) as unknown as number[]);
  }
  return s;
}

/**
 * The bytes as WebCrypto input without copying when they already sit in an ArrayBuffer
 * (copies only views of shared memory, which WebCrypto refuses).
 */
function source(bytes: Uint8Array): Uint8Array<ArrayBuffer> {
  return bytes.buffer instanceof ArrayBuffer ? (bytes as Uint8Array<ArrayBuffer>) : new Uint8Array(toArrayBuffer(bytes));
}

const keyCache = new BoundedCache<Promise<CryptoKey | undefined>>(512);
// Holds in-flight and successful verifications; a failed one is removed when it settles, so only
// successes are remembered, and identical checks started concurrently run once.
const verifiedCache = new BoundedCache<Promise<boolean>>();

/** Forgets every cached key and verified signature (used by cold benchmarks and tests). */
export function clearCryptoCache(): void {
  keyCache.clear();
  verifiedCache.clear();
}

/** A public key in the form WebCrypto imports: DER SPKI, or raw uncompressed point bytes. */
export interface PublicKeyBytes {
  format: 'spki' | 'raw';
  bytes: Uint8Array;
  curve: Curve;
}

function importKey(k: PublicKeyBytes): Promise<CryptoKey | undefined> {
  const id = `${k.format}:${k.curve}:${bytesKey(k.bytes)}`;
  let p = keyCache.get(id);
  if (!p) {
    p = crypto.subtle.importKey(k.format, source(k.bytes), { name: 'ECDSA', namedCurve: k.curve }, false, ['verify']).catch(() => undefined);
    keyCache.set(id, p);
  }
  return p;
}

/** r and s (unsigned big-endian, any length) as the fixed-width r||s WebCrypto expects. */
export function toP1363(r: Uint8Array, s: Uint8Array, curve: Curve): Uint8Array | undefined {
  const n = curve === 'P-256' ? 32 : 48;
  if (r.length > n || s.length > n) return undefined;
  const out = new Uint8Array(2 * n);
  out.set(r, n - r.length);
  out.set(s, 2 * n - s.length);
  return out;
}

/**
 * Verifies an ECDSA signature (r||s for the key's curve) over `data`. Resolves false on any
 * failure, including keys that are not valid curve points; never rejects.
 */
export function verifyEcdsa(key: PublicKeyBytes, hash: Hash, data: Uint8Array, sig: Uint8Array): Promise<boolean> {
  const id = `${hash}:${key.format}:${bytesKey(key.bytes)}:${bytesKey(sig)}:${bytesKey(data)}`;
  const known = verifiedCache.get(id);
  if (known) return known;
  const p = rawVerify(key, hash, data, sig);
  verifiedCache.set(id, p);
  void p.then((ok) => {
    if (!ok && verifiedCache.get(id) === p) verifiedCache.delete(id);
  });
  return p;
}

async function rawVerify(key: PublicKeyBytes, hash: Hash, data: Uint8Array, sig: Uint8Array): Promise<boolean> {
  const k = await importKey(key);
  if (!k) return false;
  try {
    return await crypto.subtle.verify({ name: 'ECDSA', hash }, k, source(sig), source(data));
  } catch {
    return false;
  }
}

/**
 * Verifies `sig` over `data` by `signer`, remembering the outcome in `memo`, a map owned by the
 * (content-cached) object the data belongs to, keyed by signer key and hash. Failures are forgotten.
 */
export function verifyMemo(
  memo: Map<string, Promise<boolean>>,
  signer: { publicKey: Uint8Array; curve: Curve },
  hash: Hash,
  data: Uint8Array,
  sig: Uint8Array,
): Promise<boolean> {
  const id = `${hash}:${signer.curve}:${bytesKey(signer.publicKey)}`;
  const known = memo.get(id);
  if (known) return known;
  const p = rawVerify({ format: 'raw', bytes: signer.publicKey, curve: signer.curve }, hash, data, sig);
  memo.set(id, p);
  void p.then((ok) => {
    if (!ok && memo.get(id) === p) memo.delete(id);
  });
  return p;
}

/** Verifies a certificate's or CRL's signature with the issuer's public key (uncompressed point). */
export function verifySignedObject(obj: SignedObject, issuer: { publicKey: Uint8Array; curve: Curve }): Promise<boolean> {
  const sig = toP1363(obj.sigR, obj.sigS, issuer.curve);
  if (!sig) return Promise.resolve(false);
  return verifyMemo(obj.verified, issuer, obj.hash, obj.tbs, sig);
}
