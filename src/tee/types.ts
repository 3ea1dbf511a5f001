/** Where quotes come from inside the TD. */
export interface EvidenceProvider {
  /** 'configfs-tsm' or 'simulated'. */
  readonly name: string;
  /** True for the simulated provider: everything it touches must say SIMULATED. */
  readonly simulated: boolean;
  /** Produces a TDX quote whose REPORTDATA is exactly the 64 given bytes. */
  getQuote(reportData: Uint8Array): Promise<Uint8Array>;
}
