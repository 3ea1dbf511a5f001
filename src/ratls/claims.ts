/**
 * RA-TLS custom claims (CCC "Interoperable RA-TLS", cert and evidence formats document).
 *
 * claims-buffer  = definite-length CBOR map { "pubkey-hash": bstr, ? "nonce": bstr, * tstr => bstr }
 *                  (session evidence adds "session-root"; see src/ratls/session.ts)
 * pubkey-hash    = bstr holding the CBOR array hash-entry [hash-alg-id, hash-value] (CoSWID),
 *                  hash-value = H(DER SubjectPublicKeyInfo)
 * REPORTDATA     = SHA-256(claims-buffer) || 32 zero bytes
 *
 * Browser-safe: WebCrypto and cbor2 only.
 */
import { encode, decode } from 'cbor2';
import { RatlsError } from '../core/errors.ts';
import { concatBytes, constantTimeEqual, digest } from '../core/bytes.ts';

/** IANA "Named Information Hash Algorithm" ids the spec requires verifiers to support. */
export const HASH_ALG_IDS = { 'SHA-256': 1, 'SHA-384': 7, 'SHA-512': 8 } as const;
export type PubkeyHashAlg = keyof typeof HASH_ALG_IDS;

const DIGEST_LENGTHS: Record<PubkeyHashAlg, number> = { 'SHA-256': 32, 'SHA-384': 48, 'SHA-512': 64 };

/** Claim names fixed by the spec. */
export const CLAIM_PUBKEY_HASH = 'pubkey-hash';
export const CLAIM_NONCE = 'nonce';
/** Merkle root over the session leaves a batch quote covers (32 bytes; docs/ratls.md). */
export const CLAIM_SESSION_ROOT = 'session-root';
/**
 * Reserved for the runtime event log (48-byte bstr: the replayed value of the runtime log when the
 * kernel cannot extend RTMR3). Defined and checked by the event-log code, not here.
 */
export const CLAIM_RUNTIME_LOG = 'runtime-log';

/** Largest claims-buffer we accept; real ones are < 200 bytes. */
const MAX_CLAIMS_BYTES = 64 * 1024;

/** Decoded claims. Unknown claims are kept (the spec says they are ignored) but never trusted. */
export interface RatlsClaims {
  pubkeyHashAlg: PubkeyHashAlg;
  pubkeyHash: Uint8Array;
  nonce?: Uint8Array;
  /** Names of any other claims present; reported, not used. */
  otherClaims: string[];
  /** Every claim as decoded, in buffer order, for layers that read claims of their own. */
  entries: ReadonlyMap<string, Uint8Array>;
}

/** Maps an IANA hash id to our name; undefined for unsupported ids. */
export function hashAlgFromId(id: number): PubkeyHashAlg | undefined {
  for (const [name, v] of Object.entries(HASH_ALG_IDS)) if (v === id) return name as PubkeyHashAlg;
  return undefined;
}

/** The `pubkey-hash` value: CBOR [hash-alg-id, H(spki)] serialised to bytes. */
export async function encodePubkeyHashValue(spkiDer: Uint8Array, alg: PubkeyHashAlg = 'SHA-256'): Promise<Uint8Array> {
  const h = await digest(alg, spkiDer);
  return encode([HASH_ALG_IDS[alg], h]);
}

/**
 * Builds the claims-buffer. Key order is pubkey-hash then nonce, as in the spec's text and in the
 * interop certificates of the CCC repository; decoders must not depend on the order.
 */
export async function encodeClaims(opts: {
  spkiDer: Uint8Array;
  hashAlg?: PubkeyHashAlg;
  nonce?: Uint8Array;
  /** Further claims, after pubkey-hash and nonce, in this order; may not repeat a name. */
  extra?: Iterable<readonly [string, Uint8Array]>;
}): Promise<Uint8Array> {
  const m = new Map<string, Uint8Array>();
  m.set(CLAIM_PUBKEY_HASH, await encodePubkeyHashValue(opts.spkiDer, opts.hashAlg ?? 'SHA-256'));
  if (opts.nonce !== undefined) m.set(CLAIM_NONCE, opts.nonce);
  for (const [k, v] of opts.extra ?? []) {
    if (m.has(k)) throw new RatlsError('INTERNAL', `The claim "${k}" is set twice; each claim name may appear once.`);
    m.set(k, v);
  }
  return encode(m);
}

/** REPORTDATA for a claims-buffer: SHA-256(claims) followed by 32 zero bytes. */
export async function reportDataForClaims(claimsBuffer: Uint8Array): Promise<Uint8Array> {
  return concatBytes(await digest('SHA-256', claimsBuffer), new Uint8Array(32));
}

/** Strict CBOR decode of attacker-supplied bytes: definite lengths only, no duplicate keys. */
export function strictCborDecode(bytes: Uint8Array, what: string): unknown {
  try {
    return decode(bytes, { rejectStreaming: true, rejectDuplicateKeys: true, preferMap: true, rejectFloats: true });
  } catch (err) {
    throw new RatlsError('EVIDENCE_MALFORMED', `The ${what} is not valid definite-length CBOR (${err instanceof Error ? err.message : String(err)}).`);
  }
}

/** Parses the pubkey-hash value bytes ([alg-id, digest]). */
export function decodePubkeyHashValue(bytes: Uint8Array): { alg: PubkeyHashAlg; digest: Uint8Array } {
  const v = strictCborDecode(bytes, 'pubkey-hash claim');
  if (!Array.isArray(v) || v.length !== 2) {
    throw new RatlsError('EVIDENCE_MALFORMED', 'The pubkey-hash claim must be a CBOR array [hash-alg-id, hash-value].');
  }
  const [id, h] = v as unknown[];
  if (typeof id !== 'number' || !Number.isInteger(id) || id < 0) {
    throw new RatlsError('EVIDENCE_MALFORMED', 'The pubkey-hash algorithm id must be an unsigned integer.');
  }
  const alg = hashAlgFromId(id);
  if (!alg) {
    throw new RatlsError('EVIDENCE_MALFORMED', `Unsupported pubkey-hash algorithm id ${id}; supported are 1 (SHA-256), 7 (SHA-384), 8 (SHA-512).`);
  }
  if (!(h instanceof Uint8Array) || h.length !== DIGEST_LENGTHS[alg]) {
    throw new RatlsError('EVIDENCE_MALFORMED', `The pubkey-hash value must be a ${DIGEST_LENGTHS[alg]}-byte string for ${alg}.`);
  }
  return { alg, digest: h };
}

/** Parses a claims-buffer (hostile input). Throws RatlsError EVIDENCE_MALFORMED. */
export function decodeClaims(claimsBuffer: Uint8Array): RatlsClaims {
  if (claimsBuffer.length === 0 || claimsBuffer.length > MAX_CLAIMS_BYTES) {
    throw new RatlsError('EVIDENCE_MALFORMED', `The claims buffer has an implausible size (${claimsBuffer.length} bytes).`);
  }
  const v = strictCborDecode(claimsBuffer, 'claims buffer');
  if (!(v instanceof Map)) throw new RatlsError('EVIDENCE_MALFORMED', 'The claims buffer must be a CBOR map.');
  let pk: { alg: PubkeyHashAlg; digest: Uint8Array } | undefined;
  let nonce: Uint8Array | undefined;
  const other: string[] = [];
  const entries = new Map<string, Uint8Array>();
  for (const [k, val] of v as Map<unknown, unknown>) {
    if (typeof k !== 'string') throw new RatlsError('EVIDENCE_MALFORMED', 'Claim names must be CBOR text strings.');
    if (!(val instanceof Uint8Array)) throw new RatlsError('EVIDENCE_MALFORMED', `Claim "${k.slice(0, 40)}" must be a byte string.`);
    entries.set(k, val);
    if (k === CLAIM_PUBKEY_HASH) pk = decodePubkeyHashValue(val);
    else if (k === CLAIM_NONCE) nonce = val;
    else other.push(k.slice(0, 64));
  }
  if (!pk) throw new RatlsError('EVIDENCE_MALFORMED', 'The claims buffer has no "pubkey-hash" claim.');
  return { pubkeyHashAlg: pk.alg, pubkeyHash: pk.digest, ...(nonce ? { nonce } : {}), otherClaims: other, entries };
}

/** True when `claims` bind `spkiDer` (constant-time digest comparison). */
export async function claimsBindKey(claims: RatlsClaims, spkiDer: Uint8Array): Promise<boolean> {
  return constantTimeEqual(claims.pubkeyHash, await digest(claims.pubkeyHashAlg, spkiDer));
}
