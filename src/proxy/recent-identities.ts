/**
 * The identities the proxy served most recently. A rotation swaps the certificate for new
 * connections only; a keep-alive connection opened before it still speaks with the old key, and
 * evidence asked for on that connection must be bound to that old certificate, not the new one.
 */
import { createHash } from 'node:crypto';
import type { ServingIdentity } from './identity-source.ts';

/** How many identities stay answerable by default: the current one and two before it. */
export const KEEP_IDENTITIES = 3;

/** Lower-case hex SHA-256 of a DER certificate. */
export function certFingerprint(der: Uint8Array): string {
  return createHash('sha256').update(der).digest('hex');
}

/** The current identity and the few before it, newest first. */
export class RecentIdentities<I extends ServingIdentity> {
  private readonly entries: I[];

  constructor(
    first: I,
    private readonly keep = KEEP_IDENTITIES,
  ) {
    this.entries = [first];
  }

  /** The identity new connections are served. */
  get current(): I {
    return this.entries[0]!;
  }

  /** The current identity while no other has been served; then no connection needs asking which one it got. */
  get sole(): I | undefined {
    return this.entries.length === 1 ? this.entries[0] : undefined;
  }

  /** Makes `identity` current; the oldest one beyond `keep` is forgotten. */
  add(identity: I): void {
    this.entries.unshift(identity);
    this.entries.length = Math.min(this.entries.length, this.keep);
  }

  /**
   * The identity whose certificate is `certDer` (what a connection was served), or the current one
   * when there is no certificate or it is no longer remembered.
   */
  forCertificate(certDer: Uint8Array | undefined): I {
    if (certDer) {
      const fp = certFingerprint(certDer);
      const hit = this.entries.find((id) => id.fingerprintSha256 === fp);
      if (hit) return hit;
    }
    return this.current;
  }
}
