/**
 * In-memory front of the service's collateral sources: one lookup per platform per minute instead
 * of directory scans or cache reads on every request. Only lookups are cached; the verifier still
 * checks every signature and date on every request, and an entry is reused only while it is
 * current at the request's time.
 */
import { collateralMatches } from '../collateral/inspect.ts';
import type { CollateralRequest, CollateralSource } from '../collateral/types.ts';
import type { Collateral } from '../core/types.ts';

interface Entry {
  collateral: Collateral;
  fetchedAt: number;
}

/** Wraps `inner` with a small TTL cache keyed by FMSPC and PCK CA; concurrent misses share one fetch. */
export class MemoCollateralSource implements CollateralSource {
  readonly name: string;
  private readonly entries = new Map<string, Entry>();
  private readonly inflight = new Map<string, Promise<Collateral | undefined>>();

  constructor(
    private readonly inner: CollateralSource,
    private readonly ttlMs = 60_000,
    private readonly maxEntries = 256,
  ) {
    this.name = `memory+${inner.name}`;
  }

  async get(request: CollateralRequest): Promise<Collateral | undefined> {
    const key = `${request.fmspc.toLowerCase()}:${request.pckCa}`;
    const hit = this.entries.get(key);
    if (hit && Date.now() - hit.fetchedAt < this.ttlMs && collateralMatches(hit.collateral, request)) return hit.collateral;
    // requests at different verification times may need different sets: share only same-key, same-time fetches
    const flightKey = `${key}@${request.now.getTime()}`;
    let p = this.inflight.get(flightKey);
    if (!p) {
      p = this.inner.get(request).finally(() => this.inflight.delete(flightKey));
      this.inflight.set(flightKey, p);
    }
    const c = await p;
    if (c) {
      if (this.entries.size >= this.maxEntries) this.entries.delete(this.entries.keys().next().value!);
      this.entries.set(key, { collateral: c, fetchedAt: Date.now() });
    }
    return c;
  }
}
