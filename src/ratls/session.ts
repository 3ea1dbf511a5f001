/**
 * Session-bound evidence: a quote that commits to one TLS session (its RFC 9266 tls-exporter), so
 * whoever holds a leaked TLS key still cannot relay a client's session to the genuine TD. One
 * quote covers a batch of sessions through a hash tree; each client gets the quote and the path
 * from its own leaf to the tree's root, and recomputes its leaf from its own exporter.
 *
 *   leaf  = SHA-256(0x00 || "ratls-session-v1" || exporter[32] || SHA-256(SPKI DER)[32] || u8(len(nonce)) || nonce)
 *   node  = SHA-256(0x01 || left[32] || right[32])
 *   level = pairs hashed left to right; an odd last node is carried up unchanged (not duplicated)
 *   claims-buffer = CBOR map {"pubkey-hash": h'…', "session-root": h'<root>', * extra}
 *   REPORTDATA    = SHA-256(claims-buffer) || 0^32              (as for CCC certificates)
 *   wire  = CBOR map {"evidence": bstr 60000([quote, claims-buffer]), "index": uint, "size": uint, "path": [* bstr .size 32]}
 *
 * docs/ratls.md gives the reasoning and the threat analysis. Browser-safe: the hash defaults to
 * WebCrypto and can be replaced by a faster synchronous one on the server.
 */
import { decode } from 'cbor2';
import { RatlsError } from '../core/errors.ts';
import { concatBytes, digest } from '../core/bytes.ts';
import { CLAIM_NONCE, CLAIM_PUBKEY_HASH, CLAIM_SESSION_ROOT, encodeClaims, type PubkeyHashAlg } from './claims.ts';

/** RFC 9266 tls-exporter: label, no context, 32 bytes. TLS 1.3 only. */
export const EXPORTER_LABEL = 'EXPORTER-Channel-Binding';
export const EXPORTER_LENGTH = 32;
/** Domain tag of a session leaf (ASCII, 16 bytes). */
export const SESSION_LEAF_TAG = new TextEncoder().encode('ratls-session-v1');
const LEAF_PREFIX = 0x00;
const NODE_PREFIX = 0x01;

/** Client nonce bounds in bytes (clients send 32). */
export const MIN_SESSION_NONCE_BYTES = 16;
export const MAX_SESSION_NONCE_BYTES = 64;
/** Largest batch a tree may describe, and so the longest path a verifier reads (2^20 leaves -> 20). */
export const MAX_TREE_SIZE = 1 << 20;
const MAX_PATH = 20;
/** Largest session evidence accepted: quote and claims are each at most 64 KiB, plus the path. */
export const MAX_SESSION_EVIDENCE_BYTES = 160 * 1024;

/** The part of a Node TLSSocket the exporter needs (structural, so this file stays browser-safe). */
export interface ExporterSocket {
  getProtocol(): string | null;
  exportKeyingMaterial(length: number, label: string, context: Buffer): Uint8Array;
}

/**
 * RFC 9266 tls-exporter of a TLS 1.3 connection, computed on this side of it. Throws
 * SESSION_BINDING_UNAVAILABLE for any other protocol version: TLS 1.2 exporters are only bound to
 * the session with extended master secret, which neither side can verify of the other.
 */
export function tlsExporter(socket: ExporterSocket): Uint8Array {
  const version = socket.getProtocol();
  if (version !== 'TLSv1.3') {
    throw new RatlsError(
      'SESSION_BINDING_UNAVAILABLE',
      `Session binding needs TLS 1.3 (RFC 9266 tls-exporter); this connection is ${version ?? 'not TLS'}. Allow TLS 1.3 on both sides, or use freshness.binding: certificate (relayable if the TLS key leaks).`,
    );
  }
  // no context: in TLS 1.3 the same as an empty one (RFC 8446 7.5); Node passes none when undefined
  return new Uint8Array(socket.exportKeyingMaterial(EXPORTER_LENGTH, EXPORTER_LABEL, undefined as unknown as Buffer));
}

/** A SHA-256 implementation: WebCrypto by default, node:crypto on the server. */
export type Sha256 = (data: Uint8Array) => Promise<Uint8Array>;
export const webCryptoSha256: Sha256 = (data) => digest('SHA-256', data);

/** What one client receives. */
export interface SessionEvidence {
  /** CCC evidence 60000([quote, claims-buffer]); the claims carry "session-root". */
  evidence: Uint8Array;
  /** This session's leaf position in the batch. */
  index: number;
  /** Number of leaves in the batch. */
  size: number;
  /** Sibling hashes from the leaf up to the root, bottom first (odd-node promotions skipped). */
  path: Uint8Array[];
}

/** Inputs of one session's leaf. */
export interface SessionLeafInput {
  /** RFC 9266 tls-exporter of the TLS session, 32 bytes, computed locally on each side. */
  exporter: Uint8Array;
  /** SHA-256 of the DER SubjectPublicKeyInfo of the certificate the session was made with. */
  spkiSha256: Uint8Array;
  /** The client's nonce, 16 to 64 bytes. */
  nonce: Uint8Array;
}

/** The leaf hash of one session. Throws NONCE_INVALID / INTERNAL on wrong lengths. */
export async function sessionLeaf(input: SessionLeafInput, hash: Sha256 = webCryptoSha256): Promise<Uint8Array> {
  const { exporter, spkiSha256, nonce } = input;
  if (exporter.length !== EXPORTER_LENGTH) throw new RatlsError('INTERNAL', `A tls-exporter value is ${EXPORTER_LENGTH} bytes, got ${exporter.length}.`);
  if (spkiSha256.length !== 32) throw new RatlsError('INTERNAL', `The public-key hash is 32 bytes (SHA-256), got ${spkiSha256.length}.`);
  if (nonce.length < MIN_SESSION_NONCE_BYTES || nonce.length > MAX_SESSION_NONCE_BYTES) {
    throw new RatlsError('NONCE_INVALID', `A session nonce is ${MIN_SESSION_NONCE_BYTES} to ${MAX_SESSION_NONCE_BYTES} bytes, got ${nonce.length}.`);
  }
  return hash(concatBytes(Uint8Array.of(LEAF_PREFIX), SESSION_LEAF_TAG, exporter, spkiSha256, Uint8Array.of(nonce.length), nonce));
}

function nodeHash(left: Uint8Array, right: Uint8Array, hash: Sha256): Promise<Uint8Array> {
  return hash(concatBytes(Uint8Array.of(NODE_PREFIX), left, right));
}

/** Root of the tree over `leaves` and every leaf's path (same order). */
export async function buildSessionTree(leaves: readonly Uint8Array[], hash: Sha256 = webCryptoSha256): Promise<{ root: Uint8Array; paths: Uint8Array[][] }> {
  if (leaves.length === 0 || leaves.length > MAX_TREE_SIZE) throw new RatlsError('INTERNAL', `A session batch holds 1 to ${MAX_TREE_SIZE} leaves.`);
  const levels: Uint8Array[][] = [leaves.slice()];
  for (let level = levels[0]!; level.length > 1;) {
    const next: Uint8Array[] = [];
    for (let i = 0; i < level.length; i += 2) next.push(i + 1 < level.length ? await nodeHash(level[i]!, level[i + 1]!, hash) : level[i]!);
    levels.push(next);
    level = next;
  }
  const paths = leaves.map((_, index) => {
    const path: Uint8Array[] = [];
    let j = index;
    for (const level of levels.slice(0, -1)) {
      const sibling = level[j ^ 1];
      if (sibling) path.push(sibling);
      j >>= 1;
    }
    return path;
  });
  return { root: levels[levels.length - 1]![0]!, paths };
}

/**
 * The root a path leads to from `leaf` at `index` in a tree of `size` leaves. The shape follows
 * from index and size alone, so a path of the wrong length is refused rather than guessed at.
 * Throws EVIDENCE_MALFORMED.
 */
export async function rootFromPath(
  leaf: Uint8Array,
  index: number,
  size: number,
  path: readonly Uint8Array[],
  hash: Sha256 = webCryptoSha256,
): Promise<Uint8Array> {
  if (!Number.isInteger(size) || size < 1 || size > MAX_TREE_SIZE || !Number.isInteger(index) || index < 0 || index >= size) {
    throw new RatlsError('EVIDENCE_MALFORMED', `The session evidence names leaf ${index} of a tree of ${size}, which does not exist.`);
  }
  const want = expectedPathLength(index, size);
  if (path.length !== want) {
    throw new RatlsError('EVIDENCE_MALFORMED', `The session evidence's path has ${path.length} hashes; leaf ${index} of ${size} needs ${want}.`);
  }
  let node = leaf;
  let used = 0;
  for (let j = index, n = size; n > 1; j >>= 1, n = Math.ceil(n / 2)) {
    if (j % 2 === 0 && j + 1 >= n) continue; // the odd last node is carried up unchanged
    const sibling = path[used++]!;
    node = j % 2 === 1 ? await nodeHash(sibling, node, hash) : await nodeHash(node, sibling, hash);
  }
  return node;
}

/** How many siblings the path of leaf `index` in a tree of `size` has. */
export function expectedPathLength(index: number, size: number): number {
  let k = 0;
  for (let j = index, n = size; n > 1; j >>= 1, n = Math.ceil(n / 2)) if (!(j % 2 === 0 && j + 1 >= n)) k++;
  return k;
}

/** Claim names the batch itself sets; a claims hook may not set them. */
export const RESERVED_SESSION_CLAIMS: readonly string[] = [CLAIM_PUBKEY_HASH, CLAIM_NONCE, CLAIM_SESSION_ROOT];

/** The claims-buffer of a batch quote: pubkey-hash, session-root, then `extra` in order. */
export async function encodeSessionClaims(opts: {
  spkiDer: Uint8Array;
  hashAlg?: PubkeyHashAlg;
  root: Uint8Array;
  extra?: Iterable<readonly [string, Uint8Array]>;
}): Promise<Uint8Array> {
  if (opts.root.length !== 32) throw new RatlsError('INTERNAL', 'A session root is 32 bytes.');
  const extra: Array<readonly [string, Uint8Array]> = [];
  for (const [k, v] of opts.extra ?? []) {
    if (RESERVED_SESSION_CLAIMS.includes(k)) throw new RatlsError('INTERNAL', `The claims hook may not set "${k}": the session batch sets it.`);
    if (typeof k !== 'string' || !(v instanceof Uint8Array)) throw new RatlsError('INTERNAL', 'Claims added by a hook are text names with byte-string values.');
    extra.push([k, new Uint8Array(v)]);
  }
  // plain Uint8Array copies: cbor2 encodes a Node Buffer differently from a byte string
  return encodeClaims({
    spkiDer: opts.spkiDer,
    ...(opts.hashAlg ? { hashAlg: opts.hashAlg } : {}),
    extra: [[CLAIM_SESSION_ROOT, new Uint8Array(opts.root)], ...extra],
  });
}

/** CBOR head (RFC 8949 3.1) of major type `major` with argument `n`, shortest form. */
function head(major: number, n: number): Uint8Array {
  const m = major << 5;
  if (n < 24) return Uint8Array.of(m | n);
  if (n < 0x100) return Uint8Array.of(m | 24, n);
  if (n < 0x10000) return Uint8Array.of(m | 25, n >> 8, n & 0xff);
  return Uint8Array.of(m | 26, (n >>> 24) & 0xff, (n >> 16) & 0xff, (n >> 8) & 0xff, n & 0xff);
}
const text = (s: string): Uint8Array => concatBytes(head(3, s.length), new TextEncoder().encode(s));
const bstr = (b: Uint8Array): Uint8Array => concatBytes(head(2, b.length), b);
const KEY_EVIDENCE = text('evidence');
const KEY_INDEX = text('index');
const KEY_SIZE = text('size');
const KEY_PATH = text('path');

/**
 * Wire encoding of what one client receives: a definite-length CBOR map with the keys in this
 * order, every length in its shortest form (what any CBOR encoder writes). Written by hand because
 * the server writes one per session and the evidence is the same few kilobytes for all of a batch.
 */
export function encodeSessionEvidence(e: SessionEvidence): Uint8Array {
  return concatBytes(
    head(5, 4),
    KEY_EVIDENCE,
    bstr(e.evidence),
    KEY_INDEX,
    head(0, e.index),
    KEY_SIZE,
    head(0, e.size),
    KEY_PATH,
    head(4, e.path.length),
    ...e.path.map(bstr),
  );
}

function malformed(why: string): never {
  throw new RatlsError('EVIDENCE_MALFORMED', `The session evidence is malformed: ${why}.`);
}

/** Parses session evidence (hostile input). Unknown keys are ignored. Throws EVIDENCE_MALFORMED. */
export function decodeSessionEvidence(bytes: Uint8Array): SessionEvidence {
  if (bytes.length === 0 || bytes.length > MAX_SESSION_EVIDENCE_BYTES) malformed(`implausible size ${bytes.length} bytes`);
  let v: unknown;
  try {
    v = decode(bytes, { rejectStreaming: true, rejectDuplicateKeys: true, preferMap: true, rejectFloats: true });
  } catch (err) {
    malformed(`not definite-length CBOR (${err instanceof Error ? err.message : String(err)})`);
  }
  if (!(v instanceof Map)) malformed('not a CBOR map');
  const m = v as Map<unknown, unknown>;
  const evidence = m.get('evidence');
  const index = m.get('index');
  const size = m.get('size');
  const path = m.get('path');
  if (!(evidence instanceof Uint8Array)) malformed('"evidence" is not a byte string');
  if (typeof size !== 'number' || !Number.isInteger(size) || size < 1 || size > MAX_TREE_SIZE)
    malformed(`"size" is not a whole number from 1 to ${MAX_TREE_SIZE}`);
  if (typeof index !== 'number' || !Number.isInteger(index) || index < 0 || index >= size) malformed('"index" is not a leaf of the tree');
  if (!Array.isArray(path) || path.length > MAX_PATH) malformed(`"path" is not a list of at most ${MAX_PATH} hashes`);
  for (const h of path as unknown[]) if (!(h instanceof Uint8Array) || h.length !== 32) malformed('a path entry is not a 32-byte hash');
  return { evidence, index, size, path: path as Uint8Array[] };
}
