/**
 * The relay attack on attested TLS (CVE-2026-33697, "Intra-handshake.fail"): whoever extracts the
 * TLS private key of one genuine TD can terminate clients' TLS outside any TEE and still show
 * genuine, fresh-looking evidence, by forwarding the client's evidence requests to the genuine TD
 * over a connection of its own.
 *
 * The harness: a genuine TD (ratls serve, simulated TDX) in front of an app that records what it
 * receives, and a relay outside the TD that holds the TD's private key and certificate, records
 * every byte it decrypts, forwards evidence requests to the TD on its own connection, and forwards
 * everything else too (a full man in the middle).
 *
 * - certificate binding (and certificate + nonce): the client is fooled; the relay reads the prompt.
 *   These tests document the attack; they pass because the attack works.
 * - session binding (the default): the client refuses before any request byte; the relay decrypted
 *   nothing but the evidence request, and the TD, which computed the exporter of the relay's own
 *   connection, quoted a session the client is not on.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import https from 'node:https';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Agent, request as undiciRequest } from 'undici';
import { startRatlsServer, type RunningRatlsServer } from '../../../src/proxy/server.ts';
import { validateConfig } from '../../../src/proxy/config.ts';
import { createAttestedFetch } from '../../../src/client/fetch.ts';
import { AttestationError } from '../../../src/client/errors.ts';
import type { AttestationEvent } from '../../../src/client/attestor.ts';
import type { RatlsIdentity } from '../../../src/ratls/identity.ts';
import { makeWorld, onlySessionRequests, simPolicy, simulatedSource, type World } from '../../client/helpers.ts';

const PROMPT = 'my medical history, please summarise';

let world: World;
let appSeen: string[];
let app: http.Server;
let td: RunningRatlsServer;
let relay: { url: string; decrypted(): string; forwarded: string[]; close(): Promise<void> };

/** The relay: the TD's key and certificate on a machine outside the TD. */
async function startRelay(stolen: RatlsIdentity, tdUrl: string) {
  let decrypted = '';
  const forwarded: string[] = [];
  // its own connections to the genuine TD (it need not verify anything)
  const toTd = new Agent({ connect: { rejectUnauthorized: false } });
  const server = https.createServer({ cert: stolen.certPem, key: stolen.keyPem, ALPNProtocols: ['http/1.1'] }, (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      forwarded.push(`${req.method} ${req.url}`);
      const body = Buffer.concat(chunks);
      undiciRequest(new URL(req.url ?? '/', tdUrl), {
        dispatcher: toTd,
        method: (req.method ?? 'GET') as 'GET',
        headers: { 'content-type': req.headers['content-type'] ?? 'application/octet-stream', accept: req.headers.accept ?? '*/*' },
        ...(body.length > 0 ? { body } : {}),
      }).then(
        async (r) => {
          const out = Buffer.from(await r.body.arrayBuffer());
          res.writeHead(r.statusCode, { 'content-type': String(r.headers['content-type'] ?? 'application/octet-stream'), 'content-length': out.length });
          res.end(out);
        },
        () => res.destroy(),
      );
    });
  });
  server.on('secureConnection', (s) => s.on('data', (d: Buffer) => (decrypted += d.toString('latin1'))));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `https://127.0.0.1:${(server.address() as AddressInfo).port}`,
    decrypted: () => decrypted,
    forwarded,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
      await toTd.close();
    },
  };
}

beforeAll(async () => {
  world = await makeWorld();
  appSeen = [];
  app = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      appSeen.push(`${req.method} ${req.url} ${body}`);
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"answer":"summary of your history"}');
    });
  });
  await new Promise<void>((r) => app.listen(0, '127.0.0.1', r));
  td = await startRatlsServer(
    validateConfig({
      listen: '127.0.0.1:0',
      log: { level: 'silent' },
      routes: [{ prefix: '/', target: `http://127.0.0.1:${(app.address() as AddressInfo).port}`, name: 'app' }],
    }),
    { identitySource: await simulatedSource(world), autoRotate: false },
  );
  // the key extracted from the genuine TD (physical attacks on TDX hosts), with its certificate
  relay = await startRelay(td.identity(), td.url);
});
afterAll(async () => {
  await relay?.close();
  await td?.close({ drainTimeoutMs: 200 });
  await new Promise<void>((r) => (app ? app.close(() => r()) : r()));
});

async function ask(
  binding: 'session' | 'certificate',
  requireNonce = false,
): Promise<{ result: { status: number; text: string } | AttestationError; events: AttestationEvent[] }> {
  const events: AttestationEvent[] = [];
  const f = createAttestedFetch(
    simPolicy(world, (p) => {
      p.freshness.binding = binding;
      p.freshness.requireNonce = requireNonce;
    }),
    { onVerified: (e) => events.push(e), onRejected: (e) => events.push(e) },
  );
  try {
    const result = await f(`${relay.url}/api/chat`, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: PROMPT }).then(
      async (r) => ({ status: r.status, text: await r.text() }),
      (e: unknown) => {
        if (e instanceof AttestationError) return e;
        throw e;
      },
    );
    return { result, events };
  } finally {
    await f.close();
  }
}

describe('relay with the genuine TD key (CVE-2026-33697)', () => {
  it('certificate binding is fooled: the relay reads the prompt (documents the attack)', async () => {
    const before = relay.decrypted().length;
    const { result, events } = await ask('certificate');
    expect(result).not.toBeInstanceOf(AttestationError);
    expect((result as { text: string }).text).toContain('summary of your history');
    expect(events[0]!.result.ok).toBe(true); // the certificate is genuine: it is the TD's own
    expect(relay.decrypted().slice(before)).toContain(PROMPT); // ...and the relay read everything
  });

  it('certificate binding with a nonce round trip is fooled too: the TD quotes the relayed nonce for the same key', async () => {
    const before = relay.decrypted().length;
    const { result, events } = await ask('certificate', true);
    expect(result).not.toBeInstanceOf(AttestationError);
    expect((result as { status: number }).status).toBe(200);
    expect(events[0]!.nonceVerified).toBe(true);
    expect(relay.forwarded.some((r) => r.startsWith('GET /.well-known/ratls/evidence?nonce='))).toBe(true);
    expect(relay.decrypted().slice(before)).toContain(PROMPT);
  });

  it('session binding refuses before any request byte: SESSION_BINDING_MISMATCH, the relay decrypted only the evidence request', async () => {
    const before = relay.decrypted().length;
    const forwardedBefore = relay.forwarded.length;
    const appBefore = appSeen.length;
    const { result, events } = await ask('session');
    expect(result).toBeInstanceOf(AttestationError);
    const err = result as AttestationError;
    expect(err.code).toBe('SESSION_BINDING_MISMATCH');
    expect(err.message).toMatch(/not made for this TLS session/);
    // the certificate itself passed: it is genuine; only the session binding failed
    expect(err.result.checks.find((c) => c.name === 'evidence extension')?.ok).toBe(true);
    expect(events).toHaveLength(1);
    // server-side proof: what the relay decrypted is the session evidence request and nothing else
    const seen = relay.decrypted().slice(before);
    expect(seen.length).toBeGreaterThan(0);
    expect(onlySessionRequests(seen)).toBe(true);
    expect(seen).not.toContain(PROMPT);
    // the relay did get genuine session evidence from the TD, for its own connection's exporter
    expect(relay.forwarded.slice(forwardedBefore)).toEqual([expect.stringMatching(/^GET \/\.well-known\/ratls\/session\?nonce=[0-9a-f]{64}$/)]);
    expect(appSeen.length).toBe(appBefore);
  });

  it('the same client talking to the TD directly passes with session binding', async () => {
    const f = createAttestedFetch(simPolicy(world));
    try {
      const r = await f(`${td.url}api/chat`, { method: 'POST', body: PROMPT });
      expect(r.status).toBe(200);
      await r.text();
      expect(appSeen.at(-1)).toBe(`POST /api/chat ${PROMPT}`);
    } finally {
      await f.close();
    }
  });
});
