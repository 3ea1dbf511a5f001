/**
 * The cross-site attack on `ratls connect` with a real browser: a page from another site (here
 * http://localhost:EVIL, the proxy being http://127.0.0.1:PORT) fires a no-cors POST and opens a
 * WebSocket to the proxy. Neither may reach the attested server.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import http from 'node:http';
import https from 'node:https';
import { createHash } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import type { Browser } from 'playwright-core';
import { startConnectProxy, type RunningConnectProxy } from '../../../src/client/connect.ts';
import { makeSessionIdentity, makeWorld, simPolicy } from '../../client/helpers.ts';
import { hasChromium, launchChromium } from '../../browser/chromium.ts';

describe.skipIf(!hasChromium)('a cross-site page in Chromium against ratls connect', () => {
  const seen: string[] = [];
  const sockets = new Set<Duplex>();
  let upstream: https.Server;
  let evil: http.Server;
  let proxy: RunningConnectProxy;
  let browser: Browser;
  let evilUrl = '';

  beforeAll(async () => {
    const world = await makeWorld();
    const id = await makeSessionIdentity(world);
    upstream = https.createServer({ cert: id.certPem, key: id.keyPem, ALPNProtocols: ['http/1.1'] }, (req, res) => {
      if (id.answerSession(req, res)) return;
      seen.push(`${req.method} ${req.url}`);
      res.writeHead(200, { 'content-type': 'text/html' }).end('<title>app</title>app');
    });
    upstream.on('upgrade', (req, socket: Duplex) => {
      seen.push(`UPGRADE ${req.url} origin=${req.headers.origin}`);
      sockets.add(socket);
      socket.on('error', () => {});
      const accept = createHash('sha1')
        .update(String(req.headers['sec-websocket-key']) + '258EAFA5-E914-47DA-95CA-C5AB0DC85B11')
        .digest('base64');
      socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`);
    });
    await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
    proxy = await startConnectProxy({ upstream: `https://127.0.0.1:${(upstream.address() as AddressInfo).port}`, policy: simPolicy(world) });
    const target = proxy.url; // http://127.0.0.1:PORT
    const page = `<!doctype html><title>evil</title><script>
      fetch(${JSON.stringify(`${target}/ollama/api/pull`)}, { method: 'POST', mode: 'no-cors', body: '{"model":"attacker/model"}' }).catch(() => {});
      const ws = new WebSocket(${JSON.stringify(`${target.replace('http', 'ws')}/ws`)});
      ws.onopen = () => { ws.send('hijacked'); document.title = 'ws-open'; };
      ws.onerror = () => { document.title = 'ws-refused'; };
    </script>`;
    evil = http.createServer((_req, res) => res.writeHead(200, { 'content-type': 'text/html' }).end(page));
    await new Promise<void>((r) => evil.listen(0, '127.0.0.1', r));
    evilUrl = `http://localhost:${(evil.address() as AddressInfo).port}/`;
    browser = await launchChromium();
  });
  afterAll(async () => {
    await browser?.close();
    await proxy?.close();
    for (const s of sockets) s.destroy();
    upstream?.closeAllConnections();
    await new Promise<void>((r) => (upstream ? upstream.close(() => r()) : r()));
    await new Promise<void>((r) => (evil ? evil.close(() => r()) : r()));
  });

  it('forwards neither the POST nor the WebSocket', async () => {
    const page = await browser.newPage();
    await page.goto(evilUrl);
    await page.waitForFunction(() => document.title !== 'evil', undefined, { timeout: 10_000 });
    expect(await page.title()).toBe('ws-refused');
    await new Promise((r) => setTimeout(r, 300));
    expect(seen).toEqual([]);
    // the proxy still serves its own origin
    await page.goto(`${proxy.url}/`);
    expect(await page.title()).toBe('app');
    expect(seen[0]).toBe('GET /');
    expect(seen.filter((x) => !x.startsWith('GET '))).toEqual([]);
    await page.close();
  });
});
