/** Shared fixtures for client tests: simulated worlds, RA-TLS identities and spy servers. */
import https from 'node:https';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { initSimulatedWorld, loadSimulatedProvider, type SimulatedProviderOptions } from '../../src/tee/simulated/index.ts';
import { createRatlsIdentity, type RatlsIdentity } from '../../src/ratls/identity.ts';
import { createNonceEvidence } from '../../src/ratls/evidence.ts';
import type { IdentitySource } from '../../src/proxy/identity-source.ts';
import { defaultClientPolicy, type ClientPolicy } from '../../src/verify/policy-file.ts';

export interface World {
  dir: string;
  rootPem: string;
}

/** A fresh simulated TDX world in a temporary directory. */
export async function makeWorld(): Promise<World> {
  const dir = mkdtempSync(join(tmpdir(), 'ratls-world-'));
  const info = await initSimulatedWorld(dir);
  return { dir, rootPem: info.rootPem };
}

/** An RA-TLS identity for localhost from `world` (provider options: debug, mrTd...). */
export async function makeIdentity(world: World, opts: SimulatedProviderOptions = {}): Promise<RatlsIdentity> {
  const provider = await loadSimulatedProvider(world.dir, opts);
  return createRatlsIdentity({ provider, hosts: ['localhost', '127.0.0.1'] });
}

/** IdentitySource for startRatlsServer backed by a simulated world. */
export async function simulatedSource(world: World, opts: SimulatedProviderOptions = {}): Promise<IdentitySource<RatlsIdentity>> {
  const provider = await loadSimulatedProvider(world.dir, opts);
  return {
    issue: (now) => createRatlsIdentity({ provider, hosts: ['localhost', '127.0.0.1'], now }),
    evidence: (id, nonce) => createNonceEvidence(id, provider, nonce),
    collateral: (now) => provider.collateral(now),
  };
}

/** Client policy trusting only `world`'s simulated root, offline (stapled collateral only). */
export function simPolicy(world: World, patch: (p: ClientPolicy) => void = () => {}): ClientPolicy {
  const p = defaultClientPolicy();
  p.trustedRoots = [world.rootPem];
  p.collateral = { offline: true };
  patch(p);
  return p;
}

/** An HTTPS server that records every decrypted byte and every request it receives. */
export interface SpyServer {
  url: string;
  port: number;
  /** Decrypted application bytes received, over all connections. */
  bytes(): number;
  requests: string[];
  connections(): number;
  /** Connections that resumed an earlier TLS session (no certificate sent). */
  resumed(): number;
  close(): Promise<void>;
}

export async function startSpyServer(
  tls: { certPem: string; keyPem: string },
  handler?: (req: IncomingMessage, res: ServerResponse) => void,
): Promise<SpyServer> {
  let bytes = 0;
  let conns = 0;
  let resumed = 0;
  const requests: string[] = [];
  const server = https.createServer({ cert: tls.certPem, key: tls.keyPem, ALPNProtocols: ['http/1.1'] }, (req, res) => {
    requests.push(`${req.method} ${req.url}`);
    if (handler) return handler(req, res);
    res.writeHead(200, { 'content-type': 'text/plain' }).end('hello from the VM\n');
  });
  server.on('secureConnection', (s) => {
    conns++;
    if (s.isSessionReused()) resumed++;
    s.on('data', (d: Buffer) => {
      bytes += d.length;
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `https://127.0.0.1:${port}`,
    port,
    bytes: () => bytes,
    requests,
    connections: () => conns,
    resumed: () => resumed,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}
