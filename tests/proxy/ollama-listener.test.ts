/**
 * The opt-in Ollama listener: its own port, the public listener's RA-TLS identity (through
 * rotations) and control routes, Ollama's API only with the Bearer access token. Without it, or
 * with another, 401 and nothing reaches Ollama; with it the official `ollama` client works over an
 * attested fetch; admin routes stay blocked; Host is rewritten for Ollama; the token is never
 * logged nor forwarded; no token, a weak one or an exposed file keeps the proxy from starting.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as http from 'node:http';
import * as https from 'node:https';
import type * as tls from 'node:tls';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { Writable } from 'node:stream';
import { spawn } from 'node:child_process';
import { pino } from 'pino';
import { Ollama } from 'ollama';
import { startRatlsServer, type RunningRatlsServer } from '../../src/proxy/server.ts';
import { validateConfig, type RawConfig } from '../../src/proxy/config.ts';
import { startDemoOllama, type RunningDemoOllama } from '../../src/demo/ollama.ts';
import { createAttestedFetch } from '../../src/client/index.ts';
import { bitsPerChar, checkAccessToken, estimatedBits, patterned } from '../../src/core/access-token.ts';
import { makeWorld, simPolicy, simulatedSource, type World } from '../client/helpers.ts';

const TOKEN = randomBytes(32).toString('hex');

let world: World;
let dir: string;
let backend: RunningDemoOllama;
/** Sits in front of the demo Ollama and records what reached it. */
let recorder: http.Server;
let recorderUrl: string;
const seen: Array<{ method: string; path: string; host: string | undefined; authorization: string | undefined }> = [];
let srv: RunningRatlsServer;
let logs = '';

function config(extra: RawConfig = {}): ReturnType<typeof validateConfig> {
  return validateConfig({
    listen: '127.0.0.1:0',
    log: { level: 'debug' },
    upstreams: { openWebui: 'http://127.0.0.1:9', ollama: recorderUrl },
    ollamaListener: { listen: '127.0.0.1:0' },
    ...extra,
  });
}

beforeAll(async () => {
  world = await makeWorld();
  dir = mkdtempSync(join(tmpdir(), 'ratls-ollama-listener-'));
  backend = await startDemoOllama({ tokenDelayMs: 5 });
  const target = new URL(backend.url);
  recorder = http.createServer((req, res) => {
    seen.push({ method: req.method ?? '', path: req.url ?? '', host: req.headers.host, authorization: req.headers.authorization });
    const up = http.request({ host: target.hostname, port: target.port, method: req.method, path: req.url, headers: req.headers }, (r) => {
      res.writeHead(r.statusCode ?? 502, r.headers);
      r.pipe(res);
    });
    req.pipe(up);
  });
  await new Promise<void>((r) => recorder.listen(0, '127.0.0.1', r));
  recorderUrl = `http://127.0.0.1:${(recorder.address() as AddressInfo).port}`;
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      logs += chunk.toString();
      cb();
    },
  });
  srv = await startRatlsServer(config(), {
    identitySource: await simulatedSource(world),
    autoRotate: false,
    logger: pino({ level: 'debug' }, sink),
    ollamaToken: TOKEN,
  });
});
afterAll(async () => {
  await srv?.close({ drainTimeoutMs: 200 });
  await new Promise<void>((r) => recorder?.close(() => r()));
  await backend?.close();
  for (const d of [dir, world?.dir]) if (d) rmSync(d, { recursive: true, force: true });
});

interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
  certSha256: string;
}

/** One request on a fresh TLS connection (certificates not checked here; the ollama test attests). */
function request(url: string, path: string, opts: { method?: string; headers?: Record<string, string>; body?: string } = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = https.request(new URL(path, url), { method: opts.method ?? 'GET', headers: opts.headers, rejectUnauthorized: false, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => {
        const cert = (res.socket as tls.TLSSocket).getPeerCertificate?.();
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body, certSha256: cert?.fingerprint256?.replace(/:/g, '').toLowerCase() ?? '' });
      });
    });
    req.on('error', reject);
    req.end(opts.body);
  });
}

const bearer = (t: string) => ({ authorization: `Bearer ${t}` });

describe('the Ollama listener refuses requests without its token', () => {
  it.each([
    ['no Authorization header', {}, 'Bearer realm="ollama"'],
    ['another token', bearer(randomBytes(32).toString('hex')), 'Bearer realm="ollama", error="invalid_token"'],
    ['another scheme', { authorization: `Basic ${Buffer.from(`x:${TOKEN}`).toString('base64')}` }, 'Bearer realm="ollama", error="invalid_token"'],
    ['the token with a byte changed', bearer(TOKEN.slice(0, -1) + (TOKEN.endsWith('0') ? '1' : '0')), 'Bearer realm="ollama", error="invalid_token"'],
  ])('%s: 401 with WWW-Authenticate, nothing forwarded', async (_name, headers, challenge) => {
    const before = seen.length;
    const get = await request(srv.ollama!.url, '/api/tags', { headers });
    expect(get.status).toBe(401);
    expect(get.headers['www-authenticate']).toBe(challenge);
    const post = await request(srv.ollama!.url, '/api/chat', {
      method: 'POST',
      headers: { ...headers, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'ratls-demo:latest', messages: [{ role: 'user', content: 'hi' }] }),
    });
    expect(post.status).toBe(401);
    expect(seen.length).toBe(before);
    expect(backend.requestsSeen()).not.toContain('POST /api/chat');
  });

  it('a WebSocket upgrade without the token is refused too', async () => {
    const status = await new Promise<number>((resolve, reject) => {
      const req = https.request(new URL('/api/tags', srv.ollama!.url), {
        headers: { connection: 'Upgrade', upgrade: 'websocket', 'sec-websocket-version': '13', 'sec-websocket-key': randomBytes(16).toString('base64') },
        rejectUnauthorized: false,
        agent: false,
      });
      req.on('response', (res) => resolve(res.statusCode ?? 0));
      req.on('upgrade', () => resolve(101));
      req.on('error', reject);
      req.end();
    });
    expect(status).toBe(401);
  });
});

describe('with the token', () => {
  it('the official ollama client works over an attested fetch (session-bound by default: the listener serves session evidence too): models, streamed chat', async () => {
    const bound: boolean[] = [];
    const fetch = createAttestedFetch(simPolicy(world), { onVerified: (e) => bound.push(e.sessionBound === true) });
    try {
      const ollama = new Ollama({ host: srv.ollama!.url.replace(/\/$/, ''), fetch, headers: bearer(TOKEN) });
      const { models } = await ollama.list();
      expect(models.map((m) => m.name)).toContain('ratls-demo:latest');
      const stream = await ollama.chat({ model: 'ratls-demo:latest', stream: true, messages: [{ role: 'user', content: 'hi' }] });
      let text = '';
      let parts = 0;
      for await (const part of stream) {
        text += part.message.content;
        parts++;
      }
      expect(parts).toBeGreaterThan(3);
      expect(text.length).toBeGreaterThan(10);
      expect(bound.length).toBeGreaterThan(0);
      expect(bound.every(Boolean)).toBe(true);
    } finally {
      await fetch.close();
    }
  });

  it('rewrites Host to Ollama’s own host:port and does not forward the token', async () => {
    const before = seen.length;
    const r = await request(srv.ollama!.url, '/api/version', { headers: { ...bearer(TOKEN), host: 'vm.example.com:11443' } });
    expect(r.status).toBe(200);
    const got = seen.slice(before);
    expect(got).toHaveLength(1);
    expect(got[0]!.host).toBe(new URL(recorderUrl).host);
    expect(got[0]!.authorization).toBeUndefined();
  });

  it('keeps the admin-route block: pull, delete, create, encoded and dot-segment spellings', async () => {
    const before = seen.length;
    for (const [method, path] of [
      ['POST', '/api/pull'],
      ['DELETE', '/api/delete'],
      ['POST', '/api/create'],
      ['POST', '/%61pi/pull'],
      ['POST', '/x/../api/copy'],
      ['POST', '/api/blobs/sha256:00'],
    ] as const) {
      const r = await request(srv.ollama!.url, path, { method, headers: { ...bearer(TOKEN), 'content-type': 'application/json' }, body: '{"model":"x"}' });
      expect(r.status, path).toBe(403);
    }
    expect(seen.length).toBe(before);
  });

  it('a Bearer scheme in any case, with the token, is accepted (RFC 7235)', async () => {
    expect((await request(srv.ollama!.url, '/api/version', { headers: { authorization: `bearer ${TOKEN}` } })).status).toBe(200);
  });
});

describe('one identity for both listeners', () => {
  it('control routes answer without the token, and both listeners present the same certificate, also after a rotation', async () => {
    const pub = await request(srv.url, '/healthz');
    const oll = await request(srv.ollama!.url, '/healthz');
    expect(oll.status).toBe(200);
    expect(oll.certSha256).toBe(pub.certSha256);
    expect(oll.certSha256).toBe(srv.identity().fingerprintSha256);
    const pem = await request(srv.ollama!.url, '/.well-known/ratls/certificate');
    expect(pem.body).toBe(srv.identity().certPem);

    const old = srv.identity().fingerprintSha256;
    await srv.rotate();
    const after = await request(srv.ollama!.url, '/api/version', { headers: bearer(TOKEN) });
    expect(after.status).toBe(200);
    expect(after.certSha256).not.toBe(old);
    expect(after.certSha256).toBe(srv.identity().fingerprintSha256);
    expect((await request(srv.url, '/healthz')).certSha256).toBe(after.certSha256);
    // and an attested client still gets through on the new identity
    const fetch = createAttestedFetch(simPolicy(world));
    try {
      const res = await fetch(new URL('/api/tags', srv.ollama!.url), { headers: bearer(TOKEN) });
      expect(res.status).toBe(200);
    } finally {
      await fetch.close();
    }
  });

  it('the token is in no log line and no metric', async () => {
    const metrics = await srv.metrics.registry.metrics();
    expect(logs).toContain('"status":401');
    expect(logs).toContain('Ollama listener');
    expect(logs).not.toContain(TOKEN);
    expect(logs).not.toContain(TOKEN.slice(0, 16));
    expect(metrics).not.toContain(TOKEN);
    expect(metrics).toMatch(/ratls_rejected_requests_total\{reason="unauthorized"\} \d+/);
  });
});

describe('no start without a strong token', () => {
  const freePort = (): Promise<number> =>
    new Promise((res) => {
      const s = createServer().listen(0, '127.0.0.1', () => {
        const p = (s.address() as AddressInfo).port;
        s.close(() => res(p));
      });
    });

  const start = async (raw: RawConfig, deps: { ollamaToken?: string; env?: NodeJS.ProcessEnv }) =>
    startRatlsServer(config(raw), { identitySource: await simulatedSource(world), autoRotate: false, logger: pino({ level: 'silent' }), ...deps });

  it.each([
    ['no token at all', {}, {}, 'ACCESS_TOKEN_MISSING'],
    ['a short token', {}, { ollamaToken: 'abc123' }, 'ACCESS_TOKEN_INVALID'],
    ['a long but repeated token', {}, { ollamaToken: 'ab'.repeat(40) }, 'ACCESS_TOKEN_INVALID'],
    ['a token with spaces', {}, { ollamaToken: `${TOKEN} ${TOKEN}` }, 'ACCESS_TOKEN_INVALID'],
    ['a weak token from the environment', {}, { env: { RATLS_OLLAMA_TOKEN: 'password'.repeat(5) } }, 'ACCESS_TOKEN_INVALID'],
  ])('%s: %s, and nothing listens', async (_name, raw, deps, code) => {
    const port = await freePort();
    const err = await start({ listen: `127.0.0.1:${port}`, ...raw }, deps).then(
      () => undefined,
      (e: unknown) => e as { code?: string; message: string },
    );
    expect(err?.code).toBe(code);
    const given = (deps as { ollamaToken?: string }).ollamaToken;
    if (given) expect(err?.message).not.toContain(given);
    // the public port is free again: nothing was left listening
    await new Promise<void>((res, rej) => {
      const s = createServer()
        .once('error', rej)
        .listen(port, '127.0.0.1', () => s.close(() => res()));
    });
  });

  it('a token file readable by others is refused; mode 600 works; file and environment together are refused', async () => {
    const file = join(dir, 'ollama-token');
    writeFileSync(file, `${TOKEN}\n`);
    chmodSync(file, 0o644);
    await expect(start({ ollamaListener: { listen: '127.0.0.1:0', tokenFile: file } }, { env: {} })).rejects.toMatchObject({
      code: 'ACCESS_TOKEN_INVALID',
      message: expect.stringContaining('readable by group or others (mode 644)'),
    });
    chmodSync(file, 0o600);
    const ok = await start({ ollamaListener: { listen: '127.0.0.1:0', tokenFile: file } }, { env: {} });
    try {
      expect((await request(ok.ollama!.url, '/api/version', { headers: bearer(TOKEN) })).status).toBe(200);
    } finally {
      await ok.close({ drainTimeoutMs: 100 });
    }
    await expect(start({ ollamaListener: { listen: '127.0.0.1:0', tokenFile: file } }, { env: { RATLS_OLLAMA_TOKEN: TOKEN } })).rejects.toMatchObject({
      code: 'ACCESS_TOKEN_MISSING',
    });
  });

  it('random tokens pass; short, low-entropy and patterned ones are refused', () => {
    // 20,000 random tokens of each usual shape, the shortest accepted among them: a false refusal
    // would lock an operator out at random
    for (let i = 0; i < 20_000; i++) {
      const hex = randomBytes(16).toString('hex');
      expect(estimatedBits(hex)).toBe(128);
      expect(() => checkAccessToken(hex, 'x')).not.toThrow();
      expect(() => checkAccessToken(randomBytes(32).toString('base64'), 'x')).not.toThrow();
      expect(() => checkAccessToken(randomBytes(24).toString('base64url'), 'x')).not.toThrow();
    }
    expect(bitsPerChar('a'.repeat(100))).toBe(0);
    expect(() => checkAccessToken('ab'.repeat(40), 'x')).toThrow(/guessable/);
    expect(() => checkAccessToken('1234567890'.repeat(3) + '12', 'x')).toThrow(/guessable/);
    for (const weak of [
      '0123456789'.repeat(4),
      'abcdefghijklmnopqrstuvwxyzABCDEFGHIJ',
      'aabbccddeeffgghhiijjkkllmmnnoopp',
      `${TOKEN.slice(0, 20)}`.repeat(3),
    ]) {
      expect(patterned(weak) || estimatedBits(weak) < 128 || bitsPerChar(weak) < 2.5, weak).toBe(true);
      expect(() => checkAccessToken(weak, 'x')).toThrow(/guessable/);
    }
  });

  it('ratls serve --ollama-listen without a token exits 2 naming the code, before listening', async () => {
    const child = spawn(
      process.execPath,
      [
        join(import.meta.dirname, '../../bin/ratls'),
        'serve',
        '--simulate',
        '--sim-dir',
        join(dir, 'sim'),
        '--listen',
        '127.0.0.1:0',
        '--ollama-listen',
        '127.0.0.1:0',
      ],
      { env: { PATH: process.env.PATH ?? '' }, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let err = '';
    child.stderr.on('data', (b: Buffer) => (err += b.toString()));
    const code = await new Promise<number | null>((res) => child.once('exit', (c) => res(c)));
    expect(code).toBe(2);
    expect(err).toMatch(/The Ollama listener needs an access token and has none.*\[ACCESS_TOKEN_MISSING\]/);
    expect(err).not.toContain('listening on');
  });
});
