/** The simulated DCAP world (dev/test only): see docs/simulated-tdx.md. */
export { initSimulatedWorld, loadWorld, defaultMeasurements, WORLD_FILES } from './world.ts';
export type { InitSimulatedWorldOptions, SimulatedWorldInfo, SimulatedMeasurements, WorldConfig, LoadedWorld } from './world.ts';
export { loadSimulatedProvider, SimulatedProvider } from './provider.ts';
export type { SimulatedProviderOptions } from './provider.ts';
export { simulatedCollateral } from './collateral.ts';
