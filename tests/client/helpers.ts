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
import type { TLSSocket } from 'node:tls';
import { createHash } from 'node:crypto';
import { X509Certificate } from '@peculiar/x509';
import { SessionQuoter } from '../../src/ratls/session-quoter.ts';
import { sessionLeaf, tlsExporter } from '../../src/ratls/session.ts';
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

/** A spy server with a fresh RA-TLS identity from `world` that answers session evidence requests like ratls serve. */
export async function sessionSpyServer(
  world: World,
  opts: SimulatedProviderOptions = {},
  handler?: (req: IncomingMessage, res: ServerResponse) => void,
): Promise<SpyServer> {
  const provider = await loadSimulatedProvider(world.dir, opts);
  const id = await createRatlsIdentity({ provider, hosts: ['localhost', '127.0.0.1'] });
  return startSpyServer(id, handler, { sessionQuote: (rd) => provider.getQuote(rd) });
}

/** An RA-TLS identity from `world` that can answer session evidence requests on any https server. */
export type SessionIdentity = RatlsIdentity & {
  /** Answers the request when it is a session evidence request (returns true); false otherwise. */
  answerSession(req: IncomingMessage, res: ServerResponse): boolean;
};

export async function makeSessionIdentity(world: World, opts: SimulatedProviderOptions = {}): Promise<SessionIdentity> {
  const provider = await loadSimulatedProvider(world.dir, opts);
  const id = await createRatlsIdentity({ provider, hosts: ['localhost', '127.0.0.1'] });
  const answer = sessionAnswerer(id, (rd) => provider.getQuote(rd));
  return Object.assign(id, {
    answerSession(req: IncomingMessage, res: ServerResponse): boolean {
      if (!(req.url ?? '').startsWith('/.well-known/ratls/session?')) return false;
      answer(req, res).catch(() => res.destroy());
      return true;
    },
  });
}

/** IdentitySource for startRatlsServer backed by a simulated world. */
export async function simulatedSource(world: World, opts: SimulatedProviderOptions = {}): Promise<IdentitySource<RatlsIdentity>> {
  const provider = await loadSimulatedProvider(world.dir, opts);
  return {
    issue: (now) => createRatlsIdentity({ provider, hosts: ['localhost', '127.0.0.1'], now }),
    evidence: (id, nonce) => createNonceEvidence(id, provider, nonce),
    quote: (reportData) => provider.getQuote(reportData),
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
  /** Every decrypted byte received, as latin1 text. */
  text(): string;
  /** Requests for session evidence answered (they are also in `requests`). */
  sessionRequests(): number;
  requests: string[];
  connections(): number;
  /** Connections that resumed an earlier TLS session (no certificate sent). */
  resumed(): number;
  close(): Promise<void>;
}

/** The one request line a session-bound client sends before attestation passes. */
export const SESSION_REQUEST = /^GET \/\.well-known\/ratls\/session\?nonce=[0-9a-f]{64}$/;

/** The requests a spy server received other than session evidence requests. */
export function userRequests(s: { requests: string[] }): string[] {
  return s.requests.filter((r) => !SESSION_REQUEST.test(r));
}

/** True when `text` (decrypted bytes) holds nothing but session evidence requests (no user request). */
export function onlySessionRequests(text: string): boolean {
  return /^(GET \/\.well-known\/ratls\/session\?nonce=[0-9a-f]{64} HTTP\/1\.1\r\n([^\r\n]+\r\n)*\r\n)*$/.test(text);
}

/**
 * Answers GET /.well-known/ratls/session the way ratls serve does (exporter of this socket, batched
 * quote over the session root) for a spy server holding `tls`; `quote` makes the quotes.
 */
export function sessionAnswerer(
  tls: { certPem: string },
  quote: (reportData: Uint8Array) => Promise<Uint8Array>,
): (req: IncomingMessage, res: ServerResponse) => Promise<void> {
  const quoter = new SessionQuoter({ quote });
  const spkiDer = new Uint8Array(new X509Certificate(tls.certPem).publicKey.rawData);
  const spkiSha256 = new Uint8Array(createHash('sha256').update(spkiDer).digest());
  const identity = { spkiDer };
  return async (req, res) => {
    const nonce = Buffer.from(new URL(req.url ?? '/', 'https://x').searchParams.get('nonce') ?? '', 'hex');
    const leaf = await sessionLeaf({ exporter: tlsExporter(req.socket as TLSSocket), spkiSha256, nonce: new Uint8Array(nonce) });
    const body = await quoter.sessionEvidence(identity, leaf);
    res.writeHead(200, { 'content-type': 'application/cbor', 'content-length': body.length }).end(Buffer.from(body));
  };
}

export async function startSpyServer(
  tls: { certPem: string; keyPem: string },
  handler?: (req: IncomingMessage, res: ServerResponse) => void,
  opts: { sessionQuote?: (reportData: Uint8Array) => Promise<Uint8Array> } = {},
): Promise<SpyServer> {
  let bytes = 0;
  let text = '';
  let conns = 0;
  let resumed = 0;
  let sessions = 0;
  const requests: string[] = [];
  const answerSession = opts.sessionQuote ? sessionAnswerer(tls, opts.sessionQuote) : undefined;
  const server = https.createServer({ cert: tls.certPem, key: tls.keyPem, ALPNProtocols: ['http/1.1'] }, (req, res) => {
    requests.push(`${req.method} ${req.url}`);
    if (answerSession && (req.url ?? '').startsWith('/.well-known/ratls/session?')) {
      sessions++;
      answerSession(req, res).catch(() => res.destroy());
      return;
    }
    if (handler) return handler(req, res);
    res.writeHead(200, { 'content-type': 'text/plain' }).end('hello from the VM\n');
  });
  server.on('secureConnection', (s) => {
    conns++;
    if (s.isSessionReused()) resumed++;
    s.on('data', (d: Buffer) => {
      bytes += d.length;
      text += d.toString('latin1');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `https://127.0.0.1:${port}`,
    port,
    bytes: () => bytes,
    text: () => text,
    sessionRequests: () => sessions,
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
