/**
 * HTTP API of the attestation service (Hono). Routes:
 *   POST /v1/attest               evidence -> signed attestation result
 *   GET  /.well-known/jwks.json   public signing keys (active + retired until their tokens expire)
 *   GET  /v1/policies             the named policies
 *   POST /v1/admin/rotate-key     rotate the signing key (only when an admin token is configured)
 *   GET  /healthz, GET /metrics
 * Errors are JSON `{error: {code, message}}`; no stack trace or internal message ever leaves.
 */
import { Hono, type Context } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { createHash } from 'node:crypto';
import { parseQuote } from '../quote/parse.ts';
import { RatlsError, type ErrorCode, type VerifyError } from '../core/errors.ts';
import type { VerificationResult } from '../core/types.ts';
import { constantTimeEqual } from '../core/bytes.ts';
import { parseAttestRequest, type AttestRequest } from './request.ts';
import { checkReportDataBinding, type BindingRule } from './binding.ts';
import { buildClaims } from './claims.ts';
import { signAttestationToken } from './signer.ts';
import { describePolicy, type PolicySet } from './policies.ts';
import type { KeyStore } from './keys.ts';
import type { EvidenceVerifier } from './evidence.ts';
import type { RateLimiter } from './rate-limit.ts';
import type { ServiceMetrics } from './metrics.ts';

/** Minimal logger shape (pino satisfies it). */
export interface ServiceLogger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

/** Everything the routes need, assembled by startAttestService. */
export interface AppDeps {
  keys: KeyStore;
  policies: PolicySet;
  verifier: EvidenceVerifier;
  metrics: ServiceMetrics;
  limiter?: RateLimiter;
  /** Identifies the client for rate limiting (the socket's remote address). */
  clientId: (c: Context) => string;
  issuer: () => string;
  audience?: string;
  tokenTtlSeconds: number;
  bodyLimitBytes: number;
  verifyTimeoutMs: number;
  /** Token clock. */
  clock: () => Date;
  /** Appraisal clock (tests pin it to the vectors' times). */
  verifyAt: () => Date;
  /** Bearer token for admin routes; admin routes are absent without it. */
  adminToken?: string;
  logger?: ServiceLogger;
}

/** Codes that mean "this is not a quote at all": answered with 400 rather than a signed result. */
const UNPARSEABLE: ReadonlySet<ErrorCode> = new Set<ErrorCode>([
  'QUOTE_TRUNCATED',
  'QUOTE_MALFORMED',
  'QUOTE_UNSUPPORTED_VERSION',
  'QUOTE_UNSUPPORTED_TEE',
  'QUOTE_UNSUPPORTED_KEY_TYPE',
  'QUOTE_UNSUPPORTED_BODY',
  'QUOTE_UNSUPPORTED_CERT_DATA',
  'CERT_MALFORMED',
  'EVIDENCE_MISSING',
  'EVIDENCE_MALFORMED',
]);

function errorBody(code: ErrorCode, message: string): { error: VerifyError } {
  return { error: { code, message } };
}

/** Builds the Hono app. */
export function createAttestApp(deps: AppDeps): Hono {
  const app = new Hono();
  const { metrics } = deps;

  app.use('*', async (c, next) => {
    await next();
    c.header('Cache-Control', 'no-store');
    c.header('X-Content-Type-Options', 'nosniff');
    metrics.requests.inc({ route: routeLabel(c.req.path), status: String(c.res.status) });
  });

  app.onError((err, c) => {
    deps.logger?.error({ err: err instanceof Error ? err.message : String(err), path: c.req.path }, 'request failed');
    metrics.rejections.inc({ code: 'INTERNAL' });
    return c.json(errorBody('INTERNAL', 'The service failed to process this request; the operator can find details in its log.'), 500);
  });

  app.notFound((c) =>
    c.json(errorBody('REQUEST_MALFORMED', `No route ${c.req.method} ${c.req.path}; see /v1/attest, /v1/policies, /.well-known/jwks.json.`), 404),
  );

  app.get('/healthz', (c) => c.json({ status: 'ok', kid: deps.keys.current().kid, alg: deps.keys.current().alg, policies: deps.policies.byName.size }));

  app.get('/metrics', async (c) => {
    c.header('Content-Type', metrics.registry.contentType);
    return c.body(await metrics.registry.metrics());
  });

  app.get('/.well-known/jwks.json', (c) => {
    c.header('Content-Type', 'application/jwk-set+json');
    return c.body(JSON.stringify(deps.keys.jwks()));
  });

  app.get('/v1/policies', (c) =>
    c.json({
      default: deps.policies.defaultName,
      policies: [...deps.policies.byName.values()].map((p) => describePolicy(p, p.name === deps.policies.defaultName)),
    }),
  );

  if (deps.adminToken) {
    // compare fixed-length digests: a byte compare of the raw strings returns early on a length
    // mismatch and so tells a caller the admin token's length
    const sha = (s: string) => new Uint8Array(createHash('sha256').update(s, 'utf8').digest());
    const expected = sha(deps.adminToken);
    app.post('/v1/admin/rotate-key', async (c) => {
      const auth = c.req.header('authorization') ?? '';
      const given = sha(auth.startsWith('Bearer ') ? auth.slice(7) : '');
      if (!constantTimeEqual(given, expected)) {
        return c.json(errorBody('REQUEST_MALFORMED', 'Admin routes need "Authorization: Bearer <admin token>".'), 401);
      }
      const previous = deps.keys.current().kid;
      const kid = await deps.keys.rotate();
      deps.logger?.info({ previous, kid }, 'signing key rotated by admin');
      return c.json({ kid, previous });
    });
  }

  const rateLimit = async (c: Context, next: () => Promise<void>) => {
    if (deps.limiter) {
      const d = deps.limiter.take(deps.clientId(c));
      if (!d.allowed) {
        metrics.rejections.inc({ code: 'RATE_LIMITED' });
        c.header('Retry-After', String(d.retryAfterSeconds));
        return c.json(errorBody('RATE_LIMITED', `Too many requests from this client; retry after ${d.retryAfterSeconds} s.`), 429);
      }
    }
    await next();
  };

  const limitBody = bodyLimit({
    maxSize: deps.bodyLimitBytes,
    onError: (c) => {
      metrics.rejections.inc({ code: 'REQUEST_TOO_LARGE' });
      return c.json(errorBody('REQUEST_TOO_LARGE', `The request body exceeds ${deps.bodyLimitBytes} bytes; a TDX quote is normally under 10 KiB.`), 413);
    },
  });

  app.post('/v1/attest', rateLimit, limitBody, async (c) => {
    let req: AttestRequest;
    try {
      req = parseAttestRequest(await c.req.text());
    } catch (err) {
      return badRequest(c, err);
    }
    const policy = deps.policies.byName.get(req.policy ?? deps.policies.defaultName);
    if (!policy) {
      metrics.rejections.inc({ code: 'POLICY_UNKNOWN' });
      return c.json(errorBody('POLICY_UNKNOWN', `No policy named "${req.policy}"; GET /v1/policies lists them.`), 400);
    }

    let quoteHash: string | undefined;
    if (req.kind === 'quote') {
      try {
        const q = parseQuote(req.quote);
        quoteHash = createHash('sha256').update(req.quote.subarray(0, q.length)).digest('hex');
      } catch (err) {
        return badRequest(c, err);
      }
    }

    const started = performance.now();
    const verifiedAt = deps.verifyAt();
    const ctx = { policy: policy.policy, now: verifiedAt, ...(req.nonce ? { nonce: req.nonce } : {}) };
    let result: VerificationResult;
    try {
      result = await withTimeout(
        req.kind === 'quote' ? deps.verifier.verifyQuote(req.quote, ctx) : deps.verifier.verifyCertificate(req.certificate, ctx),
        deps.verifyTimeoutMs,
      );
    } catch (err) {
      if (err instanceof RatlsError && err.code === 'VERIFY_TIMEOUT') {
        metrics.rejections.inc({ code: 'VERIFY_TIMEOUT' });
        c.header('Retry-After', '5');
        return c.json(errorBody('VERIFY_TIMEOUT', err.message), 503);
      }
      throw err;
    }
    if (req.kind === 'certificate' && !result.ok && !result.quote && result.errors.some((e) => UNPARSEABLE.has(e.code))) {
      const e = result.errors.find((x) => UNPARSEABLE.has(x.code))!;
      metrics.rejections.inc({ code: e.code });
      return c.json({ error: e }, 400);
    }

    if (policy.policy.freshness.requireNonce && !req.nonce) {
      result = failWith(result, {
        code: 'NONCE_MISSING',
        message: `Policy "${policy.name}" requires a fresh nonce; send "nonce" and have the attester bind it (see the REPORTDATA rule).`,
      });
    }
    let binding: BindingRule | 'ratls-claims' | undefined;
    if (req.kind === 'quote' && (req.nonce || req.runtimeData)) {
      if (!result.quote) {
        result = failWith(result, { code: 'REPORTDATA_MISMATCH', message: 'REPORTDATA could not be read, so the nonce/runtimeData binding was not checked.' });
      } else {
        const rd = Buffer.from(result.quote.reportData, 'hex');
        const b = await checkReportDataBinding(new Uint8Array(rd), req.nonce, req.runtimeData);
        if (b.ok) binding = b.rule;
        else result = failWith(result, b.error);
      }
    } else if (req.kind === 'certificate' && req.nonce && result.ok) {
      binding = 'ratls-claims';
    }
    // a policy naming only Intel's root can never produce a simulated result; trust the verifier's flag
    // but also mark every token from a policy that trusts other roots, so it is visible either way
    if (policy.nonIntelRoots) result = { ...result, nonIntelRoot: result.nonIntelRoot ?? true };

    const claims = buildClaims({
      result,
      policyName: policy.name,
      policyHash: policy.hash,
      evidence: req.kind === 'quote' ? 'quote' : 'ratls-certificate',
      quoteHash,
      certificateSha256: req.kind === 'certificate' ? createHash('sha256').update(req.certificate).digest('hex') : undefined,
      nonce: req.nonce,
      runtimeData: req.runtimeData,
      binding,
      verifiedAt,
    });
    const signed = await signAttestationToken(deps.keys, claims, {
      issuer: deps.issuer(),
      ttlSeconds: deps.tokenTtlSeconds,
      audience: deps.audience,
      now: deps.clock(),
    });
    metrics.duration.observe({ evidence: req.kind }, (performance.now() - started) / 1000);
    metrics.verdicts.inc({ policy: policy.name, verdict: result.ok ? 'ok' : 'fail', tcb_status: result.tcbStatus ?? 'none' });
    for (const e of result.errors) metrics.rejections.inc({ code: e.code });
    deps.logger?.info(
      { jti: signed.jti, kid: signed.kid, policy: policy.name, ok: result.ok, tcbStatus: result.tcbStatus, codes: result.errors.map((e) => e.code) },
      'attestation result signed',
    );
    return c.json({
      token: signed.token,
      result: {
        ok: result.ok,
        policy: policy.name,
        evidence: claims['x-ratls-evidence'],
        tcbStatus: result.tcbStatus,
        advisoryIds: result.advisoryIds,
        errors: result.errors,
        simulated: claims['x-ratls-simulated'] === true,
        reportDataBinding: binding ?? null,
        quote: result.quote,
        checks: result.checks,
        jti: signed.jti,
        kid: signed.kid,
        exp: signed.exp,
      },
    });
  });

  function badRequest(c: Context, err: unknown): Response {
    if (err instanceof RatlsError) {
      metrics.rejections.inc({ code: err.code });
      return c.json(errorBody(err.code, err.message), 400);
    }
    throw err;
  }

  return app;
}

function failWith(r: VerificationResult, e: VerifyError): VerificationResult {
  return { ...r, ok: false, errors: [...r.errors, e] };
}

function routeLabel(path: string): string {
  return ['/v1/attest', '/v1/policies', '/.well-known/jwks.json', '/healthz', '/metrics', '/v1/admin/rotate-key'].includes(path) ? path : 'other';
}

async function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const t = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new RatlsError('VERIFY_TIMEOUT', `Verification did not finish within ${ms} ms (collateral source slow or unreachable); retry later.`)),
      ms,
    );
  });
  try {
    return await Promise.race([p, t]);
  } finally {
    clearTimeout(timer);
  }
}
