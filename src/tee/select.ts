/**
 * Picks the evidence provider: the simulated one only when asked for, otherwise configfs-tsm when
 * the kernel exposes it, otherwise a refusal that tells the user what to do. Node-only.
 */
import { RatlsError } from '../core/errors.ts';
import type { EvidenceProvider } from '../ratls/evidence-provider.ts';
import { ConfigfsTsmProvider, configfsTsmAvailable, DEFAULT_CONFIGFS_TSM_ROOT } from './configfs-tsm.ts';
import { initSimulatedWorld } from './simulated/world.ts';
import { loadSimulatedProvider, type SimulatedProviderOptions } from './simulated/provider.ts';

export interface SelectEvidenceProviderOptions {
  /** Use the simulated DCAP world (dev/test only). */
  simulate?: boolean;
  /** World directory for simulation; created on first use. */
  simDir?: string;
  /** configfs-tsm root (default /sys/kernel/config/tsm). */
  configfsRoot?: string;
  /** Measurement overrides for the simulated provider. */
  simulated?: SimulatedProviderOptions;
}

/** Returns the provider to use, or throws EVIDENCE_PROVIDER_UNAVAILABLE. */
export async function selectEvidenceProvider(opts: SelectEvidenceProviderOptions = {}): Promise<EvidenceProvider> {
  if (opts.simulate) {
    if (!opts.simDir) {
      throw new RatlsError(
        'EVIDENCE_PROVIDER_UNAVAILABLE',
        'Simulation needs a directory for the simulated TDX world: pass --sim-dir DIR (create it with `ratls sim init --dir DIR`).',
      );
    }
    await initSimulatedWorld(opts.simDir);
    return loadSimulatedProvider(opts.simDir, opts.simulated);
  }
  const root = opts.configfsRoot ?? DEFAULT_CONFIGFS_TSM_ROOT;
  if (await configfsTsmAvailable(root)) return new ConfigfsTsmProvider({ root });
  throw new RatlsError(
    'EVIDENCE_PROVIDER_UNAVAILABLE',
    `No TDX evidence provider: ${root}/report does not exist (not a TDX guest, or configfs not mounted). On a machine without TDX, pass --simulate --sim-dir DIR to use a SIMULATED quote that only verifiers given DIR/root.pem accept.`,
  );
}
