/**
 * Control routes served by the proxy itself (Hono): session-bound evidence, RA-TLS evidence with a
 * client nonce, the certificate, collateral, health, readiness and Prometheus metrics.
 */
import { TLSSocket } from 'node:tls';
import { Hono, type Context } from 'hono';
import type { HttpBindings } from '@hono/node-server';
import type { Collateral } from '../core/types.ts';
import { type ErrorCode, RatlsError, toVerifyError } from '../core/errors.ts';
import { fromHex, toBase64, toHex } from '../core/bytes.ts';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { ServingIdentity } from './identity-source.ts';
import type { ProxyMetrics } from './metrics.ts';
import type { Measurement } from './measurement.ts';
import { MAX_NONCE_ROUTE_BYTES, type EvidenceAnswer, type EvidenceService } from './evidence-service.ts';

/** Path prefix of the control routes. */
export const CONTROL_PREFIX = '/.well-known/ratls/';
const CONTROL_EXACT = new Set(['/healthz', '/readyz', '/metrics', '/.well-known/ratls']);

/** True when the path (without query) is answered by the proxy instead of an upstream. */
export function isControlPath(path: string): boolean {
  return CONTROL_EXACT.has(path) || path.startsWith(CONTROL_PREFIX);
}

/** Largest nonce the evidence route accepts, in bytes (createNonceEvidence itself allows up to 256): the claims hash makes longer nonces pointless. */
export const MAX_EVIDENCE_ROUTE_NONCE_BYTES = MAX_NONCE_ROUTE_BYTES;
/** Path of the session evidence route. */
export const SESSION_ROUTE = `${CONTROL_PREFIX}session`;

/**
 * What the control routes need from the running server. Every listener of one server may share
 * one context (and, without hotPath 'hono', one app): identities, collateral and readiness are
 * the server's, not a listener's.
 */
export interface ControlContext<I extends ServingIdentity> {
  /** The identity whose certificate this TLS connection was served with (falls back to current). */
  identityFor(certDer: Uint8Array | undefined): I;
  /**
   * The identity when only one has been served so far (before the first rotation): then the
   * connection need not be asked which certificate it got, which costs a few hundred
   * microseconds for a 14 KB certificate, on every evidence request.
   */
  soleIdentity?(): I | undefined;
  /** Session and nonce evidence, queued fairly (src/proxy/evidence-service.ts); one per server. */
  evidence: EvidenceService<I>;
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

/** The identity a request's connection was served with, asking the connection only when needed. */
function identityOf<I extends ServingIdentity>(ctx: ControlContext<I>, socket: TLSSocket | undefined): I {
  return ctx.soleIdentity?.() ?? ctx.identityFor(servedCertificate(socket));
}

/** Sends an answer of the evidence service through Hono. */
function send(c: Context<{ Bindings: HttpBindings }>, a: EvidenceAnswer): Response {
  if (a.body instanceof Uint8Array) return c.body(a.body.slice().buffer as ArrayBuffer, a.status as 200, a.headers);
  return c.json(a.body, a.status as 400, a.headers);
}

/**
 * GET /.well-known/ratls/session straight on Node's request, without Hono: every session-bound
 * client makes exactly one such request per connection, and Hono's request and response objects
 * cost about as much CPU as the rest of the route (bench/README.md). Returns false for any other
 * request, which then goes to the Hono app (which answers this route the same way).
 */
export function createSessionRoute<I extends ServingIdentity>(ctx: ControlContext<I>): (req: IncomingMessage, res: ServerResponse) => boolean {
  return (req, res) => {
    const url = req.url ?? '';
    const q = url.indexOf('?');
    if ((q < 0 ? url : url.slice(0, q)) !== SESSION_ROUTE || req.method !== 'GET' || !(req.socket instanceof TLSSocket)) return false;
    const socket = req.socket;
    const nonce = q < 0 ? undefined : (new URLSearchParams(url.slice(q + 1)).get('nonce') ?? undefined);
    ctx.evidence.session(socket, identityOf(ctx, socket), nonce).then(
      (a) => {
        const body = a.body instanceof Uint8Array ? a.body : Buffer.from(JSON.stringify(a.body));
        res.writeHead(a.status, {
          ...a.headers,
          ...(a.body instanceof Uint8Array ? {} : { 'content-type': 'application/json' }),
          'content-length': String(body.length),
        });
        res.end(body);
      },
      () => res.destroy(),
    );
    return true;
  };
}

/** Builds the Hono app for the control routes. */
export function createControlApp<I extends ServingIdentity>(ctx: ControlContext<I>): Hono<{ Bindings: HttpBindings }> {
  const app = new Hono<{ Bindings: HttpBindings }>();

  // the status is spelt out: Hono answers HEAD by wrapping the GET answer, and @hono/node-server
  // cannot wrap the bare `c.text(text)` kind (HEAD /healthz was a 500, a false alarm for monitors)
  app.get('/healthz', (c) => c.text('ok\n', 200));
  app.get('/readyz', (c) => (ctx.ready() ? c.text('ready\n', 200) : c.text('draining\n', 503)));
  app.get('/metrics', async (c) => {
    const body = await ctx.metrics.registry.metrics();
    return c.body(body, 200, { 'content-type': ctx.metrics.registry.contentType });
  });

  app.get(`${CONTROL_PREFIX}certificate`, (c) => {
    const id = identityOf(ctx, requestTlsSocket(c));
    const der = c.req.query('format') === 'der' || (c.req.header('accept') ?? '').includes('application/pkix-cert');
    if (der) return c.body(id.certDer.slice().buffer as ArrayBuffer, 200, { 'content-type': 'application/pkix-cert', 'cache-control': 'no-store' });
    return c.body(id.certPem, 200, { 'content-type': 'application/x-pem-file', 'cache-control': 'no-store' });
  });

  app.get(`${CONTROL_PREFIX}session`, async (c) => {
    const socket = requestTlsSocket(c);
    if (!socket) return c.json(errorBody('SESSION_BINDING_UNAVAILABLE', 'Session-bound evidence needs a TLS connection.'), 400);
    return send(c, await ctx.evidence.session(socket, identityOf(ctx, socket), c.req.query('nonce')));
  });

  app.get(`${CONTROL_PREFIX}evidence`, async (c) => {
    const socket = requestTlsSocket(c);
    const id = identityOf(ctx, socket);
    const nonceHex = c.req.query('nonce');
    if (nonceHex === undefined) {
      // no nonce: the certificate's own evidence, made once per certificate, no quote
      const ev = ctx.evidence.certificateEvidence(id);
      if (ev)
        return c.body(ev.slice().buffer as ArrayBuffer, 200, {
          'content-type': 'application/cbor',
          'cache-control': 'no-store',
          'x-ratls-binding': 'certificate',
        });
    }
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
    const got = await ctx.evidence.nonce(socket, id, nonce);
    if (!(got instanceof Uint8Array)) return send(c, got);
    const evidence = got;
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
        'Unknown control route. Known: /.well-known/ratls/session?nonce=HEX, /.well-known/ratls/evidence[?nonce=HEX], /.well-known/ratls/certificate, /.well-known/ratls/collateral, /.well-known/ratls/eventlog.',
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
