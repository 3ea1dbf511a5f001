/**
 * attestViaService against `ratls serve` (startRatlsServer, simulated world) and a real
 * attestation service over loopback: it passes a genuine TD, is refused for a DEBUG TD, for a
 * wrong MRTD (in your policy or the service's), for a simulated root you did not name, for a
 * replayed token; connection failures reject instead of refusing.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import http from 'node:http';
import https from 'node:https';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { startRatlsServer, type RunningRatlsServer } from '../../src/proxy/server.ts';
import { validateConfig } from '../../src/proxy/config.ts';
import { startAttestService, type AttestServiceHandle } from '../../src/service/server.ts';
import { attestViaService, verifyAttestationToken } from '../../src/client/index.ts';
import { defaultClientPolicy } from '../../src/verify/policy-file.ts';
import { makeWorld, simPolicy, simulatedSource, startSpyServer, type SpyServer, type World } from './helpers.ts';

let world: World;
let otherWorld: World;
let dir: string;
let srv: RunningRatlsServer;
let debugSrv: RunningRatlsServer;
let plain: SpyServer;
let svc: AttestServiceHandle;
const WRONG_MRTD = 'ab'.repeat(48);

async function ratlsServer(opts: { debug?: boolean } = {}): Promise<RunningRatlsServer> {
  return startRatlsServer(validateConfig({ listen: '127.0.0.1:0', log: { level: 'silent' } }), {
    identitySource: await simulatedSource(world, opts),
    autoRotate: false,
  });
}

beforeAll(async () => {
  world = await makeWorld();
  otherWorld = await makeWorld();
  dir = mkdtempSync(join(tmpdir(), 'ratls-attest-via-'));
  const policies = join(dir, 'policies');
  mkdirSync(policies);
  writeFileSync(join(policies, 'default.yaml'), 'version: 1\n');
  writeFileSync(join(policies, 'wrong-mrtd.yaml'), `version: 1\nmeasurements:\n  mrTd: ["${WRONG_MRTD}"]\n`);
  svc = await startAttestService({ keyDir: join(dir, 'keys'), policiesDir: policies, roots: [world.rootPem], offline: true, rateLimit: false });
  srv = await ratlsServer();
  debugSrv = await ratlsServer({ debug: true });
  const id = await (await simulatedSource(world)).issue(new Date());
  plain = await startSpyServer({ certPem: id.certPem, keyPem: id.keyPem }, (_req, res) => res.writeHead(404).end());
});
afterAll(async () => {
  await srv?.close({ drainTimeoutMs: 200 });
  await debugSrv?.close({ drainTimeoutMs: 200 });
  await plain?.close();
  await svc?.close();
  for (const d of [dir, world?.dir, otherWorld?.dir]) if (d) rmSync(d, { recursive: true, force: true });
});

const codes = (a: { errors: Array<{ code: string }> }) => a.errors.map((e) => e.code);

describe('attestViaService', () => {
  it('passes a genuine TD: fresh evidence, a token the library verifies, bound to this certificate and nonce', async () => {
    const a = await attestViaService(srv.url, { service: svc.url, policy: simPolicy(world) });
    expect(a.errors).toEqual([]);
    expect(a.ok).toBe(true);
    expect(a.certSha256).toBe(srv.identity().fingerprintSha256);
    expect(a.servicePolicy?.name).toBe('default');
    expect(a.tcbStatus).toBe('UpToDate');
    expect(a.nonIntelRoot).toBe(true);
    expect(a.quote?.mrTd).toBe(a.claims?.tdx_mrtd);
    expect(a.checks.map((c) => c.name)).toEqual([
      'evidence',
      'token signature',
      'token issuer and lifetime',
      'token nonce',
      'service verdict',
      'token subject',
      'trusted roots',
      'your policy',
    ]);
    // the token stands on its own for a relying party that gets it from the client
    const { claims } = await verifyAttestationToken(
      a.token!,
      { jwksUrl: `${svc.url}/.well-known/jwks.json` },
      { issuer: svc.url, expectedNonce: Buffer.from(a.nonce, 'hex'), allowSimulated: true },
    );
    expect(claims['x-ratls-cert-sha256']).toBe(a.certSha256);
    expect(claims['x-ratls-reportdata-binding']).toBe('ratls-claims');
  });

  it('pins the MRTD it saw: your policy with that MRTD passes, another MRTD is refused with MEASUREMENT_MISMATCH', async () => {
    const first = await attestViaService(srv.url, { service: svc.url, policy: simPolicy(world) });
    const pinned = await attestViaService(srv.url, { service: svc.url, policy: simPolicy(world, (p) => (p.appraisal.mrTd = [first.quote!.mrTd])) });
    expect(pinned.ok).toBe(true);
    const wrong = await attestViaService(srv.url, { service: svc.url, policy: simPolicy(world, (p) => (p.appraisal.mrTd = [WRONG_MRTD])) });
    expect(wrong.ok).toBe(false);
    expect(codes(wrong)).toEqual(['MEASUREMENT_MISMATCH']);
    expect(wrong.checks.find((c) => !c.ok)?.name).toBe('your policy');
  });

  it('a wrong-MRTD policy at the service: the service’s signed verdict refuses it', async () => {
    const a = await attestViaService(srv.url, { service: svc.url, servicePolicy: 'wrong-mrtd', policy: simPolicy(world) });
    expect(a.ok).toBe(false);
    expect(codes(a)).toEqual(['MEASUREMENT_MISMATCH']);
    expect(a.checks.find((c) => !c.ok)?.name).toBe('service verdict');
    expect(a.servicePolicy?.name).toBe('wrong-mrtd');
  });

  it('refuses a DEBUG TD (the service says TD_DEBUG, and so does your policy)', async () => {
    const a = await attestViaService(debugSrv.url, { service: svc.url, policy: simPolicy(world) });
    expect(a.ok).toBe(false);
    expect(codes(a)).toEqual(['TD_DEBUG']);
    expect(a.quote?.debug).toBe(true);
    expect(a.checks.filter((c) => !c.ok).map((c) => c.name)).toEqual(['service verdict', 'your policy']);
  });

  it('refuses a simulated root you did not name (SIMULATED_EVIDENCE) and a service trusting another root than yours', async () => {
    const intelOnly = await attestViaService(srv.url, { service: svc.url, policy: defaultClientPolicy() });
    expect(intelOnly.ok).toBe(false);
    expect(codes(intelOnly)).toEqual(['SIMULATED_EVIDENCE']);
    const other = await attestViaService(srv.url, { service: svc.url, policy: simPolicy(otherWorld) });
    expect(other.ok).toBe(false);
    expect(codes(other)).toEqual(['PCK_CHAIN_UNTRUSTED']);
    expect(other.errors[0]!.message).toMatch(/trusts roots you did not name: sha256:[0-9a-f]{64}/);
  });

  it('refuses a token the service issued for another nonce (a replay by whatever sits between)', async () => {
    // a relay in front of the service that swaps in a request it recorded earlier
    let recorded: string | undefined;
    const relay = http.createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        if (req.url === '/v1/attest') recorded ??= body;
        void fetch(`${svc.url}${req.url}`, { method: req.method, body: req.method === 'POST' ? (recorded ?? body) : undefined }).then(async (r) => {
          res.writeHead(r.status, { 'content-type': r.headers.get('content-type') ?? 'application/json' }).end(await r.text());
        });
      });
    });
    await new Promise<void>((r) => relay.listen(0, '127.0.0.1', r));
    const relayUrl = `http://127.0.0.1:${(relay.address() as AddressInfo).port}`;
    try {
      const first = await attestViaService(srv.url, { service: relayUrl, issuer: svc.url, policy: simPolicy(world) });
      expect(first.ok).toBe(true);
      const replayed = await attestViaService(srv.url, { service: relayUrl, issuer: svc.url, policy: simPolicy(world) });
      expect(replayed.ok).toBe(false);
      expect(codes(replayed)).toEqual(['NONCE_MISMATCH']);
      expect(replayed.claims).toBeNull();
    } finally {
      await new Promise<void>((r) => relay.close(() => r()));
    }
  });

  it('refuses a token about another TD’s certificate, even for our nonce (a relay substituting evidence)', async () => {
    const other = await ratlsServer();
    const get = (path: string) =>
      new Promise<Buffer>((resolve, reject) => {
        https
          .get(`${other.url}${path.slice(1)}`, { rejectUnauthorized: false }, (res) => {
            const parts: Buffer[] = [];
            res.on('data', (c: Buffer) => parts.push(c));
            res.on('end', () => resolve(Buffer.concat(parts)));
          })
          .on('error', reject);
      });
    // the relay keeps our nonce but asks the other TD for evidence over it, and sends that TD's certificate
    const relay = http.createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        void (async () => {
          let forwarded = body;
          if (req.url === '/v1/attest') {
            const ours = JSON.parse(body) as { nonce: string };
            const hex = Buffer.from(ours.nonce, 'base64').toString('hex');
            const evidence = await get(`/.well-known/ratls/evidence?nonce=${hex}`);
            const cert = await get('/.well-known/ratls/certificate?format=der');
            forwarded = JSON.stringify({ evidence: evidence.toString('base64'), certificate: cert.toString('base64'), nonce: ours.nonce });
          }
          const r = await fetch(`${svc.url}${req.url}`, { method: req.method, body: req.method === 'POST' ? forwarded : undefined });
          res.writeHead(r.status, { 'content-type': 'application/json' }).end(await r.text());
        })();
      });
    });
    await new Promise<void>((r) => relay.listen(0, '127.0.0.1', r));
    try {
      const a = await attestViaService(srv.url, {
        service: `http://127.0.0.1:${(relay.address() as AddressInfo).port}`,
        issuer: svc.url,
        policy: simPolicy(world),
      });
      expect(a.ok).toBe(false);
      expect(a.claims?.['x-ratls-ok']).toBe(true); // the service's verdict is about the other TD, and true
      expect(codes(a)).toEqual(['PUBKEY_MISMATCH']);
      expect(a.checks.find((c) => !c.ok)?.name).toBe('token subject');
    } finally {
      await new Promise<void>((r) => relay.close(() => r()));
      await other.close({ drainTimeoutMs: 200 });
    }
  });

  it('a token whose issuer is not the service URL given says which issuer to expect', async () => {
    const a = await attestViaService(srv.url, { service: svc.url.replace('127.0.0.1', 'localhost'), policy: simPolicy(world) });
    expect(a.ok).toBe(false);
    expect(codes(a)).toEqual(['TOKEN_CLAIM_MISMATCH']);
    expect(a.errors[0]!.message).toContain(`The token's issuer is "${svc.url}"`);
  });

  it('a TLS server that is not ratls serve is refused (NONCE_MISSING) before the service is asked', async () => {
    const a = await attestViaService(plain.url, { service: 'http://127.0.0.1:1', policy: simPolicy(world) });
    expect(a.ok).toBe(false);
    expect(codes(a)).toEqual(['NONCE_MISSING']);
    expect(a.errors[0]!.message).toContain('HTTP 404');
  });

  it('rejects (does not refuse) when a step cannot run: VM or service unreachable, unknown service policy, plain http off this machine', async () => {
    await expect(attestViaService('https://127.0.0.1:1', { service: svc.url })).rejects.toMatchObject({ code: 'CONNECTION_FAILED' });
    await expect(attestViaService(srv.url, { service: 'http://127.0.0.1:1', policy: simPolicy(world) })).rejects.toMatchObject({
      code: 'CONNECTION_FAILED',
      message: expect.stringContaining('Cannot reach the attestation service'),
    });
    await expect(attestViaService(srv.url, { service: svc.url, servicePolicy: 'nope', policy: simPolicy(world) })).rejects.toMatchObject({
      code: 'POLICY_UNKNOWN',
    });
    // refused before the VM is even contacted
    const before = plain.connections();
    await expect(attestViaService(plain.url, { service: 'http://attest.example:8444' })).rejects.toMatchObject({ code: 'TOKEN_KEYS_INSECURE' });
    expect(plain.connections()).toBe(before);
  });
});
