/**
 * The RA-TLS identity every listener of the proxy serves, and its rotation: issue a new key,
 * quote and certificate, hand it to each listener, remember the previous ones for connections
 * still using them, and do it again when due. Listeners and control routes share one instance.
 */
import type { IdentitySource, ServingIdentity } from './identity-source.ts';
import { RecentIdentities } from './recent-identities.ts';
import { RotationSchedule, rotationDelay, rotationRetryDelay, type StartTimer } from './rotation-schedule.ts';

/** Options of {@link IdentityRotation.issue}. */
export interface IdentityRotationOptions<I extends ServingIdentity> {
  source: IdentitySource<I>;
  now: () => Date;
  /** Fraction of a certificate's lifetime after which the next one is made. */
  rotateAt: number;
  /** How many identities stay answerable for evidence (default 3). */
  keep?: number;
  /** Timer for automatic rotation (default: an unref'd Node timer). */
  timer?: StartTimer;
  /** Told after each successful rotation (metrics, logs, caches that depend on the identity). */
  onRotated?(identity: I): void;
  /** Told after each failed automatic rotation, with the delay until the next attempt. */
  onRotationFailed?(err: unknown, retryMs: number): void;
}

/** Applies a new identity to one listener (e.g. `server.setSecureContext`). */
export type ApplyIdentity<I> = (identity: I) => void;

/** The identity in service, those before it, and how the next one comes. */
export class IdentityRotation<I extends ServingIdentity> {
  private readonly recent: RecentIdentities<I>;
  private readonly appliers = new Set<ApplyIdentity<I>>();
  private readonly schedule: RotationSchedule;

  private constructor(
    private readonly o: IdentityRotationOptions<I>,
    first: I,
  ) {
    this.recent = new RecentIdentities(first, o.keep);
    this.schedule = new RotationSchedule({
      rotate: () => this.rotate(),
      nextDelayMs: () => rotationDelay(this.current(), o.rotateAt, o.now()),
      retryDelayMs: () => rotationRetryDelay(this.current(), o.now()),
      ...(o.onRotationFailed ? { onFailure: o.onRotationFailed } : {}),
      ...(o.timer ? { timer: o.timer } : {}),
    });
  }

  /** Issues the first identity and returns the rotation that serves it. */
  static async issue<I extends ServingIdentity>(o: IdentityRotationOptions<I>): Promise<IdentityRotation<I>> {
    return new IdentityRotation(o, await o.source.issue(o.now()));
  }

  /** The identity new connections get. */
  current(): I {
    return this.recent.current;
  }

  /** The identity a connection was served, by its certificate (falls back to the current one). */
  forCertificate(certDer: Uint8Array | undefined): I {
    return this.recent.forCertificate(certDer);
  }

  /** The identity while it is the only one served so far (no rotation yet), else undefined. */
  sole(): I | undefined {
    return this.recent.sole;
  }

  /**
   * Calls `apply` with every new identity before it becomes current; if it throws, the rotation
   * fails and the old identity stays current. Returns the function that stops the calls.
   */
  serveWith(apply: ApplyIdentity<I>): () => void {
    this.appliers.add(apply);
    return () => this.appliers.delete(apply);
  }

  /** Makes a new identity now and serves it to new connections. */
  async rotate(): Promise<I> {
    const next = await this.o.source.issue(this.o.now());
    for (const apply of this.appliers) apply(next);
    this.recent.add(next);
    this.o.onRotated?.(next);
    return next;
  }

  /** Rotates at `rotateAt` of each certificate's lifetime from now on, retrying failures. */
  autoRotate(): void {
    this.schedule.start();
  }

  /** Stops automatic rotation. */
  stop(): void {
    this.schedule.stop();
  }
}
