/**
 * The browser guards of `ratls connect` as a table: which Host / Origin / Sec-Fetch-* combinations
 * pass, and why the others are refused. End-to-end checks with real requests and real Chromium are
 * in tests/security/connect/.
 */
import { describe, expect, it } from 'vitest';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import {
  BROWSER_GUARD_REFUSALS,
  browserGuardPolicy,
  guardRequests,
  guardUpgrades,
  judgeBrowserRequest,
  type BrowserGuardVerdict,
  type BrowserRequestHeaders,
} from '../../src/client/browser-guard.ts';

const PORT = 8080;
const policy = browserGuardPolicy({
  port: PORT,
  hosts: ['localhost', '127.0.0.1', '[::1]', '127.0.0.1'],
  frontEndHosts: ['WebUI.Example'],
});
const host = `127.0.0.1:${PORT}`;

const cases: Array<{ name: string; h: BrowserRequestHeaders; want: BrowserGuardVerdict }> = [
  // Host: DNS rebinding
  { name: 'curl-like request to 127.0.0.1', h: { host }, want: 'allow' },
  { name: 'localhost, any case', h: { host: `LocalHost:${PORT}` }, want: 'allow' },
  { name: 'IPv6 loopback in brackets', h: { host: `[::1]:${PORT}` }, want: 'allow' },
  { name: 'an allowed front-end name', h: { host: `webui.example:${PORT}` }, want: 'allow' },
  { name: 'a rebinding name', h: { host: `evil.example:${PORT}` }, want: 'misdirected' },
  { name: 'the right name, another port', h: { host: `127.0.0.1:${PORT + 1}` }, want: 'misdirected' },
  { name: 'no port means 80', h: { host: '127.0.0.1' }, want: 'misdirected' },
  { name: 'no Host header', h: {}, want: 'misdirected' },
  { name: 'empty Host', h: { host: '' }, want: 'misdirected' },
  { name: 'userinfo smuggled into Host', h: { host: `evil@127.0.0.1:${PORT}` }, want: 'misdirected' },
  { name: 'a name that only starts like ours', h: { host: `localhost.evil.example:${PORT}` }, want: 'misdirected' },
  { name: 'IPv6 without brackets', h: { host: `::1:${PORT}` }, want: 'misdirected' },
  { name: 'Host is checked before Origin', h: { host: `evil.example:${PORT}`, origin: 'https://evil.example' }, want: 'misdirected' },
  // Origin: CSRF and cross-site WebSockets
  { name: 'our own origin', h: { host, origin: `http://127.0.0.1:${PORT}` }, want: 'allow' },
  { name: 'our origin under another of our names', h: { host, origin: `http://localhost:${PORT}` }, want: 'allow' },
  { name: 'a front-end name on another port and scheme', h: { host, origin: 'https://webui.example' }, want: 'allow' },
  { name: 'another site', h: { host, origin: 'https://evil.example' }, want: 'cross-site' },
  { name: 'our name on another port', h: { host, origin: `http://127.0.0.1:${PORT + 1}` }, want: 'cross-site' },
  { name: 'https on our port defaults elsewhere', h: { host, origin: 'https://127.0.0.1' }, want: 'cross-site' },
  { name: 'Origin: null (sandboxed frame, data: URL)', h: { host, origin: 'null' }, want: 'cross-site' },
  { name: 'a non-http scheme with our name', h: { host, origin: `ftp://127.0.0.1:${PORT}` }, want: 'cross-site' },
  { name: 'an unparsable Origin', h: { host, origin: 'not a url' }, want: 'cross-site' },
  { name: 'two Origins joined by Node', h: { host, origin: `http://127.0.0.1:${PORT}, https://evil.example` }, want: 'cross-site' },
  // Sec-Fetch-Site / Sec-Fetch-Mode
  { name: 'same-origin fetch', h: { host, 'sec-fetch-site': 'same-origin', 'sec-fetch-mode': 'cors' }, want: 'allow' },
  { name: 'typed into the address bar', h: { host, 'sec-fetch-site': 'none', 'sec-fetch-mode': 'navigate' }, want: 'allow' },
  { name: 'a link from another site (navigation)', h: { host, 'sec-fetch-site': 'cross-site', 'sec-fetch-mode': 'navigate' }, want: 'allow' },
  { name: 'a <script src> from another site', h: { host, 'sec-fetch-site': 'cross-site', 'sec-fetch-mode': 'no-cors' }, want: 'cross-site' },
  {
    name: 'a same-site subresource (another port is another origin)',
    h: { host, 'sec-fetch-site': 'same-site', 'sec-fetch-mode': 'cors' },
    want: 'cross-site',
  },
  { name: 'cross-site without a mode', h: { host, 'sec-fetch-site': 'cross-site' }, want: 'cross-site' },
  { name: 'an unknown Sec-Fetch-Site value', h: { host, 'sec-fetch-site': 'sideways' }, want: 'cross-site' },
  {
    name: 'our Origin does not excuse a cross-site fetch label',
    h: { host, origin: `http://127.0.0.1:${PORT}`, 'sec-fetch-site': 'cross-site', 'sec-fetch-mode': 'cors' },
    want: 'cross-site',
  },
  {
    name: 'a cross-site form POST navigation (refused by its Origin)',
    h: { host, origin: 'https://evil.example', 'sec-fetch-site': 'cross-site', 'sec-fetch-mode': 'navigate' },
    want: 'cross-site',
  },
];

describe('browser guard policy', () => {
  it.each(cases)('$name: $want', ({ h, want }) => {
    expect(judgeBrowserRequest(h, policy)).toBe(want);
  });

  it('front-end names are names of this proxy too, in any case', () => {
    expect(policy.hosts.has('webui.example')).toBe(true);
    expect(policy.frontEndHosts.has('webui.example')).toBe(true);
    expect(policy.frontEndHosts.has('localhost')).toBe(false);
  });
});

/** A response that records what was written (no socket). */
function recordingResponse() {
  const out: { status?: number; headers?: Record<string, string>; body?: string } = {};
  const res = {
    writeHead(status: number, headers: Record<string, string>) {
      out.status = status;
      out.headers = headers;
      return this;
    },
    end(body: string) {
      out.body = body;
    },
  } as unknown as ServerResponse;
  return { res, out };
}

describe('browser guard adapters', () => {
  it.each([
    { verdict: 'misdirected' as const, headers: { host: `evil.example:${PORT}` } },
    { verdict: 'cross-site' as const, headers: { host, origin: 'https://evil.example' } },
  ])('a refused request ($verdict) gets its status and message, and never reaches next', ({ verdict, headers }) => {
    const passed: string[] = [];
    const handler = guardRequests(policy, (req) => void passed.push(req.url!));
    const { res, out } = recordingResponse();
    handler({ url: '/api/pull', headers } as IncomingMessage, res);
    const r = BROWSER_GUARD_REFUSALS[verdict];
    expect(passed).toEqual([]);
    expect(out).toEqual({ status: r.status, headers: r.headers, body: r.body });
  });

  it('an allowed request goes to next untouched', () => {
    const passed: string[] = [];
    const handler = guardRequests(policy, (req) => void passed.push(req.url!));
    const { res, out } = recordingResponse();
    handler({ url: '/api/chat', headers: { host } } as IncomingMessage, res);
    expect(passed).toEqual(['/api/chat']);
    expect(out).toEqual({});
  });

  it.each([
    { headers: { host: `evil.example:${PORT}` }, line: 'HTTP/1.1 421 Misdirected Request' },
    { headers: { host, origin: 'https://evil.example' }, line: 'HTTP/1.1 403 Forbidden' },
  ])('a refused WebSocket handshake gets "$line" with an exact length and the socket is ended', ({ headers, line }) => {
    const passed: string[] = [];
    const written: string[] = [];
    const socket = { end: (s: string) => written.push(s) } as unknown as Duplex;
    guardUpgrades(policy, (req) => void passed.push(req.url!))({ url: '/ws', headers } as IncomingMessage, socket, Buffer.alloc(0));
    expect(passed).toEqual([]);
    expect(written.length).toBe(1);
    const [head, body] = written[0]!.split('\r\n\r\n') as [string, string];
    expect(head.split('\r\n')[0]).toBe(line);
    expect(head).toContain(`content-length: ${Buffer.byteLength(body)}`);
    expect(head).toContain('connection: close');
    expect(body).toMatch(/^ratls connect: /);
  });

  it('an allowed WebSocket handshake goes to next', () => {
    const passed: string[] = [];
    const socket = { end: () => expect.unreachable() } as unknown as Duplex;
    guardUpgrades(policy, (req) => void passed.push(req.url!))(
      { url: '/ws', headers: { host, origin: `http://localhost:${PORT}` } } as IncomingMessage,
      socket,
      Buffer.alloc(0),
    );
    expect(passed).toEqual(['/ws']);
  });
});
