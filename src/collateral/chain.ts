/**
 * Source order for clients: stapled (per certificate, added by the verifier), then local
 * directories, then the disk cache in front of PCCS and PCS. The first source with matching, current
 * collateral wins; the verifier checks its signatures.
 *
 * Browser-safe (the verifier imports it); Node-only sources are built in ./from-settings.ts.
 */
import { RatlsError } from '../core/errors.ts';
import type { Collateral } from '../core/types.ts';
import type { CollateralRequest, CollateralSource } from './types.ts';

/** Asks `sources` in order: the first hit, or one note per source saying why it had nothing. */
async function firstHit(
  sources: CollateralSource[],
  request: CollateralRequest,
): Promise<{ hit: { collateral: Collateral; source: string } } | { notes: string[]; failed: boolean }> {
  const notes: string[] = [];
  let failed = false;
  for (const s of sources) {
    try {
      const c = await s.get(request);
      if (c) return { hit: { collateral: c, source: s.name } };
      notes.push(`${s.name}: nothing current for this platform`);
    } catch (err) {
      // a failing source (offline PCS, unreadable cache) must not hide the next one
      failed = true;
      notes.push(`${s.name}: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
  return { notes, failed };
}

/**
 * Tries sources in order and returns the first hit; network sources are tried in turn when one
 * fails. When none has collateral and at least one failed, throws COLLATERAL_MISSING with every
 * source's reason, so a PCCS DNS failure behind the cache is not reported as "nothing current".
 */
export class ChainedCollateralSource implements CollateralSource {
  readonly name: string;
  constructor(readonly sources: CollateralSource[]) {
    this.name = sources.map((s) => s.name).join(' > ') || 'none';
  }

  async get(request: CollateralRequest): Promise<Collateral | undefined> {
    const r = await firstHit(this.sources, request);
    if ('hit' in r) return r.hit.collateral;
    if (r.failed) throw new RatlsError('COLLATERAL_MISSING', r.notes.join('; '));
    return undefined;
  }
}

/**
 * Fetches collateral from `sources` in order.
 * @throws RatlsError COLLATERAL_MISSING naming every source tried and why it had nothing.
 */
export async function fetchCollateral(sources: CollateralSource[], request: CollateralRequest): Promise<{ collateral: Collateral; source: string }> {
  const r = await firstHit(sources, request);
  if ('hit' in r) return r.hit;
  const notes = r.notes;
  const tried = notes.length > 0 ? ` Tried: ${notes.join('; ')}.` : ' No collateral source is configured.';
  throw new RatlsError(
    'COLLATERAL_MISSING',
    `No current collateral for FMSPC ${request.fmspc} (${request.pckCa} CA) at ${request.now.toISOString()}.${tried} ` +
      'Staple collateral in the server certificate, configure a PCCS/PCS URL, or provide a collateral directory.',
  );
}
