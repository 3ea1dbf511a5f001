/**
 * A browser (headless Debian Chromium) uses the open-webui-shaped demo the way people use
 * open-webui: through `ratls connect` to `ratls serve` with its default routing. It signs in, picks
 * a model, gets a streamed answer from /api/chat/completions, uploads a file, and opens socket.io
 * on /ws/socket.io with its login token; all on the one origin, as open-webui's frontend does.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHash, randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import type { Browser } from 'playwright-core';
import { startRatlsServer, type RunningRatlsServer } from '../../src/proxy/server.ts';
import { validateConfig } from '../../src/proxy/config.ts';
import { startConnectProxy, type RunningConnectProxy } from '../../src/client/connect.ts';
import { startDemoApps, type RunningDemoApps } from '../../src/demo/apps.ts';
import { makeWorld, simPolicy, simulatedSource } from '../client/helpers.ts';
import { artifact, hasChromium, launchChromium } from './chromium.ts';

// the browser bundle socket.io-client ships (not in its package exports, so by path)
const SOCKET_IO_CLIENT = fileURLToPath(new URL('../../node_modules/socket.io-client/dist/socket.io.min.js', import.meta.url));

let demo: RunningDemoApps;
let srv: RunningRatlsServer;
let proxy: RunningConnectProxy;
let browser: Browser;

describe.skipIf(!hasChromium)('headless Chromium: the open-webui-shaped demo through ratls connect and ratls serve', () => {
  beforeAll(async () => {
    const world = await makeWorld();
    demo = await startDemoApps({ tokenDelayMs: 20 });
    srv = await startRatlsServer(
      validateConfig({ listen: '127.0.0.1:0', log: { level: 'silent' }, upstreams: { openWebui: demo.webui.url, ollama: demo.ollama.url } }),
      { identitySource: await simulatedSource(world), autoRotate: false },
    );
    proxy = await startConnectProxy({ upstream: srv.url, policy: simPolicy(world) });
    browser = await launchChromium();
  });
  afterAll(async () => {
    await browser?.close();
    await proxy?.close();
    await srv?.close({ drainTimeoutMs: 200 });
    await demo?.close();
  });

  it('signs in, chats with a streamed answer, uploads a file and joins socket.io', async () => {
    const { email, password } = demo.credentials.credentials;
    const page = await browser.newPage();
    expect((await page.goto(`${proxy.url}/`))?.status()).toBe(200);
    await page.waitForSelector('#login-form', { state: 'visible' });
    await page.fill('#email', email);
    await page.fill('#password', 'wrong password');
    await page.click('#login-form button');
    await page.waitForFunction(() => document.getElementById('login-status')?.textContent?.includes('incorrect'));
    await page.fill('#password', password);
    await page.click('#login-form button');
    await page.waitForSelector('#app', { state: 'visible' });
    expect(await page.textContent('#whoami')).toContain(email);
    await page.waitForFunction(() => (document.getElementById('model') as HTMLSelectElement).options.length === 2);

    await page.selectOption('#model', 'ratls-demo:mini');
    await page.fill('#prompt', 'hello from chromium');
    await page.click('#chat-form button');
    await page.waitForFunction(() => document.getElementById('chat-status')?.textContent === 'done', undefined, { timeout: 15_000 });
    expect(await page.textContent('#answer')).toContain('You said: "hello from chromium"');
    expect(await page.textContent('#answer')).toContain('ratls-demo:mini');

    const bytes = randomBytes(200_000);
    await page.setInputFiles('#file', { name: 'report.bin', mimeType: 'application/octet-stream', buffer: bytes });
    await page.click('#upload-form button');
    await page.waitForFunction(() => document.getElementById('upload-status')?.textContent?.startsWith('uploaded'));
    expect(await page.textContent('#upload-status')).toBe(`uploaded report.bin: 200000 bytes, sha256 ${createHash('sha256').update(bytes).digest('hex')}`);

    await page.addScriptTag({ path: SOCKET_IO_CLIENT });
    const joined = await page.evaluate(async () => {
      const token = localStorage.getItem('token');
      const w = window as unknown as {
        io: (o: object) => { on(e: string, f: (x?: unknown) => void): void; timeout(ms: number): { emitWithAck(e: string, d: unknown): Promise<unknown> } };
      };
      const s = w.io({ path: '/ws/socket.io', transports: ['websocket'], auth: { token } });
      await new Promise((resolve, reject) => {
        s.on('connect', resolve);
        s.on('connect_error', reject);
      });
      return s.timeout(5000).emitWithAck('user-join', { auth: { token } });
    });
    expect(joined).toMatchObject({ name: demo.credentials.credentials.name });
    await page.screenshot({ path: artifact('open-webui-demo-chat.png'), fullPage: true });

    await page.click('#signout');
    await page.waitForSelector('#login-form', { state: 'visible' });
    await page.close();
  });
});
