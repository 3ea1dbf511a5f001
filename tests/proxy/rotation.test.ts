import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as tls from 'node:tls';
import { createHash } from 'node:crypto';
import { request } from 'undici';
import type { ServingIdentity } from '../../src/proxy/identity-source.ts';
import { startRatlsServer, type RunningRatlsServer } from '../../src/proxy/server.ts';
import { startDemoOllama, type RunningDemoOllama } from '../../src/demo/ollama.ts';
import { selfSignedSource, testConfig, trustingAgent } from './helpers.ts';

/** SHA-256 of the certificate a fresh TLS connection is served. */
async function servedFingerprint(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false, servername: 'localhost' }, () => {
      const fp = createHash('sha256').update(s.getPeerCertificate().raw).digest('hex');
      s.end();
      resolve(fp);
    });
    s.on('error', reject);
  });
}

describe('ratls serve: certificate rotation', () => {
  let demo: RunningDemoOllama;
  let srv: RunningRatlsServer<ServingIdentity>;

  beforeAll(async () => {
    demo = await startDemoOllama({ tokenDelayMs: 30 });
    srv = await startRatlsServer(
      testConfig({
        routes: [
          { prefix: '/ollama/', target: demo.url, stripPrefix: true, rewriteHost: true },
          { prefix: '/', target: demo.url },
        ],
      }),
      {
        identitySource: selfSignedSource(),
        autoRotate: false,
      },
    );
  });
  afterAll(async () => {
    await srv?.close({ drainTimeoutMs: 500 });
    await demo?.close();
  });

  it('an open stream survives a rotation; new connections get the new certificate', async () => {
    const old = srv.identity();
    const oldAgent = trustingAgent(old.certPem);
    const r = await request(`${srv.url}ollama/api/chat`, {
      method: 'POST',
      body: JSON.stringify({ model: 'ratls-demo:latest', messages: [{ role: 'user', content: 'rotate' }] }),
      dispatcher: oldAgent,
    });
    const it = r.body[Symbol.asyncIterator]();
    let text = ((await it.next()).value as Buffer).toString();

    await srv.rotate();
    const fresh = srv.identity();
    expect(fresh.fingerprintSha256).not.toBe(old.fingerprintSha256);

    for (;;) {
      const n = await it.next();
      if (n.done) break;
      text += (n.value as Buffer).toString();
    }
    const lines = text
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { done: boolean });
    expect(lines.at(-1)!.done).toBe(true);
    expect(lines.length).toBeGreaterThan(10);

    expect(await servedFingerprint(srv.port)).toBe(fresh.fingerprintSha256);
    // A client that trusts only the new certificate connects...
    const newAgent = trustingAgent(fresh.certPem);
    const ok = await request(`${srv.url}ollama/api/version`, { dispatcher: newAgent });
    expect(ok.statusCode).toBe(200);
    await ok.body.dump();
    // ...and evidence requested on a new connection is bound to the new certificate.
    const ev = await request(`${srv.url}.well-known/ratls/evidence?nonce=01`, { dispatcher: newAgent });
    expect(Buffer.from(await ev.body.arrayBuffer()).toString('hex')).toBe(`${fresh.fingerprintSha256}01`);
    // The old keep-alive connection still speaks with the old key and gets old-key evidence.
    const evOld = await request(`${srv.url}.well-known/ratls/evidence?nonce=02`, { dispatcher: oldAgent });
    expect(Buffer.from(await evOld.body.arrayBuffer()).toString('hex')).toBe(`${old.fingerprintSha256}02`);
    const m = await (await request(`${srv.url}metrics`, { dispatcher: newAgent })).body.text();
    expect(m).toMatch(/ratls_certificate_rotations_total\{result="ok"\} 1/);
    await oldAgent.close();
    await newAgent.close();
  });

  it('rotates on its own at the configured fraction of the lifetime', async () => {
    const source = selfSignedSource({ validityMs: 1000, backdateMs: 0 });
    const auto = await startRatlsServer(testConfig({ routes: [{ prefix: '/', target: demo.url }], tls: { rotateAt: 0.5 } }), { identitySource: source });
    try {
      const first = auto.identity().fingerprintSha256;
      const t = Date.now();
      while (auto.identity().fingerprintSha256 === first && Date.now() - t < 5000) await new Promise((r) => setTimeout(r, 50));
      expect(auto.identity().fingerprintSha256).not.toBe(first);
      // Rotated about half-way through the 1 s life, not in a loop.
      expect(Date.now() - t).toBeGreaterThan(300);
      expect(source.issued.length).toBe(2);
    } finally {
      await auto.close({ drainTimeoutMs: 100 });
    }
  });
});
