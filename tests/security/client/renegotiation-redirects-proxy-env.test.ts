/**
 * TLS-level attacks on the attesting clients: a second handshake on an attested connection, and
 * redirects that would carry a request to a server that was never attested.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import http from 'node:http';
import https from 'node:https';
import tls from 'node:tls';
import type { AddressInfo } from 'node:net';
import { request as undiciRequest } from 'undici';
import { createAttestedAgent } from '../../../src/client/agent.ts';
import { createAttestedDispatcher } from '../../../src/client/dispatcher.ts';
import { attestedFetch, createAttestedFetch } from '../../../src/client/fetch.ts';
import { probe } from '../../../src/client/probe.ts';
import { loadSimulatedProvider } from '../../../src/tee/simulated/index.ts';
import { createRatlsIdentity } from '../../../src/ratls/identity.ts';
import { StapledCollateralSource } from '../../../src/ratls/stapled-source.ts';
import { AttestationError } from '../../../src/client/errors.ts';
import {
  makeIdentity,
  makeWorld,
  onlySessionRequests,
  sessionSpyServer,
  userRequests,
  simPolicy,
  startSpyServer,
  type SpyServer,
  type World,
} from '../../client/helpers.ts';

let world: World;

beforeAll(async () => {
  world = await makeWorld();
});

/**
 * A TLS 1.2 server that, after answering /1 on an attested connection, switches its certificate to
 * `next` and asks the client to renegotiate. Reports whether the second handshake completed.
 */
async function startRenegotiatingServer(first: { certPem: string; keyPem: string }, next: { certPem: string; keyPem: string }) {
  let outcome: 'pending' | 'completed' | 'failed' = 'pending';
  const server = https.createServer({ cert: first.certPem, key: first.keyPem, maxVersion: 'TLSv1.2', ALPNProtocols: ['http/1.1'] }, (req, res) => {
    const s = req.socket as tls.TLSSocket & { setKeyCert(ctx: tls.SecureContextOptions): void };
    if (req.url === '/1') {
      res.end('one');
      s.setKeyCert({ cert: next.certPem, key: next.keyPem });
      const ok = s.renegotiate({ rejectUnauthorized: false }, (err) => {
        outcome = err ? 'failed' : 'completed';
      });
      if (!ok) outcome = 'failed';
    } else res.end('two');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as AddressInfo).port,
    outcome: () => outcome,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

describe('renegotiation', () => {
  let srv: Awaited<ReturnType<typeof startRenegotiatingServer>>;
  beforeAll(async () => {
    // the second certificate is a DEBUG TD's: it would never pass attestation
    srv = await startRenegotiatingServer(await makeIdentity(world), await makeIdentity(world, { debug: true }));
  });
  afterAll(async () => srv?.close());

  // Renegotiation exists only in TLS 1.2, which session binding (the default) refuses outright;
  // these run with certificate binding, where TLS 1.2 is still accepted.
  const certificateBinding = () => simPolicy(world, (p) => (p.freshness.binding = 'certificate'));

  it('with the default session binding, a TLS 1.2 server is refused before any request: renegotiation cannot arise', async () => {
    const agent = createAttestedAgent(simPolicy(world));
    const err = await new Promise<unknown>((resolve) => {
      https.get({ host: '127.0.0.1', port: srv.port, path: '/1', agent }, () => resolve(null)).on('error', resolve);
    });
    expect((err as AttestationError).code).toBe('SESSION_BINDING_UNAVAILABLE');
    expect(srv.outcome()).toBe('pending');
    agent.destroy();
  });

  it('the attested https.Agent refuses a server-initiated second handshake', async () => {
    const agent = createAttestedAgent(certificateBinding(), { agentOptions: { keepAlive: true, maxSockets: 1 } });
    const get = (path: string) =>
      new Promise<string>((resolve, reject) => {
        https
          .get({ host: '127.0.0.1', port: srv.port, path, agent }, (res) => {
            let d = '';
            res.on('data', (c: Buffer) => (d += c));
            res.on('end', () => resolve(d));
          })
          .on('error', reject);
      });
    try {
      expect(await get('/1')).toBe('one');
      await new Promise((r) => setTimeout(r, 200));
      await get('/2').catch(() => 'closed');
      await new Promise((r) => setTimeout(r, 200));
      expect(srv.outcome()).not.toBe('completed');
    } finally {
      agent.destroy();
    }
  });

  it('the attested undici dispatcher refuses it too', async () => {
    const d = createAttestedDispatcher(certificateBinding(), { agentOptions: { connections: 1 } });
    try {
      const r1 = await undiciRequest(`https://127.0.0.1:${srv.port}/1`, { dispatcher: d });
      expect(await r1.body.text()).toBe('one');
      await new Promise((r) => setTimeout(r, 200));
      await undiciRequest(`https://127.0.0.1:${srv.port}/2`, { dispatcher: d }).then(
        (r) => r.body.text(),
        () => 'closed',
      );
      await new Promise((r) => setTimeout(r, 200));
      expect(srv.outcome()).not.toBe('completed');
    } finally {
      await d.close();
    }
  });
});

describe('redirects through attestedFetch', () => {
  let good: SpyServer;
  let bad: SpyServer;
  let plain: http.Server;
  const plainHits: string[] = [];
  beforeAll(async () => {
    bad = await sessionSpyServer(world, { debug: true });
    plain = http.createServer((req, res) => {
      plainHits.push(`${req.method} ${req.url}`);
      res.end('plain');
    });
    await new Promise<void>((r) => plain.listen(0, '127.0.0.1', r));
    const plainUrl = `http://127.0.0.1:${(plain.address() as AddressInfo).port}`;
    good = await sessionSpyServer(world, {}, (req, res) => {
      const to = req.url === '/to-bad' ? `${bad.url}/stolen` : `${plainUrl}/plain`;
      res.writeHead(307, { location: to }).end();
    });
  });
  afterAll(async () => {
    await good?.close();
    await bad?.close();
    await new Promise<void>((r) => (plain ? plain.close(() => r()) : r()));
  });

  it('a redirect to another host is attested on its own connection and refused; nothing reaches it', async () => {
    const f = createAttestedFetch(simPolicy(world));
    try {
      const err = await f(`${good.url}/to-bad`, { method: 'POST', body: 'secret prompt' }).then(
        () => null,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(AttestationError);
      expect((err as AttestationError).code).toBe('TD_DEBUG');
      // only the session evidence request: neither the POST nor its body
      expect(onlySessionRequests(bad.text())).toBe(true);
      expect(bad.text()).not.toContain('secret');
    } finally {
      await f.close();
    }
  });

  it('a redirect to plain http is refused', async () => {
    const f = createAttestedFetch(simPolicy(world));
    try {
      const err = await f(`${good.url}/to-http`).then(
        () => null,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(AttestationError);
      expect((err as AttestationError).code).toBe('CONNECTION_FAILED');
      expect(plainHits).toEqual([]);
    } finally {
      await f.close();
    }
  });
});

describe('proxy environment variables', () => {
  it('HTTPS_PROXY / ALL_PROXY do not route attested clients around the check', async () => {
    const seen: string[] = [];
    const proxy = http.createServer((req, res) => {
      seen.push(`${req.method} ${req.url}`);
      res.writeHead(502).end();
    });
    proxy.on('connect', (req, socket) => {
      seen.push(`CONNECT ${req.url}`);
      socket.destroy();
    });
    await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r));
    const proxyUrl = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`;
    const saved = { ...process.env };
    const server = await sessionSpyServer(world);
    const f = createAttestedFetch(simPolicy(world));
    const agent = createAttestedAgent(simPolicy(world));
    try {
      for (const k of ['HTTPS_PROXY', 'https_proxy', 'HTTP_PROXY', 'http_proxy', 'ALL_PROXY', 'all_proxy']) process.env[k] = proxyUrl;
      delete process.env.NO_PROXY;
      delete process.env.no_proxy;
      expect(await (await f(`${server.url}/a`)).text()).toContain('hello from the VM');
      const body = await new Promise<string>((resolve, reject) => {
        https
          .get(`${server.url}/b`, { agent }, (res) => {
            let d = '';
            res.on('data', (c: Buffer) => (d += c));
            res.on('end', () => resolve(d));
          })
          .on('error', reject);
      });
      expect(body).toContain('hello from the VM');
      expect(seen).toEqual([]);
      expect(userRequests(server)).toEqual(['GET /a', 'GET /b']);
    } finally {
      for (const k of Object.keys(process.env)) if (!(k in saved)) delete process.env[k];
      Object.assign(process.env, saved);
      agent.destroy();
      await f.close();
      await server.close();
      await new Promise<void>((r) => proxy.close(() => r()));
    }
  });
});

describe('connection pools', () => {
  let good: SpyServer;
  let bad: SpyServer;
  beforeAll(async () => {
    good = await sessionSpyServer(world);
    bad = await sessionSpyServer(world, { debug: true });
  });
  afterAll(async () => {
    await good?.close();
    await bad?.close();
  });

  it('an attested connection to one host:port is never reused for another (agent and dispatcher)', async () => {
    const agent = createAttestedAgent(simPolicy(world), { agentOptions: { keepAlive: true, maxSockets: 1 } });
    const d = createAttestedDispatcher(simPolicy(world));
    const get = (url: string) =>
      new Promise<string>((resolve, reject) => {
        https
          .get(url, { agent }, (res) => {
            let s = '';
            res.on('data', (c: Buffer) => (s += c));
            res.on('end', () => resolve(s));
          })
          .on('error', reject);
      });
    try {
      expect(await get(`${good.url}/a`)).toContain('hello');
      await expect(get(`${bad.url}/b`)).rejects.toBeInstanceOf(AttestationError);
      expect((await undiciRequest(`${good.url}/c`, { dispatcher: d })).statusCode).toBe(200);
      await expect(undiciRequest(`${bad.url}/d`, { dispatcher: d })).rejects.toMatchObject({ code: 'TD_DEBUG' });
      expect(userRequests(bad)).toEqual([]);
      expect(onlySessionRequests(bad.text())).toBe(true);
    } finally {
      agent.destroy();
      await d.close();
    }
  });

  it('a connection attested under a lax policy is not reused under a strict one (attestedFetch)', async () => {
    const lax = simPolicy(world, (p) => {
      p.appraisal.allowDebug = true;
    });
    const strict = simPolicy(world);
    expect(await (await attestedFetch(`${bad.url}/lax`, undefined, lax)).text()).toContain('hello');
    const err = await attestedFetch(`${bad.url}/strict`, { method: 'POST', body: 'secret' }, strict).then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(AttestationError);
    expect(userRequests(bad)).toEqual(['GET /lax']);
  });

  it('the one-off probe (ratls verify, connect status) never resumes a TLS session', async () => {
    // small certificate (no staple) so that Node issues session tickets at all; see refusal.test.ts
    const provider = await loadSimulatedProvider(world.dir);
    const s = await startSpyServer(await createRatlsIdentity({ provider, hosts: ['127.0.0.1'], stapleCollateral: false }), undefined, {
      sessionQuote: (rd) => provider.getQuote(rd),
    });
    const collateralSources = [new StapledCollateralSource(await provider.collateral(new Date()))];
    const plain = new https.Agent({ keepAlive: false, rejectUnauthorized: false });
    try {
      for (let i = 0; i < 3; i++)
        await new Promise<void>((r, j) =>
          https
            .get(`${s.url}/x`, { agent: plain }, (res) => {
              res.resume();
              res.on('end', r);
            })
            .on('error', j),
        );
      expect(s.resumed()).toBeGreaterThan(0); // control: resumption happens when allowed
      const r1 = s.resumed();
      for (let i = 0; i < 3; i++) expect((await probe(s.url, simPolicy(world), { collateralSources })).result.ok).toBe(true);
      expect(s.resumed()).toBe(r1);
    } finally {
      plain.destroy();
      await s.close();
    }
  });
});
