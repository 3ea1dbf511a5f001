/**
 * An ordinary browser (headless Debian Chromium) uses the real open-webui through `ratls connect`
 * (which attests `ratls serve`, nonce round trip on every new connection): the login form, the
 * chat page, a chat whose answer streams back over open-webui's socket.io, and the admin's
 * connection settings, which call open-webui's own /ollama/config.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, Page, WebSocket } from 'playwright-core';
import { artifact, hasChromium, launchChromium } from '../browser/chromium.ts';
import { createAttestedFetch } from '../../src/client/index.ts';
import { peers, peersPolicy } from './context.ts';

const P = peers();
let browser: Browser;
let page: Page;
const sockets: Array<{ url: string; received: string[] }> = [];
/** The page's console and failed requests, printed when a test fails. */
const pageLog: string[] = [];

beforeAll(async () => {
  // open-webui shows an admin the release notes (a modal over the chat) until they acknowledge this
  // version; acknowledge it as its "Okay, Let's Go!" button does, so the test drives the chat itself.
  const fetchA = createAttestedFetch(peersPolicy(P.rootPem));
  const signin = await fetchA(`${P.serveUrl}/api/v1/auths/signin`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ email: P.admin.email, password: P.admin.password }),
  });
  const { token } = (await signin.json()) as { token: string };
  const ack = await fetchA(`${P.serveUrl}/api/v1/users/user/settings/update`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body: JSON.stringify({ ui: { version: P.openWebuiVersion } }),
  });
  expect(ack.status).toBe(200);
  await fetchA.close();
  if (!hasChromium) throw new Error('Debian chromium is missing (apt-get install chromium); the peer suite does not skip.');
  browser = await launchChromium();
  page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  page.on('console', (m) => pageLog.push(`console.${m.type()}: ${m.text().slice(0, 300)}`));
  page.on('requestfailed', (r) => pageLog.push(`request failed: ${r.url()} ${r.failure()?.errorText ?? ''}`));
  page.on('response', (r) => {
    if (r.status() >= 400) pageLog.push(`HTTP ${r.status()} ${r.url()}`);
  });
  page.on('websocket', (ws: WebSocket) => {
    const rec = { url: ws.url(), received: [] as string[] };
    sockets.push(rec);
    ws.on('framereceived', (f) => rec.received.push(typeof f.payload === 'string' ? f.payload : f.payload.toString('utf8')));
  });
});
afterEach(async ({ task }) => {
  if (task.result?.state !== 'fail' || !page) return;
  await page.screenshot({ path: artifact(`peers-failed-${task.name.slice(0, 40).replace(/\W+/g, '-')}.png`), fullPage: true }).catch(() => {});
  console.log(`[browser] ${page.url()}\n${pageLog.slice(-40).join('\n')}`);
});
afterAll(async () => {
  await browser?.close();
});

describe('headless Chromium -> ratls connect -> ratls serve -> open-webui', () => {
  it('signs in with the login form and lands on the chat page', async () => {
    const res = await page.goto(`${P.connectUrl}/auth`);
    expect(res?.status()).toBe(200);
    await page.locator('#email').fill(P.admin.email);
    await page.locator('#password').fill(P.admin.password);
    await page.locator('button[type="submit"]').click();
    await page.waitForURL((u) => !u.pathname.startsWith('/auth'), { timeout: 60_000 });
    await page.locator('#chat-input').waitFor({ timeout: 60_000 });
    expect(await page.evaluate(() => localStorage.getItem('token'))).toBeTruthy();
    await page.screenshot({ path: artifact('peers-chat-page.png') });
  });

  it("chats with the tiny model: the answer streams back over open-webui's socket.io", async () => {
    const model = P.models[0]!.name;
    await page.goto(`${P.connectUrl}/?model=${encodeURIComponent(model)}`);
    await page.locator('#chat-input').waitFor({ timeout: 60_000 });
    await page.locator('#chat-input').click();
    await page.keyboard.type('Hello from a browser behind ratls connect');
    await page.keyboard.press('Enter');
    const answer = page.locator('#response-content-container').first();
    await expect.poll(async () => ((await answer.textContent()) ?? '').trim().split(/\s+/).length, { timeout: 90_000 }).toBeGreaterThanOrEqual(6);
    await page.screenshot({ path: artifact('peers-chat-answer.png') });
    const text = ((await answer.textContent()) ?? '').trim();
    // every word is one of the tiny model's vocabulary words (nonsense, but the model's own)
    expect(text.split(/\s+/).every((w) => /^[a-z]+$/.test(w))).toBe(true);
    const ws = sockets.filter((s) => s.url.startsWith(P.connectUrl.replace('http', 'ws')) && s.url.includes('/ws/socket.io/'));
    expect(ws.length, 'socket.io WebSocket opened through ratls connect').toBeGreaterThan(0);
    // socket.io event frames: 42["events", {chat_id, message_id, data: {type, data}}]
    const types = new Set<string>();
    for (const s of ws)
      for (const f of s.received) {
        const m = /^42(\[.*\])$/s.exec(f);
        const msg = m ? (JSON.parse(m[1]!) as [string, { data?: { type?: string } }]) : undefined;
        if (msg?.[0] === 'events' && msg[1]?.data?.type) types.add(msg[1].data.type);
      }
    expect([...types], 'open-webui streamed the answer as chat:completion events over socket.io').toContain('chat:completion');
  });

  it("opens the admin's connection settings, which read open-webui's own /ollama/config", async () => {
    const config = page.waitForResponse((r) => new URL(r.url()).pathname === '/ollama/config', { timeout: 60_000 });
    await page.goto(`${P.connectUrl}/admin/settings/connections`);
    const res = await config;
    expect(res.status()).toBe(200);
    expect((await res.json()).OLLAMA_BASE_URLS).toEqual([P.ollamaUrl]);
    await page
      .getByText(/ollama api/i)
      .first()
      .waitFor({ timeout: 30_000 });
    await page.screenshot({ path: artifact('peers-admin-connections.png'), fullPage: true });
  });

  it("shows ratls connect's status page: VERIFIED, SIMULATED", async () => {
    await page.goto(`${P.connectUrl}/.ratls/status`);
    expect(await page.textContent('#ratls-state')).toContain('VERIFIED');
    expect(await page.isVisible('#ratls-simulated')).toBe(true);
  });
});
