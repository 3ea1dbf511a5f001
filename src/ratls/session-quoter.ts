/**
 * The quote scheduler behind session evidence. Real TDX makes one quote at a time (about 40 ms
 * each), so one quote per session would cap a VM at about 25 new sessions a second and let any
 * client exhaust it. Instead every leaf that arrives while a quote is in flight joins the next
 * batch: one tree, one quote over its root, and each waiting client gets its path. Quotes that
 * cannot be batched (the legacy nonce evidence route) take turns with the batches, one at a time.
 *
 * The queue is bounded: beyond `maxQueued` leaves (or `maxQueuedJobs` single quotes) requests are
 * refused at once with EVIDENCE_BUSY, which the server answers as 503 + Retry-After.
 */
import { RatlsError, toVerifyError } from '../core/errors.ts';
import { toHex } from '../core/bytes.ts';
import { reportDataForClaims, type PubkeyHashAlg } from './claims.ts';
import { encodeEvidence } from './extension.ts';
import { buildSessionTree, encodeSessionClaims, encodeSessionEvidence, webCryptoSha256, type Sha256 } from './session.ts';

/** The key whose sessions a batch covers (all leaves of one quote share its pubkey-hash). */
export interface BatchIdentity {
  spkiDer: Uint8Array;
  /** Hash of the pubkey-hash claim (default SHA-256). */
  pubkeyHashAlg?: PubkeyHashAlg;
}

/**
 * Adds claims to a batch quote, after "pubkey-hash" and "session-root" (which it may not set).
 * Example: the runtime event log's replayed value under "runtime-log".
 */
export type SessionClaimsHook = (batch: {
  identity: BatchIdentity;
  leaves: number;
}) => Iterable<readonly [string, Uint8Array]> | Promise<Iterable<readonly [string, Uint8Array]>>;

/** What the scheduler reports, for metrics. */
export interface SessionQuoterObserver {
  /** Leaves plus single quotes waiting, after every change. */
  depth?(waiting: number): void;
  /** A batch quote was requested for this many leaves. */
  batch?(leaves: number): void;
  /** A quote took this long (ms), batch or single. */
  quoted?(ms: number, kind: 'batch' | 'single'): void;
  /** A request was refused because the queue was full. */
  shed?(kind: 'batch' | 'single'): void;
  /** A leaf waited this long (ms) from arrival to its evidence. */
  waited?(ms: number): void;
}

/** Options of {@link SessionQuoter}. */
export interface SessionQuoterOptions {
  /** Makes one quote whose REPORTDATA is these 64 bytes. */
  quote(reportData: Uint8Array): Promise<Uint8Array>;
  /** Leaves that may wait at once (default 4096). */
  maxQueued?: number;
  /** Leaves per quote (default 1024; a tree of 1024 has 10-hash paths). */
  maxBatch?: number;
  /** Single quotes that may wait at once (default 64: about 2.5 s of real-TDX quoting). */
  maxQueuedJobs?: number;
  claims?: SessionClaimsHook;
  /** Hash for the tree (default WebCrypto SHA-256; the server passes node:crypto). */
  hash?: Sha256;
  observer?: SessionQuoterObserver;
  /** Monotonic milliseconds, for latencies (default performance.now). */
  clock?: () => number;
}

interface Waiter {
  leaf: Uint8Array;
  at: number;
  signal: AbortSignal | undefined;
  resolve(evidence: Uint8Array): void;
  reject(err: unknown): void;
}

interface Job {
  run(): Promise<unknown>;
  resolve(v: unknown): void;
  reject(err: unknown): void;
}

function busy(what: string): RatlsError {
  return new RatlsError('EVIDENCE_BUSY', `The server's evidence queue is full (${what}); retry after a moment.`);
}

/** Batches session leaves into quotes, one quote at a time. */
export class SessionQuoter {
  /** Waiting leaves by key (SPKI and hash algorithm), oldest key first. */
  private readonly groups = new Map<string, { identity: BatchIdentity; waiters: Waiter[] }>();
  private readonly jobs: Job[] = [];
  private leaves = 0;
  private running = false;
  private batchNext = true;
  private readonly maxQueued: number;
  private readonly maxBatch: number;
  private readonly maxQueuedJobs: number;
  private readonly hash: Sha256;
  private readonly clock: () => number;
  /** Moving average of quote time, for Retry-After. */
  private quoteMs = 40;

  constructor(private readonly opts: SessionQuoterOptions) {
    this.maxQueued = opts.maxQueued ?? 4096;
    this.maxBatch = Math.max(1, Math.min(opts.maxBatch ?? 1024, this.maxQueued));
    this.maxQueuedJobs = opts.maxQueuedJobs ?? 64;
    this.hash = opts.hash ?? webCryptoSha256;
    this.clock = opts.clock ?? (() => performance.now());
  }

  /** Leaves and single quotes waiting now. */
  get waiting(): number {
    return this.leaves + this.jobs.length;
  }

  /** Seconds a refused client should wait before retrying: the time to drain what is queued. */
  retryAfterSeconds(): number {
    const quotes = Math.ceil(this.leaves / this.maxBatch) + this.jobs.length + 1;
    return Math.max(1, Math.min(30, Math.ceil((quotes * this.quoteMs) / 1000)));
  }

  /**
   * Encoded session evidence (src/ratls/session.ts) for `leaf`, from the next batch quote of
   * `identity`. Rejects with EVIDENCE_BUSY at once when the queue is full, with
   * EVIDENCE_PROVIDER_FAILED when the quote fails, and with the signal's reason when aborted first.
   */
  sessionEvidence(identity: BatchIdentity, leaf: Uint8Array, signal?: AbortSignal): Promise<Uint8Array> {
    if (this.leaves >= this.maxQueued) {
      this.opts.observer?.shed?.('batch');
      return Promise.reject(busy(`${this.leaves} sessions waiting`));
    }
    return new Promise<Uint8Array>((resolve, reject) => {
      const key = `${identity.pubkeyHashAlg ?? 'SHA-256'}:${toHex(identity.spkiDer)}`;
      let group = this.groups.get(key);
      if (!group) {
        group = { identity, waiters: [] };
        this.groups.set(key, group);
      }
      group.waiters.push({ leaf, at: this.clock(), signal, resolve, reject });
      this.leaves++;
      this.report();
      this.kick();
    });
  }

  /** Runs `run` (which makes one quote) in turn with the batches. Rejects with EVIDENCE_BUSY when too many wait. */
  exclusive<T>(run: () => Promise<T>): Promise<T> {
    if (this.jobs.length >= this.maxQueuedJobs) {
      this.opts.observer?.shed?.('single');
      return Promise.reject(busy(`${this.jobs.length} single quotes waiting`));
    }
    return new Promise<T>((resolve, reject) => {
      this.jobs.push({ run, resolve: resolve as (v: unknown) => void, reject });
      this.report();
      this.kick();
    });
  }

  private report(): void {
    this.opts.observer?.depth?.(this.waiting);
  }

  private kick(): void {
    if (this.running) return;
    this.running = true;
    void this.loop();
  }

  private async loop(): Promise<void> {
    try {
      while (this.leaves > 0 || this.jobs.length > 0) {
        // Batches and single quotes alternate when both wait, so neither starves the other.
        const batch = this.leaves > 0 && (this.batchNext || this.jobs.length === 0);
        this.batchNext = !batch;
        if (batch) await this.runBatch();
        else await this.runJob(this.jobs.shift()!);
        this.report();
      }
    } finally {
      this.running = false;
    }
  }

  private async runJob(job: Job): Promise<void> {
    const t0 = this.clock();
    try {
      job.resolve(await job.run());
    } catch (err) {
      job.reject(err);
    }
    this.noteQuote(this.clock() - t0, 'single');
  }

  /** One quote for the oldest identity's waiting leaves (up to maxBatch). */
  private async runBatch(): Promise<void> {
    const [key, group] = this.groups.entries().next().value as [string, { identity: BatchIdentity; waiters: Waiter[] }];
    const identity = group.identity;
    const taken = group.waiters.splice(0, this.maxBatch);
    this.groups.delete(key);
    // what did not fit goes to the back, so a second identity (after a rotation) is not starved
    if (group.waiters.length > 0) this.groups.set(key, group);
    this.leaves -= taken.length;
    const waiters: Waiter[] = [];
    for (const w of taken) {
      if (w.signal?.aborted) w.reject(w.signal.reason);
      else waiters.push(w);
    }
    if (waiters.length === 0) return;
    this.opts.observer?.batch?.(waiters.length);
    const t0 = this.clock();
    try {
      const { root, paths } = await buildSessionTree(
        waiters.map((w) => w.leaf),
        this.hash,
      );
      const extra = this.opts.claims ? await this.opts.claims({ identity, leaves: waiters.length }) : [];
      const claims = await encodeSessionClaims({
        spkiDer: identity.spkiDer,
        root,
        extra,
        ...(identity.pubkeyHashAlg ? { hashAlg: identity.pubkeyHashAlg } : {}),
      });
      const quote = await this.opts.quote(await reportDataForClaims(claims));
      this.noteQuote(this.clock() - t0, 'batch');
      const evidence = encodeEvidence(quote, claims);
      const done = this.clock();
      waiters.forEach((w, index) => {
        this.opts.observer?.waited?.(done - w.at);
        w.resolve(encodeSessionEvidence({ evidence, index, size: waiters.length, path: paths[index]! }));
      });
    } catch (err) {
      const e = toVerifyError(err, 'EVIDENCE_PROVIDER_FAILED');
      const failure = new RatlsError(e.code === 'INTERNAL' ? 'EVIDENCE_PROVIDER_FAILED' : e.code, e.message);
      for (const w of waiters) w.reject(failure);
    }
  }

  private noteQuote(ms: number, kind: 'batch' | 'single'): void {
    this.quoteMs = this.quoteMs * 0.8 + ms * 0.2;
    this.opts.observer?.quoted?.(ms, kind);
  }
}
