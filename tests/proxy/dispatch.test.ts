import { describe, expect, it } from 'vitest';
import { EventEmitter } from 'node:events';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { createDispatch } from '../../src/proxy/dispatch.ts';
import { createMetrics } from '../../src/proxy/metrics.ts';

/** A request/response pair without a socket: only what the dispatch reads and writes. */
function exchange(url: string, method = 'GET') {
  const req = { url, method, headers: {} } as IncomingMessage;
  const headers: Record<string, string> = {};
  const res = Object.assign(new EventEmitter(), {
    statusCode: 200,
    setHeader(name: string, value: string) {
      headers[name] = value;
    },
  }) as unknown as ServerResponse;
  return { req, res, headers };
}

function fakeSocket() {
  const written: string[] = [];
  return { socket: { end: (s: string) => written.push(s) } as unknown as Duplex, written };
}

function setup(hotPath: 'raw' | 'hono' = 'raw') {
  const seen: string[] = [];
  const lines: Array<Record<string, unknown>> = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      lines.push(JSON.parse(chunk.toString()) as Record<string, unknown>);
      cb();
    },
  });
  const metrics = createMetrics(false);
  let draining = false;
  const dispatch = createDispatch({
    control: (req) => seen.push(`control ${req.url}`),
    upstream: {
      handle: (req) => seen.push(`upstream ${req.url}`),
      handleUpgrade: (req) => seen.push(`upgrade ${req.url}`),
    },
    hotPath,
    draining: () => draining,
    metrics,
    log: pino({ level: 'info' }, sink),
  });
  return { dispatch, seen, lines, metrics, drain: () => (draining = true) };
}

describe('request dispatch: control routes vs upstream', () => {
  it.each([
    { url: '/.well-known/ratls/evidence?nonce=01', to: 'control' },
    { url: '/.well-known/ratls/unknown', to: 'control' },
    { url: '/.well-known/ratls', to: 'control' },
    { url: '/healthz', to: 'control' },
    { url: '/readyz?x=1', to: 'control' },
    { url: '/metrics', to: 'control' },
    { url: '/', to: 'upstream' },
    { url: '/api/chat', to: 'upstream' },
    { url: '/healthz/extra', to: 'upstream' },
    { url: '/.well-known/ratlsx', to: 'upstream' },
    { url: '/ollama/api/tags?q=/healthz', to: 'upstream' },
    { url: '/METRICS', to: 'upstream' },
  ])('$url goes to $to', ({ url, to }) => {
    const t = setup();
    const { req, res } = exchange(url);
    t.dispatch.request(req, res);
    expect(t.seen).toEqual([`${to} ${url}`]);
  });

  it("with hotPath 'hono' upstream requests enter the app too", () => {
    const t = setup('hono');
    const { req, res } = exchange('/api/chat');
    t.dispatch.request(req, res);
    expect(t.seen).toEqual(['control /api/chat']);
  });

  it('counts and logs a control request (path without query) when its response closes', async () => {
    const t = setup();
    const { req, res } = exchange('/.well-known/ratls/evidence?nonce=secret', 'GET');
    t.dispatch.request(req, res);
    expect(t.lines).toEqual([]);
    res.statusCode = 400;
    res.emit('close');
    await new Promise((r) => setImmediate(r));
    expect(t.lines).toMatchObject([{ msg: 'request', method: 'GET', path: '/.well-known/ratls/evidence', status: 400, upstream: 'control' }]);
    expect(JSON.stringify(t.lines)).not.toContain('secret');
    const counted = (await t.metrics.requests.get()).values.find((v) => v.labels.route === 'control');
    expect(counted).toMatchObject({ value: 1, labels: { method: 'GET', status: '400' } });
  });

  it('asks clients to close their connection once draining', () => {
    const t = setup();
    const before = exchange('/api/chat');
    t.dispatch.request(before.req, before.res);
    expect(before.headers).toEqual({});
    t.drain();
    const after = exchange('/api/chat');
    t.dispatch.request(after.req, after.res);
    expect(after.headers).toEqual({ connection: 'close' });
    expect(t.seen).toEqual(['upstream /api/chat', 'upstream /api/chat']);
  });
});

describe('upgrade dispatch: WebSockets only ever go upstream', () => {
  it.each(['/.well-known/ratls/evidence', '/healthz?x', '/metrics'])('refuses an upgrade on the control path %s with 404', (url) => {
    const t = setup();
    const s = fakeSocket();
    t.dispatch.upgrade({ url } as IncomingMessage, s.socket, Buffer.alloc(0));
    expect(t.seen).toEqual([]);
    expect(s.written.join('')).toMatch(/^HTTP\/1\.1 404 Not Found\r\n/);
  });

  it('hands other upgrades to the upstream, and refuses every upgrade once draining', () => {
    const t = setup();
    const s = fakeSocket();
    t.dispatch.upgrade({ url: '/ws/socket.io/?EIO=4' } as IncomingMessage, s.socket, Buffer.alloc(0));
    expect(t.seen).toEqual(['upgrade /ws/socket.io/?EIO=4']);
    t.drain();
    t.dispatch.upgrade({ url: '/ws/socket.io/?EIO=4' } as IncomingMessage, s.socket, Buffer.alloc(0));
    expect(t.seen.length).toBe(1);
    expect(s.written.join('')).toMatch(/^HTTP\/1\.1 404 Not Found\r\n/);
  });
});
