/**
 * Fresh evidence for clients, fairly shared: session-bound evidence (GET /.well-known/ratls/session,
 * batched under one quote per round, see src/ratls/session-quoter.ts) and the legacy nonce evidence
 * (one quote each, taking turns with the batches). Every listener of the server (the main one and
 * any other with the same RA-TLS identity) answers through the one service, so quotes stay one at
 * a time and every client waits in the same queue.
 *
 * Fairness: one evidence request waiting per TLS connection (a second gets 429), at most
 * `maxPerPeer` per client address, at most `maxQueued` sessions in all; beyond that 503 with
 * Retry-After, and the client retries. Nothing here blocks the proxied traffic. Node-only.
 */
import { createHash } from 'node:crypto';
import { X509Certificate } from '@peculiar/x509';
import type { TLSSocket } from 'node:tls';
import { type ErrorCode, RatlsError, toVerifyError } from '../core/errors.ts';
import { fromHex, toArrayBuffer } from '../core/bytes.ts';
import { encodeEvidence } from '../ratls/extension.ts';
import { SessionQuoter, type SessionClaimsHook } from '../ratls/session-quoter.ts';
import { MAX_SESSION_NONCE_BYTES, MIN_SESSION_NONCE_BYTES, sessionLeaf, tlsExporter, type Sha256 } from '../ratls/session.ts';
import type { ServingIdentity } from './identity-source.ts';
import type { ProxyMetrics } from './metrics.ts';

/** An answer for the control routes to send. */
export interface EvidenceAnswer {
  status: number;
  /** CBOR evidence, or a JSON error body. */
  body: Uint8Array | { error: { code: ErrorCode; message: string } };
  headers: Record<string, string>;
}

/** Options of {@link createEvidenceService}. */
export interface EvidenceServiceOptions<I extends ServingIdentity> {
  /** One quote over 64 bytes of REPORTDATA; absent = no session evidence (501). */
  quote?: (reportData: Uint8Array) => Promise<Uint8Array>;
  /** Legacy nonce evidence; absent = 501. */
  nonceEvidence?: (identity: I, nonce: Uint8Array) => Promise<Uint8Array>;
  maxQueued: number;
  maxBatch: number;
  maxPerPeer: number;
  /** Extra claims for every batch quote (e.g. the runtime event log's value). */
  sessionClaims?: SessionClaimsHook;
  metrics: ProxyMetrics;
}

/** Largest nonce the legacy route accepts: the claims hash makes longer nonces pointless. */
export const MAX_NONCE_ROUTE_BYTES = 64;

// a plain Uint8Array: cbor2 encodes a Buffer differently from a byte string
const nodeSha256: Sha256 = async (data) => new Uint8Array(createHash('sha256').update(data).digest());

function error(status: number, code: ErrorCode, message: string, headers: Record<string, string> = {}): EvidenceAnswer {
  return { status, body: { error: { code, message } }, headers };
}

/** The evidence service of one server. */
export class EvidenceService<I extends ServingIdentity> {
  readonly quoter: SessionQuoter;
  private readonly waiting = new WeakSet<object>();
  private readonly perPeer = new Map<string, number>();
  private readonly spkiCache = new WeakMap<I, { spkiDer: Uint8Array; spkiSha256: Uint8Array }>();
  private readonly certEvidence = new WeakMap<I, Uint8Array | null>();

  constructor(private readonly opts: EvidenceServiceOptions<I>) {
    const m = opts.metrics;
    this.quoter = new SessionQuoter({
      quote: opts.quote ?? (() => Promise.reject(new RatlsError('SESSION_BINDING_UNAVAILABLE', 'This server cannot quote.'))),
      maxQueued: opts.maxQueued,
      maxBatch: opts.maxBatch,
      // single quotes cost a whole quote each (about 40 ms on TDX): far fewer may wait
      maxQueuedJobs: Math.min(64, opts.maxQueued),
      hash: nodeSha256,
      ...(opts.sessionClaims ? { claims: opts.sessionClaims } : {}),
      observer: {
        depth: (n) => m.evidenceQueueDepth.set(n),
        batch: (n) => m.evidenceBatchSize.observe(n),
        quoted: (ms, kind) => m.evidenceQuoteSeconds.observe({ kind }, ms / 1000),
        waited: (ms) => m.evidenceWaitSeconds.observe(ms / 1000),
        shed: () => m.evidenceShed.inc({ reason: 'queue' }),
      },
    });
  }

  /** True when this server can make session evidence. */
  get sessions(): boolean {
    return this.opts.quote !== undefined;
  }

  /**
   * Takes the connection's and the peer's slot; a release function, or the refusal. A client never
   * needs two evidence requests at once on one connection, and the per-peer cap keeps one address
   * from filling the queue that everyone shares.
   */
  private admit(socket: TLSSocket | undefined): (() => void) | EvidenceAnswer {
    if (socket && this.waiting.has(socket)) {
      this.opts.metrics.evidenceShed.inc({ reason: 'connection' });
      return error(429, 'EVIDENCE_BUSY', 'An evidence request is already waiting on this connection; send the next one after its answer.', {
        'retry-after': '1',
      });
    }
    const peer = socket?.remoteAddress ?? '?';
    const n = this.perPeer.get(peer) ?? 0;
    if (n >= this.opts.maxPerPeer) {
      this.opts.metrics.evidenceShed.inc({ reason: 'peer' });
      return this.busy(`${n} evidence requests from this address are already waiting`);
    }
    if (socket) this.waiting.add(socket);
    this.perPeer.set(peer, n + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      if (socket) this.waiting.delete(socket);
      const left = (this.perPeer.get(peer) ?? 1) - 1;
      if (left <= 0) this.perPeer.delete(peer);
      else this.perPeer.set(peer, left);
    };
  }

  private busy(why: string): EvidenceAnswer {
    return error(503, 'EVIDENCE_BUSY', `The server is busy making evidence (${why}); retry after the Retry-After delay.`, {
      'retry-after': String(this.quoter.retryAfterSeconds()),
    });
  }

  private spki(identity: I): { spkiDer: Uint8Array; spkiSha256: Uint8Array } {
    let hit = this.spkiCache.get(identity);
    if (!hit) {
      const own = (identity as { spkiDer?: unknown }).spkiDer;
      // @peculiar/x509, not node:crypto, whose X509Certificate tries PEM first and would find the
      // PCK certificates the quote in an RA-TLS certificate carries as PEM text
      const spkiDer = own instanceof Uint8Array ? own : new Uint8Array(new X509Certificate(toArrayBuffer(identity.certDer)).publicKey.rawData);
      hit = { spkiDer, spkiSha256: createHash('sha256').update(spkiDer).digest() };
      this.spkiCache.set(identity, hit);
    }
    return hit;
  }

  /** GET /.well-known/ratls/session?nonce=HEX on `socket`, served with `identity`'s certificate. */
  async session(socket: TLSSocket, identity: I, nonceHex: string | undefined): Promise<EvidenceAnswer> {
    const count = (result: string) => this.opts.metrics.evidenceRequests.inc({ kind: 'session', result });
    if (!nonceHex) return error(400, 'NONCE_MISSING', `Add ?nonce=<hex> (${MIN_SESSION_NONCE_BYTES} to ${MAX_SESSION_NONCE_BYTES} random bytes).`);
    const nonce = nonceHex.length <= MAX_SESSION_NONCE_BYTES * 2 ? fromHex(nonceHex) : undefined;
    if (!nonce || nonce.length < MIN_SESSION_NONCE_BYTES) {
      return error(400, 'NONCE_INVALID', `The nonce must be ${MIN_SESSION_NONCE_BYTES} to ${MAX_SESSION_NONCE_BYTES} bytes of even-length hex.`);
    }
    if (!this.sessions) {
      count('refused');
      return error(501, 'SESSION_BINDING_UNAVAILABLE', 'This server has no evidence provider, so it cannot make session-bound evidence.');
    }
    let exporter: Uint8Array;
    try {
      // from the socket the request arrived on, never from anything the client sends
      exporter = tlsExporter(socket);
    } catch (err) {
      count('refused');
      const e = toVerifyError(err, 'SESSION_BINDING_UNAVAILABLE');
      return error(400, e.code, e.message);
    }
    const admitted = this.admit(socket);
    if (typeof admitted !== 'function') {
      count('busy');
      return admitted;
    }
    const abort = new AbortController();
    const onClose = () => abort.abort(new RatlsError('CONNECTION_FAILED', 'The client closed the connection while waiting.'));
    socket.once('close', onClose);
    try {
      const { spkiDer, spkiSha256 } = this.spki(identity);
      const leaf = await sessionLeaf({ exporter, spkiSha256, nonce }, nodeSha256);
      const body = await this.quoter.sessionEvidence({ spkiDer }, leaf, abort.signal);
      count('ok');
      return {
        status: 200,
        body,
        headers: { 'content-type': 'application/cbor', 'cache-control': 'no-store', 'x-ratls-simulated': String(identity.simulated) },
      };
    } catch (err) {
      // a client that left is not a failure of the evidence provider (no alert should fire for it)
      if (abort.signal.aborted) {
        count('aborted');
        return error(499, 'CONNECTION_FAILED', 'The client closed the connection while waiting.');
      }
      return this.failed(err, count);
    } finally {
      socket.off('close', onClose);
      admitted();
    }
  }

  /** A quote that could not be made: 503 when the provider is saturated, else 500 with its code. */
  private failed(err: unknown, count: (result: string) => void): EvidenceAnswer {
    const e = toVerifyError(err, 'EVIDENCE_PROVIDER_FAILED');
    if (e.code === 'EVIDENCE_BUSY') {
      count('busy');
      return this.busy(e.message);
    }
    count('error');
    return error(500, e.code, e.message);
  }

  /** GET /.well-known/ratls/evidence?nonce=HEX: one quote over {pubkey-hash, nonce}, in turn with the batches. */
  async nonce(socket: TLSSocket | undefined, identity: I, nonce: Uint8Array): Promise<EvidenceAnswer | Uint8Array> {
    const count = (result: string) => this.opts.metrics.evidenceRequests.inc({ kind: 'nonce', result });
    const make = this.opts.nonceEvidence;
    if (!make) {
      count('refused');
      return error(501, 'EVIDENCE_PROVIDER_UNAVAILABLE', 'This server has no evidence provider, so it cannot produce nonce evidence.');
    }
    const admitted = this.admit(socket);
    if (typeof admitted !== 'function') {
      count('busy');
      return admitted;
    }
    try {
      const ev = await this.quoter.exclusive(() => make(identity, nonce));
      count('ok');
      return ev;
    } catch (err) {
      return this.failed(err, count);
    } finally {
      admitted();
    }
  }

  /**
   * The certificate's own evidence (GET /.well-known/ratls/evidence without a nonce): made once per
   * identity, no quote; null for identities without CCC evidence (dstack profile, tests).
   */
  certificateEvidence(identity: I): Uint8Array | null {
    let ev = this.certEvidence.get(identity);
    if (ev === undefined) {
      const q = (identity as { quote?: unknown }).quote;
      const c = (identity as { claimsBuffer?: unknown }).claimsBuffer;
      ev = q instanceof Uint8Array && c instanceof Uint8Array && c.length > 0 ? encodeEvidence(q, c) : null;
      this.certEvidence.set(identity, ev);
    }
    this.opts.metrics.evidenceRequests.inc({ kind: 'certificate', result: ev ? 'ok' : 'refused' });
    return ev;
  }
}

/** Creates the evidence service (one per server, shared by its listeners). */
export function createEvidenceService<I extends ServingIdentity>(opts: EvidenceServiceOptions<I>): EvidenceService<I> {
  return new EvidenceService(opts);
}
