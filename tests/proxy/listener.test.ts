/**
 * The pieces a second HTTPS listener is built from: one identity rotation and one control app
 * shared by two listeners on their own ports, and control routes that see the TLS socket of
 * their request (what session-bound evidence is computed from).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as https from 'node:https';
import type * as tls from 'node:tls';
import { createHash } from 'node:crypto';
import { getRequestListener } from '@hono/node-server';
import { Hono } from 'hono';
import type { HttpBindings } from '@hono/node-server';
import { pino } from 'pino';
import { createControlApp, requestTlsSocket } from '../../src/proxy/control.ts';
import { createEvidenceService } from '../../src/proxy/evidence-service.ts';
import { createDispatch, type UpstreamHandler } from '../../src/proxy/dispatch.ts';
import { IdentityRotation } from '../../src/proxy/identity-rotation.ts';
import type { ServingIdentity } from '../../src/proxy/identity-source.ts';
import { listenRatls, type RatlsListener } from '../../src/proxy/listener.ts';
import { createMetrics } from '../../src/proxy/metrics.ts';
import { selfSignedSource } from './helpers.ts';

const log = pino({ level: 'silent' });
const limits = { headersTimeoutMs: 10_000, requestTimeoutMs: 10_000, keepAliveTimeoutMs: 10_000 };

/** An upstream that answers with its own name. */
function namedUpstream(name: string): UpstreamHandler {
  return {
    handle: (_req, res) => res.end(name),
    handleUpgrade: (_req, socket) => socket.destroy(),
  };
}

/** Sends `paths` in turn on one keep-alive TLS connection; returns its certificate, the bodies and what `onSocket` read from it. */
async function onOneConnection(port: number, paths: string[], onSocket?: (s: tls.TLSSocket) => string) {
  const agent = new https.Agent({ keepAlive: true, maxSockets: 1, rejectUnauthorized: false, servername: 'localhost' });
  const sockets = new Set<tls.TLSSocket>();
  const bodies: string[] = [];
  const extra: string[] = [];
  try {
    for (const path of paths) {
      bodies.push(
        await new Promise<string>((resolve, reject) => {
          const req = https.get({ host: '127.0.0.1', port, path, agent }, (res) => {
            let body = '';
            res.setEncoding('utf8');
            res.on('data', (d: string) => (body += d));
            res.on('end', () => resolve(body));
          });
          req.on('socket', (s) => {
            sockets.add(s as tls.TLSSocket);
            if (onSocket && extra.length < sockets.size) {
              const read = (): number => extra.push(onSocket(s as tls.TLSSocket));
              if ((s as tls.TLSSocket).encrypted && !s.connecting) read();
              else s.once('secureConnect', read);
            }
          });
          req.on('error', reject);
        }),
      );
    }
    expect(sockets.size).toBe(1);
    const [socket] = [...sockets];
    const fingerprint = createHash('sha256').update(socket!.getPeerCertificate().raw).digest('hex');
    return { fingerprint, bodies, extra };
  } finally {
    agent.destroy();
  }
}

describe('two listeners share one identity rotation and one control app', () => {
  let identities: IdentityRotation<ServingIdentity>;
  const listeners: RatlsListener[] = [];

  beforeAll(async () => {
    identities = await IdentityRotation.issue({ source: selfSignedSource(), now: () => new Date(), rotateAt: 2 / 3 });
    const metrics = createMetrics(false);
    const app = createControlApp({
      identityFor: (der) => identities.forCertificate(der),
      evidence: createEvidenceService({ maxQueued: 16, maxBatch: 16, maxPerPeer: 16, metrics }),
      collateral: async () => undefined,
      ready: () => true,
      metrics,
    });
    const control = getRequestListener(app.fetch);
    for (const name of ['webui', 'ollama']) {
      const dispatch = createDispatch({ control, upstream: namedUpstream(name), hotPath: 'raw', draining: () => false, metrics, log });
      listeners.push(
        await listenRatls({ listen: { host: '127.0.0.1', port: 0 }, tls: { minVersion: 'TLSv1.3' }, limits, identity: identities, dispatch, log }),
      );
    }
  });
  afterAll(async () => {
    for (const l of listeners) {
      const closed = l.stopAccepting();
      l.server.closeAllConnections();
      await closed;
    }
  });

  it('each listener has its own upstream and the same certificate; a rotation reaches both', async () => {
    const [webui, ollama] = listeners as [RatlsListener, RatlsListener];
    const first = identities.current();
    const a = await onOneConnection(webui.port, ['/api/tags']);
    const b = await onOneConnection(ollama.port, ['/api/tags']);
    expect([a.bodies, b.bodies]).toEqual([['webui'], ['ollama']]);
    expect([a.fingerprint, b.fingerprint]).toEqual([first.fingerprintSha256, first.fingerprintSha256]);

    await identities.rotate();
    const fresh = identities.current();
    expect(fresh.fingerprintSha256).not.toBe(first.fingerprintSha256);
    for (const l of listeners) {
      const c = await onOneConnection(l.port, ['/.well-known/ratls/certificate']);
      expect(c.fingerprint).toBe(fresh.fingerprintSha256);
      // the shared control route answers with the certificate of this very connection
      expect(c.bodies[0]).toBe(fresh.certPem);
    }
  });

  it('a listener that stopped accepting no longer follows rotations', async () => {
    const extra = await listenRatls({
      listen: { host: '127.0.0.1', port: 0 },
      tls: { minVersion: 'TLSv1.3' },
      limits,
      identity: identities,
      dispatch: createDispatch({ control: () => {}, upstream: namedUpstream('x'), hotPath: 'raw', draining: () => false, metrics: createMetrics(false), log }),
      log,
    });
    let applied = 0;
    const counting = identities.serveWith(() => applied++);
    await extra.stopAccepting();
    const setSecureContext = extra.server.setSecureContext.bind(extra.server);
    let called = false;
    extra.server.setSecureContext = (o) => {
      called = true;
      setSecureContext(o);
    };
    await identities.rotate();
    counting();
    expect(applied).toBe(1);
    expect(called).toBe(false);
  });
});

describe('a control route sees the TLS socket its request arrived on', () => {
  it('computes the same TLS exporter as the client, per connection', async () => {
    const identities = await IdentityRotation.issue({ source: selfSignedSource(), now: () => new Date(), rotateAt: 2 / 3 });
    const app = new Hono<{ Bindings: HttpBindings }>();
    app.get('/.well-known/ratls/exporter', (c) => {
      const socket = requestTlsSocket(c);
      return c.text(socket ? socket.exportKeyingMaterial(32, 'EXPORTER-ratls-test', Buffer.alloc(0)).toString('hex') : 'no socket');
    });
    const dispatch = createDispatch({
      control: getRequestListener(app.fetch),
      upstream: namedUpstream('x'),
      hotPath: 'raw',
      draining: () => false,
      metrics: createMetrics(false),
      log,
    });
    const l = await listenRatls({ listen: { host: '127.0.0.1', port: 0 }, tls: { minVersion: 'TLSv1.3' }, limits, identity: identities, dispatch, log });
    try {
      const exporter = (s: tls.TLSSocket): string => s.exportKeyingMaterial(32, 'EXPORTER-ratls-test', Buffer.alloc(0)).toString('hex');
      const one = await onOneConnection(l.port, ['/.well-known/ratls/exporter', '/.well-known/ratls/exporter'], exporter);
      const two = await onOneConnection(l.port, ['/.well-known/ratls/exporter'], exporter);
      expect(one.bodies).toEqual([one.extra[0], one.extra[0]]);
      expect(two.bodies).toEqual(two.extra);
      expect(one.extra[0]).not.toBe(two.extra[0]);
      expect(one.extra[0]).toMatch(/^[0-9a-f]{64}$/);
    } finally {
      const closed = l.stopAccepting();
      l.server.closeAllConnections();
      await closed;
    }
  });

  it('is undefined for a request that did not come over TLS', async () => {
    const app = new Hono<{ Bindings: HttpBindings }>();
    app.get('/x', (c) => c.text(String(requestTlsSocket(c))));
    expect(await (await app.request('/x')).text()).toBe('undefined');
  });
});
