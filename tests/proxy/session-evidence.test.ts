/**
 * `ratls serve`'s session evidence route: the exporter of the very socket the request came on,
 * batches under one quote, TLS 1.3 only, metrics, the certificate's own evidence served without a
 * quote, and what a server that cannot quote answers.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import tls from 'node:tls';
import { createHash, randomBytes } from 'node:crypto';
import { request } from 'undici';
import { startRatlsServer, type RunningRatlsServer } from '../../src/proxy/server.ts';
import type { ServingIdentity } from '../../src/proxy/identity-source.ts';
import { rawGet } from '../../src/client/evidence-request.ts';
import { verifySessionEvidence } from '../../src/ratls/verify-session.ts';
import { decodeSessionEvidence, tlsExporter } from '../../src/ratls/session.ts';
import { decodeEvidence } from '../../src/ratls/extension.ts';
import { loadSimulatedProvider, type SimulatedProvider } from '../../src/tee/simulated/index.ts';
import { createRatlsIdentity } from '../../src/ratls/identity.ts';
import { createNonceEvidence } from '../../src/ratls/evidence.ts';
import { makeWorld, type World } from '../client/helpers.ts';
import { selfSignedSource, testConfig, trustingAgent } from './helpers.ts';

let world: World;
let provider: SimulatedProvider;
let srv: RunningRatlsServer;
let quotes = 0;

async function connect(port: number, opts: tls.ConnectionOptions = {}): Promise<tls.TLSSocket> {
  const s = tls.connect({ port, host: '127.0.0.1', rejectUnauthorized: false, ALPNProtocols: ['http/1.1'], ...opts });
  await new Promise<void>((resolve, reject) => {
    s.once('secureConnect', () => resolve());
    s.once('error', reject);
  });
  return s;
}

beforeAll(async () => {
  world = await makeWorld();
  provider = await loadSimulatedProvider(world.dir, { quoteLatencyMs: 40 });
  srv = await startRatlsServer(testConfig({ routes: [{ prefix: '/', target: 'http://127.0.0.1:9' }], tls: { minVersion: 'TLSv1.2' } }), {
    identitySource: {
      issue: (now) => createRatlsIdentity({ provider, hosts: ['localhost', '127.0.0.1'], now }),
      quote: (rd) => {
        quotes++;
        return provider.getQuote(rd);
      },
      evidence: (id, nonce) => createNonceEvidence(id, provider, nonce),
      collateral: (now) => provider.collateral(now),
    },
    autoRotate: false,
  });
});
afterAll(async () => {
  await srv?.close({ drainTimeoutMs: 100 });
});

const opts = async (exporter: Uint8Array, nonce: Uint8Array) => ({
  now: new Date(),
  trustedRoots: [world.rootPem],
  collateral: await provider.collateral(new Date()),
  exporter,
  nonce,
});

describe('GET /.well-known/ratls/session', () => {
  it('quotes the exporter of the socket the request came on; 30 concurrent sessions share a few quotes', async () => {
    const spki = (srv.identity() as unknown as { spkiDer: Uint8Array }).spkiDer;
    const before = quotes;
    const sockets = await Promise.all(Array.from({ length: 30 }, () => connect(srv.port)));
    try {
      const results = await Promise.all(
        sockets.map(async (s) => {
          const nonce = new Uint8Array(randomBytes(32));
          const res = await rawGet(s, '127.0.0.1', `/.well-known/ratls/session?nonce=${Buffer.from(nonce).toString('hex')}`, 15_000);
          expect(res.status).toBe(200);
          expect(res.headers['content-type']).toBe('application/cbor');
          return { res, nonce, exporter: tlsExporter(s) };
        }),
      );
      // one quote at a time, 40 ms each: the 30 sessions needed far fewer than 30 quotes
      expect(quotes - before).toBeLessThanOrEqual(4);
      for (const { res, nonce, exporter } of results) {
        const r = await verifySessionEvidence(res.body, spki, await opts(exporter, nonce));
        expect(r.errors).toEqual([]);
      }
      const sizes = results.map((r) => decodeSessionEvidence(r.res.body).size);
      expect(Math.max(...sizes)).toBeGreaterThan(1);
      // another socket's exporter: refused
      const wrong = await verifySessionEvidence(results[0]!.res.body, spki, await opts(results[1]!.exporter, results[0]!.nonce));
      expect(wrong.errors.map((e) => e.code)).toEqual(['SESSION_BINDING_MISMATCH']);
    } finally {
      for (const s of sockets) s.destroy();
    }
    const agent = trustingAgent(srv.identity().certPem);
    const m = await (await request(`${srv.url}metrics`, { dispatcher: agent })).body.text();
    await agent.close();
    expect(m).toMatch(/ratls_evidence_batch_size_count \d+/);
    expect(m).toMatch(/ratls_evidence_quote_duration_seconds_count\{kind="batch"\} \d+/);
    expect(m).toMatch(/ratls_evidence_requests_total\{kind="session",result="ok"\} 30/);
    expect(m).toMatch(/ratls_evidence_queue_depth 0/);
  });

  it('refuses TLS 1.2 connections (SESSION_BINDING_UNAVAILABLE) and bad nonces', async () => {
    const s12 = await connect(srv.port, { maxVersion: 'TLSv1.2' });
    try {
      expect(s12.getProtocol()).toBe('TLSv1.2');
      const r = await rawGet(s12, '127.0.0.1', `/.well-known/ratls/session?nonce=${'ab'.repeat(32)}`, 5000);
      expect(r.status).toBe(400);
      expect(JSON.parse(Buffer.from(r.body).toString()).error.code).toBe('SESSION_BINDING_UNAVAILABLE');
    } finally {
      s12.destroy();
    }
    const s = await connect(srv.port);
    try {
      for (const [q, code] of [
        ['', 'NONCE_MISSING'],
        ['?nonce=', 'NONCE_MISSING'],
        [`?nonce=${'ab'.repeat(15)}`, 'NONCE_INVALID'],
        [`?nonce=${'ab'.repeat(65)}`, 'NONCE_INVALID'],
        ['?nonce=xyz', 'NONCE_INVALID'],
      ] as const) {
        const r = await rawGet(s, '127.0.0.1', `/.well-known/ratls/session${q}`, 5000);
        expect(r.status, q).toBe(400);
        expect(JSON.parse(Buffer.from(r.body).toString()).error.code, q).toBe(code);
      }
    } finally {
      s.destroy();
    }
  });

  it("serves the certificate's own evidence without a nonce, with no quote", async () => {
    const before = quotes;
    const s = await connect(srv.port);
    try {
      const r = await rawGet(s, '127.0.0.1', '/.well-known/ratls/evidence', 5000);
      expect(r.status).toBe(200);
      expect(r.headers['x-ratls-binding']).toBe('certificate');
      const { quote, claimsBuffer } = decodeEvidence(r.body);
      const id = srv.identity() as unknown as { quote: Uint8Array; claimsBuffer: Uint8Array };
      expect(Buffer.from(quote).equals(Buffer.from(id.quote))).toBe(true);
      expect(Buffer.from(claimsBuffer).equals(Buffer.from(id.claimsBuffer))).toBe(true);
    } finally {
      s.destroy();
    }
    expect(quotes).toBe(before);
  });

  it('a server whose identity source cannot quote answers 501 SESSION_BINDING_UNAVAILABLE', async () => {
    const plain = await startRatlsServer<ServingIdentity>(testConfig({ routes: [{ prefix: '/', target: 'http://127.0.0.1:9' }] }), {
      identitySource: selfSignedSource(),
    });
    const s = await connect(plain.port);
    try {
      const r = await rawGet(s, '127.0.0.1', `/.well-known/ratls/session?nonce=${'ab'.repeat(32)}`, 5000);
      expect(r.status).toBe(501);
      expect(JSON.parse(Buffer.from(r.body).toString()).error.code).toBe('SESSION_BINDING_UNAVAILABLE');
    } finally {
      s.destroy();
      await plain.close({ drainTimeoutMs: 100 });
    }
  });

  it('the batch claims hook adds claims every client can read', async () => {
    const log = createHash('sha384').update('runtime events').digest();
    const hooked = await startRatlsServer(testConfig({ routes: [{ prefix: '/', target: 'http://127.0.0.1:9' }] }), {
      identitySource: {
        issue: (now) => createRatlsIdentity({ provider, hosts: ['localhost', '127.0.0.1'], now }),
        quote: (rd) => provider.getQuote(rd),
      },
      sessionClaims: () => [['runtime-log', new Uint8Array(log)]],
      autoRotate: false,
    });
    const s = await connect(hooked.port);
    try {
      const nonce = new Uint8Array(randomBytes(32));
      const r = await rawGet(s, '127.0.0.1', `/.well-known/ratls/session?nonce=${Buffer.from(nonce).toString('hex')}`, 5000);
      const v = await verifySessionEvidence(r.body, hooked.identity().spkiDer, await opts(tlsExporter(s), nonce));
      expect(v.ok).toBe(true);
      expect(Buffer.from(v.session!.claims.get('runtime-log')!).equals(log)).toBe(true);
    } finally {
      s.destroy();
      await hooked.close({ drainTimeoutMs: 100 });
    }
  });
});
