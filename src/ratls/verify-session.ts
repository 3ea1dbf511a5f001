/**
 * Verification of session-bound evidence (src/ratls/session.ts): the client recomputes its leaf
 * from the exporter of its own TLS session, follows the path to the root, and requires the root in
 * the claims of a quote that passes DCAP and the policy and binds the connection's key. Never
 * throws; every failure is a coded reason in the result.
 *
 * Browser-safe, but a browser cannot read its TLS exporter: only Node clients (and `ratls connect`
 * for browsers) can use it.
 */
import { CheckRecorder } from '../core/checks.ts';
import { constantTimeEqual, toHex } from '../core/bytes.ts';
import { RatlsError } from '../core/errors.ts';
import { CLAIM_SESSION_ROOT, decodeClaims } from './claims.ts';
import { decodeEvidence } from './extension.ts';
import { decodeSessionEvidence, EXPORTER_LENGTH, rootFromPath, sessionLeaf, webCryptoSha256, type Sha256 } from './session.ts';
import { stopped, validTime, verifyEvidenceParts, type Evidence, type RatlsVerificationResult, type VerifyRatlsOptions } from './verify-cert.ts';

/** Inputs of {@link verifySessionEvidence}: the usual ones plus what only this session knows. */
export interface VerifySessionOptions extends Omit<VerifyRatlsOptions, 'expectedNonce' | 'maxCertAgeSeconds'> {
  /** RFC 9266 tls-exporter of the client's own TLS session (32 bytes), computed on its socket. */
  exporter: Uint8Array;
  /** The nonce the client sent with its request. */
  nonce: Uint8Array;
  /** Hash for the leaf and path (default WebCrypto SHA-256). */
  hash?: Sha256;
}

/** What session verification learnt about the batch. */
export interface SessionInfo {
  /** This session's leaf in the batch tree. */
  leafIndex: number;
  /** How many sessions the quote covers. */
  batchSize: number;
  /** Names of every claim in the batch quote's claims, in order. */
  claimNames: string[];
  /**
   * The decoded claims (name -> value), for layers that read claims of their own (such as
   * "runtime-log"). Non-enumerable, so JSON output lists the names only.
   */
  readonly claims: ReadonlyMap<string, Uint8Array>;
}

/** Result of session evidence verification. */
export type SessionVerificationResult = RatlsVerificationResult & { session: SessionInfo | null };

/** Verifies session evidence (the body of /.well-known/ratls/session) for the connection whose SPKI is `spkiDer`. */
export async function verifySessionEvidence(bytes: Uint8Array, spkiDer: Uint8Array, opts: VerifySessionOptions): Promise<SessionVerificationResult> {
  const rec = new CheckRecorder();
  if (!validTime(rec, opts)) return { ...stopped(rec), session: null };
  try {
    let ev: Evidence;
    let session: SessionInfo;
    let root: Uint8Array;
    let index: number;
    let size: number;
    let path: Uint8Array[];
    try {
      const outer = decodeSessionEvidence(bytes);
      ({ index, size, path } = outer);
      const { quote, claimsBuffer } = decodeEvidence(outer.evidence);
      const claims = decodeClaims(claimsBuffer);
      const r = claims.entries.get(CLAIM_SESSION_ROOT);
      if (!r || r.length !== 32) {
        throw new RatlsError('EVIDENCE_MALFORMED', `The evidence's claims carry no 32-byte "${CLAIM_SESSION_ROOT}": it is not session evidence.`);
      }
      root = r;
      ev = { profile: 'ccc', quote, claimsBuffer, claims };
      session = { leafIndex: index, batchSize: size, claimNames: [...claims.entries.keys()].map((k) => k.slice(0, 64)) } as SessionInfo;
      Object.defineProperty(session, 'claims', { value: claims.entries, enumerable: false });
      rec.pass('session evidence', `batch of ${size}, leaf ${index}`);
    } catch (err) {
      rec.failWith('session evidence', err, 'EVIDENCE_MALFORMED');
      return { ...stopped(rec), session: null };
    }

    // The binding this evidence exists for: our exporter, our key, our nonce, under the quoted root.
    if (opts.exporter.length !== EXPORTER_LENGTH) {
      rec.fail('session binding', { code: 'SESSION_BINDING_UNAVAILABLE', message: 'No 32-byte tls-exporter value of this connection was available.' });
    } else {
      const hash = opts.hash ?? webCryptoSha256;
      try {
        const leaf = await sessionLeaf({ exporter: opts.exporter, spkiSha256: await hash(spkiDer), nonce: opts.nonce }, hash);
        const got = await rootFromPath(leaf, index, size, path, hash);
        if (constantTimeEqual(got, root)) {
          rec.pass('session binding', `the quote commits to this TLS session (RFC 9266 exporter), this key and our nonce; root ${toHex(root.subarray(0, 8))}…`);
        } else {
          rec.fail('session binding', {
            code: 'SESSION_BINDING_MISMATCH',
            message:
              'The evidence was not made for this TLS session: our exporter, key and nonce do not lead to the quoted root. ' +
              'The TLS peer is not the attested TD (a relay holding its key) or the evidence belongs to another connection; nothing was sent.',
          });
        }
      } catch (err) {
        rec.failWith('session binding', err, 'SESSION_BINDING_MISMATCH');
      }
    }
    const result = await verifyEvidenceParts(rec, ev, spkiDer, { ...opts }, undefined);
    return { ...result, session };
  } catch (err) {
    rec.failWith('internal', err);
    return { ...stopped(rec), session: null };
  }
}
