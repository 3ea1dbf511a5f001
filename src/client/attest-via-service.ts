/**
 * Delegated attestation in one call, the flow of a relying party without DCAP of its own: fetch
 * fresh evidence for our nonce from the VM (on one TLS connection, next to the certificate it
 * presents), post both to the attestation service, and act only on the token it signs: signature
 * against the service's JWKS, issuer, lifetime, our nonce, the service's verdict, that the token
 * speaks of this certificate and this evidence, which roots the service trusted, and the caller's
 * own policy (measurements, TCB, DEBUG) held against the signed claims.
 */
import { createHash, randomBytes } from 'node:crypto';
import { CheckRecorder } from '../core/checks.ts';
import { ERROR_CODES, EVIDENCE_UNREADABLE_CODES, RatlsError, toVerifyError, type ErrorCode, type VerifyError } from '../core/errors.ts';
import type { CheckRecord, TcbStatus } from '../core/types.ts';
import { toBase64, toHex } from '../core/bytes.ts';
import { defaultClientPolicy, type ClientPolicy } from '../verify/policy-file.ts';
import { applyPolicy, type AppraisedQuote } from '../verify/policy.ts';
import { isIntelRoot, INTEL_SGX_ROOT_CA_SHA256 } from '../verify/roots.ts';
import { rootToDer } from '../verify/x509.ts';
import { verifyAttestationToken } from '../token/verify.ts';
import { quoteFieldsFromClaims } from '../token/measurements.ts';
import type { AttestationClaims } from '../token/claims.ts';
import { EVIDENCE_PATH, fetchEventLogs } from './attestor.ts';
import { getEvidence } from './evidence-request.ts';
import { appraiseWorkload, policyNeedsEventLog } from '../eventlog/appraise.ts';
import type { ServedLogs } from '../eventlog/document.ts';
import type { WorkloadReport } from '../eventlog/workload-report.ts';
import { decodeEvidence } from '../ratls/extension.ts';
import { decodeClaims } from '../ratls/claims.ts';
import { openTls, parseHttpsUrl } from './probe.ts';
import { clean } from './report.ts';

/** Options of {@link attestViaService}. */
export interface AttestViaServiceOptions {
  /** Base URL of `ratls attest-service`: https, or plain http to this machine only (the JWKS comes from it). */
  service: string;
  /** The service's policy to appraise under (names: GET /v1/policies); default the service's default. */
  servicePolicy?: string;
  /**
   * Your own expectations, held against the token's signed claims: measurements, TCB statuses,
   * advisories, DEBUG, and the roots you trust (a token from a service policy trusting any other
   * root is refused). Default: Intel's root only, UpToDate, no DEBUG, nothing pinned.
   */
  policy?: ClientPolicy;
  /** The `iss` the token must carry; default the service URL as given (without a trailing slash). */
  issuer?: string;
  /** The `aud` the token must carry, when the service sets one. */
  audience?: string;
  /** Limit of each network step (TLS handshake, evidence, service request); default 15 s. */
  timeoutMs?: number;
  /** Clock for the token checks; default now. */
  now?: () => Date;
}

/** What one delegated attestation found. The token is only acted on when `ok`. */
export interface ServiceAttestation {
  ok: boolean;
  /** The VM's URL as given. */
  target: string;
  /** The service's base URL. */
  service: string;
  /** Our nonce, hex; the evidence and the token must carry it. */
  nonce: string;
  /** SHA-256 (hex) of the certificate the VM presented on the evidence connection. */
  certSha256: string | null;
  /** The token as the service returned it (null when it returned none). */
  token: string | null;
  /** The token's claims, set only once its signature, issuer, lifetime and nonce verified. */
  claims: AttestationClaims | null;
  /** The signing key (`kid`) and the service policy applied, from the verified token. */
  kid: string | null;
  servicePolicy: { name: string; hash: string } | null;
  tcbStatus: TcbStatus | null;
  advisoryIds: string[];
  /** The measurements the token states (null until a verified token carried them). */
  quote: AppraisedQuote | null;
  /** True when the service's policy trusted a non-Intel (e.g. simulated) root. */
  nonIntelRoot: boolean;
  checks: CheckRecord[];
  errors: VerifyError[];
  /** The workload replayed from the VM's event logs, when your policy pins it (docs/eventlog.md). */
  workload?: WorkloadReport;
}

/** Codes with which the service says it could not read the evidence: the VM's failure, not the service's. */
const EVIDENCE_REFUSALS: ReadonlySet<string> = new Set<string>([...EVIDENCE_UNREADABLE_CODES, 'EVIDENCE_FORMAT_MISMATCH']);

const KNOWN_CODES: ReadonlySet<string> = new Set<string>(ERROR_CODES);
const LOOPBACK = new Set(['localhost', '127.0.0.1', '[::1]']);
const MAX_SERVICE_ANSWER = 1024 * 1024;

/**
 * Attests the RA-TLS server at `url` through an attestation service and verifies the token it
 * returns. Resolves whether or not the server passed (`ok`); rejects with RatlsError only when a
 * step could not run at all: CONNECTION_FAILED (VM, service or its JWKS unreachable, or the service
 * failing), TOKEN_KEYS_INSECURE (a plain-http service off this machine), or the service's own code
 * for a request it refused (POLICY_UNKNOWN, RATE_LIMITED, VERIFY_TIMEOUT...).
 *
 * @example
 * import { attestViaService, loadPolicyFile } from 'ratls-proxy/client';
 * const a = await attestViaService('https://vm.example:8443', {
 *   service: 'https://attest.example.com',
 *   policy: loadPolicyFile('policy.yaml'), // optional: pin MRTD/RTMRs on top of the service's verdict
 * });
 * if (!a.ok) throw new Error(a.errors.map((e) => e.code).join(', '));
 * console.log(a.claims!.tdx_mrtd, a.token);
 */
export async function attestViaService(url: string, opts: AttestViaServiceOptions): Promise<ServiceAttestation> {
  const policy = opts.policy ?? defaultClientPolicy();
  const service = serviceBase(opts.service);
  const timeoutMs = opts.timeoutMs ?? 15_000;
  const nonce = new Uint8Array(randomBytes(32));
  const rec = new CheckRecorder();
  const out: ServiceAttestation = {
    ok: false,
    target: url,
    service,
    nonce: toHex(nonce),
    certSha256: null,
    token: null,
    claims: null,
    kid: null,
    servicePolicy: null,
    tcbStatus: null,
    advisoryIds: [],
    quote: null,
    nonIntelRoot: false,
    checks: rec.checks,
    errors: rec.errors,
  };
  const done = (): ServiceAttestation => ({ ...out, ok: rec.ok, errors: dedupe(rec.errors) });

  // 1. the VM: its certificate and fresh evidence for our nonce, on one connection
  const workloadPins = policy.appraisal.workload;
  const fetched = await fetchEvidence(url, nonce, timeoutMs, policyNeedsEventLog(workloadPins));
  if (fetched.certDer) out.certSha256 = createHash('sha256').update(fetched.certDer).digest('hex');
  if ('error' in fetched) {
    rec.fail('evidence', fetched.error);
    return done();
  }
  rec.pass(
    'evidence',
    `${fetched.evidence.length} bytes for our ${nonce.length}-byte nonce, on the connection that presented certificate sha256 ${out.certSha256}`,
  );

  // 2. the service appraises evidence + certificate and signs the result
  const answer = await submit(
    service,
    {
      evidence: toBase64(fetched.evidence),
      certificate: toBase64(fetched.certDer),
      nonce: toBase64(nonce),
      ...(opts.servicePolicy ? { policy: opts.servicePolicy } : {}),
    },
    timeoutMs,
  );
  if ('refused' in answer) {
    rec.fail('attestation service', answer.refused);
    return done();
  }
  out.token = answer.token;

  // 3. the token: signature (JWKS), issuer, lifetime, our nonce
  const jwksUrl = `${service}/.well-known/jwks.json`;
  const issuer = opts.issuer ?? service;
  let claims: AttestationClaims;
  try {
    const v = await verifyAttestationToken(
      answer.token,
      { jwksUrl },
      {
        issuer,
        ...(opts.audience ? { audience: opts.audience } : {}),
        // the policy we asked for, not one a service answer could substitute
        ...(opts.servicePolicy ? { policy: opts.servicePolicy } : {}),
        expectedNonce: nonce,
        now: opts.now?.() ?? new Date(),
        // the verdict and the roots are checked below, with reasons that fit this flow
        allowFailedVerdict: true,
        allowSimulated: true,
      },
    );
    claims = v.claims;
    out.kid = v.kid;
    rec.pass('token signature', `${v.alg}, key ${v.kid} from ${jwksUrl}`);
    rec.pass('token issuer and lifetime', `issued by ${String(claims.iss)}, valid until ${new Date((claims.exp ?? 0) * 1000).toISOString()}`);
    rec.pass('token nonce', 'eat_nonce is our nonce');
  } catch (err) {
    if (err instanceof RatlsError && (err.code === 'CONNECTION_FAILED' || err.code === 'TOKEN_KEYS_INSECURE')) throw err;
    rec.fail('token', explainTokenError(err, answer.token, opts.issuer === undefined ? issuer : undefined));
    return done();
  }
  out.claims = claims;
  out.tcbStatus = claims.attester_tcb_status ?? null;
  out.advisoryIds = Array.isArray(claims.attester_advisory_ids) ? claims.attester_advisory_ids.map(String) : [];
  out.quote = quoteFieldsFromClaims(claims);
  out.nonIntelRoot = claims['x-ratls-simulated'] === true;
  const applied = [...(claims.policy_ids_matched ?? []), ...(claims.policy_ids_unmatched ?? [])][0];
  if (applied && typeof applied.id === 'string' && typeof applied.hash === 'string') out.servicePolicy = { name: applied.id, hash: applied.hash };

  // 4. the service's verdict, with its reasons
  const verdict = claims['x-ratls-ok'] === true;
  if (verdict) rec.pass('service verdict', `${String(claims['ear.status'])} under its policy "${out.servicePolicy?.name ?? '?'}"`);
  else {
    const reasons = Array.isArray(claims['x-ratls-errors']) ? claims['x-ratls-errors'] : [];
    if (reasons.length === 0) rec.fail('service verdict', { code: 'TOKEN_CLAIM_MISMATCH', message: 'The service rejected the evidence without saying why.' });
    for (const r of reasons) rec.fail('service verdict', serviceReason(r));
  }

  // 5. the token speaks of what we sent: this certificate, this evidence, our nonce inside it
  const aboutUs = checkSubject(claims, out.certSha256, verdict);
  if (aboutUs) rec.fail('token subject', aboutUs);
  else if (verdict)
    rec.pass('token subject', 'the evidence we fetched, with our nonce in its RA-TLS claims, bound to the key of the certificate this connection presented');

  // 6. the roots the service's policy trusted must be ones we trust
  if (verdict) {
    const roots = await checkRoots(policy, claims, out.servicePolicy, service, timeoutMs);
    if ('error' in roots) rec.fail('trusted roots', roots.error);
    else rec.pass('trusted roots', roots.detail);
  }

  // 7. our own policy, on the signed measurements
  if (out.quote) {
    const appraisal = { ...policy.appraisal };
    delete appraisal.reportData; // RA-TLS binds REPORTDATA itself
    const errs = applyPolicy(out.quote, out.tcbStatus, out.advisoryIds, appraisal);
    if (appraisal.minTcbEvaluationDataNumber !== undefined) {
      errs.push({
        code: 'POLICY_INVALID',
        message: 'Your policy sets tcb.minEvaluationDataNumber, which a token does not report; set it in the service policy instead and name that policy.',
      });
    }
    for (const e of errs) rec.fail('your policy', e);
    if (errs.length === 0) rec.pass('your policy', 'TCB status, advisories, DEBUG and every pinned measurement accepted');
  } else if (verdict) {
    rec.fail('your policy', { code: 'TOKEN_CLAIM_MISMATCH', message: 'The token states no measurements, so your policy cannot be applied.' });
  }

  // 8. your workload pins: the VM's event logs replayed against the RTMRs the token states
  if (out.quote && policyNeedsEventLog(workloadPins) && 'evidence' in fetched) {
    const q = out.quote;
    let runtimeLog: string | undefined;
    try {
      const c = decodeClaims(decodeEvidence(fetched.evidence).claimsBuffer).runtimeLog;
      if (c) runtimeLog = toHex(c);
    } catch {
      // the service read this evidence; a claim it cannot carry is simply absent
    }
    const logs = fetched.logs;
    const a = await appraiseWorkload({
      rtmrs: [q.rtmr0, q.rtmr1, q.rtmr2, q.rtmr3],
      evidence: [{ source: 'evidence', rtmr3: q.rtmr3, ...(runtimeLog ? { runtimeLog } : {}) }],
      ...(logs && 'logs' in logs && logs.logs.bootLog ? { bootLog: logs.logs.bootLog } : {}),
      ...(logs && 'logs' in logs && logs.logs.runtimeLog ? { runtimeLog: logs.logs.runtimeLog } : {}),
      ...(logs && 'unavailable' in logs ? { unavailable: logs.unavailable } : {}),
      ...(workloadPins ? { policy: workloadPins } : {}),
    });
    for (const c of a.checks) rec.checks.push(c);
    for (const e of a.errors) rec.errors.push(e);
    out.workload = a.report;
  }
  return done();
}

/** The service URL without a trailing slash; refuses anything but https and http to this machine. */
function serviceBase(service: string): string {
  let u: URL;
  try {
    u = new URL(service);
  } catch {
    throw new RatlsError('CONNECTION_FAILED', `"${service}" is not a URL; expected the attestation service's https://host[:port].`);
  }
  if (u.protocol !== 'https:' && !(u.protocol === 'http:' && LOOPBACK.has(u.hostname.toLowerCase()))) {
    throw new RatlsError(
      'TOKEN_KEYS_INSECURE',
      `Refusing ${u.origin}: the service's signing keys decide which tokens are genuine, so they must come over https (plain http only to this machine).`,
    );
  }
  if (u.search || u.hash) throw new RatlsError('CONNECTION_FAILED', `The service URL "${service}" must not carry a query or fragment.`);
  return u.href.replace(/\/+$/, '');
}

type Fetched =
  { certDer: Uint8Array; evidence: Uint8Array; logs?: { logs: ServedLogs } | { unavailable: string } } | { certDer?: Uint8Array; error: VerifyError };

/** The certificate and nonce evidence, both from one TLS connection. */
async function fetchEvidence(url: string, nonce: Uint8Array, timeoutMs: number, withEventLogs = false): Promise<Fetched> {
  const target = parseHttpsUrl(url);
  const socket = await openTls(target, timeoutMs);
  try {
    const raw = socket.getPeerCertificate(false)?.raw;
    if (!raw || raw.length === 0) return { error: { code: 'EVIDENCE_MISSING', message: 'The server presented no certificate.' } };
    const certDer = new Uint8Array(raw);
    let res;
    try {
      // 503/429 (the server's evidence queue is full) are retried; giving up says EVIDENCE_BUSY
      res = await getEvidence(socket, target.servername ?? target.host, `${EVIDENCE_PATH}?nonce=${toHex(nonce)}`, timeoutMs);
    } catch (err) {
      if (err instanceof RatlsError && err.code === 'CONNECTION_FAILED') throw err;
      return { certDer, error: toVerifyError(err, 'EVIDENCE_MALFORMED') };
    }
    if (res.status !== 200) {
      return {
        certDer,
        error: {
          code: 'NONCE_MISSING',
          message: `The server did not return evidence for our nonce (${httpDetail(res.status, res.body)}); it is not an RA-TLS server (ratls serve) or cannot make evidence.`,
        },
      };
    }
    // the event logs come from the same connection, so from the key the evidence binds
    const logs = withEventLogs ? await fetchEventLogs(socket, target.servername ?? target.host, timeoutMs) : undefined;
    return { certDer, evidence: res.body, ...(logs ? { logs } : {}) };
  } finally {
    socket.destroy();
  }
}

/** "HTTP 404: message" with the peer's words bounded and stripped of control characters. */
function httpDetail(status: number, body: Uint8Array | string): string {
  let detail = `HTTP ${status}`;
  try {
    const j = JSON.parse(typeof body === 'string' ? body : new TextDecoder().decode(body)) as { error?: { code?: unknown; message?: unknown } };
    if (typeof j.error?.code === 'string') detail += ` ${clean(j.error.code.slice(0, 40))}`;
    if (typeof j.error?.message === 'string') detail += `: ${clean(j.error.message.slice(0, 300))}`;
  } catch {
    // not JSON; the status says enough
  }
  return detail;
}

/** POSTs to /v1/attest: the token, or the reason the service could not read the evidence. */
async function submit(service: string, body: Record<string, string>, timeoutMs: number): Promise<{ token: string } | { refused: VerifyError }> {
  let res: Response;
  let text: string;
  try {
    res = await fetch(`${service}/v1/attest`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json' },
      body: JSON.stringify(body),
      redirect: 'error',
      signal: AbortSignal.timeout(timeoutMs),
    });
    text = await res.text();
  } catch (err) {
    const why = err instanceof Error ? ((err.cause as Error | undefined)?.message ?? err.message) : String(err);
    throw new RatlsError('CONNECTION_FAILED', `Cannot reach the attestation service at ${service}: ${why}`);
  }
  if (text.length > MAX_SERVICE_ANSWER) throw new RatlsError('CONNECTION_FAILED', `The attestation service at ${service} sent an oversized answer.`);
  let json: { token?: unknown; error?: { code?: unknown; message?: unknown } } = {};
  try {
    json = JSON.parse(text) as typeof json;
  } catch {
    // handled below: no token
  }
  if (res.status === 400 && typeof json.error?.code === 'string' && EVIDENCE_REFUSALS.has(json.error.code)) {
    const message = typeof json.error.message === 'string' ? clean(json.error.message.slice(0, 300)) : 'no reason given';
    return { refused: { code: json.error.code as ErrorCode, message: `The service could not read the server's evidence: ${message}` } };
  }
  if (res.status !== 200 || typeof json.token !== 'string') {
    const code = typeof json.error?.code === 'string' && KNOWN_CODES.has(json.error.code) ? (json.error.code as ErrorCode) : 'CONNECTION_FAILED';
    throw new RatlsError(
      code,
      `The attestation service at ${service} answered ${httpDetail(res.status, text)}${res.status === 200 ? ' without a token' : ''}.`,
    );
  }
  return { token: json.token };
}

/** A token error, with the issuer the service really uses when only the default expectation differed. */
function explainTokenError(err: unknown, token: string, defaultIssuer: string | undefined): VerifyError {
  const e = toVerifyError(err, 'TOKEN_INVALID');
  if (e.code !== 'TOKEN_CLAIM_MISMATCH' || defaultIssuer === undefined) return e;
  let iss: unknown;
  try {
    // the signature verified (only the issuer differed), so the payload is the service's own
    iss = (JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString('utf8')) as { iss?: unknown }).iss;
  } catch {
    return e;
  }
  if (typeof iss !== 'string' || iss === defaultIssuer) return e;
  return {
    code: 'TOKEN_CLAIM_MISMATCH',
    message: `The token's issuer is "${clean(iss.slice(0, 200))}", not the service URL you gave (${defaultIssuer}); if that is the service you meant, pass it as the expected issuer (--issuer).`,
  };
}

/** A reason from the token, with a code this version knows. */
function serviceReason(r: unknown): VerifyError {
  const o = (typeof r === 'object' && r !== null ? r : {}) as { code?: unknown; message?: unknown };
  const message = typeof o.message === 'string' ? o.message.slice(0, 500) : 'no message';
  if (typeof o.code === 'string' && KNOWN_CODES.has(o.code)) return { code: o.code as ErrorCode, message };
  return { code: 'TOKEN_CLAIM_MISMATCH', message: `${typeof o.code === 'string' ? o.code.slice(0, 40) : 'unknown'}: ${message}` };
}

/** The token must be about the evidence and certificate we sent, with our nonce bound in the claims. */
function checkSubject(claims: AttestationClaims, certSha256: string | null, verdict: boolean): VerifyError | undefined {
  if (claims['x-ratls-evidence'] !== 'ratls-evidence') {
    return { code: 'TOKEN_CLAIM_MISMATCH', message: `The token appraises a ${String(claims['x-ratls-evidence'])}, not the RA-TLS evidence we sent.` };
  }
  if (claims['x-ratls-cert-sha256'] !== certSha256) {
    return {
      code: 'PUBKEY_MISMATCH',
      message: `The token speaks of certificate sha256 ${String(claims['x-ratls-cert-sha256'])}, not the one the server presented (${certSha256}).`,
    };
  }
  if (verdict && claims['x-ratls-reportdata-binding'] !== 'ratls-claims') {
    return { code: 'NONCE_MISMATCH', message: 'The service did not confirm that our nonce is bound in the evidence claims (x-ratls-reportdata-binding).' };
  }
  return undefined;
}

/** `intel` or `sha256:<hex of the DER>`, as GET /v1/policies names roots. */
function rootId(root: string | Uint8Array): string {
  if (isIntelRoot(root)) return 'intel';
  try {
    return `sha256:${createHash('sha256').update(rootToDer(root)).digest('hex')}`;
  } catch {
    return 'unreadable';
  }
}

/**
 * A token from a policy trusting other roots than Intel's carries `x-ratls-simulated`; then the
 * service's published policy (matched by the hash the token names) must trust only roots we trust.
 */
async function checkRoots(
  policy: ClientPolicy,
  claims: AttestationClaims,
  applied: { name: string; hash: string } | null,
  service: string,
  timeoutMs: number,
): Promise<{ detail: string } | { error: VerifyError }> {
  const ours = new Set(policy.trustedRoots.map(rootId));
  const simulated = claims['x-ratls-simulated'] === true;
  if (!simulated) {
    if (ours.has('intel')) return { detail: "Intel SGX Root CA (the service's policy trusts no other root)" };
    return {
      error: {
        code: 'PCK_CHAIN_UNTRUSTED',
        message: "The service appraised under Intel's root, which the roots you gave (--root) replace; drop --root to accept Intel-rooted evidence.",
      },
    };
  }
  if (![...ours].some((r) => r !== 'intel')) {
    return {
      error: {
        code: 'SIMULATED_EVIDENCE',
        message:
          "The service's policy trusts a simulated (non-Intel) root, which you did not name: not evidence of real TDX hardware. In development, pass that root (--root .ratls/sim/root.pem).",
      },
    };
  }
  if (!applied) return { error: { code: 'TOKEN_CLAIM_MISMATCH', message: 'The token does not name the policy it was appraised under.' } };
  let listing: { policies?: Array<{ name?: unknown; hash?: unknown; trustedRoots?: unknown }> };
  try {
    const res = await fetch(`${service}/v1/policies`, { redirect: 'error', signal: AbortSignal.timeout(timeoutMs) });
    listing = (await res.json()) as typeof listing;
  } catch (err) {
    throw new RatlsError(
      'CONNECTION_FAILED',
      `Cannot read the service's policies (${service}/v1/policies): ${err instanceof Error ? err.message : String(err)}`,
    );
  }
  const entry = (listing.policies ?? []).find((p) => p.name === applied.name && p.hash === applied.hash);
  if (!entry || !Array.isArray(entry.trustedRoots)) {
    return {
      error: {
        code: 'TOKEN_CLAIM_MISMATCH',
        message: `The service no longer publishes policy "${applied.name}" with the hash the token names (it changed since); retry.`,
      },
    };
  }
  const theirs = entry.trustedRoots.map(String);
  const foreign = theirs.filter((r) => !ours.has(r));
  if (foreign.length > 0) {
    return {
      error: {
        code: 'PCK_CHAIN_UNTRUSTED',
        message: `The service's policy "${applied.name}" trusts roots you did not name: ${foreign.map((r) => clean(r.slice(0, 80))).join(', ')}.`,
      },
    };
  }
  const named = theirs.map((r) => (r === 'intel' ? `intel (sha256 ${INTEL_SGX_ROOT_CA_SHA256.slice(0, 16)}…)` : r.slice(0, 23) + '…'));
  return { detail: `the service's policy "${applied.name}" trusts only roots you named: ${named.join(', ')} (SIMULATED / non-Intel)` };
}

function dedupe(errors: VerifyError[]): VerifyError[] {
  const seen = new Set<string>();
  return errors.filter((e) => {
    const k = `${e.code}\u0000${e.message}`;
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}
