/**
 * Verifying clients against good and bad servers. The bad ones must be refused before a single
 * request byte is written: the spy server counts every decrypted byte and every request. With
 * session binding (the default) the only bytes a server sees before the verdict are the session
 * evidence request, sent while the certificate is verified; a plain TLS server sees none.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import https from 'node:https';
import { webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';
import { request as undiciRequest } from 'undici';
import { createAttestedAgent, createAttestedDispatcher, attestedFetch, AttestationError, type ClientPolicy } from '../../src/client/index.ts';
import { OID_RATLS_ENDORSEMENTS, OID_RATLS_EVIDENCE } from '../../src/ratls/extension.ts';
import { loadSimulatedProvider } from '../../src/tee/simulated/index.ts';
import { createRatlsIdentity } from '../../src/ratls/identity.ts';
import { StapledCollateralSource } from '../../src/ratls/stapled-source.ts';
import { makeIdentity, makeWorld, onlySessionRequests, SESSION_REQUEST, simPolicy, startSpyServer, type SpyServer, type World } from './helpers.ts';
import type { SimulatedProviderOptions } from '../../src/tee/simulated/index.ts';

x509.cryptoProvider.set(webcrypto as unknown as Crypto);

function pem(label: string, der: ArrayBuffer): string {
  return `-----BEGIN ${label}-----\n${Buffer.from(der)
    .toString('base64')
    .replace(/(.{64})/g, '$1\n')
    .replace(/\n?$/, '\n')}-----END ${label}-----\n`;
}

/** A self-signed certificate for a new key, optionally carrying extensions copied from `from`. */
async function selfSigned(from?: Uint8Array): Promise<{ certPem: string; keyPem: string }> {
  const alg = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' };
  const keys = (await webcrypto.subtle.generateKey(alg, true, ['sign', 'verify'])) as CryptoKeyPair;
  const extensions: x509.Extension[] = [new x509.SubjectAlternativeNameExtension([{ type: 'ip', value: '127.0.0.1' }])];
  if (from) {
    const src = new x509.X509Certificate(Buffer.from(from));
    for (const oid of [OID_RATLS_EVIDENCE, OID_RATLS_ENDORSEMENTS]) {
      const e = src.getExtension(oid);
      if (e) extensions.push(new x509.Extension(oid, false, e.value));
    }
  }
  const now = Date.now();
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: '01' + Buffer.from(webcrypto.getRandomValues(new Uint8Array(8))).toString('hex'),
    name: 'CN=impostor',
    notBefore: new Date(now - 60_000),
    notAfter: new Date(now + 3_600_000),
    signingAlgorithm: alg,
    keys,
    extensions,
  });
  return { certPem: cert.toString('pem'), keyPem: pem('PRIVATE KEY', await webcrypto.subtle.exportKey('pkcs8', keys.privateKey)) };
}

function agentGet(url: string, agent: https.Agent): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    https
      .get(url, { agent }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      })
      .on('error', reject);
  });
}

let world: World;
let goodMrtd: string;
let otherWorld: World;
const servers: Record<string, SpyServer> = {};

/** A spy server with an RA-TLS identity from `w` that answers session evidence requests. */
async function sessionSpy(w: World, opts: SimulatedProviderOptions = {}): Promise<SpyServer> {
  const provider = await loadSimulatedProvider(w.dir, opts);
  const id = await createRatlsIdentity({ provider, hosts: ['localhost', '127.0.0.1'] });
  return startSpyServer(id, undefined, { sessionQuote: (rd) => provider.getQuote(rd) });
}

beforeAll(async () => {
  world = await makeWorld();
  otherWorld = await makeWorld();
  goodMrtd = (await loadSimulatedProvider(world.dir)).measurements.mrTd;
  const good = await makeIdentity(world);
  servers.good = await sessionSpy(world);
  servers.plain = await startSpyServer(await selfSigned());
  servers.otherWorld = await sessionSpy(otherWorld);
  servers.keyMismatch = await startSpyServer(await selfSigned(good.certDer));
  servers.debug = await sessionSpy(world, { debug: true });
  servers.wrongMrtd = await sessionSpy(world, { mrTd: 'ee'.repeat(48) });
});
afterAll(async () => {
  await Promise.all(Object.values(servers).map((s) => s.close()));
});

const bad: Array<[string, string, string]> = [
  ['a plain TLS server', 'plain', 'EVIDENCE_MISSING'],
  ['a certificate from another simulated world', 'otherWorld', 'PCK_CHAIN_UNTRUSTED'],
  ['a certificate whose key does not match its evidence', 'keyMismatch', 'PUBKEY_MISMATCH'],
  ['a DEBUG TD', 'debug', 'TD_DEBUG'],
  ['a wrong MRTD', 'wrongMrtd', 'MEASUREMENT_MISMATCH'],
];

/** Trusts the world's root and pins the good server's MRTD, so a different one is refused. */
function pinnedPolicy(binding: 'session' | 'certificate' = 'session'): ClientPolicy {
  return simPolicy(world, (p) => {
    p.appraisal.mrTd = [goodMrtd];
    p.freshness.binding = binding;
  });
}

/** Where a spy server's records stand, to look only at what came after. */
function mark(s: SpyServer): { bytes: number; text: number; requests: number } {
  return { bytes: s.bytes(), text: s.text().length, requests: s.requests.length };
}

/** What a refused server may have seen since `m`: nothing (certificate binding, plain TLS), or only the session request. */
function expectNothingButEvidenceRequests(s: SpyServer, binding: 'session' | 'certificate', m: ReturnType<typeof mark>): void {
  const requests = s.requests.slice(m.requests);
  if (binding === 'certificate' || s === servers.plain) {
    expect(s.bytes()).toBe(m.bytes);
    expect(requests).toEqual([]);
  } else {
    expect(onlySessionRequests(s.text().slice(m.text))).toBe(true);
    expect(requests.every((r) => SESSION_REQUEST.test(r))).toBe(true);
  }
  expect(s.text()).not.toContain('prompt');
}

function expectRefused(err: unknown, code: string): void {
  expect(err).toBeInstanceOf(AttestationError);
  const e = err as AttestationError;
  expect(e.result.ok).toBe(false);
  expect(e.result.errors.map((x) => x.code)).toContain(code);
}

describe('attested https.Agent', () => {
  it('passes a good simulated server and sends the request', async () => {
    const events: string[] = [];
    const agent = createAttestedAgent(pinnedPolicy(), { onVerified: (e) => events.push(e.result.tcbStatus ?? 'none') });
    const before = servers.good!.bytes();
    const r = await agentGet(`${servers.good!.url}/hello`, agent);
    expect(r).toEqual({ status: 200, body: 'hello from the VM\n' });
    expect(events).toEqual(['UpToDate']);
    expect(servers.good!.bytes()).toBeGreaterThan(before); // the spy does see request bytes when allowed
    agent.destroy();
  });

  it('never resumes a TLS session: every connection is a full handshake that is attested', async () => {
    // Without stapled collateral the certificate is small enough for Node to issue session tickets
    // (with a ~14 KB certificate it sends none, which would make this control pass vacuously).
    const provider = await loadSimulatedProvider(world.dir);
    const s = await startSpyServer(await createRatlsIdentity({ provider, hosts: ['127.0.0.1'], stapleCollateral: false }), undefined, {
      sessionQuote: (rd) => provider.getQuote(rd),
    });
    const collateralSources = [new StapledCollateralSource(await provider.collateral(new Date()))];
    // control: an ordinary agent without keep-alive resumes its session on the next connection
    const plain = new https.Agent({ keepAlive: false, rejectUnauthorized: false });
    for (let i = 0; i < 3; i++) await agentGet(`${s.url}/x`, plain);
    expect(s.resumed()).toBeGreaterThan(0);
    let verified = 0;
    const agent = createAttestedAgent(pinnedPolicy(), { collateralSources, agentOptions: { keepAlive: false }, onVerified: () => verified++ });
    const r1 = s.resumed();
    for (let i = 0; i < 3; i++) expect((await agentGet(`${s.url}/y`, agent)).status).toBe(200);
    expect(s.resumed()).toBe(r1);
    expect(verified).toBe(3);
    // the dispatcher too
    const d = createAttestedDispatcher(pinnedPolicy(), { collateralSources, agentOptions: { pipelining: 0 }, onVerified: () => verified++ });
    for (let i = 0; i < 2; i++) {
      const r = await undiciRequest(`${s.url}/z`, { dispatcher: d, headers: { connection: 'close' } });
      await r.body.text();
    }
    expect(s.resumed()).toBe(r1);
    expect(verified).toBe(5);
    await d.close();
    agent.destroy();
    plain.destroy();
    await s.close();
  });

  for (const binding of ['session', 'certificate'] as const) {
    for (const [name, key, code] of bad) {
      it(`refuses ${name} (${code}) before any request byte (${binding} binding)`, async () => {
        const s = servers[key]!;
        const agent = createAttestedAgent(pinnedPolicy(binding));
        const conns = s.connections();
        const m = mark(s);
        const err = await agentGet(`${s.url}/secret?prompt=hello`, agent).catch((e: unknown) => e);
        expectRefused(err, code);
        // it did connect and handshake (the server may see the end of the handshake after the client gave up)...
        for (const t0 = Date.now(); s.connections() <= conns && Date.now() - t0 < 2000;) await new Promise((r) => setTimeout(r, 10));
        expect(s.connections()).toBeGreaterThan(conns);
        expectNothingButEvidenceRequests(s, binding, m); // ...but never got a request byte
        agent.destroy();
      });
    }
  }
});

describe('attested undici dispatcher and attestedFetch', () => {
  it('passes a good server (request and fetch), reusing the attested connection', async () => {
    let verified = 0;
    const d = createAttestedDispatcher(pinnedPolicy(), { onVerified: () => verified++ });
    const r = await undiciRequest(`${servers.good!.url}/a`, { dispatcher: d });
    expect(r.statusCode).toBe(200);
    expect(await r.body.text()).toBe('hello from the VM\n');
    await new Promise((res) => setTimeout(res, 50)); // undici returns the socket to the pool asynchronously
    const r2 = await undiciRequest(`${servers.good!.url}/b`, { dispatcher: d });
    await r2.body.text();
    expect(verified).toBe(1);
    await d.close();
    const res = await attestedFetch(`${servers.good!.url}/c`, { method: 'GET' }, pinnedPolicy());
    expect(await res.text()).toBe('hello from the VM\n');
  });

  for (const binding of ['session', 'certificate'] as const) {
    for (const [name, key, code] of bad) {
      it(`refuses ${name} (${code}) before any request byte (${binding} binding)`, async () => {
        const s = servers[key]!;
        const m = mark(s);
        const d = createAttestedDispatcher(pinnedPolicy(binding));
        const err = await undiciRequest(`${s.url}/secret`, { dispatcher: d, method: 'POST', body: 'prompt' }).catch((e: unknown) => e);
        expectRefused(err, code);
        await d.close();
        // attestedFetch surfaces the AttestationError itself, not "fetch failed"
        expectRefused(await attestedFetch(`${s.url}/secret`, { method: 'POST', body: 'prompt' }, pinnedPolicy(binding)).catch((e: unknown) => e), code);
        expectNothingButEvidenceRequests(s, binding, m);
      });
    }
  }
});

describe('nonce round trip failures', () => {
  it('refuses a server that cannot answer the nonce challenge; only the challenge reached it', async () => {
    // servers.good answers every other path with "hello from the VM": not evidence
    const s = servers.good!;
    const before = s.requests.length;
    const agent = createAttestedAgent(
      simPolicy(world, (p) => {
        p.freshness.binding = 'certificate';
        p.freshness.requireNonce = true;
      }),
    );
    const err = await agentGet(`${s.url}/secret`, agent).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AttestationError);
    expect((err as AttestationError).code).toBe('EVIDENCE_MALFORMED');
    const seen = s.requests.slice(before);
    expect(seen).toHaveLength(1);
    expect(seen[0]).toMatch(/^GET \/\.well-known\/ratls\/evidence\?nonce=[0-9a-f]{64}$/);
    agent.destroy();
  });

  it('refuses when the evidence route answers 404, and when it never answers', async () => {
    const id = await makeIdentity(world);
    const notFound = await startSpyServer(id, (_req, res) =>
      res.writeHead(404, { 'content-type': 'application/json' }).end('{"error":{"code":"X","message":"no such route"}}'),
    );
    const silent = await startSpyServer(id, () => {});
    try {
      const a = createAttestedAgent(
        simPolicy(world, (p) => {
          p.freshness.binding = 'certificate';
          p.freshness.requireNonce = true;
        }),
      );
      const e1 = await agentGet(`${notFound.url}/secret`, a).catch((e: unknown) => e);
      expect((e1 as AttestationError).code).toBe('NONCE_MISSING');
      expect((e1 as AttestationError).message).toContain('no such route');
      const b = createAttestedAgent(
        simPolicy(world, (p) => {
          p.freshness.binding = 'certificate';
          p.freshness.requireNonce = true;
        }),
        { nonceTimeoutMs: 300 },
      );
      const e2 = await agentGet(`${silent.url}/secret`, b).catch((e: unknown) => e);
      expect((e2 as AttestationError).code).toBe('CONNECTION_FAILED');
      expect(notFound.requests.every((r) => r.includes('/.well-known/ratls/evidence'))).toBe(true);
      expect(silent.requests.every((r) => r.includes('/.well-known/ratls/evidence'))).toBe(true);
      a.destroy();
      b.destroy();
    } finally {
      await notFound.close();
      await silent.close();
    }
  });
});

describe('session evidence failures', () => {
  it('a server without session evidence (404): SESSION_BINDING_UNAVAILABLE; garbage: EVIDENCE_MALFORMED; silence: CONNECTION_FAILED', async () => {
    const id = await makeIdentity(world);
    const notFound = await startSpyServer(id, (_req, res) =>
      res.writeHead(404, { 'content-type': 'application/json' }).end('{"error":{"code":"X","message":"no such route"}}'),
    );
    const garbage = await startSpyServer(id); // answers "hello from the VM" to everything
    const silent = await startSpyServer(id, () => {});
    try {
      for (const [s, code, timeout] of [
        [notFound, 'SESSION_BINDING_UNAVAILABLE', 15_000],
        [garbage, 'EVIDENCE_MALFORMED', 15_000],
        [silent, 'CONNECTION_FAILED', 300],
      ] as const) {
        const a = createAttestedAgent(simPolicy(world), { nonceTimeoutMs: timeout });
        const e = await agentGet(`${s.url}/secret`, a).catch((err: unknown) => err);
        expectRefused(e, code);
        expect(s.requests.every((r) => SESSION_REQUEST.test(r))).toBe(true);
        a.destroy();
      }
      const e = await agentGet(`${notFound.url}/x`, createAttestedAgent(simPolicy(world))).catch((err: unknown) => err);
      expect((e as AttestationError).message).toMatch(/freshness\.binding: certificate/);
    } finally {
      await Promise.all([notFound.close(), garbage.close(), silent.close()]);
    }
  });

  it('TLS 1.2 with session binding: refused before any byte (SESSION_BINDING_UNAVAILABLE); certificate binding still works', async () => {
    const provider = await loadSimulatedProvider(world.dir);
    const id = await createRatlsIdentity({ provider, hosts: ['localhost', '127.0.0.1'] });
    const s = await startSpyServer(id, undefined, { sessionQuote: (rd) => provider.getQuote(rd) });
    try {
      const a = createAttestedAgent(simPolicy(world), { agentOptions: { maxVersion: 'TLSv1.2' } });
      const e = await agentGet(`${s.url}/secret`, a).catch((err: unknown) => err);
      expectRefused(e, 'SESSION_BINDING_UNAVAILABLE');
      expect((e as AttestationError).message).toMatch(/TLS 1\.3/);
      expect(s.bytes()).toBe(0);
      a.destroy();
      const c = createAttestedAgent(
        simPolicy(world, (p) => (p.freshness.binding = 'certificate')),
        { agentOptions: { maxVersion: 'TLSv1.2' } },
      );
      expect((await agentGet(`${s.url}/ok`, c)).status).toBe(200);
      c.destroy();
    } finally {
      await s.close();
    }
  });
});
