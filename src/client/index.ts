/** Node client API: attested agent, dispatcher and fetch, policy loading, the local proxy. */
export { createAttestedAgent, AttestedAgent, type AttestedAgentOptions } from './agent.ts';
export {
  createAttestedDispatcher,
  fetchWithDispatcher,
  findAttestationError,
  type AttestedDispatcher,
  type AttestedDispatcherOptions,
  type AttestedFetch,
} from './dispatcher.ts';
export { attestedFetch, createAttestedFetch } from './fetch.ts';
export { AttestationError } from './errors.ts';
export { Attestor, EVIDENCE_PATH, type AttestOptions, type AttestationEvent } from './attestor.ts';
export { loadPolicyFile, resolveCliPolicy } from '../policy/load.ts';
export { startConnectProxy, type ConnectProxyOptions, type RunningConnectProxy } from './connect.ts';
export type { ConnectStatus } from './pages.ts';
export { parsePolicy, policyToYaml, defaultClientPolicy, type ClientPolicy } from '../verify/policy-file.ts';
export { verifyAttestationToken, type TokenKeySource, type VerifyAttestationTokenOptions, type VerifiedAttestationToken } from '../token/verify.ts';
export { attestViaService, type AttestViaServiceOptions, type ServiceAttestation } from './attest-via-service.ts';
