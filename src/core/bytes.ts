/** Byte helpers shared by browser-safe code (no Node Buffer). */
import { sha256, sha384, sha512 } from '@noble/hashes/sha2';

const HEX = '0123456789abcdef';

/** Lower-case hex of `bytes`. */
export function toHex(bytes: Uint8Array): string {
  let out = '';
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i]!;
    out += HEX[b >> 4]! + HEX[b & 15]!;
  }
  return out;
}

/** Parses hex (upper or lower case, no prefix); returns undefined when it is not well-formed. */
export function fromHex(hex: string): Uint8Array | undefined {
  if (hex.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(hex)) return undefined;
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return out;
}

/** Concatenates byte arrays. */
export function concatBytes(...parts: Uint8Array[]): Uint8Array {
  let len = 0;
  for (const p of parts) len += p.length;
  const out = new Uint8Array(len);
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

/**
 * Equality whose running time depends only on the lengths, so comparing a secret or a binding
 * value leaks nothing about where the first difference is.
 */
export function constantTimeEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i]! ^ b[i]!;
  return diff === 0;
}

/** True when every byte is zero. */
export function isAllZero(bytes: Uint8Array): boolean {
  let acc = 0;
  for (let i = 0; i < bytes.length; i++) acc |= bytes[i]!;
  return acc === 0;
}

/** A copy of `bytes` whose backing buffer is exactly its own (WebCrypto wants BufferSource). */
export function toArrayBuffer(bytes: Uint8Array): ArrayBuffer {
  const out = new ArrayBuffer(bytes.length);
  new Uint8Array(out).set(bytes);
  return out;
}

/** Base64 (standard alphabet, padded) without Node's Buffer. */
export function toBase64(bytes: Uint8Array): string {
  let bin = '';
  for (let i = 0; i < bytes.length; i++) bin += String.fromCharCode(bytes[i]!);
  return btoa(bin);
}

/** Decodes standard or URL-safe base64; returns undefined when it is not well-formed. */
export function fromBase64(b64: string): Uint8Array | undefined {
  const norm = b64.replace(/-/g, '+').replace(/_/g, '/').replace(/\s+/g, '');
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(norm)) return undefined;
  const padded = norm + '='.repeat((4 - (norm.length % 4)) % 4);
  try {
    const bin = atob(padded);
    const out = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out;
  } catch {
    return undefined;
  }
}

/**
 * Inputs up to this size are hashed synchronously in JavaScript: for claims, keys and session
 * leaves (tens to hundreds of bytes) WebCrypto's asynchronous job costs far more than the hash, and
 * under load it queues behind signature checks (measured: about 0.5 ms per digest, bench/README.md).
 */
const SYNC_DIGEST_MAX_BYTES = 4096;
const SYNC_DIGESTS = { 'SHA-256': sha256, 'SHA-384': sha384, 'SHA-512': sha512 } as const;

/** SHA-256/384/512: @noble/hashes for small inputs, WebCrypto for larger ones (same result). */
export async function digest(alg: 'SHA-256' | 'SHA-384' | 'SHA-512', data: Uint8Array): Promise<Uint8Array> {
  if (data.length <= SYNC_DIGEST_MAX_BYTES) return SYNC_DIGESTS[alg](data);
  return new Uint8Array(await crypto.subtle.digest(alg, toArrayBuffer(data)));
}
