/**
 * Default identity source: RA-TLS issuance (src/ratls/identity.ts) with the evidence provider the
 * config asks for. Without TDX it refuses to start unless simulation was requested.
 */
import type { ServeConfig } from './config.ts';
import type { IdentityMeasurements, IdentitySource } from './identity-source.ts';
import type { EvidenceProvider } from '../tee/types.ts';
import { selectEvidenceProvider } from '../tee/select.ts';
import { createRatlsIdentity, type RatlsIdentity } from '../ratls/identity.ts';
import { createNonceEvidence } from '../ratls/evidence.ts';
import { parseQuote } from '../quote/parse.ts';
import { summarizeQuote } from '../quote/summary.ts';

/** Builds the production identity source for `config` (or for an already chosen provider). */
export async function createRatlsIdentitySource(config: ServeConfig, provider?: EvidenceProvider): Promise<IdentitySource<RatlsIdentity> & { provider: EvidenceProvider }> {
  const p =
    provider ??
    (await selectEvidenceProvider({
      simulate: config.evidence.provider === 'simulated',
      simDir: config.evidence.simDir,
      configfsRoot: config.evidence.configfsRoot,
    }));
  return {
    provider: p,
    issue: (now) =>
      createRatlsIdentity({
        provider: p,
        hosts: config.tls.hosts,
        keyAlg: config.tls.keyAlg,
        validitySeconds: Math.round(config.tls.validityMs / 1000),
        now,
        stapleCollateral: config.tls.stapleCollateral,
      }),
    evidence: (identity, nonce) => createNonceEvidence(identity, p, nonce),
    ...(p.collateral ? { collateral: (now: Date) => p.collateral!(now) } : {}),
    measurements: (identity): IdentityMeasurements | undefined => {
      try {
        const s = summarizeQuote(parseQuote(identity.quote));
        return { mrTd: s.mrTd, rtmr0: s.rtmr0, rtmr1: s.rtmr1, rtmr2: s.rtmr2, rtmr3: s.rtmr3 };
      } catch {
        return undefined;
      }
    },
  };
}
