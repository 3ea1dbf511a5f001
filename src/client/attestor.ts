/**
 * The check every client path shares: given a freshly handshaken TLS socket, verify the peer's
 * RA-TLS certificate (and optionally a nonce round trip on the same connection) under a policy.
 * Only a socket that passes is handed to an HTTP client; the caller destroys the others.
 */
import type { TLSSocket } from 'node:tls';
import { createHash, randomBytes } from 'node:crypto';
import { X509Certificate } from '@peculiar/x509';
import { verifyRatlsCertificate, verifyRatlsEvidence, type RatlsVerificationResult } from '../ratls/verify-cert.ts';
import { withWorkload } from '../ratls/workload-check.ts';
import { policyNeedsEventLog } from '../eventlog/appraise.ts';
import { parseEventLogDocument, type ServedLogs } from '../eventlog/document.ts';
import type { ClientPolicy } from '../verify/policy-file.ts';
import type { CollateralSource } from '../collateral/types.ts';
import { StapledCollateralSource } from '../ratls/stapled-source.ts';
import { collateralSourcesFromSettings } from '../collateral/from-settings.ts';
import type { CheckRecord, VerificationResult } from '../core/types.ts';
import { failedResult } from '../core/checks.ts';
import { toVerifyError, type VerifyError } from '../core/errors.ts';
import { toArrayBuffer, toHex } from '../core/bytes.ts';
import { AttestationError } from './errors.ts';
import { rawGet } from './evidence-request.ts';
import { clean } from './report.ts';

const NO_CERTIFICATE: VerifyError = { code: 'EVIDENCE_MISSING', message: 'The server presented no certificate.' };

/** Path of the nonce evidence route served by `ratls serve`. */
export const EVIDENCE_PATH = '/.well-known/ratls/evidence';

/** Options shared by the agent, the dispatcher, attestedFetch and `ratls connect`. */
export interface AttestOptions {
  /** Collateral sources after the stapled one; default: built from policy.collateral. */
  collateralSources?: CollateralSource[];
  /** Clock, for tests; default () => new Date(). */
  now?: () => Date;
  /** Time allowed for the nonce round trip; default 15 s. */
  nonceTimeoutMs?: number;
  /** Called after each successful verification (one per new TLS connection). */
  onVerified?: (event: AttestationEvent) => void;
  /** Called after each refused connection. */
  onRejected?: (event: AttestationEvent) => void;
  /**
   * When to fetch and replay the server's event logs (/.well-known/ratls/eventlog) on the connection:
   * 'when-pinned' (default) only when the policy pins the workload; 'always' to report it too
   * (`ratls verify`, `ratls connect` status).
   */
  workload?: 'always' | 'when-pinned';
}

/** What one connection's attestation found. */
export interface AttestationEvent {
  /** host:port */
  peer: string;
  result: VerificationResult;
  /** SHA-256 of the peer certificate (hex); undefined when none was presented. */
  certSha256?: string;
  certDer?: Uint8Array;
  /** True when a nonce round trip was made and passed. */
  nonceVerified: boolean;
  at: Date;
}

/** Verifies TLS peers under one policy; cheap to share between connections. */
export class Attestor {
  readonly policy: ClientPolicy;
  private readonly sources: CollateralSource[];
  private readonly opts: AttestOptions;

  constructor(policy: ClientPolicy, opts: AttestOptions = {}) {
    this.policy = policy;
    this.opts = opts;
    this.sources = opts.collateralSources ?? collateralSourcesFromSettings(policy.collateral);
  }

  /** Verifies a certificate (DER) without a connection, e.g. for `--cert FILE`. */
  async verifyCertificate(certDer: Uint8Array, expectedNonce?: Uint8Array): Promise<VerificationResult> {
    try {
      return await verifyRatlsCertificate(certDer, {
        now: this.now(),
        trustedRoots: this.policy.trustedRoots,
        policy: this.policy.appraisal,
        collateralSources: this.sources,
        maxCertAgeSeconds: this.policy.freshness.maxCertAgeSeconds,
        ...(expectedNonce ? { expectedNonce } : {}),
      });
    } catch (err) {
      const e = toVerifyError(err);
      return failedResult(e, { check: e.code });
    }
  }

  private now(): Date {
    return this.opts.now ? this.opts.now() : new Date();
  }

  /**
   * Verifies the peer of a connected TLS socket. Resolves with the event when it passes; rejects
   * with AttestationError otherwise. Never writes to the socket except the nonce request.
   */
  async attest(socket: TLSSocket, host: string, port: number | string, opts: { workload?: 'always' | 'when-pinned' } = {}): Promise<AttestationEvent> {
    const peer = `${host}:${port}`;
    const raw = socket.getPeerCertificate(false)?.raw;
    const event: AttestationEvent = {
      peer,
      result: failedResult(NO_CERTIFICATE, { check: NO_CERTIFICATE.code }),
      nonceVerified: false,
      at: this.now(),
    };
    if (!raw || raw.length === 0) return this.reject(event);
    const der = new Uint8Array(raw);
    event.certDer = der;
    event.certSha256 = createHash('sha256').update(der).digest('hex');
    event.result = await this.verifyCertificate(der);
    if (!event.result.ok) return this.reject(event);

    let nonceResult: RatlsVerificationResult | undefined;
    if (this.policy.freshness.requireNonce) {
      const nonce = new Uint8Array(randomBytes(32));
      try {
        const res = await rawGet(socket, host, `${EVIDENCE_PATH}?nonce=${toHex(nonce)}`, this.opts.nonceTimeoutMs ?? 15_000);
        if (res.status !== 200) {
          let detail = `HTTP ${res.status}`;
          try {
            const j = JSON.parse(new TextDecoder().decode(res.body)) as { error?: { code?: string; message?: string } };
            // the server's own words: bounded and without control characters (they end up on terminals and pages)
            if (typeof j.error?.message === 'string') detail += `: ${clean(j.error.message.slice(0, 300))}`;
          } catch {
            // not JSON; the status says enough
          }
          throw new AttestationError(
            peer,
            failedResult(
              { code: 'NONCE_MISSING', message: `The server did not return nonce evidence (${detail}); the policy requires a nonce round trip.` },
              { check: 'NONCE_MISSING' },
            ),
          );
        }
        const spki = new Uint8Array(new X509Certificate(toArrayBuffer(der)).publicKey.rawData);
        // The nonce evidence staples nothing: reuse the certificate's collateral (same platform).
        let stapled: StapledCollateralSource | undefined;
        try {
          stapled = StapledCollateralSource.fromCertificate(der);
        } catch {
          stapled = undefined; // already reported by the certificate check
        }
        const r = await verifyRatlsEvidence(res.body, spki, {
          now: this.now(),
          trustedRoots: this.policy.trustedRoots,
          policy: this.policy.appraisal,
          collateralSources: stapled ? [stapled, ...this.sources] : this.sources,
          expectedNonce: nonce,
        });
        if (!r.ok) {
          // keep only what failed: the passing steps repeat the certificate's
          const failed = r.checks.filter((c: CheckRecord) => !c.ok).map((c: CheckRecord) => ({ ...c, name: `nonce evidence: ${c.name}` }));
          event.result = { ...r, checks: [...event.result.checks, ...failed] };
          return this.reject(event);
        }
        nonceResult = r;
        const detail = `fresh evidence over our ${nonce.length}-byte nonce, same key, same connection; its quote passed all ${r.checks.length} checks`;
        event.result = { ...event.result, checks: [...event.result.checks, { name: 'nonce round trip', ok: true, detail }] };
        event.nonceVerified = true;
      } catch (err) {
        if (err instanceof AttestationError) {
          event.result = err.result;
        } else {
          const e = toVerifyError(err, 'NONCE_MISMATCH');
          event.result = failedResult(e, { check: e.code });
        }
        return this.reject(event);
      }
    }
    const pins = this.policy.appraisal.workload;
    // A dstack certificate carries its own event log, already replayed by the certificate check.
    const carried = (event.result as RatlsVerificationResult).workload !== undefined;
    if (!carried && ((opts.workload ?? this.opts.workload) === 'always' || policyNeedsEventLog(pins))) {
      const logs = await fetchEventLogs(socket, host, this.opts.nonceTimeoutMs ?? 15_000);
      event.result = await withWorkload(event.result as RatlsVerificationResult, {
        ...('logs' in logs ? { logs: logs.logs } : { unavailable: logs.unavailable }),
        ...(nonceResult ? { moreEvidence: [{ source: 'nonce evidence', result: nonceResult }] } : {}),
        ...(pins ? { policy: pins } : {}),
      });
      if (!event.result.ok) return this.reject(event);
    }
    this.opts.onVerified?.(event);
    return event;
  }

  private reject(event: AttestationEvent): never {
    this.opts.onRejected?.(event);
    throw new AttestationError(event.peer, event.result);
  }
}

/** Path of the event-log route served by `ratls serve`. */
export const EVENTLOG_PATH = '/.well-known/ratls/eventlog';

/**
 * GET /.well-known/ratls/eventlog on the attested connection. Resolves to the logs, or to why there
 * are none (a server that does not measure, an unreadable answer); never rejects.
 */
export async function fetchEventLogs(socket: TLSSocket, host: string, timeoutMs: number): Promise<{ logs: ServedLogs } | { unavailable: string }> {
  try {
    const res = await rawGet(socket, host, `${EVENTLOG_PATH}?decoded=false`, timeoutMs);
    const text = new TextDecoder().decode(res.body);
    if (res.status !== 200) {
      let detail = '';
      try {
        const j = JSON.parse(text) as { error?: { message?: string } };
        if (typeof j.error?.message === 'string') detail = `: ${clean(j.error.message.slice(0, 300))}`;
      } catch {
        // not JSON
      }
      return { unavailable: `The server offers no event log (HTTP ${res.status}${detail}).` };
    }
    return { logs: parseEventLogDocument(text) };
  } catch (err) {
    return { unavailable: `The server's event log could not be read: ${clean(toVerifyError(err).message.slice(0, 300))}` };
  }
}
