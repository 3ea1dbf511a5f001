/** `ratls connect` against ratls serve (simulated) and against bad servers. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'undici';
import { startRatlsServer, type RunningRatlsServer } from '../../src/proxy/server.ts';
import { validateConfig } from '../../src/proxy/config.ts';
import { startConnectProxy } from '../../src/client/connect.ts';
import { main } from '../../src/cli/main.ts';
import { makeWorld, onlySessionRequests, simPolicy, simulatedSource, startSpyServer, type SpyServer, type World } from './helpers.ts';
import { loadSimulatedProvider } from '../../src/tee/simulated/index.ts';
import { createRatlsIdentity } from '../../src/ratls/identity.ts';
import { startAppUpstream } from './app-upstream.ts';

let world: World;
let app: Awaited<ReturnType<typeof startAppUpstream>>;
let srv: RunningRatlsServer;
let debugSpy: SpyServer;

beforeAll(async () => {
  world = await makeWorld();
  app = await startAppUpstream();
  srv = await startRatlsServer(validateConfig({ listen: '127.0.0.1:0', log: { level: 'silent' }, routes: [{ prefix: '/', target: app.url, name: 'app' }] }), {
    identitySource: await simulatedSource(world),
    autoRotate: false,
  });
  const debugProvider = await loadSimulatedProvider(world.dir, { debug: true });
  debugSpy = await startSpyServer(await createRatlsIdentity({ provider: debugProvider, hosts: ['127.0.0.1'] }), undefined, {
    sessionQuote: (rd) => debugProvider.getQuote(rd),
  });
});
afterAll(async () => {
  await srv?.close({ drainTimeoutMs: 500 });
  await app?.close();
  await debugSpy?.close();
});

describe('ratls connect', () => {
  it('forwards HTTP, streams without buffering, proxies WebSockets, and shows status', async () => {
    const proxy = await startConnectProxy({
      upstream: srv.url,
      policy: simPolicy(world, (p) => {
        p.freshness.requireNonce = true;
      }),
    });
    try {
      expect(proxy.status().state).toBe('verified');
      const page = await fetch(`${proxy.url}/`);
      expect(page.status).toBe(200);
      expect(await page.text()).toContain('Hello from the attested app');

      // streaming: the first tick arrives long before the response ends
      const t0 = Date.now();
      const res = await fetch(`${proxy.url}/stream`);
      const reader = res.body!.getReader();
      const first = await reader.read();
      const tFirst = Date.now() - t0;
      let all = new TextDecoder().decode(first.value);
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        all += new TextDecoder().decode(value);
      }
      const tAll = Date.now() - t0;
      expect(all).toBe('tick 0\ntick 1\ntick 2\ntick 3\ntick 4\n');
      expect(tAll - tFirst).toBeGreaterThan(150);

      const ws = new WebSocket(`${proxy.url.replace('http', 'ws')}/ws`);
      const msg = await new Promise<string>((resolve, reject) => {
        ws.onopen = () => ws.send('hi');
        ws.onmessage = (m) => resolve(String(m.data));
        ws.onerror = () => reject(new Error('websocket failed'));
      });
      expect(msg).toBe('echo: hi');
      ws.close();

      // DNS rebinding guard: a foreign Host is refused, localhost is fine
      const http = await import('node:http');
      const hostStatus = (host: string) =>
        new Promise<number>((resolve, reject) => {
          http
            .get({ host: '127.0.0.1', port: proxy.port, path: '/', headers: { host } }, (r) => {
              r.resume();
              resolve(r.statusCode ?? 0);
            })
            .on('error', reject);
        });
      expect(await hostStatus(`evil.example:${proxy.port}`)).toBe(421);
      expect(await hostStatus(`127.0.0.1:${proxy.port + 1}`)).toBe(421);
      expect(await hostStatus(`localhost:${proxy.port}`)).toBe(200);

      const st = (await (await fetch(`${proxy.url}/.ratls/status`, { headers: { accept: 'application/json' } })).json()) as Record<string, any>;
      expect(st.state).toBe('verified');
      expect(st.lastVerified.nonceVerified).toBe(true);
      expect(st.lastVerified.result.tcbStatus).toBe('UpToDate');
      expect(st.lastVerified.result.quote.mrTd).toMatch(/^[0-9a-f]{96}$/);
      const html = await (await fetch(`${proxy.url}/.ratls/status`)).text();
      expect(html).toContain('SIMULATED');
      expect(html).toContain('VERIFIED');

      // a rotated certificate is attested again and counted as a change
      await srv.rotate();
      await proxy.reverify();
      expect(proxy.status().certificateChanges).toBe(1);
      expect(proxy.status().state).toBe('verified');
    } finally {
      await proxy.close();
    }
  });

  it("shows the upstream its own origin, not connect's local one (open-webui's CORS list gates socket.io)", async () => {
    const proxy = await startConnectProxy({ upstream: srv.url, policy: simPolicy(world) });
    try {
      const seen = (await (await fetch(`${proxy.url}/headers`, { headers: { origin: proxy.url, referer: `${proxy.url}/c/123?x=1` } })).json()) as {
        origin: string;
        referer: string;
      };
      const upstreamOrigin = new URL(srv.url).origin;
      expect(seen.origin).toBe(upstreamOrigin);
      expect(seen.referer).toBe(`${upstreamOrigin}/c/123?x=1`);
      const none = (await (await fetch(`${proxy.url}/headers`)).json()) as { origin: string | null };
      expect(none.origin).toBeNull();

      const http = await import('node:http');
      const status = await new Promise<number>((resolve, reject) => {
        const req = http.request({
          host: '127.0.0.1',
          port: proxy.port,
          path: '/ws',
          headers: {
            connection: 'Upgrade',
            upgrade: 'websocket',
            origin: proxy.url,
            'sec-websocket-version': '13',
            'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==',
          },
        });
        req.on('upgrade', (r, socket) => {
          socket.destroy();
          resolve(r.statusCode ?? 0);
        });
        req.on('response', (r) => resolve(r.statusCode ?? 0));
        req.on('error', reject);
        req.end();
      });
      expect(status).toBe(101);
      expect(app.lastUpgradeOrigin()).toBe(upstreamOrigin);
    } finally {
      await proxy.close();
    }
  });

  it('refuses a DEBUG server: forwards nothing, explains why in HTML and JSON', async () => {
    const proxy = await startConnectProxy({ upstream: debugSpy.url, policy: simPolicy(world) });
    try {
      expect(proxy.status().state).toBe('refused');
      const html = await fetch(`${proxy.url}/chat?prompt=secret`, { method: 'POST', body: 'my secret prompt' });
      expect(html.status).toBe(502);
      const text = await html.text();
      expect(text).toContain('Refused');
      expect(text).toContain('TD_DEBUG');
      const json = (await (await fetch(`${proxy.url}/x`, { headers: { accept: 'application/json' } })).json()) as {
        error: string;
        errors: Array<{ code: string }>;
      };
      expect(json.error).toBe('ATTESTATION_FAILED');
      expect(json.errors.map((e) => e.code)).toContain('TD_DEBUG');
      const ws = new WebSocket(`${proxy.url.replace('http', 'ws')}/ws`);
      await new Promise<void>((resolve) => {
        ws.onerror = () => resolve();
        ws.onclose = () => resolve();
      });
      // the session evidence request is all it ever got: no request of the browser's
      expect(onlySessionRequests(debugSpy.text())).toBe(true);
      expect(debugSpy.text()).not.toContain('secret');
      const st = (await (await fetch(`${proxy.url}/.ratls/status?format=json`)).json()) as { state: string; refusals: number };
      expect(st.state).toBe('refused');
      expect(st.refusals).toBeGreaterThan(0);
    } finally {
      await proxy.close();
    }
  });

  it('ratls verify CLI: exit 0 with a report, JSON, and exit 1 for a DEBUG server', async () => {
    const out: string[] = [];
    const io = { out: (s: string) => void out.push(s), err: (s: string) => void out.push(s), setExitCode: () => {}, isTty: false };
    const { writeFileSync, mkdtempSync, existsSync, readFileSync, readdirSync } = await import('node:fs');
    const { join } = await import('node:path');
    const { tmpdir } = await import('node:os');
    const rootFile = join(mkdtempSync(join(tmpdir(), 'ratls-root-')), 'root.pem');
    writeFileSync(rootFile, world.rootPem);
    expect(await main(['node', 'ratls', 'verify', srv.url, '--root', rootFile], io)).toBe(0);
    const report = out.join('');
    // nothing pinned: the verdict says what was proved, and how to pin
    expect(report).toMatch(
      /Verdict:\s+PASS: platform verified under a SIMULATED \/ non-Intel root \(TCB UpToDate\), but no software is pinned: any TD on it passes/,
    );
    expect(report).toContain(`Pin it:         ratls policy from --url ${srv.url} --root ${rootFile} --out policy.yaml`);
    expect(report).toContain(`ratls verify ${srv.url} --policy policy.yaml`);
    expect(report).not.toContain('the attested TD the policy expects');
    expect(report).toContain('SIMULATED');
    expect(report).toMatch(/Binding:\s+session: evidence bound to this TLS session/);
    expect(report).toMatch(/Platform:\s+PPID [0-9a-f]{32}, FMSPC ff[0-9a-f]{10}, PCE ID 0000 \(not pinned/);
    expect(report).toMatch(/Freshness:\s+fresh: quoted after our nonce/);
    expect(report).toMatch(/MRTD\s+not pinned\s+[0-9a-f]{96}/);
    expect(report).toMatch(/PPID\s+not pinned\s+[0-9a-f]{32}/);
    expect(report).toMatch(/TCB status:\s+UpToDate\s+\(policy allows: UpToDate\)/);
    out.length = 0;
    expect(await main(['node', 'ratls', 'verify', srv.url, '--root', rootFile, '--binding', 'certificate', '--nonce'], io)).toBe(0);
    expect(out.join('')).toContain('nonce round trip passed');
    expect(out.join('')).toMatch(/Binding:\s+certificate only: .*relayable if the TLS key leaks/);
    out.length = 0;
    expect(await main(['node', 'ratls', 'verify', srv.url, '--root', rootFile, '--json'], io)).toBe(0);
    const j = JSON.parse(out.join('')) as {
      ok: boolean;
      ratls: { profile: string };
      certificate: { fingerprintSha256: string };
      policyCheck: { softwarePinned: boolean; pinned: string[]; verdict: string };
    };
    expect(j.ok).toBe(true);
    expect(j.ratls.profile).toBe('ccc');
    expect(j.policyCheck).toMatchObject({ softwarePinned: false, pinned: [] });
    expect(j.policyCheck.verdict).toMatch(/no software is pinned/);
    out.length = 0;
    expect(await main(['node', 'ratls', 'verify', debugSpy.url, '--root', rootFile], io)).toBe(1);
    expect(out.join('')).toContain('TD_DEBUG');
    out.length = 0;
    expect(await main(['node', 'ratls', 'verify', 'https://127.0.0.1:9', '--root', rootFile], io)).toBe(2);
    out.length = 0;
    // policy from: pins what the server presents; the pinned policy then passes
    expect(await main(['node', 'ratls', 'policy', 'from', '--url', srv.url, '--root', rootFile], io)).toBe(0);
    const yaml = out.join('');
    expect(yaml).toContain('SIMULATED');
    expect(yaml).toMatch(/mrTd:\n\s+- [0-9a-f]{96}/);
    // nothing of this machine in a file meant to be published: no cache directory, no absolute path
    expect(yaml).not.toMatch(/cacheDir|directories|\/tmp\/|\/root\/|\/home\//);
    // --out writes the file only when the policy could be made
    const outDir = mkdtempSync(join(tmpdir(), 'ratls-out-'));
    out.length = 0;
    expect(await main(['node', 'ratls', 'policy', 'from', '--url', srv.url, '--out', join(outDir, 'fail.yaml')], io)).toBe(1);
    expect(out.join('')).toContain('PCK_CHAIN_UNTRUSTED');
    expect(out.join('')).toContain('--root .ratls/sim/root.pem');
    expect(existsSync(join(outDir, 'fail.yaml'))).toBe(false);
    out.length = 0;
    expect(await main(['node', 'ratls', 'policy', 'from', '--url', srv.url, '--root', rootFile, '--out', join(outDir, 'ok.yaml')], io)).toBe(0);
    expect(readFileSync(join(outDir, 'ok.yaml'), 'utf8').replace(/^#.*\n/gm, '')).toBe(yaml.replace(/^#.*\n/gm, ''));
    expect(readdirSync(outDir)).toEqual(['ok.yaml']);
    out.length = 0;
    // --cert FILE gives the same pins without connecting
    const certFile = join(mkdtempSync(join(tmpdir(), 'ratls-cert-')), 'cert.pem');
    writeFileSync(certFile, srv.identity().certPem);
    out.length = 0;
    expect(await main(['node', 'ratls', 'policy', 'from', '--cert', certFile, '--root', rootFile], io)).toBe(0);
    expect(out.join('').replace(/^#.*\n/gm, '')).toBe(yaml.replace(/^#.*\n/gm, ''));
    out.length = 0;
    expect(await main(['node', 'ratls', 'policy', 'from', '--cert', certFile], io)).toBe(1); // Intel root only: nothing to pin
    expect(out.join('')).toContain('PCK_CHAIN_UNTRUSTED');
    expect(await main(['node', 'ratls', 'policy', 'from'], io)).toBe(2);
    const pfile = join(mkdtempSync(join(tmpdir(), 'ratls-pol-')), 'p.yaml');
    writeFileSync(pfile, yaml);
    out.length = 0;
    expect(await main(['node', 'ratls', 'verify', srv.url, '--policy', pfile], io)).toBe(0);
    expect(out.join('')).toMatch(/Verdict:\s+PASS: .*and the TD matches the pinned MRTD, RTMR0, RTMR1, RTMR2, RTMR3, MRSEAM, XFAM, TDATTRIBUTES/);
    expect(out.join('')).toMatch(/MRTD\s+matches\s+[0-9a-f]{96}/);
    expect(out.join('')).not.toContain('Pin it:');
    out.length = 0;
    expect(await main(['node', 'ratls', 'verify', debugSpy.url, '--policy', pfile], io)).toBe(1);
    expect(out.join('')).toMatch(/DEBUG\s+not allowed\s+yes/);
    out.length = 0;
    // a wrong MRTD: the report shows the value presented and the one expected
    const actualMrTd = /mrTd:\n\s+- ([0-9a-f]{96})/.exec(yaml)![1]!;
    const wrong = join(mkdtempSync(join(tmpdir(), 'ratls-pol-')), 'wrong.yaml');
    writeFileSync(wrong, yaml.replace(actualMrTd, 'ab'.repeat(48)));
    expect(await main(['node', 'ratls', 'verify', srv.url, '--policy', wrong], io)).toBe(1);
    expect(out.join('')).toContain(`MRTD         MISMATCH    ${actualMrTd}`);
    expect(out.join('')).toContain(`expected    ${'ab'.repeat(48)}`);
    out.length = 0;
    expect(await main(['node', 'ratls', 'policy', 'check', pfile], io)).toBe(0);
    expect(out.join('')).toContain('pinned             mrTd, rtmr0');
    writeFileSync(pfile, 'allowDebg: true\n');
    expect(await main(['node', 'ratls', 'policy', 'check', pfile], io)).toBe(2);
    expect(await main(['node', 'ratls', 'verify', srv.url, '--policy', pfile], io)).toBe(2);
  });

  it('the real `ratls connect` process: starts, forwards, and stops on SIGTERM', async () => {
    const { spawn } = await import('node:child_process');
    const { writeFileSync, mkdtempSync } = await import('node:fs');
    const { join } = await import('node:path');
    const { tmpdir } = await import('node:os');
    const rootFile = join(mkdtempSync(join(tmpdir(), 'ratls-root-')), 'root.pem');
    writeFileSync(rootFile, world.rootPem);
    const bin = new URL('../../bin/ratls', import.meta.url).pathname;
    const child = spawn(process.execPath, [bin, 'connect', '--upstream', srv.url, '--listen', '127.0.0.1:0', '--root', rootFile, '--nonce'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    try {
      let out = '';
      const url = await new Promise<string>((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`no URL printed: ${out}`)), 30_000);
        child.stdout.on('data', (d: Buffer) => {
          out += d.toString();
          const m = /ratls connect: (http:\/\/127\.0\.0\.1:\d+) ->/.exec(out);
          if (m && out.includes('status page')) {
            clearTimeout(t);
            resolve(m[1]!);
          }
        });
        child.once('exit', (code) => reject(new Error(`exited ${code}: ${out}`)));
      });
      expect(out).toContain('attestation PASS: platform verified under a SIMULATED / non-Intel root (TCB UpToDate), but no software is pinned');
      expect(out).toContain('pin it: ratls policy from --url');
      expect(out).toContain('[SIMULATED root]');
      const page = await fetch(`${url}/`);
      expect(await page.text()).toContain('Hello from the attested app');
      const code = await new Promise<number | null>((resolve) => {
        child.once('exit', (c) => resolve(c));
        child.kill('SIGTERM');
      });
      expect(code).toBe(0);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  });
});
