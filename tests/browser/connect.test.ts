/**
 * An ordinary browser (headless Debian Chromium) uses an attested server through `ratls connect`:
 * the page and its WebSocket load; with a bad server the refusal page is shown instead.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser } from 'playwright-core';
import { startRatlsServer, type RunningRatlsServer } from '../../src/proxy/server.ts';
import { validateConfig } from '../../src/proxy/config.ts';
import { startConnectProxy, type RunningConnectProxy } from '../../src/client/connect.ts';
import { makeWorld, simPolicy, simulatedSource, type World } from '../client/helpers.ts';
import { startAppUpstream } from '../client/app-upstream.ts';
import { artifact, hasChromium, launchChromium } from './chromium.ts';

let world: World;
let app: Awaited<ReturnType<typeof startAppUpstream>>;
let good: RunningRatlsServer;
let bad: RunningRatlsServer;
let goodProxy: RunningConnectProxy;
let badProxy: RunningConnectProxy;
let browser: Browser;

const serveConfig = (target: string) => validateConfig({ listen: '127.0.0.1:0', log: { level: 'silent' }, routes: [{ prefix: '/', target, name: 'app' }] });

describe.skipIf(!hasChromium)('headless Chromium through ratls connect', () => {
  beforeAll(async () => {
    world = await makeWorld();
    app = await startAppUpstream();
    good = await startRatlsServer(serveConfig(app.url), { identitySource: await simulatedSource(world), autoRotate: false });
    // same app, same world, but the TD runs in DEBUG mode
    bad = await startRatlsServer(serveConfig(app.url), { identitySource: await simulatedSource(world, { debug: true }), autoRotate: false });
    // the default policy: session binding on every upstream connection
    goodProxy = await startConnectProxy({ upstream: good.url, policy: simPolicy(world) });
    badProxy = await startConnectProxy({ upstream: bad.url, policy: simPolicy(world) });
    browser = await launchChromium();
  });
  afterAll(async () => {
    await browser?.close();
    await goodProxy?.close();
    await badProxy?.close();
    await good?.close({ drainTimeoutMs: 200 });
    await bad?.close({ drainTimeoutMs: 200 });
    await app?.close();
  });

  it('loads the page and its WebSocket through an attested server', async () => {
    const page = await browser.newPage();
    const res = await page.goto(`${goodProxy.url}/`);
    expect(res?.status()).toBe(200);
    expect(await page.textContent('#title')).toBe('Hello from the attested app');
    await page.waitForFunction(() => document.getElementById('ws')?.textContent?.includes('echo'), undefined, { timeout: 15_000 });
    expect(await page.textContent('#ws')).toBe('websocket: echo: ping from the browser');
    await page.screenshot({ path: artifact('connect-good-page.png') });
    await page.goto(`${goodProxy.url}/.ratls/status`);
    expect(await page.textContent('#ratls-state')).toContain('VERIFIED');
    expect(await page.isVisible('#ratls-simulated')).toBe(true);
    expect(await page.textContent('body')).toContain('session: evidence bound to each upstream TLS session');
    expect(await page.textContent('body')).toMatch(/PPID [0-9a-f]{32}/);
    await page.screenshot({ path: artifact('connect-status.png'), fullPage: true });
    await page.close();
  });

  it('shows the refusal page for a DEBUG server, and the app never loads', async () => {
    const page = await browser.newPage();
    const res = await page.goto(`${badProxy.url}/`);
    expect(res?.status()).toBe(502);
    expect(await page.textContent('#ratls-refused')).toContain('did not pass attestation');
    expect(await page.textContent('#ratls-reasons')).toContain('TD_DEBUG');
    // what the policy expects, next to what the server presented
    const debugRow = await page.textContent('#ratls-expectations tr.bad');
    expect(debugRow).toBe('DEBUGnoyesMISMATCH');
    expect(await page.$('#title')).toBeNull();
    await page.screenshot({ path: artifact('connect-refused.png'), fullPage: true });
    await page.close();
  });
});
