/**
 * What `ratls connect` knows about its one upstream: the outcome of every attestation (shown on
 * /.ratls/status), and whether requests may be forwarded now. While the upstream is refused, a
 * request triggers a new attestation first, at most once per retry interval, so a server that
 * was fixed is used again without a restart and a broken one is not hammered.
 */
import type { RatlsVerificationResult } from '../ratls/verify-cert.ts';
import { failedResult } from '../core/checks.ts';
import type { AppraisalPolicy } from '../core/types.ts';
import { toVerifyError } from '../core/errors.ts';
import type { AttestationEvent } from './attestor.ts';
import type { ConnectStatus } from './pages.ts';
import { clean } from './report.ts';

/** Options of {@link UpstreamAttestation}. */
export interface UpstreamAttestationOptions {
  /** Origin of the upstream (https://host:port). */
  upstream: string;
  /** host:port, for the event recorded when no connection could be made. */
  peer: string;
  /** The appraisal policy the upstream is judged by (the status and refusal pages show it). */
  policy?: AppraisalPolicy;
  /**
   * Attests a new upstream connection; its outcome arrives through {@link UpstreamAttestation.verified}
   * and {@link UpstreamAttestation.rejected}. A throw counts as a refusal (CONNECTION_FAILED).
   */
  check(): Promise<unknown>;
  /** While refused, re-attest at most this often when requests arrive (default 1000 ms). */
  retryIntervalMs?: number;
  /** Log lines (no secrets); default none. */
  log?: (line: string) => void;
  /** Milliseconds clock (default Date.now). */
  clockMs?: () => number;
}

/** The attestation state of the upstream and the gate in front of it. */
export class UpstreamAttestation {
  /** Live status (the same object throughout; /.ratls/status renders it). */
  readonly status: ConnectStatus;
  private lastRetry = 0;
  private retrying: Promise<void> | undefined;
  private readonly log: (line: string) => void;
  private readonly clockMs: () => number;

  constructor(private readonly o: UpstreamAttestationOptions) {
    this.log = o.log ?? (() => {});
    this.clockMs = o.clockMs ?? Date.now;
    this.status = {
      upstream: o.upstream,
      state: 'unknown',
      lastVerified: null,
      lastFailure: null,
      verifications: 0,
      refusals: 0,
      certificateChanges: 0,
      lastCertificateChangeAt: null,
      ...(o.policy ? { policy: o.policy } : {}),
    };
  }

  /** Records a connection that passed attestation. */
  verified(e: AttestationEvent): void {
    const s = this.status;
    s.verifications++;
    if (s.lastVerified && e.certSha256 !== s.lastVerified.certSha256) {
      s.certificateChanges++;
      s.lastCertificateChangeAt = e.at.toISOString();
      this.log(`upstream certificate changed (now ${e.certSha256}); it passed attestation`);
    }
    s.lastVerified = e;
    const w = (e.result as RatlsVerificationResult).workload;
    if (w) s.lastWorkload = { at: e.at.toISOString(), report: w };
    s.state = 'verified';
  }

  /** Records a connection that was refused. */
  rejected(e: AttestationEvent): void {
    const s = this.status;
    s.refusals++;
    s.lastFailure = e;
    s.state = 'refused';
    this.log(clean(`upstream REFUSED: ${e.result.errors.map((x) => `${x.code}: ${x.message}`).join('; ')}`));
  }

  /** Attests a new upstream connection now; never throws. */
  async reattest(): Promise<void> {
    try {
      await this.o.check();
    } catch (err) {
      const e = toVerifyError(err, 'CONNECTION_FAILED');
      this.rejected({
        peer: this.o.peer,
        result: failedResult(e, { check: 'connect' }),
        nonceVerified: false,
        at: new Date(this.clockMs()),
      });
    }
  }

  /** True when requests may be forwarded; while refused, re-attests (rate-limited, shared by concurrent callers) first. */
  async admit(): Promise<boolean> {
    if (this.isVerified()) return true;
    const now = this.clockMs();
    if (!this.retrying && now - this.lastRetry >= (this.o.retryIntervalMs ?? 1000)) {
      this.lastRetry = now;
      this.retrying = this.reattest().finally(() => {
        this.retrying = undefined;
      });
    }
    if (this.retrying) await this.retrying;
    return this.isVerified();
  }

  private isVerified(): boolean {
    return this.status.state === 'verified';
  }
}
