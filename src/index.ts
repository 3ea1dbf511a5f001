/**
 * ratls-proxy for Node: everything in `ratls-proxy/verify` plus the Node-only parts (server,
 * evidence providers, certificate issuance, clients, collateral sources, attestation service).
 *
 * @example
 * ```ts
 * import { createAttestedFetch, loadPolicyFile } from 'ratls-proxy';
 * const fetch = createAttestedFetch(loadPolicyFile('policy.yaml'));
 * const res = await fetch('https://vm.example:8443/ollama/api/tags');
 * ```
 */
export * from './api/verify.ts';
export * from './client/index.ts';
export { startRatlsServer, type RunningRatlsServer } from './proxy/server.ts';
export { startAttestService, type AttestServiceConfig, type AttestServiceHandle } from './service/server.ts';
export { selectEvidenceProvider, type SelectEvidenceProviderOptions } from './tee/select.ts';
export { initSimulatedWorld, loadSimulatedProvider, type SimulatedProviderOptions } from './tee/simulated/index.ts';
export type { EvidenceProvider } from './ratls/evidence-provider.ts';
export { createRatlsIdentity, type CreateRatlsIdentityOptions, type RatlsIdentity } from './ratls/identity.ts';
export { createNonceEvidence } from './ratls/evidence.ts';
export { DirectoryCollateralSource } from './collateral/directory.ts';
export { DiskCacheCollateralSource } from './collateral/cache.ts';
export { PcsCollateralSource } from './collateral/pcs.ts';
export { StapledCollateralSource } from './ratls/stapled-source.ts';
export { ChainedCollateralSource, fetchCollateral } from './collateral/chain.ts';
export { collateralSourcesFromSettings } from './collateral/from-settings.ts';
export { loadCollateralDir, writeCollateralDir } from './collateral/file.ts';
