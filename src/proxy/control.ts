/**
 * Control routes served by the proxy itself (Hono): RA-TLS evidence with a client nonce, the
 * certificate, collateral, health, readiness and Prometheus metrics.
 */
import { TLSSocket } from 'node:tls';
import { Hono, type Context } from 'hono';
import type { HttpBindings } from '@hono/node-server';
import type { Collateral } from '../core/types.ts';
import { type ErrorCode, RatlsError, toVerifyError } from '../core/errors.ts';
import { fromHex, toBase64, toHex } from '../core/bytes.ts';
import type { ServingIdentity } from './identity-source.ts';
import type { ProxyMetrics } from './metrics.ts';
import type { Measurement } from './measurement.ts';

/** Path prefix of the control routes. */
export const CONTROL_PREFIX = '/.well-known/ratls/';
const CONTROL_EXACT = new Set(['/healthz', '/readyz', '/metrics', '/.well-known/ratls']);

/** True when the path (without query) is answered by the proxy instead of an upstream. */
export function isControlPath(path: string): boolean {
  return CONTROL_EXACT.has(path) || path.startsWith(CONTROL_PREFIX);
}

/** Largest nonce the evidence route accepts, in bytes (createNonceEvidence itself allows up to 256): the claims hash makes longer nonces pointless. */
export const MAX_EVIDENCE_ROUTE_NONCE_BYTES = 64;
/** Quote generation is slow and serialised on real TDX: cap concurrent evidence requests. */
const MAX_CONCURRENT_EVIDENCE = 4;

/**
 * What the control routes need from the running server. Every listener of one server may share
 * one context (and, without hotPath 'hono', one app): identities, collateral and readiness are
 * the server's, not a listener's.
 */
export interface ControlContext<I extends ServingIdentity> {
  /** The identity whose certificate this TLS connection was served with (falls back to current). */
  identityFor(certDer: Uint8Array | undefined): I;
  evidence?: (identity: I, nonce: Uint8Array) => Promise<Uint8Array>;
  collateral(): Promise<Collateral | undefined>;
  ready(): boolean;
  metrics: ProxyMetrics;
  /** The boot and runtime event logs (/.well-known/ratls/eventlog), when the server measures. */
  eventLog?: Pick<Measurement, 'document' | 'raw'>;
}

function errorBody(code: ErrorCode, message: string): { error: { code: ErrorCode; message: string } } {
  return { error: { code, message } };
}

function wantsJson(accept: string | undefined, format: string | undefined): boolean {
  if (format) return format === 'json';
  return !!accept && accept.includes('application/json') && !accept.includes('application/cbor');
}

/**
 * The TLS socket a control request arrived on (the same socket for every request of a keep-alive
 * connection), or undefined when the request did not come over TLS (e.g. `app.request` in tests).
 * Evidence bound to a TLS session is computed from it.
 */
export function requestTlsSocket(c: Context<{ Bindings: HttpBindings }>): TLSSocket | undefined {
  const socket: unknown = c.env?.incoming?.socket;
  return socket instanceof TLSSocket ? socket : undefined;
}

/** DER of the certificate this server presented on `socket`. */
export function servedCertificate(socket: TLSSocket | undefined): Uint8Array | undefined {
  const cert = socket?.getCertificate();
  return cert && 'raw' in cert && cert.raw ? new Uint8Array(cert.raw) : undefined;
}

/** Builds the Hono app for the control routes. */
export function createControlApp<I extends ServingIdentity>(ctx: ControlContext<I>): Hono<{ Bindings: HttpBindings }> {
  const app = new Hono<{ Bindings: HttpBindings }>();
  // Per app: listeners sharing one app share the cap.
  let evidenceInFlight = 0;

  app.get('/healthz', (c) => c.text('ok\n'));
  app.get('/readyz', (c) => (ctx.ready() ? c.text('ready\n') : c.text('draining\n', 503)));
  app.get('/metrics', async (c) => {
    const body = await ctx.metrics.registry.metrics();
    return c.body(body, 200, { 'content-type': ctx.metrics.registry.contentType });
  });

  app.get(`${CONTROL_PREFIX}certificate`, (c) => {
    const id = ctx.identityFor(servedCertificate(requestTlsSocket(c)));
    const der = c.req.query('format') === 'der' || (c.req.header('accept') ?? '').includes('application/pkix-cert');
    if (der) return c.body(id.certDer.slice().buffer as ArrayBuffer, 200, { 'content-type': 'application/pkix-cert', 'cache-control': 'no-store' });
    return c.body(id.certPem, 200, { 'content-type': 'application/x-pem-file', 'cache-control': 'no-store' });
  });

  app.get(`${CONTROL_PREFIX}evidence`, async (c) => {
    const nonceHex = c.req.query('nonce');
    if (!nonceHex)
      return c.json(
        errorBody('NONCE_MISSING', `Add ?nonce=<hex> (1 to ${MAX_EVIDENCE_ROUTE_NONCE_BYTES} random bytes) to get evidence bound to your nonce.`),
        400,
      );
    // fromHex checks the alphabet (either case) and even length; the length cap comes first
    const nonce = nonceHex.length <= MAX_EVIDENCE_ROUTE_NONCE_BYTES * 2 ? fromHex(nonceHex) : undefined;
    if (!nonce || nonce.length === 0) {
      return c.json(errorBody('NONCE_INVALID', `The nonce must be 1 to ${MAX_EVIDENCE_ROUTE_NONCE_BYTES} bytes of even-length hex.`), 400);
    }
    if (!ctx.evidence)
      return c.json(errorBody('EVIDENCE_PROVIDER_UNAVAILABLE', 'This server has no evidence provider, so it cannot produce nonce evidence.'), 501);
    if (evidenceInFlight >= MAX_CONCURRENT_EVIDENCE) {
      return c.json(errorBody('EVIDENCE_PROVIDER_FAILED', 'Too many evidence requests at once; retry in a second.'), 503, { 'retry-after': '1' });
    }
    const id = ctx.identityFor(servedCertificate(requestTlsSocket(c)));
    evidenceInFlight++;
    let evidence: Uint8Array;
    try {
      evidence = await ctx.evidence(id, nonce);
    } catch (err) {
      const e = toVerifyError(err, 'EVIDENCE_PROVIDER_FAILED');
      return c.json(errorBody(e.code, e.message), 500);
    } finally {
      evidenceInFlight--;
    }
    const headers = { 'cache-control': 'no-store', 'x-ratls-simulated': String(id.simulated) };
    if (wantsJson(c.req.header('accept'), c.req.query('format'))) {
      return c.json(
        {
          evidence: toBase64(evidence),
          nonce: toHex(nonce),
          certificateSha256: id.fingerprintSha256,
          provider: id.providerName,
          simulated: id.simulated,
        },
        200,
        headers,
      );
    }
    return c.body(evidence.slice().buffer as ArrayBuffer, 200, { ...headers, 'content-type': 'application/cbor' });
  });

  // The event logs: JSON with both logs in base64 and the server's own decoding (default), or one
  // raw TCG log with ?format=boot or ?format=runtime (docs/eventlog.md).
  app.get(`${CONTROL_PREFIX}eventlog`, async (c) => {
    const headers = { 'cache-control': 'no-store' };
    if (!ctx.eventLog) {
      return c.json(errorBody('EVENTLOG_MISSING', 'This server does not measure its workload or serve event logs (measurement is off).'), 404, headers);
    }
    const format = c.req.query('format') ?? 'json';
    if (format === 'boot' || format === 'runtime') {
      const raw = ctx.eventLog.raw(format);
      if (!raw) return c.json(errorBody('EVENTLOG_MISSING', `This server has no ${format} event log to serve.`), 404, headers);
      return c.body(raw.slice().buffer as ArrayBuffer, 200, { ...headers, 'content-type': 'application/octet-stream' });
    }
    if (format !== 'json') return c.json(errorBody('REQUEST_MALFORMED', 'format must be json (default), boot or runtime.'), 400, headers);
    // verifiers read only the raw logs: ?decoded=false spares them the server's decoding
    return c.json(await ctx.eventLog.document({ decoded: c.req.query('decoded') !== 'false' }), 200, headers);
  });

  app.get(`${CONTROL_PREFIX}collateral`, async (c) => {
    let col: Collateral | undefined;
    try {
      col = await ctx.collateral();
    } catch (err) {
      const e = toVerifyError(err, 'COLLATERAL_MISSING');
      return c.json(errorBody(e.code, e.message), 502);
    }
    if (!col) return c.json(errorBody('COLLATERAL_MISSING', 'This server has no collateral to offer; fetch it from Intel PCS or your PCCS.'), 404);
    return c.json(
      {
        tcbInfoJson: col.tcbInfoJson,
        tcbInfoIssuerChain: col.tcbInfoIssuerChain,
        qeIdentityJson: col.qeIdentityJson,
        qeIdentityIssuerChain: col.qeIdentityIssuerChain,
        pckCrl: toBase64(col.pckCrl),
        pckCrlIssuerChain: col.pckCrlIssuerChain,
        rootCaCrl: toBase64(col.rootCaCrl),
      },
      200,
      { 'cache-control': 'no-store' },
    );
  });

  app.all(`${CONTROL_PREFIX}*`, (c) =>
    c.json(
      errorBody(
        'INTERNAL',
        'Unknown control route. Known: /.well-known/ratls/evidence?nonce=HEX, /.well-known/ratls/certificate, /.well-known/ratls/collateral, /.well-known/ratls/eventlog.',
      ),
      404,
    ),
  );
  app.onError((err, c) => {
    const e = err instanceof RatlsError ? err.toJSON() : toVerifyError(err);
    return c.json(errorBody(e.code, e.message), 500);
  });
  return app;
}
