/**
 * The browser guards of `ratls connect`. The proxy listens on a loopback address, and any web page
 * the user has open can make the browser send requests there. Two checks keep such pages from
 * using the proxy (and the user's cookies for the attested app) and from reading its answers:
 *
 * - Host: a page that uses DNS rebinding reaches the proxy under its own name; only names of this
 *   proxy, with its port, are accepted (421 otherwise).
 * - Origin / Sec-Fetch-Site: a page on another site can make the browser send requests with the
 *   right Host header (a form POST, a WebSocket, a `<script src>`). Browsers label those with
 *   headers pages cannot forge; requests labelled as coming from elsewhere are refused (403).
 *   Requests without either header (curl, SDKs) are not from a web page and pass.
 *
 * Shaped like Hono's csrf middleware: a pure policy over request headers ({@link judgeBrowserRequest})
 * and thin adapters for Node's request and upgrade events.
 */
import type { IncomingMessage, RequestListener } from 'node:http';
import type { Duplex } from 'node:stream';

/** Options of {@link browserGuardPolicy}. */
export interface BrowserGuardOptions {
  /** Port the proxy listens on. */
  port: number;
  /** Host names that name this proxy (IPv6 in brackets), e.g. localhost and the listen address. */
  hosts: Iterable<string>;
  /** Names given with allowedHosts: they may sit behind a front end on another port or scheme. */
  frontEndHosts?: Iterable<string>;
}

/** The compiled policy: lower-case names, the port. */
export interface BrowserGuardPolicy {
  readonly port: number;
  readonly hosts: ReadonlySet<string>;
  readonly frontEndHosts: ReadonlySet<string>;
}

/** The request headers the guards read (Node's `req.headers` fits). */
export interface BrowserRequestHeaders {
  host?: string | undefined;
  origin?: string | undefined;
  'sec-fetch-site'?: string | undefined;
  'sec-fetch-mode'?: string | undefined;
}

/** 'allow', or why the request is refused. */
export type BrowserGuardVerdict = 'allow' | 'misdirected' | 'cross-site';

/** Builds the policy; front-end names count as names of this proxy too. */
export function browserGuardPolicy(o: BrowserGuardOptions): BrowserGuardPolicy {
  const frontEndHosts = new Set([...(o.frontEndHosts ?? [])].map((h) => h.toLowerCase()));
  const hosts = new Set([...[...o.hosts].map((h) => h.toLowerCase()), ...frontEndHosts]);
  return { port: o.port, hosts, frontEndHosts };
}

/** True when the Host header names this proxy: an accepted name and our port (80 when absent). */
export function hostAllowed(host: string | undefined, p: BrowserGuardPolicy): boolean {
  const m = /^(\[[^\]]+\]|[^:]+)(?::(\d+))?$/.exec((host ?? '').toLowerCase());
  if (!m) return false;
  const port = m[2] ? Number(m[2]) : 80;
  return p.hosts.has(m[1]!) && port === p.port;
}

/** True unless the browser says a page on another site made this request. */
export function originAllowed(h: BrowserRequestHeaders, p: BrowserGuardPolicy): boolean {
  if (h.origin !== undefined) {
    let u: URL;
    try {
      u = new URL(h.origin);
    } catch {
      return false; // includes "null": sandboxed frames, data: and file: pages
    }
    const name = u.hostname.toLowerCase();
    const port = u.port ? Number(u.port) : u.protocol === 'https:' ? 443 : 80;
    const ours = p.hosts.has(name) && (port === p.port || p.frontEndHosts.has(name));
    if ((u.protocol !== 'http:' && u.protocol !== 'https:') || !ours) return false;
  }
  const site = h['sec-fetch-site'];
  if (site === undefined || site === 'same-origin' || site === 'none') return true;
  // a top-level navigation from a link elsewhere is fine (the other site cannot read the page);
  // a cross-site POST navigation carries an Origin and was refused above
  return h['sec-fetch-mode'] === 'navigate';
}

/** The verdict on one request or WebSocket handshake: the Host check first, then the origin. */
export function judgeBrowserRequest(h: BrowserRequestHeaders, p: BrowserGuardPolicy): BrowserGuardVerdict {
  if (!hostAllowed(h.host, p)) return 'misdirected';
  if (!originAllowed(h, p)) return 'cross-site';
  return 'allow';
}

/** What a refused request is told. */
export const BROWSER_GUARD_REFUSALS = {
  misdirected: {
    status: 421,
    reason: 'Misdirected Request',
    headers: { 'content-type': 'text/plain; charset=utf-8' },
    body: 'ratls connect: the Host header does not name this proxy (use http://127.0.0.1:PORT or http://localhost:PORT); refusing, to keep other web sites from using it.\n',
  },
  'cross-site': {
    status: 403,
    reason: 'Forbidden',
    headers: { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store' },
    body: "ratls connect: refusing a request that a web page on another site made your browser send (Origin / Sec-Fetch-Site); open the app at this proxy's own address instead.\n",
  },
} as const;

/** Node's upgrade listener. */
export type UpgradeListener = (req: IncomingMessage, socket: Duplex, head: Buffer) => void;

/** Answers requests the policy refuses; passes the others to `next`. */
export function guardRequests(p: BrowserGuardPolicy, next: RequestListener): RequestListener {
  return (req, res) => {
    const verdict = judgeBrowserRequest(req.headers, p);
    if (verdict === 'allow') return void next(req, res);
    const r = BROWSER_GUARD_REFUSALS[verdict];
    res.writeHead(r.status, r.headers);
    res.end(r.body);
  };
}

/**
 * Answers WebSocket handshakes the policy refuses and closes their socket; passes the others to
 * `next`. WebSockets are exempt from CORS, so without this any page could drive the app's socket.
 */
export function guardUpgrades(p: BrowserGuardPolicy, next: UpgradeListener): UpgradeListener {
  return (req, socket, head) => {
    const verdict = judgeBrowserRequest(req.headers, p);
    if (verdict === 'allow') return next(req, socket, head);
    const r = BROWSER_GUARD_REFUSALS[verdict];
    socket.end(
      `HTTP/1.1 ${r.status} ${r.reason}\r\ncontent-type: text/plain\r\ncontent-length: ${Buffer.byteLength(r.body)}\r\nconnection: close\r\n\r\n${r.body}`,
    );
  };
}
