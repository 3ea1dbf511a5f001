/**
 * Per-client token-bucket rate limiter. Buckets refill continuously; idle buckets are swept so a
 * flood of distinct addresses cannot grow memory without bound.
 */

/** Limiter settings. */
export interface RateLimitOptions {
  /** Sustained requests per second per client. */
  ratePerSecond: number;
  /** Burst size (bucket capacity). */
  burst: number;
  /** Most clients tracked at once; beyond this the oldest bucket is dropped. */
  maxClients?: number;
  now?: () => number;
}

/** Outcome for one request. */
export type RateDecision = { allowed: true } | { allowed: false; retryAfterSeconds: number };

interface Bucket {
  tokens: number;
  updated: number;
}

/** Token buckets keyed by client id (the remote address). */
export class RateLimiter {
  private readonly buckets = new Map<string, Bucket>();
  private readonly opts: Required<RateLimitOptions>;

  constructor(opts: RateLimitOptions) {
    if (!(opts.ratePerSecond > 0) || !(opts.burst >= 1)) throw new RangeError('rate limit needs ratePerSecond > 0 and burst >= 1');
    this.opts = { maxClients: 100_000, now: () => Date.now(), ...opts };
  }

  /** Takes one token for `client`, or says how long to wait. */
  take(client: string): RateDecision {
    const now = this.opts.now();
    let b = this.buckets.get(client);
    if (!b) {
      if (this.buckets.size >= this.opts.maxClients) {
        // Map iterates in insertion order: drop the least recently inserted client
        const first = this.buckets.keys().next();
        if (!first.done) this.buckets.delete(first.value);
      }
      b = { tokens: this.opts.burst, updated: now };
      this.buckets.set(client, b);
    } else {
      b.tokens = Math.min(this.opts.burst, b.tokens + ((now - b.updated) / 1000) * this.opts.ratePerSecond);
      b.updated = now;
    }
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return { allowed: true };
    }
    const wait = (1 - b.tokens) / this.opts.ratePerSecond;
    return { allowed: false, retryAfterSeconds: Math.max(1, Math.ceil(wait)) };
  }

  /** Drops buckets that have been full for a while (called periodically by the server). */
  sweep(): void {
    const now = this.opts.now();
    const fullAfterMs = (this.opts.burst / this.opts.ratePerSecond) * 1000;
    for (const [k, b] of this.buckets) if (now - b.updated > fullAfterMs) this.buckets.delete(k);
  }

  /** Number of clients currently tracked. */
  get size(): number {
    return this.buckets.size;
  }
}
