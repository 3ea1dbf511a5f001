/**
 * Default identity source: RA-TLS issuance with the configured evidence provider.
 * Placeholder until certificate issuance (src/ratls/identity.ts) lands.
 */
import type { ServeConfig } from './config.ts';
import type { IdentitySource } from './identity-source.ts';
import { RatlsError } from '../verify/errors.ts';

/** Builds the production identity source for `config`. */
export async function createRatlsIdentitySource(_config: ServeConfig): Promise<IdentitySource> {
  throw new RatlsError('EVIDENCE_PROVIDER_UNAVAILABLE', 'RA-TLS certificate issuance is not available in this build yet.');
}
