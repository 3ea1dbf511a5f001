/**
 * A tiny web app upstream for connect/browser tests: an HTML page that opens a WebSocket, a
 * slowly streamed response, and a WebSocket echo (hand-written RFC 6455 handshake and frames).
 */
import http from 'node:http';
import { createHash } from 'node:crypto';
import type { AddressInfo } from 'node:net';

export const APP_PAGE = `<!doctype html><html><head><meta charset="utf-8"><title>attested app</title></head><body>
<h1 id="title">Hello from the attested app</h1><p id="ws">websocket: pending</p>
<script>
const ws = new WebSocket((location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + '/ws');
ws.onopen = () => ws.send('ping from the browser');
ws.onmessage = (m) => { document.getElementById('ws').textContent = 'websocket: ' + m.data; };
ws.onerror = () => { document.getElementById('ws').textContent = 'websocket: error'; };
</script></body></html>`;

function frame(text: string): Buffer {
  const payload = Buffer.from(text);
  if (payload.length >= 126) throw new Error('test frames stay small');
  return Buffer.concat([Buffer.from([0x81, payload.length]), payload]);
}

/** Parses one client (masked) text frame, small payloads only. */
function unmask(buf: Buffer): string | undefined {
  if (buf.length < 6) return undefined;
  const len = buf[1]! & 0x7f;
  if (len >= 126 || buf.length < 6 + len) return undefined;
  const mask = buf.subarray(2, 6);
  const out = Buffer.alloc(len);
  for (let i = 0; i < len; i++) out[i] = buf[6 + i]! ^ mask[i % 4]!;
  return out.toString('utf8');
}

export async function startAppUpstream(): Promise<{ url: string; lastUpgradeOrigin(): string | undefined; close(): Promise<void> }> {
  let upgradeOrigin: string | undefined;
  const server = http.createServer((req, res) => {
    if (req.url === '/headers') {
      res.writeHead(200, { 'content-type': 'application/json' });
      return void res.end(JSON.stringify({ origin: req.headers.origin ?? null, referer: req.headers.referer ?? null }));
    }
    if (req.url === '/') {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
      return void res.end(APP_PAGE);
    }
    if (req.url === '/stream') {
      res.writeHead(200, { 'content-type': 'text/plain' });
      let i = 0;
      const t = setInterval(() => {
        res.write(`tick ${i}\n`);
        if (++i === 5) {
          clearInterval(t);
          res.end();
        }
      }, 60);
      req.on('close', () => clearInterval(t));
      return;
    }
    res.writeHead(404).end();
  });
  const sockets = new Set<import('node:stream').Duplex>();
  server.on('upgrade', (req, socket) => {
    sockets.add(socket);
    upgradeOrigin = req.headers.origin;
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    const key = String(req.headers['sec-websocket-key'] ?? '');
    const accept = createHash('sha1')
      .update(key + '258EAFA5-E914-47DA-95CA-C5AB0DC85B11')
      .digest('base64');
    socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`);
    socket.on('data', (d: Buffer) => {
      if ((d[0]! & 0x0f) === 0x8) return void socket.end();
      const text = unmask(d);
      if (text !== undefined) socket.write(frame(`echo: ${text}`));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    lastUpgradeOrigin: () => upgradeOrigin,
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}
