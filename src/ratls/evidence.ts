/**
 * Fresh evidence for a client nonce (GET /.well-known/ratls/evidence?nonce=HEX): a new quote over
 * claims {pubkey-hash of the identity's key, nonce}, so a client can check on the same TLS
 * connection that the peer holding this key is attested now, not replaying an old certificate.
 */
import { RatlsError } from '../core/errors.ts';
import type { EvidenceProvider } from './evidence-provider.ts';
import { encodeClaims, reportDataForClaims, type PubkeyHashAlg } from './claims.ts';
import { encodeEvidence } from './extension.ts';

/** Nonces longer than this are refused (the spec sets no limit; ours keeps requests cheap). */
export const MAX_NONCE_BYTES = 256;

/** Evidence `60000([quote, claims{pubkey-hash, nonce}])` bound to `identity`'s public key. */
export async function createNonceEvidence(
  identity: { spkiDer: Uint8Array },
  provider: EvidenceProvider,
  nonce: Uint8Array,
  hashAlg: PubkeyHashAlg = 'SHA-256',
  /** The current "runtime-log" claim, when the server binds its runtime log through claims. */
  runtimeLog?: Uint8Array,
): Promise<Uint8Array> {
  if (nonce.length === 0) throw new RatlsError('NONCE_MISSING', 'A nonce of at least one byte is required to request fresh evidence.');
  if (nonce.length > MAX_NONCE_BYTES) throw new RatlsError('NONCE_INVALID', `The nonce is ${nonce.length} bytes; at most ${MAX_NONCE_BYTES} are accepted.`);
  const claims = await encodeClaims({ spkiDer: identity.spkiDer, hashAlg, nonce, ...(runtimeLog ? { runtimeLog } : {}) });
  const quote = await provider.getQuote(await reportDataForClaims(claims));
  return encodeEvidence(quote, claims);
}
