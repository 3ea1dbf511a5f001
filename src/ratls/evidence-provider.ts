import type { Collateral } from '../core/types.ts';

/** Where quotes come from inside the TD. */
export interface EvidenceProvider {
  /** 'configfs-tsm' or 'simulated'. */
  readonly name: string;
  /** True for the simulated provider: everything it touches must say SIMULATED. */
  readonly simulated: boolean;
  /** Produces a TDX quote whose REPORTDATA is exactly the 64 given bytes. */
  getQuote(reportData: Uint8Array): Promise<Uint8Array>;
  /**
   * Collateral to staple into certificates, valid at `now` (optional). The simulated provider signs
   * fresh collateral on demand; configfs-tsm has none of its own (collateral comes from PCS/PCCS).
   */
  collateral?(now: Date): Promise<Collateral>;
}
