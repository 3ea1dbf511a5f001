import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import * as http from 'node:http';
import * as tls from 'node:tls';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { request } from 'undici';
import { initSimulatedWorld } from '../../src/tee/simulated/world.ts';
import { startRatlsServer } from '../../src/proxy/server.ts';
import { validateConfig } from '../../src/proxy/config.ts';
import { decodeEvidence, OID_RATLS_EVIDENCE } from '../../src/ratls/extension.ts';
import { decodeClaims, claimsBindKey, reportDataForClaims } from '../../src/ratls/claims.ts';
import { parseQuote } from '../../src/quote/parse.ts';
import { trustingAgent } from './helpers.ts';

const BIN = join(import.meta.dirname, '../../bin/ratls');

/** Upstream sending `lines` lines, one per `gapMs` (lines = Infinity: until the client leaves). */
async function tickUpstream(lines: number, gapMs: number) {
  const server = http.createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'application/x-ndjson' });
    let n = 0;
    const t = setInterval(() => {
      res.write(`{"n":${n++}}\n`);
      if (n >= lines) {
        clearInterval(t);
        res.end();
      }
    }, gapMs);
    res.on('close', () => clearInterval(t));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

interface Spawned {
  child: ChildProcess;
  url: string;
  stderr: () => string;
  exited: Promise<number | null>;
}

/** Spawns `ratls serve ...` and waits for its banner. */
async function spawnServe(args: string[], env: NodeJS.ProcessEnv = {}): Promise<Spawned> {
  const child = spawn(process.execPath, [BIN, 'serve', ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  child.stderr!.on('data', (c: Buffer) => (err += c.toString()));
  child.stdout!.resume();
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  const url = await new Promise<string>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`no banner within 30 s: ${err}`)), 30_000);
    const check = () => {
      const m = /listening on (https:\/\/\S+)/.exec(err);
      if (m) {
        clearTimeout(t);
        resolve(m[1]!);
      }
    };
    child.stderr!.on('data', check);
    void exited.then((code) => {
      clearTimeout(t);
      reject(new Error(`exited ${code}: ${err}`));
    });
  });
  return { child, url, stderr: () => err, exited };
}

async function fetchCertPem(url: string): Promise<string> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const s = tls.connect({ host: u.hostname, port: Number(u.port), rejectUnauthorized: false }, () => {
      const raw = s.getPeerCertificate().raw;
      s.end();
      // No blank line before END when the base64 fills its last line: OpenSSL would drop the CA.
      resolve(
        `-----BEGIN CERTIFICATE-----\n${raw
          .toString('base64')
          .replace(/(.{64})/g, '$1\n')
          .replace(/\n?$/, '\n')}-----END CERTIFICATE-----\n`,
      );
    });
    s.on('error', reject);
  });
}

describe('ratls serve: RA-TLS identity and the CLI process', () => {
  let simDir: string;
  beforeAll(async () => {
    simDir = mkdtempSync(join(tmpdir(), 'ratls-serve-sim-'));
    await initSimulatedWorld(simDir);
  });
  afterAll(() => rmSync(simDir, { recursive: true, force: true }));

  it('serves an RA-TLS certificate and nonce evidence bound to the same key (simulated TDX)', async () => {
    const up = await tickUpstream(1, 1);
    const srv = await startRatlsServer(
      validateConfig({
        listen: '127.0.0.1:0',
        log: { level: 'silent' },
        evidence: { provider: 'simulated', simDir },
        routes: [{ prefix: '/', target: up.url }],
      }),
    );
    const agent = trustingAgent(srv.identity().certPem);
    try {
      const id = srv.identity();
      expect(id.simulated).toBe(true);
      const { X509Certificate } = await import('@peculiar/x509');
      const ext = new X509Certificate(id.certDer.slice().buffer).getExtension(OID_RATLS_EVIDENCE);
      expect(ext).toBeTruthy();
      const r = await request(`${srv.url}.well-known/ratls/evidence?nonce=cafe0123`, { dispatcher: agent });
      expect(r.statusCode).toBe(200);
      const ev = decodeEvidence(new Uint8Array(await r.body.arrayBuffer()));
      const claims = decodeClaims(ev.claimsBuffer);
      expect(Buffer.from(claims.nonce!).toString('hex')).toBe('cafe0123');
      expect(await claimsBindKey(claims, id.spkiDer)).toBe(true);
      const q = parseQuote(ev.quote);
      expect(Buffer.from(q.body.reportData.subarray(0, 32)).equals(Buffer.from(await reportDataForClaims(ev.claimsBuffer)).subarray(0, 32))).toBe(true);
      const col = await request(`${srv.url}.well-known/ratls/collateral`, { dispatcher: agent });
      expect(col.statusCode).toBe(200);
      expect(((await col.body.json()) as { tcbInfoJson: string }).tcbInfoJson).toMatch(/tcbInfo/);
    } finally {
      await agent.close();
      await srv.close({ drainTimeoutMs: 100 });
      await up.close();
    }
  });

  it('refuses to start without TDX unless simulation is asked for', async () => {
    const child = spawn(process.execPath, [BIN, 'serve', '--listen', '127.0.0.1:0'], {
      env: { ...process.env, RATLS_CONFIGFS_ROOT: join(simDir, 'no-tsm') },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let err = '';
    child.stderr.on('data', (c: Buffer) => (err += c.toString()));
    const code = await new Promise<number | null>((r) => child.once('exit', r));
    expect(code).toBe(2);
    expect(err).toMatch(/EVIDENCE_PROVIDER_UNAVAILABLE/);
    expect(err).toMatch(/--simulate/);
  });

  it('rejects a bad config with a message naming the key', async () => {
    const file = join(simDir, 'bad.yaml');
    writeFileSync(file, 'limits:\n  maxBody: lots\n');
    const child = spawn(process.execPath, [BIN, 'serve', '--config', file, '--simulate', '--sim-dir', simDir], { stdio: ['ignore', 'pipe', 'pipe'] });
    let err = '';
    child.stderr.on('data', (c: Buffer) => (err += c.toString()));
    expect(await new Promise((r) => child.once('exit', r))).toBe(2);
    expect(err).toMatch(/limits\.maxBody/);
  });

  it('SIGTERM drains an in-flight stream, then exits 0', async () => {
    const up = await tickUpstream(20, 50);
    const s = await spawnServe(['--simulate', '--sim-dir', simDir, '--listen', '127.0.0.1:0', '--upstream', `/=${up.url}`, '--drain-timeout', '10s']);
    const agent = trustingAgent(await fetchCertPem(s.url));
    try {
      const r = await request(`${s.url}stream`, { dispatcher: agent });
      const it = r.body[Symbol.asyncIterator]();
      let text = ((await it.next()).value as Buffer).toString();
      s.child.kill('SIGTERM');
      for (;;) {
        const n = await it.next();
        if (n.done) break;
        text += (n.value as Buffer).toString();
      }
      expect(text.trim().split('\n')).toHaveLength(20);
      expect(await s.exited).toBe(0);
      expect(s.stderr()).toMatch(/SIGTERM received, draining/);
    } finally {
      s.child.kill('SIGKILL');
      await agent.close();
      await up.close();
    }
  });

  it('SIGTERM during start-up is honoured once the server is up: drained exit 0, not killed by the signal', async () => {
    // Each quote takes 2.5 s, so the signal lands while the first certificate is still being made;
    // it is sent once the process logs its first start-up line (module loading can take seconds
    // on a busy machine, and before that no program can have handlers).
    const child = spawn(
      process.execPath,
      [BIN, 'serve', '--simulate', '--sim-dir', simDir, '--listen', '127.0.0.1:0', '--upstream', '/=http://127.0.0.1:9', '--sim-quote-latency', '2500ms'],
      { env: process.env, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let err = '';
    let out = '';
    child.stderr!.on('data', (c: Buffer) => (err += c.toString()));
    const started = new Promise<void>((resolve) =>
      child.stdout!.on('data', (c: Buffer) => {
        out += c.toString();
        if (out.includes('"msg":"measurement:')) resolve();
      }),
    );
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) => child.once('exit', (code, signal) => r({ code, signal })));
    try {
      await started;
      expect(err).not.toMatch(/listening on/);
      child.kill('SIGTERM');
      const end = await exited;
      expect(end).toEqual({ code: 0, signal: null });
      expect(err).toMatch(/SIGTERM received, draining/);
    } finally {
      child.kill('SIGKILL');
    }
  });

  it('SIGTERM cuts streams still open at the drain deadline', async () => {
    const up = await tickUpstream(Infinity, 50);
    const s = await spawnServe(['--simulate', '--sim-dir', simDir, '--listen', '127.0.0.1:0', '--upstream', `/=${up.url}`, '--drain-timeout', '1s']);
    const agent = trustingAgent(await fetchCertPem(s.url));
    try {
      const r = await request(`${s.url}stream`, { dispatcher: agent });
      const t0 = Date.now();
      s.child.kill('SIGTERM');
      await expect(
        (async () => {
          for await (const _ of r.body);
        })(),
      ).rejects.toThrow();
      expect(await s.exited).toBe(0);
      const took = Date.now() - t0;
      expect(took).toBeGreaterThan(900);
      expect(took).toBeLessThan(5000);
    } finally {
      s.child.kill('SIGKILL');
      await agent.close();
      await up.close();
    }
  });
});
