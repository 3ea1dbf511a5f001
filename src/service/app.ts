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
import type { ErrorCode, VerifyError } from '../core/errors.ts';
import { constantTimeEqual } from '../core/bytes.ts';
import { appraiseAttestRequest, type AppraisalDeps } from './appraise.ts';
import { signAttestationToken } from './signer.ts';
import { describePolicy } from './policies.ts';
import type { KeyStore } from './keys.ts';
import type { RateLimiter } from './rate-limit.ts';
import type { ServiceMetrics } from './metrics.ts';

/** Minimal logger shape (pino satisfies it). */
export interface ServiceLogger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

/** Everything the routes need, assembled by startAttestService (the appraisal's needs included). */
export interface AppDeps extends AppraisalDeps {
  keys: KeyStore;
  metrics: ServiceMetrics;
  limiter?: RateLimiter;
  /** Identifies the client for rate limiting (the socket's remote address). */
  clientId: (c: Context) => string;
  issuer: () => string;
  audience?: string;
  tokenTtlSeconds: number;
  bodyLimitBytes: number;
  /** Token clock. */
  clock: () => Date;
  /** Bearer token for admin routes; admin routes are absent without it. */
  adminToken?: string;
  logger?: ServiceLogger;
}

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
    const started = performance.now();
    const appraised = await appraiseAttestRequest(await c.req.text(), deps);
    if ('refused' in appraised) {
      metrics.rejections.inc({ code: appraised.refused.code });
      if (appraised.retryAfterSeconds !== undefined) c.header('Retry-After', String(appraised.retryAfterSeconds));
      return c.json({ error: appraised.refused }, appraised.status);
    }
    const { policy, result, binding, claims } = appraised;
    const signed = await signAttestationToken(deps.keys, claims, {
      issuer: deps.issuer(),
      ttlSeconds: deps.tokenTtlSeconds,
      audience: deps.audience,
      now: deps.clock(),
    });
    metrics.duration.observe({ evidence: appraised.evidence }, (performance.now() - started) / 1000);
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
        qvlStatus: result.qvlStatus ?? null,
        advisoryIds: result.advisoryIds,
        tdxModuleAdvisoryIds: result.tdxModuleAdvisoryIds ?? [],
        qeAdvisoryIds: result.qeAdvisoryIds ?? [],
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

  return app;
}

function routeLabel(path: string): string {
  return ['/v1/attest', '/v1/policies', '/.well-known/jwks.json', '/healthz', '/metrics', '/v1/admin/rotate-key'].includes(path) ? path : 'other';
}
