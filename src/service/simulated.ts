/**
 * Explicit opt-in for the simulated TDX world (`--simulated-world DIR`): trusts that world's root and
 * serves its collateral, signed on demand, for quotes from its platform only. Nothing here is used
 * unless the operator names the directory.
 */
import { loadSimulatedProvider } from '../tee/simulated/index.ts';
import { tcbInfoFmspc } from '../collateral/inspect.ts';
import type { CollateralSource } from '../collateral/types.ts';

/** The simulated world's root (to trust) and its collateral source. */
export async function simulatedWorldSupport(dir: string): Promise<{ rootPem: string; source: CollateralSource }> {
  const provider = await loadSimulatedProvider(dir);
  const source: CollateralSource = {
    name: `simulated:${dir}`,
    async get(req) {
      const c = await provider.collateral(req.now);
      return tcbInfoFmspc(c) === req.fmspc.toLowerCase() ? c : undefined;
    },
  };
  return { rootPem: provider.rootPem, source };
}
