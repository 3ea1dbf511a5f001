/**
 * The verifier really runs in a browser: src/verify is bundled with esbuild for the browser
 * platform (any node: import would fail the build) and verifyRatlsCertificate runs inside
 * headless Chromium on simulated RA-TLS certificates, using the page's WebCrypto.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import type { Browser, Page } from 'playwright-core';
import { INTEL_SGX_ROOT_CA_PEM } from '../../src/verify/roots.ts';
import { makeIdentity, makeWorld, type World } from '../client/helpers.ts';
import { artifact, hasChromium, launchChromium } from './chromium.ts';

const ENTRY = fileURLToPath(new URL('../../src/ratls/verify-cert.ts', import.meta.url));

interface BrowserResult {
  ok: boolean;
  tcbStatus: string | null;
  codes: string[];
  nonIntelRoot: boolean;
  mrTd: string | null;
  checks: number;
  userAgent: string;
}

let world: World;
let server: http.Server;
let url: string;
let browser: Browser;
let page: Page;
let bundleBytes = 0;

describe.skipIf(!hasChromium)('verifier bundle in headless Chromium', () => {
  beforeAll(async () => {
    world = await makeWorld();
    const out = await build({
      stdin: {
        contents: `import { verifyRatlsCertificate } from ${JSON.stringify(ENTRY)};\nglobalThis.ratlsVerifyCertificate = verifyRatlsCertificate;\n`,
        resolveDir: process.cwd(),
        loader: 'ts',
      },
      bundle: true,
      platform: 'browser',
      format: 'iife',
      target: 'es2022',
      write: false,
      logLevel: 'silent',
    });
    const js = out.outputFiles[0]!.contents;
    bundleBytes = js.length;
    const html =
      '<!doctype html><html><head><meta charset="utf-8"><title>ratls verifier</title><script src="/verifier.js"></script></head><body><h1>ratls verifier bundle</h1><pre id="out"></pre></body></html>';
    server = http.createServer((req, res) => {
      if (req.url === '/verifier.js') return void res.writeHead(200, { 'content-type': 'text/javascript' }).end(js);
      res.writeHead(200, { 'content-type': 'text/html' }).end(html);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
    browser = await launchChromium();
    page = await browser.newPage();
    await page.goto(url);
  });
  afterAll(async () => {
    await browser?.close();
    await new Promise<void>((r) => (server ? server.close(() => r()) : r()));
  });

  async function verifyInBrowser(der: Uint8Array, roots: string[]): Promise<BrowserResult> {
    return page.evaluate(
      async ({ b64, roots, now }) => {
        const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
        const fn = (globalThis as unknown as { ratlsVerifyCertificate: (d: Uint8Array, o: unknown) => Promise<any> }).ratlsVerifyCertificate;
        const r = await fn(bytes, { now: new Date(now), trustedRoots: roots });
        document.getElementById('out')!.textContent = JSON.stringify({ ok: r.ok, tcbStatus: r.tcbStatus, errors: r.errors, checks: r.checks }, null, 1);
        return {
          ok: r.ok,
          tcbStatus: r.tcbStatus,
          codes: r.errors.map((e: { code: string }) => e.code),
          nonIntelRoot: Boolean(r.nonIntelRoot),
          mrTd: r.quote?.mrTd ?? null,
          checks: r.checks.length,
          userAgent: navigator.userAgent,
        };
      },
      { b64: Buffer.from(der).toString('base64'), roots, now: new Date().toISOString() },
    );
  }

  it('bundles without Node built-ins', () => {
    expect(bundleBytes).toBeGreaterThan(10_000);
  });

  it('verifies a simulated RA-TLS certificate inside Chromium', async () => {
    const id = await makeIdentity(world);
    const r = await verifyInBrowser(id.certDer, [world.rootPem]);
    expect(r.userAgent).toMatch(/HeadlessChrome|Chrome/);
    expect(r.codes).toEqual([]);
    expect(r.ok).toBe(true);
    expect(r.tcbStatus).toBe('UpToDate');
    expect(r.nonIntelRoot).toBe(true);
    expect(r.mrTd).toMatch(/^[0-9a-f]{96}$/);
    await page.screenshot({ path: artifact('bundle-verify-ok.png'), fullPage: true });
  });

  it('rejects in the browser too: Intel-only roots, and a DEBUG TD', async () => {
    const id = await makeIdentity(world);
    expect((await verifyInBrowser(id.certDer, [INTEL_SGX_ROOT_CA_PEM])).codes).toContain('PCK_CHAIN_UNTRUSTED');
    const dbg = await makeIdentity(world, { debug: true });
    const r = await verifyInBrowser(dbg.certDer, [world.rootPem]);
    expect(r.ok).toBe(false);
    expect(r.codes).toContain('TD_DEBUG');
  });
});
