import { describe, expect, it } from 'vitest';
import * as tls from 'node:tls';
import { request } from 'undici';
import type { ServingIdentity } from '../../src/proxy/identity-source.ts';
import { startRatlsServer } from '../../src/proxy/server.ts';
import { startDemoOllama } from '../../src/demo/ollama.ts';
import { selfSignedSource, testConfig, trustingAgent } from './helpers.ts';

describe('ratls serve: failure paths', () => {
  it('keeps the old certificate when a rotation fails, counts it, and retries', async () => {
    const demo = await startDemoOllama();
    const base = selfSignedSource({ validityMs: 2000, backdateMs: 0 });
    let calls = 0;
    const srv = await startRatlsServer<ServingIdentity>(testConfig({ routes: [{ prefix: '/', target: demo.url }], tls: { rotateAt: 0.25 } }), {
      identitySource: {
        ...base,
        issue: async (now) => {
          calls++;
          if (calls === 2) throw new Error('quote provider busy');
          return base.issue(now);
        },
      },
    });
    const agent = trustingAgent(srv.identity().certPem);
    try {
      const first = srv.identity().fingerprintSha256;
      const t0 = Date.now();
      while (calls < 2 && Date.now() - t0 < 3000) await new Promise((r) => setTimeout(r, 20));
      expect(srv.identity().fingerprintSha256).toBe(first);
      const m = await (await request(`${srv.url}metrics`, { dispatcher: agent })).body.text();
      expect(m).toMatch(/ratls_certificate_rotations_total\{result="error"\} 1/);
      // The retry issues a new key and certificate; under load that takes a while, so wait for it.
      while ((calls < 3 || srv.identity().fingerprintSha256 === first) && Date.now() - t0 < 8000) await new Promise((r) => setTimeout(r, 20));
      expect(srv.identity().fingerprintSha256).not.toBe(first);
    } finally {
      await agent.close();
      await srv.close({ drainTimeoutMs: 100 });
      await demo.close();
    }
  });

  it('queues evidence requests one quote at a time: 429 for a second one on a connection, 503 with Retry-After when the queue is full, then recovers', async () => {
    const base = selfSignedSource();
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let running = 0;
    let maxRunning = 0;
    const srv = await startRatlsServer<ServingIdentity>(
      testConfig({ routes: [{ prefix: '/', target: 'http://127.0.0.1:9' }], evidence: { maxQueued: 2, maxPerPeer: 100 } }),
      {
        identitySource: {
          ...base,
          evidence: async (id, nonce) => {
            running++;
            maxRunning = Math.max(maxRunning, running);
            await gate;
            running--;
            return base.evidence!(id, nonce);
          },
        },
      },
    );
    const agent = trustingAgent(srv.identity().certPem);
    try {
      // one quote runs, two wait: separate connections, all accepted
      const slow = Array.from({ length: 3 }, (_, i) => request(`${srv.url}.well-known/ratls/evidence?nonce=0${i}`, { dispatcher: agent }));
      await new Promise((r) => setTimeout(r, 150));
      const busy = await request(`${srv.url}.well-known/ratls/evidence?nonce=ff`, { dispatcher: agent });
      expect(busy.statusCode).toBe(503);
      expect(Number(busy.headers['retry-after'])).toBeGreaterThanOrEqual(1);
      expect(((await busy.body.json()) as { error: { code: string } }).error.code).toBe('EVIDENCE_BUSY');

      // a second request pipelined on a connection that already has one waiting: 429
      const sock = tls.connect({ port: srv.port, host: '127.0.0.1', rejectUnauthorized: false });
      await new Promise<void>((r) => sock.once('secureConnect', () => r()));
      let raw = '';
      sock.on('data', (d: Buffer) => (raw += d.toString('latin1')));
      sock.write('GET /.well-known/ratls/evidence?nonce=aa HTTP/1.1\r\nHost: x\r\n\r\nGET /.well-known/ratls/evidence?nonce=bb HTTP/1.1\r\nHost: x\r\n\r\n');
      release();
      for (const r of await Promise.all(slow)) {
        expect(r.statusCode).toBe(200);
        await r.body.dump();
      }
      const t0 = Date.now();
      while ((raw.match(/HTTP\/1\.1 /g) ?? []).length < 2 && Date.now() - t0 < 5000) await new Promise((r) => setTimeout(r, 20));
      sock.destroy();
      const statuses = [...raw.matchAll(/HTTP\/1\.1 (\d{3})/g)].map((m) => m[1]).sort();
      expect(statuses).toEqual(['200', '429']);
      expect(maxRunning).toBe(1); // never two quotes at once

      const again = await request(`${srv.url}.well-known/ratls/evidence?nonce=ee`, { dispatcher: agent });
      expect(again.statusCode).toBe(200);
      await again.body.dump();
      const m = await (await request(`${srv.url}metrics`, { dispatcher: agent })).body.text();
      expect(m).toMatch(/ratls_evidence_shed_total\{reason="queue"\} 1/);
      expect(m).toMatch(/ratls_evidence_shed_total\{reason="connection"\} 1/);
    } finally {
      await agent.close();
      await srv.close({ drainTimeoutMs: 100 });
    }
  });

  it('answers 404 for unrouted paths and refuses upgrades on control routes', async () => {
    const srv = await startRatlsServer<ServingIdentity>(testConfig({ routes: [{ prefix: '/only/', target: 'http://127.0.0.1:9' }] }), {
      identitySource: selfSignedSource(),
    });
    const agent = trustingAgent(srv.identity().certPem);
    try {
      const r = await request(`${srv.url}elsewhere`, { dispatcher: agent });
      expect(r.statusCode).toBe(404);
      expect(await r.body.text()).toMatch(/No upstream route/);
      const status = await new Promise<string>((resolve, reject) => {
        const s = tls.connect({ host: '127.0.0.1', port: srv.port, ca: srv.identity().certPem, servername: 'localhost' }, () => {
          s.write(
            'GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n',
          );
        });
        let buf = '';
        s.on('data', (c: Buffer) => {
          buf += c.toString();
          if (buf.includes('\r\n')) {
            s.destroy();
            resolve(buf.split('\r\n')[0]!);
          }
        });
        s.on('error', reject);
      });
      expect(status).toBe('HTTP/1.1 404 Not Found');
    } finally {
      await agent.close();
      await srv.close({ drainTimeoutMs: 100 });
    }
  });

  it('answers 502 to a WebSocket upgrade whose upstream is down, and keeps serving', async () => {
    const srv = await startRatlsServer<ServingIdentity>(testConfig({ routes: [{ prefix: '/', target: 'http://127.0.0.1:9', name: 'gone' }] }), {
      identitySource: selfSignedSource(),
    });
    try {
      const reply = await new Promise<string>((resolve, reject) => {
        const s = tls.connect({ host: '127.0.0.1', port: srv.port, ca: srv.identity().certPem, servername: 'localhost' }, () => {
          s.write(
            'GET /ws/socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n',
          );
        });
        let buf = '';
        s.on('data', (c: Buffer) => (buf += c.toString()));
        s.on('end', () => resolve(buf));
        s.on('close', () => resolve(buf));
        s.on('error', reject);
      });
      expect(reply.split('\r\n')[0]).toBe('HTTP/1.1 502 Bad Gateway');
      expect(reply).toMatch(/Upstream "gone" is not reachable \(ECONNREFUSED\)/);
      const agent = trustingAgent(srv.identity().certPem);
      expect((await request(`${srv.url}healthz`, { dispatcher: agent })).statusCode).toBe(200);
      await agent.close();
    } finally {
      await srv.close({ drainTimeoutMs: 100 });
    }
  });
});
