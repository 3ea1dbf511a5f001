/**
 * Closing a proxied WebSocket properly when its attested upstream connection reaches
 * maxConnectionAge: `ratls connect` pipes WebSocket bytes through, so a close frame may only be
 * inserted between two frames. {@link FrameGate} follows the frame boundaries of one direction
 * (headers parsed, payloads passed through untouched) and, when asked, ends that direction at the
 * next boundary with a close frame (RFC 6455 5.5.1): code 1001 "going away", which WebSocket and
 * socket.io clients answer by reconnecting, and a reconnection is attested again.
 */
import { Transform, type TransformCallback, type Duplex } from 'node:stream';
import { randomBytes } from 'node:crypto';
import type { ClientRequest, IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import type { ConnectionAges } from './connection-age.ts';

/** RFC 6455 7.4.1: the endpoint is going away; clients reconnect. */
export const CLOSE_GOING_AWAY = 1001;

/** A close frame: unmasked from a server, masked (random key) from a client, as RFC 6455 5.3 requires. */
export function closeFrame(code: number, reason: string, masked: boolean): Buffer {
  const text = Buffer.from(reason, 'utf8').subarray(0, 123);
  const payload = Buffer.concat([Buffer.from([code >> 8, code & 0xff]), text]);
  if (!masked) return Buffer.concat([Buffer.from([0x88, payload.length]), payload]);
  const key = randomBytes(4);
  const body = Buffer.from(payload.map((b, i) => b ^ key[i % 4]!));
  return Buffer.concat([Buffer.from([0x88, 0x80 | payload.length]), key, body]);
}

/** Passes WebSocket frames through unchanged and can end the stream cleanly between two frames. */
export class FrameGate extends Transform {
  /** Header bytes of the frame being read (empty at a boundary). */
  private header = Buffer.alloc(0);
  /** Payload bytes still to pass before the next boundary. */
  private payloadLeft = 0;
  private pendingClose: Buffer | undefined;
  private gateClosed = false;

  /** @param masked true for the client-to-server direction (frames we add are masked) */
  constructor(private readonly masked: boolean) {
    super();
  }

  /** True between two frames. */
  get atBoundary(): boolean {
    return this.header.length === 0 && this.payloadLeft === 0;
  }

  /** Ends this direction with a close frame at the next frame boundary (at once when at one). */
  closeAtBoundary(code: number, reason: string): void {
    if (this.pendingClose || this.gateClosed) return;
    this.pendingClose = closeFrame(code, reason, this.masked);
    if (this.atBoundary) this.finishClose();
  }

  private finishClose(): void {
    if (this.gateClosed) return;
    this.gateClosed = true;
    this.push(this.pendingClose);
    this.push(null);
  }

  /** Length of the header once enough of it is known, else undefined. */
  private headerLength(): number | undefined {
    const h = this.header;
    if (h.length < 2) return undefined;
    const len7 = h[1]! & 0x7f;
    const mask = h[1]! & 0x80 ? 4 : 0;
    return 2 + (len7 === 126 ? 2 : len7 === 127 ? 8 : 0) + mask;
  }

  private payloadLength(): number {
    const h = this.header;
    const len7 = h[1]! & 0x7f;
    if (len7 === 126) return h.readUInt16BE(2);
    if (len7 === 127) return Number(h.readBigUInt64BE(2));
    return len7;
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    if (this.gateClosed) return done(); // after our close frame nothing more goes this way
    let off = 0;
    while (off < chunk.length) {
      if (this.payloadLeft > 0) {
        const n = Math.min(this.payloadLeft, chunk.length - off);
        this.push(chunk.subarray(off, off + n));
        off += n;
        this.payloadLeft -= n;
      } else {
        // one header byte at a time until its length is known, then the rest in one piece
        const need = this.headerLength();
        const take = need === undefined ? 1 : Math.min(need - this.header.length, chunk.length - off);
        this.header = Buffer.concat([this.header, chunk.subarray(off, off + take)]);
        off += take;
        const full = this.headerLength();
        if (full !== undefined && this.header.length === full) {
          this.push(this.header);
          this.payloadLeft = this.payloadLength();
          this.header = Buffer.alloc(0);
        }
      }
      if (this.pendingClose && this.atBoundary) {
        this.finishClose();
        return done();
      }
    }
    done();
  }
}

/** How long a direction may stay mid-frame after the close was asked for before both ends are cut. */
const CLOSE_GRACE_MS = 5000;

/**
 * Re-pipes a proxied WebSocket (`client` <-> `upstream`, already piped to each other) through frame
 * gates and closes it with 1001 in both directions after `delayMs`. Call before any byte flowed.
 */
export function closeWebSocketAfter(client: Duplex, upstream: Duplex, delayMs: number, reason: string): void {
  upstream.unpipe(client);
  client.unpipe(upstream);
  const down = new FrameGate(false);
  const up = new FrameGate(true);
  upstream.pipe(down).pipe(client);
  client.pipe(up).pipe(upstream);
  const timer = setTimeout(() => {
    down.closeAtBoundary(CLOSE_GOING_AWAY, reason);
    up.closeAtBoundary(CLOSE_GOING_AWAY, reason);
    const cut = setTimeout(() => {
      client.destroy();
      upstream.destroy();
    }, CLOSE_GRACE_MS);
    cut.unref();
    client.once('close', () => clearTimeout(cut));
  }, delayMs);
  timer.unref();
  const stop = () => clearTimeout(timer);
  client.once('close', stop);
  upstream.once('close', stop);
}

/** The events of http-proxy-3's ProxyServer this needs. */
interface WsProxyEvents {
  on(event: 'proxyReqWs', listener: (proxyReq: ClientRequest, req: IncomingMessage, socket: Socket) => void): unknown;
  on(event: 'open', listener: (proxySocket: Socket) => void): unknown;
}

/**
 * Makes every WebSocket proxied by `proxy` end with close code 1001 when its attested upstream
 * connection reaches maxConnectionAge (`ages`); the client's reconnection is attested again.
 */
export function limitWebSocketAge(proxy: WsProxyEvents, ages: ConnectionAges): void {
  if (!ages.enabled) return;
  // http-proxy-3 hands 'open' the upstream socket only; find the client's side through the request
  const clients = new WeakMap<object, Duplex>();
  proxy.on('proxyReqWs', (proxyReq, _req, socket) => {
    proxyReq.once('socket', (upstream: Socket) => clients.set(upstream, socket));
  });
  // 'open' comes right after http-proxy-3 piped the two sockets, before any byte flowed
  proxy.on('open', (upstream) => {
    const client = clients.get(upstream);
    const left = ages.remainingMs(upstream);
    if (!client || left === Infinity) return;
    closeWebSocketAfter(client, upstream, left, 'attested connection reached maxConnectionAge; reconnect to re-attest');
  });
}
