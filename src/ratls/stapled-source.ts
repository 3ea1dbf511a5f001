/**
 * Stapled source: collateral carried in the RA-TLS certificate's endorsements extension
 * (2.23.133.5.4.2). Browser-safe (no node: imports).
 */
import { decodeEndorsements, OID_RATLS_ENDORSEMENTS } from './extension.ts';
import { readRatlsCertificate } from './certificate.ts';
import type { Collateral } from '../core/types.ts';
import { collateralFacts, factsMatch, type CollateralFacts } from '../collateral/inspect.ts';
import type { CollateralRequest, CollateralSource } from '../collateral/types.ts';

/** Serves one stapled collateral set when it matches the request and is still current. */
export class StapledCollateralSource implements CollateralSource {
  readonly name = 'stapled';
  /** Read once: clients keep one source per certificate and ask it on every connection. */
  private facts: CollateralFacts | undefined;
  constructor(private readonly collateral: Collateral) {}

  /**
   * From a certificate (DER); undefined when it staples nothing.
   * @throws RatlsError COLLATERAL_MALFORMED when the extension is present but malformed, CERT_MALFORMED when the certificate is.
   */
  static fromCertificate(der: Uint8Array): StapledCollateralSource | undefined {
    const ext = readRatlsCertificate(der).extensionsOf(OID_RATLS_ENDORSEMENTS)[0];
    if (!ext) return undefined;
    return new StapledCollateralSource(decodeEndorsements(ext.value).collateral);
  }

  async get(request: CollateralRequest): Promise<Collateral | undefined> {
    this.facts ??= collateralFacts(this.collateral);
    return factsMatch(this.facts, request) ? this.collateral : undefined;
  }
}
