/**
 * The nonce round trip: evidence that carries our nonce must be fresh (a quote made for it) and
 * belong to this connection's key. A server (or anyone replaying its old answers) cannot pass with
 * a stale quote, another key's evidence, or evidence for another nonce.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import https from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { loadSimulatedProvider } from '../../../src/tee/simulated/index.ts';
import { createNonceEvidence } from '../../../src/ratls/evidence.ts';
import { encodeClaims } from '../../../src/ratls/claims.ts';
import { encodeEvidence } from '../../../src/ratls/extension.ts';
import { fromHex } from '../../../src/core/bytes.ts';
import type { RatlsIdentity } from '../../../src/ratls/identity.ts';
import { createAttestedAgent } from '../../../src/client/agent.ts';
import { AttestationError } from '../../../src/client/errors.ts';
import { makeIdentity, makeWorld, simPolicy, startSpyServer, type SpyServer, type World } from '../../client/helpers.ts';

let world: World;
let id: RatlsIdentity;
let other: RatlsIdentity;
const servers: SpyServer[] = [];

beforeAll(async () => {
  world = await makeWorld();
  id = await makeIdentity(world);
  other = await makeIdentity(world);
});
afterAll(async () => {
  for (const s of servers) await s.close();
});

/** An RA-TLS server whose evidence route answers with `evidence(nonce)`; other paths say "secret ok". */
async function serverWith(evidence: (nonce: Uint8Array) => Promise<Uint8Array>): Promise<SpyServer> {
  const s = await startSpyServer(id, (req: IncomingMessage, res: ServerResponse) => {
    const m = /^\/\.well-known\/ratls\/evidence\?nonce=([0-9a-f]+)$/.exec(req.url ?? '');
    if (!m) return void res.end('secret ok');
    evidence(fromHex(m[1]!)!).then((ev) => res.writeHead(200, { 'content-type': 'application/cbor', 'content-length': ev.length }).end(Buffer.from(ev)));
  });
  servers.push(s);
  return s;
}

function get(url: string, agent: https.Agent): Promise<string> {
  return new Promise((resolve, reject) => {
    https
      .get(url, { agent }, (res) => {
        let d = '';
        res.on('data', (c: Buffer) => (d += c));
        res.on('end', () => resolve(d));
      })
      .on('error', reject);
  });
}

const policy = () =>
  simPolicy(world, (p) => {
    // the legacy nonce round trip: certificate binding plus a nonce (session evidence is tested in tests/security/client/relay.test.ts)
    p.freshness.binding = 'certificate';
    p.freshness.requireNonce = true;
  });

async function expectRefused(s: SpyServer, code: string): Promise<void> {
  const agent = createAttestedAgent(policy());
  try {
    const err = await get(`${s.url}/secret`, agent).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AttestationError);
    expect((err as AttestationError).result.errors.map((e) => e.code)).toContain(code);
    expect(s.requests.filter((r) => r.startsWith('GET /secret'))).toEqual([]);
  } finally {
    agent.destroy();
  }
}

describe('nonce evidence attacks', () => {
  it('baseline: honest evidence passes and the request follows on the same connection', async () => {
    const provider = await loadSimulatedProvider(world.dir);
    const s = await serverWith((n) => createNonceEvidence(id, provider, n));
    const agent = createAttestedAgent(policy());
    try {
      expect(await get(`${s.url}/secret`, agent)).toBe('secret ok');
      expect(s.connections()).toBe(1);
    } finally {
      agent.destroy();
    }
  });

  it("a stale quote (the certificate's) with fresh nonce claims: REPORTDATA_MISMATCH", async () => {
    const s = await serverWith(async (n) => encodeEvidence(id.quote, await encodeClaims({ spkiDer: id.spkiDer, nonce: n })));
    await expectRefused(s, 'REPORTDATA_MISMATCH');
  });

  it('fresh evidence for our nonce but another key (transplanted from another server): PUBKEY_MISMATCH', async () => {
    const provider = await loadSimulatedProvider(world.dir);
    const s = await serverWith((n) => createNonceEvidence(other, provider, n));
    await expectRefused(s, 'PUBKEY_MISMATCH');
  });

  it('a replayed answer to an earlier nonce: NONCE_MISMATCH', async () => {
    const provider = await loadSimulatedProvider(world.dir);
    const old = await createNonceEvidence(id, provider, new Uint8Array(32).fill(7));
    const s = await serverWith(async () => old);
    await expectRefused(s, 'NONCE_MISMATCH');
  });

  it("evidence without a nonce (the certificate's own claims): NONCE_MISSING", async () => {
    const s = await serverWith(async () => encodeEvidence(id.quote, id.claimsBuffer));
    await expectRefused(s, 'NONCE_MISSING');
  });
});
