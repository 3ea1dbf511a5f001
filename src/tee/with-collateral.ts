/**
 * Gives a provider without collateral of its own (configfs-tsm) a `collateral(now)` backed by
 * collateral sources (PCCS/PCS, cache, directory), so certificates from real TDX can staple it too.
 * The platform's FMSPC and PCK CA are read once from the PCK leaf of a quote. Nothing fetched is
 * trusted here: verifiers check every signature.
 */
import type { CollateralSource } from '../collateral/types.ts';
import { fetchCollateral } from '../collateral/chain.ts';
import { parseQuote } from '../quote/parse.ts';
import { pckInfoFromQuote } from '../verify/pck.ts';
import type { Collateral } from '../core/types.ts';
import type { EvidenceProvider } from '../ratls/evidence-provider.ts';

/** Options of {@link withCollateralSources}. */
export interface WithCollateralOptions {
  /** Told which source answered each successful fetch (for logs). */
  onFetched?: (info: { source: string; fmspc: string; pckCa: 'processor' | 'platform' }) => void;
}

/** `provider` with `collateral(now)` fetched from `sources` (in order). */
export function withCollateralSources(provider: EvidenceProvider, sources: CollateralSource[], opts: WithCollateralOptions = {}): EvidenceProvider {
  let platform: Promise<{ fmspc: string; pckCa: 'processor' | 'platform' }> | undefined;
  const identify = () => {
    platform ??= provider.getQuote(new Uint8Array(64)).then((q) => {
      const pck = pckInfoFromQuote(parseQuote(q));
      return { fmspc: pck.fmspc, pckCa: pck.pckCa };
    });
    // A failed attempt must not be cached forever.
    platform.catch(() => {
      platform = undefined;
    });
    return platform;
  };
  return {
    name: provider.name,
    simulated: provider.simulated,
    getQuote: (reportData) => provider.getQuote(reportData),
    async collateral(now: Date): Promise<Collateral> {
      const { fmspc, pckCa } = await identify();
      const got = await fetchCollateral(sources, { fmspc, pckCa, now });
      opts.onFetched?.({ source: got.source, fmspc, pckCa });
      return got.collateral;
    },
  };
}
