/**
 * Event-log replay runs in a browser: src/eventlog is bundled for the browser platform (no Node
 * built-ins; hashing through the page's WebCrypto) and replays the real GCP COS 113 CCEL log and
 * dstack's attestation inside headless Chromium to the RTMRs of their quotes.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseQuote } from '../../src/quote/parse.ts';
import { decodeDstackAttestation } from '../../src/eventlog/dstack.ts';
import { toHex } from '../../src/core/bytes.ts';
import { readTestFile } from '../helpers/testdata.ts';
import { eventlogFixture } from '../helpers/eventlog.ts';
import { hasChromium, launchChromium } from './chromium.ts';

const APPRAISE = fileURLToPath(new URL('../../src/eventlog/appraise.ts', import.meta.url));
const DSTACK = fileURLToPath(new URL('../../src/eventlog/dstack.ts', import.meta.url));

let server: http.Server;
let browser: Browser;
let page: Page;
let js = '';

describe.skipIf(!hasChromium)('event-log replay in headless Chromium', () => {
  beforeAll(async () => {
    const out = await build({
      stdin: {
        contents: `import { appraiseWorkload } from ${JSON.stringify(APPRAISE)};\nimport { decodeDstackAttestation } from ${JSON.stringify(DSTACK)};\nglobalThis.ratlsEventlog = { appraiseWorkload, decodeDstackAttestation };\n`,
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
    js = out.outputFiles[0]!.text;
    server = http.createServer((req, res) => {
      if (req.url === '/eventlog.js') return void res.writeHead(200, { 'content-type': 'text/javascript' }).end(js);
      res.writeHead(200, { 'content-type': 'text/html' }).end('<!doctype html><title>eventlog</title><script src="/eventlog.js"></script>');
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    browser = await launchChromium();
    page = await browser.newPage();
    await page.goto(`http://127.0.0.1:${(server.address() as AddressInfo).port}/`);
  });
  afterAll(async () => {
    await browser?.close();
    await new Promise<void>((r) => (server ? server.close(() => r()) : r()));
  });

  it('bundles without Node built-ins', () => {
    expect(js).not.toMatch(/require\(["']node:/);
  });

  it('replays the GCP COS 113 CCEL log and dstack attestation.bin to their quotes', async () => {
    const q = parseQuote(readTestFile('quotes/v4-gcp-cos113-00806f050000-gotdxguest.dat')).body;
    const rtmrs = [toHex(q.rtmr0), toHex(q.rtmr1), toHex(q.rtmr2), toHex(q.rtmr3)];
    const att = eventlogFixture('dstack-attestation.bin');
    const dq = parseQuote(decodeDstackAttestation(att).quote).body;
    const drtmrs = [toHex(dq.rtmr0), toHex(dq.rtmr1), toHex(dq.rtmr2), toHex(dq.rtmr3)];
    const r = await page.evaluate(
      async ({ log, att, rtmrs, drtmrs }) => {
        const b = (s: string) => Uint8Array.from(atob(s), (c) => c.charCodeAt(0));
        const el = (
          globalThis as unknown as { ratlsEventlog: { appraiseWorkload: (i: unknown) => Promise<any>; decodeDstackAttestation: (b: Uint8Array) => any } }
        ).ratlsEventlog;
        const boot = await el.appraiseWorkload({ rtmrs, evidence: [], bootLog: b(log) });
        const events = el.decodeDstackAttestation(b(att)).events;
        const dstack = await el.appraiseWorkload({ rtmrs: drtmrs, evidence: [], dstack: { events, registers: [0, 1, 2, 3] } });
        return {
          boot: boot.report.boot.replayed,
          bootErrors: boot.errors,
          dstack: dstack.report.dstack.replayed,
          dstackErrors: dstack.errors,
          ua: navigator.userAgent,
        };
      },
      { log: Buffer.from(eventlogFixture('gcp-cos113-ccel-data.bin')).toString('base64'), att: Buffer.from(att).toString('base64'), rtmrs, drtmrs },
    );
    expect(r.ua).toMatch(/Chrome/);
    expect(r.bootErrors).toEqual([]);
    expect(r.boot).toEqual({ RTMR0: 'match', RTMR1: 'match', RTMR2: 'match' });
    expect(r.dstackErrors).toEqual([]);
    expect(r.dstack).toEqual({ RTMR0: 'match', RTMR1: 'match', RTMR2: 'match', RTMR3: 'match' });
  });
});
