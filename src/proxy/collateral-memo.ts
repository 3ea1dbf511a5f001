/**
 * The collateral the control route hands out, remembered for a while: it changes rarely, and
 * re-signing or re-fetching it for every request would be wasteful (and would let clients make
 * the proxy hammer PCS).
 */
import type { Collateral } from '../core/types.ts';

/** How long a fetched value is handed out again (5 minutes). */
export const COLLATERAL_MEMO_MS = 300_000;

/** Options of {@link CollateralMemo}. */
export interface CollateralMemoOptions {
  /** Default {@link COLLATERAL_MEMO_MS}. */
  ttlMs?: number;
  /** Milliseconds clock for the memo's age (default Date.now). */
  clockMs?: () => number;
}

/** Remembers the result of `fetch` for `ttlMs`; without a fetch function it always answers undefined. */
export class CollateralMemo {
  private memo: { at: number; value: Collateral | undefined } | undefined;
  private readonly ttlMs: number;
  private readonly clockMs: () => number;

  constructor(
    private readonly fetch: (() => Promise<Collateral | undefined>) | undefined,
    opts: CollateralMemoOptions = {},
  ) {
    this.ttlMs = opts.ttlMs ?? COLLATERAL_MEMO_MS;
    this.clockMs = opts.clockMs ?? Date.now;
  }

  /** The remembered value while fresh, else a new fetch (a failed fetch is not remembered). */
  async get(): Promise<Collateral | undefined> {
    if (!this.fetch) return undefined;
    if (this.memo && this.clockMs() - this.memo.at < this.ttlMs) return this.memo.value;
    const value = await this.fetch();
    this.memo = { at: this.clockMs(), value };
    return value;
  }

  /** Forgets the remembered value (a rotation may have fetched newer collateral). */
  invalidate(): void {
    this.memo = undefined;
  }
}
