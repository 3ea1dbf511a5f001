/**
 * The check every client path shares: given a freshly handshaken TLS socket, verify the peer's
 * RA-TLS certificate and fresh evidence on the same connection under a policy. Only a socket that
 * passes is handed to an HTTP client; the caller destroys the others.
 *
 * With `freshness.binding: session` (the default) the client asks, right after the handshake, for
 * evidence that commits to this TLS session's exporter (RFC 9266), the certificate key and its
 * nonce, and verifies the certificate while the server quotes. With `certificate` it checks the
 * certificate alone (plus a nonce round trip when `requireNonce`): relayable if the key leaks.
 */
import type { TLSSocket } from 'node:tls';
import { createHash, randomBytes } from 'node:crypto';
import { verifyRatlsCertificate, verifyRatlsEvidence, type RatlsVerificationResult } from '../ratls/verify-cert.ts';
import { verifySessionEvidence, type SessionInfo } from '../ratls/verify-session.ts';
import { tlsExporter } from '../ratls/session.ts';
import { CLAIM_RUNTIME_LOG } from '../ratls/claims.ts';
import { withWorkload } from '../ratls/workload-check.ts';
import { policyNeedsEventLog } from '../eventlog/appraise.ts';
import { MAX_EVENTLOG_DOCUMENT_BYTES, parseEventLogDocument, type ServedLogs } from '../eventlog/document.ts';
import type { ClientPolicy } from '../verify/policy-file.ts';
import type { CollateralSource } from '../collateral/types.ts';
import { StapledCollateralSource } from '../ratls/stapled-source.ts';
import { collateralSourcesFromSettings } from '../collateral/from-settings.ts';
import type { CheckRecord, VerificationResult } from '../core/types.ts';
import { failedResult } from '../core/checks.ts';
import { toVerifyError, type ErrorCode, type VerifyError } from '../core/errors.ts';
import { toHex } from '../core/bytes.ts';
import { readRatlsCertificate } from '../ratls/certificate.ts';
import { AttestationError } from './errors.ts';
import { getEvidence, rawGet, type RawResponse } from './evidence-request.ts';
import { clean } from './report.ts';

const NO_CERTIFICATE: VerifyError = { code: 'EVIDENCE_MISSING', message: 'The server presented no certificate.' };

/** Path of the nonce evidence route served by `ratls serve`. */
export const EVIDENCE_PATH = '/.well-known/ratls/evidence';
/** Path of the session evidence route served by `ratls serve`. */
export const SESSION_PATH = '/.well-known/ratls/session';

/** Options shared by the agent, the dispatcher, attestedFetch and `ratls connect`. */
export interface AttestOptions {
  /** Collateral sources after the stapled one; default: built from policy.collateral. */
  collateralSources?: CollateralSource[];
  /** Clock, for tests; default () => new Date(). */
  now?: () => Date;
  /** Time allowed for getting fresh evidence (session or nonce), retries on 503 included; default 15 s. */
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
  /** True when fresh evidence over our nonce passed (session evidence carries the nonce too). */
  nonceVerified: boolean;
  /** What the connection's evidence was bound to (the policy's freshness.binding). */
  binding?: 'session' | 'certificate';
  /** True when session-bound evidence passed: the TD itself is the other end of this TLS session. */
  sessionBound?: boolean;
  /** The session batch and its decoded claims, when session evidence passed. */
  session?: SessionInfo;
  at: Date;
}

/** DER encodings of the RA-TLS evidence extension OIDs (CCC 2.23.133.5.4.9, dstack 1.3.6.1.4.1.62397.1.1). */
const EVIDENCE_OID_DER = [Buffer.from('0606678105050409', 'hex'), Buffer.from('060a2b0601040183e73d0101', 'hex')];

/**
 * True when the certificate names an RA-TLS evidence extension. Only a filter for sending the
 * session request early: a plain TLS server gets no byte at all; the full check decides anyway.
 */
function mayCarryEvidence(der: Uint8Array): boolean {
  const b = Buffer.from(der.buffer, der.byteOffset, der.byteLength);
  return EVIDENCE_OID_DER.some((oid) => b.includes(oid));
}

/** Certificates whose parts are kept: a client talks to few servers, each with one certificate at a time. */
const CERT_PARTS_KEPT = 16;

/** What fresh evidence needs from the certificate: its key and its stapled collateral. */
interface CertParts {
  spki: Uint8Array;
  staple: StapledCollateralSource | undefined;
}

/** node:crypto SHA-256 for the session leaf and path: synchronous, no WebCrypto round trip per hash. */
const nodeSha256 = async (data: Uint8Array): Promise<Uint8Array> => new Uint8Array(createHash('sha256').update(data).digest());

/** Verifies TLS peers under one policy; cheap to share between connections. */
export class Attestor {
  readonly policy: ClientPolicy;
  private readonly sources: CollateralSource[];
  private readonly opts: AttestOptions;
  /**
   * Parsing a 14 KB RA-TLS certificate and its staple again for every connection cost as much as
   * verifying it; these are pure functions of the certificate bytes, so they are kept by SHA-256.
   */
  private readonly certParts = new Map<string, CertParts>();

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

  private get timeoutMs(): number {
    return this.opts.nonceTimeoutMs ?? 15_000;
  }

  /**
   * Verifies the peer of a connected TLS socket. Resolves with the event when it passes; rejects
   * with AttestationError otherwise. Never writes to the socket except the evidence request.
   */
  async attest(socket: TLSSocket, host: string, port: number | string, opts: { workload?: 'always' | 'when-pinned' } = {}): Promise<AttestationEvent> {
    const peer = `${host}:${port}`;
    const raw = socket.getPeerCertificate(false)?.raw;
    const binding = this.policy.freshness.binding;
    const event: AttestationEvent = {
      peer,
      result: failedResult(NO_CERTIFICATE, { check: NO_CERTIFICATE.code }),
      nonceVerified: false,
      binding,
      sessionBound: false,
      at: this.now(),
    };
    if (!raw || raw.length === 0) return this.reject(event);
    const der = new Uint8Array(raw);
    event.certDer = der;
    event.certSha256 = createHash('sha256').update(der).digest('hex');
    const workload = opts.workload ?? this.opts.workload ?? 'when-pinned';
    if (binding === 'session') return this.attestSession(socket, host, der, event, workload);

    event.result = await this.verifyCertificate(der);
    if (!event.result.ok) return this.reject(event);
    const fresh = this.policy.freshness.requireNonce ? await this.nonceRoundTrip(socket, host, der, event) : undefined;
    event.result = withCheck(event.result, {
      name: 'binding',
      ok: true,
      detail: 'certificate only: the evidence binds the TLS key, not this session; relayable if the TLS key leaks',
    });
    await this.checkWorkload(socket, host, event, workload, fresh ? [{ source: 'nonce evidence', result: fresh }] : []);
    this.opts.onVerified?.(event);
    return event;
  }

  /**
   * What answers: the server's event logs, fetched on this connection after its evidence passed and
   * replayed against that evidence (docs/eventlog.md). A dstack certificate carries its own log,
   * already replayed by the certificate check. Rejects when the policy's workload pins fail.
   */
  private async checkWorkload(
    socket: TLSSocket,
    host: string,
    event: AttestationEvent,
    mode: 'always' | 'when-pinned',
    moreEvidence: Array<{ source: string; result: RatlsVerificationResult }>,
  ): Promise<void> {
    const pins = this.policy.appraisal.workload;
    if ((event.result as RatlsVerificationResult).workload !== undefined) return;
    if (mode !== 'always' && !policyNeedsEventLog(pins)) return;
    const logs = await fetchEventLogs(socket, host, this.timeoutMs);
    event.result = await withWorkload(event.result as RatlsVerificationResult, {
      ...('logs' in logs ? { logs: logs.logs } : { unavailable: logs.unavailable }),
      moreEvidence,
      ...(pins ? { policy: pins } : {}),
    });
    if (!event.result.ok) this.reject(event);
  }

  /** Session binding: evidence request sent at once, certificate verified while the server quotes. */
  private async attestSession(
    socket: TLSSocket,
    host: string,
    der: Uint8Array,
    event: AttestationEvent,
    workload: 'always' | 'when-pinned',
  ): Promise<AttestationEvent> {
    let exporter: Uint8Array;
    try {
      // TLS 1.2 is refused here, before any byte: its exporter is not bound to the session unless
      // extended master secret was used, and neither side can check the other did.
      exporter = tlsExporter(socket);
    } catch (err) {
      const e = toVerifyError(err, 'SESSION_BINDING_UNAVAILABLE');
      event.result = failedResult(e, { check: 'session binding' });
      return this.reject(event);
    }
    const nonce = new Uint8Array(randomBytes(32));
    const request = mayCarryEvidence(der)
      ? getEvidence(socket, host, `${SESSION_PATH}?nonce=${toHex(nonce)}`, this.timeoutMs).then(
          (res) => ({ res }),
          (err: unknown) => ({ err }),
        )
      : undefined;
    event.result = await this.verifyCertificate(der);
    if (!event.result.ok || !request) return this.reject(event);

    const got = await request;
    if ('err' in got) return this.reject({ ...event, result: withFailure(event.result, toVerifyError(got.err, 'CONNECTION_FAILED'), 'session evidence') });
    const res = got.res;
    if (res.status !== 200) return this.reject({ ...event, result: withFailure(event.result, refusalReason(res, 'session'), 'session evidence') });

    let parts: CertParts;
    try {
      parts = this.partsOf(der, event.certSha256!);
    } catch (err) {
      return this.reject({ ...event, result: withFailure(event.result, toVerifyError(err, 'CERT_MALFORMED'), 'session evidence') });
    }
    const r = await verifySessionEvidence(res.body, parts.spki, {
      now: this.now(),
      trustedRoots: this.policy.trustedRoots,
      policy: this.policy.appraisal,
      collateralSources: parts.staple ? [parts.staple, ...this.sources] : this.sources,
      exporter,
      nonce,
      hash: nodeSha256,
    });
    if (!r.ok) {
      event.result = mergeFailed(event.result, r, 'session evidence');
      return this.reject(event);
    }
    const certPpid = event.result.quote?.ppid;
    const sessPpid = r.quote?.ppid;
    const platform = sessPpid
      ? `; quoted on platform PPID ${sessPpid}${certPpid && certPpid !== sessPpid ? ` (the certificate was quoted on PPID ${certPpid})` : ''}`
      : '';
    const detail =
      `evidence for this TLS session (RFC 9266 exporter), this key and our ${nonce.length}-byte nonce, obtained on this connection before any request; ` +
      `one quote for ${r.session!.batchSize} session(s), which passed all ${r.checks.length} checks${platform}`;
    event.result = withCheck(event.result, { name: 'session binding', ok: true, detail });
    event.nonceVerified = true;
    event.sessionBound = true;
    event.session = r.session!;
    // the session batch carries the runtime log's claim when the server binds its log through claims
    const claim = r.session!.claims.get(CLAIM_RUNTIME_LOG);
    const sessionPoint = {
      ...r,
      ratls: {
        ...(r.ratls ?? { profile: 'ccc' as const, pubkeyHashAlg: 'SHA-256', nonce: null }),
        ...(claim?.length === 48 ? { runtimeLog: toHex(claim) } : {}),
      },
    };
    await this.checkWorkload(socket, host, event, workload, [{ source: 'session evidence', result: sessionPoint }]);
    this.opts.onVerified?.(event);
    return event;
  }

  /** The legacy nonce round trip (binding: certificate + requireNonce). Throws via reject on failure; returns the evidence's result. */
  private async nonceRoundTrip(socket: TLSSocket, host: string, der: Uint8Array, event: AttestationEvent): Promise<RatlsVerificationResult> {
    const nonce = new Uint8Array(randomBytes(32));
    let res: RawResponse;
    try {
      res = await getEvidence(socket, host, `${EVIDENCE_PATH}?nonce=${toHex(nonce)}`, this.timeoutMs);
    } catch (err) {
      const e = toVerifyError(err, 'CONNECTION_FAILED');
      event.result = failedResult(e, { check: e.code });
      return this.reject(event);
    }
    if (res.status !== 200) {
      const e = refusalReason(res, 'nonce');
      event.result = failedResult(e, { check: e.code });
      return this.reject(event);
    }
    const parts = this.partsOf(der, createHash('sha256').update(der).digest('hex'));
    const r = await verifyRatlsEvidence(res.body, parts.spki, {
      now: this.now(),
      trustedRoots: this.policy.trustedRoots,
      policy: this.policy.appraisal,
      collateralSources: parts.staple ? [parts.staple, ...this.sources] : this.sources,
      expectedNonce: nonce,
    });
    if (!r.ok) {
      event.result = mergeFailed(event.result, r, 'nonce evidence');
      return this.reject(event);
    }
    const detail = `fresh evidence over our ${nonce.length}-byte nonce, same key, same connection; its quote passed all ${r.checks.length} checks`;
    event.result = withCheck(event.result, { name: 'nonce round trip', ok: true, detail });
    event.nonceVerified = true;
    return r;
  }

  /**
   * The certificate's key, and its staple: fresh evidence staples nothing, so the certificate's
   * collateral (same platform) is tried first. Kept per certificate (they depend on its bytes only).
   */
  private partsOf(der: Uint8Array, sha256: string): CertParts {
    const hit = this.certParts.get(sha256);
    if (hit) return hit;
    let staple: StapledCollateralSource | undefined;
    try {
      staple = StapledCollateralSource.fromCertificate(der);
    } catch {
      staple = undefined; // already reported by the certificate check
    }
    const parts = { spki: spkiOf(der), staple };
    if (this.certParts.size >= CERT_PARTS_KEPT) this.certParts.delete(this.certParts.keys().next().value!);
    this.certParts.set(sha256, parts);
    return parts;
  }

  private reject(event: AttestationEvent): never {
    this.opts.onRejected?.(event);
    throw new AttestationError(event.peer, event.result);
  }
}

/**
 * The certificate's SubjectPublicKeyInfo, read as the certificate check reads it (a part that
 * cannot be read is CERT_MALFORMED). Not node:crypto's X509Certificate: it tries PEM first and
 * finds the PCK certificates that the quote inside an RA-TLS certificate carries as PEM text.
 */
function spkiOf(der: Uint8Array): Uint8Array {
  return readRatlsCertificate(der).spkiDer;
}

function withCheck(r: VerificationResult, check: CheckRecord): VerificationResult {
  return { ...r, checks: [...r.checks, check] };
}

function withFailure(r: VerificationResult, e: VerifyError, name: string): VerificationResult {
  return { ...r, ok: false, errors: [...r.errors, e], checks: [...r.checks, { name, ok: false, detail: e.message }] };
}

/** The certificate's result plus only what failed in the evidence's (the passing steps repeat the certificate's). */
function mergeFailed(base: VerificationResult, r: RatlsVerificationResult, label: string): VerificationResult {
  const failed = r.checks.filter((c) => !c.ok).map((c) => ({ ...c, name: `${label}: ${c.name}` }));
  return { ...base, ok: false, errors: [...base.errors, ...r.errors], checks: [...base.checks, ...failed] };
}

/** Why an evidence route answered other than 200, in our codes and the server's (cleaned) words. */
function refusalReason(res: RawResponse, kind: 'session' | 'nonce'): VerifyError {
  let detail = `HTTP ${res.status}`;
  let serverCode: string | undefined;
  try {
    const j = JSON.parse(new TextDecoder().decode(res.body)) as { error?: { code?: string; message?: string } };
    serverCode = typeof j.error?.code === 'string' ? j.error.code : undefined;
    // the server's own words: bounded and without control characters (they end up on terminals and pages)
    if (typeof j.error?.message === 'string') detail += `: ${clean(j.error.message.slice(0, 300))}`;
  } catch {
    // not JSON; the status says enough
  }
  if (kind === 'nonce') {
    return { code: 'NONCE_MISSING', message: `The server did not return nonce evidence (${detail}); the policy requires a nonce round trip.` };
  }
  const code: ErrorCode = serverCode === 'EVIDENCE_PROVIDER_FAILED' ? 'EVIDENCE_PROVIDER_FAILED' : 'SESSION_BINDING_UNAVAILABLE';
  return {
    code,
    message:
      `The server did not return session-bound evidence (${detail}). The policy requires evidence bound to this TLS session; ` +
      'a server without it can only be accepted with freshness.binding: certificate, which is relayable if the TLS key leaks.',
  };
}

/** Path of the event-log route served by `ratls serve`. */
export const EVENTLOG_PATH = '/.well-known/ratls/eventlog';

/**
 * GET /.well-known/ratls/eventlog on the attested connection. Resolves to the logs, or to why there
 * are none (a server that does not measure, an unreadable answer); never rejects.
 */
export async function fetchEventLogs(socket: TLSSocket, host: string, timeoutMs: number): Promise<{ logs: ServedLogs } | { unavailable: string }> {
  try {
    const res = await rawGet(socket, host, `${EVENTLOG_PATH}?decoded=false`, timeoutMs, MAX_EVENTLOG_DOCUMENT_BYTES);
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
