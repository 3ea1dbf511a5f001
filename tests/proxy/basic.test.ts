import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { request } from 'undici';
import type { ServingIdentity } from '../../src/proxy/identity-source.ts';
import { startRatlsServer, type RunningRatlsServer } from '../../src/proxy/server.ts';
import { startDemoOllama, type RunningDemoOllama } from '../../src/demo/ollama.ts';
import { ENGINES, selfSignedSource, testConfig, trustingAgent } from './helpers.ts';

/** An upstream that echoes what it received, to see what the proxy forwards. */
async function echoUpstream(): Promise<{ url: string; close(): Promise<void> }> {
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ method: req.method, url: req.url, headers: req.headers, body: Buffer.concat(chunks).toString() }));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () =>
      new Promise((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

/** A port nothing listens on. */
async function deadPort(): Promise<number> {
  const s = http.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as AddressInfo).port;
  await new Promise((r) => s.close(r));
  return port;
}

describe.each(ENGINES)('ratls serve (%s): routing and control routes', (engine) => {
  let echo: Awaited<ReturnType<typeof echoUpstream>>;
  let demo: RunningDemoOllama;
  let srv: RunningRatlsServer<ServingIdentity>;
  let agent: ReturnType<typeof trustingAgent>;

  beforeAll(async () => {
    echo = await echoUpstream();
    demo = await startDemoOllama({ tokenDelayMs: 1 });
    const dead = await deadPort();
    srv = await startRatlsServer(
      testConfig({
        engine,
        routes: [
          { prefix: '/ollama/', target: demo.url, stripPrefix: true, rewriteHost: true, blockOllamaAdmin: true, name: 'ollama' },
          { prefix: '/dead/', target: `http://127.0.0.1:${dead}`, name: 'dead' },
          { prefix: '/', target: echo.url, name: 'webui' },
        ],
      }),
      { identitySource: selfSignedSource() },
    );
    agent = trustingAgent(srv.identity().certPem);
  });
  afterAll(async () => {
    await srv?.close({ drainTimeoutMs: 1000 });
    await agent?.close();
    await echo?.close();
    await demo?.close();
  });

  it('strips the prefix and rewrites Host for the Ollama route', async () => {
    const r = await request(`${srv.url}ollama/api/version`, { dispatcher: agent });
    expect(r.statusCode).toBe(200);
    expect(await r.body.json()).toEqual({ version: '0.0.0-ratls-demo' });
  });

  it('overwrites client-supplied X-Forwarded-* and keeps Host for open-webui', async () => {
    const r = await request(`${srv.url}some/path?x=1`, {
      dispatcher: agent,
      headers: {
        'x-forwarded-for': '6.6.6.6',
        'x-forwarded-proto': 'http',
        'x-forwarded-host': 'evil.example',
        forwarded: 'for=6.6.6.6',
        'x-real-ip': '6.6.6.6',
      },
    });
    const body = (await r.body.json()) as { url: string; headers: Record<string, string> };
    expect(body.url).toBe('/some/path?x=1');
    expect(body.headers['x-forwarded-for']).toBe('127.0.0.1');
    expect(body.headers['x-forwarded-proto']).toBe('https');
    expect(body.headers['x-forwarded-host']).toBe(new URL(srv.url).host);
    expect(body.headers.host).toBe(new URL(srv.url).host);
    expect(body.headers.forwarded).toBeUndefined();
    expect(body.headers['x-real-ip']).toBeUndefined();
  });

  it('blocks Ollama admin routes when configured', async () => {
    for (const p of ['api/pull', 'api/delete', 'api/create', 'api/copy', 'api/push']) {
      const r = await request(`${srv.url}ollama/${p}`, { method: 'POST', body: '{}', dispatcher: agent });
      expect(r.statusCode).toBe(403);
      expect(await r.body.text()).toMatch(/model management/);
    }
  });

  it('answers 502 with a readable body when the upstream is down, and keeps serving', async () => {
    const r = await request(`${srv.url}dead/x`, { dispatcher: agent });
    expect(r.statusCode).toBe(502);
    expect(await r.body.text()).toMatch(/Upstream "dead" .* is not reachable \(ECONNREFUSED\)/);
    const ok = await request(`${srv.url}ollama/api/tags`, { dispatcher: agent });
    expect(ok.statusCode).toBe(200);
    await ok.body.dump();
  });

  it('serves the certificate, evidence for a nonce, health and metrics', async () => {
    const pem = await request(`${srv.url}.well-known/ratls/certificate`, { dispatcher: agent });
    expect(await pem.body.text()).toBe(srv.identity().certPem);
    const der = await request(`${srv.url}.well-known/ratls/certificate?format=der`, { dispatcher: agent });
    expect(Buffer.from(await der.body.arrayBuffer()).equals(Buffer.from(srv.identity().certDer))).toBe(true);

    const ev = await request(`${srv.url}.well-known/ratls/evidence?nonce=00112233`, { dispatcher: agent });
    expect(ev.headers['content-type']).toBe('application/cbor');
    const bytes = Buffer.from(await ev.body.arrayBuffer());
    expect(bytes.toString('hex')).toBe(`${srv.identity().fingerprintSha256}00112233`);
    const evj = await request(`${srv.url}.well-known/ratls/evidence?nonce=aa&format=json`, { dispatcher: agent });
    expect(((await evj.body.json()) as { nonce: string }).nonce).toBe('aa');

    for (const [bad, code] of [
      ['', 'NONCE_MISSING'],
      ['xyz', 'NONCE_INVALID'],
      ['abc', 'NONCE_INVALID'],
      ['aa'.repeat(65), 'NONCE_INVALID'],
    ]) {
      const r = await request(`${srv.url}.well-known/ratls/evidence?nonce=${bad}`, { dispatcher: agent });
      expect(r.statusCode).toBe(400);
      expect(((await r.body.json()) as { error: { code: string } }).error.code).toBe(code);
    }
    const col = await request(`${srv.url}.well-known/ratls/collateral`, { dispatcher: agent });
    expect(col.statusCode).toBe(404);
    await col.body.dump();

    expect((await request(`${srv.url}healthz`, { dispatcher: agent })).statusCode).toBe(200);
    expect((await request(`${srv.url}readyz`, { dispatcher: agent })).statusCode).toBe(200);
    const m = await (await request(`${srv.url}metrics`, { dispatcher: agent })).body.text();
    expect(m).toMatch(/ratls_http_requests_total\{route="ollama",method="GET",status="200"\} \d+/);
    expect(m).toMatch(/ratls_upstream_errors_total\{route="dead",code="ECONNREFUSED"\} 1/);
    expect(m).toMatch(/ratls_certificate_expiry_timestamp_seconds \d+/);
  });

  it('refuses TLS 1.2 by default', async () => {
    const tls = await import('node:tls');
    const err = await new Promise<Error | undefined>((resolve) => {
      const s = tls.connect({ host: '127.0.0.1', port: srv.port, maxVersion: 'TLSv1.2', ca: srv.identity().certPem, servername: 'localhost' }, () => {
        s.end();
        resolve(undefined);
      });
      s.on('error', resolve);
    });
    expect(err).toBeDefined();
  });

  it('accepts TLS 1.2 when tls.minVersion is TLSv1.2', async () => {
    const tls = await import('node:tls');
    const s12 = await startRatlsServer(testConfig({ engine, tls: { minVersion: 'TLSv1.2' }, routes: [{ prefix: '/', target: echo.url }] }), {
      identitySource: selfSignedSource(),
    });
    try {
      const proto = await new Promise<string | null>((resolve, reject) => {
        const s = tls.connect({ host: '127.0.0.1', port: s12.port, maxVersion: 'TLSv1.2', ca: s12.identity().certPem, servername: 'localhost' }, () => {
          const p = s.getProtocol();
          s.end();
          resolve(p);
        });
        s.on('error', reject);
      });
      expect(proto).toBe('TLSv1.2');
    } finally {
      await s12.close({ drainTimeoutMs: 100 });
    }
  });

  it('answers 504 when the upstream sends no response headers within limits.upstreamTimeout', async () => {
    const silent = http.createServer(() => {});
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    const target = `http://127.0.0.1:${(silent.address() as AddressInfo).port}`;
    const s = await startRatlsServer(testConfig({ engine, limits: { upstreamTimeout: '300ms' }, routes: [{ prefix: '/', target, name: 'slow' }] }), {
      identitySource: selfSignedSource(),
    });
    const a = trustingAgent(s.identity().certPem);
    try {
      const t0 = Date.now();
      const r = await request(`${s.url}x`, { dispatcher: a });
      expect(r.statusCode).toBe(504);
      expect(await r.body.text()).toMatch(/Upstream "slow" .* did not answer within 300 ms/);
      expect(Date.now() - t0).toBeGreaterThanOrEqual(290);
      expect(Date.now() - t0).toBeLessThan(2000);
    } finally {
      await a.close();
      await s.close({ drainTimeoutMs: 100 });
      silent.closeAllConnections();
      silent.close();
    }
  });
});
