/**
 * Control routes of `ratls serve` under requests they were not written for:
 *
 * - P11: `HEAD /healthz` and `HEAD /readyz` answered 500 (Hono wraps the GET answer for HEAD, which
 *   @hono/node-server cannot do for a bare `c.text(text)`), so a HEAD health check saw a healthy
 *   proxy as failing and every probe counted as a 500.
 * - P12: a control request that declares a body (`GET /.well-known/ratls/session` with
 *   `Content-Length: 100000000`) kept its connection open after the answer, waiting for the body
 *   up to `limits.requestTimeout` (1 h) instead of the 65 s keep-alive: cheap slowloris.
 * - E2: a client that closes its connection while its session evidence is queued was counted as
 *   `ratls_evidence_requests_total{result="error"}`, so anyone could raise evidence-failure alerts.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import tls from 'node:tls';
import { randomBytes } from 'node:crypto';
import { startRatlsServer, type RunningRatlsServer } from '../../../src/proxy/server.ts';
import { makeWorld, simulatedSource } from '../../client/helpers.ts';
import { testConfig } from '../../proxy/helpers.ts';

let srv: RunningRatlsServer;

beforeAll(async () => {
  const world = await makeWorld();
  srv = await startRatlsServer(testConfig({ routes: [{ prefix: '/', target: 'http://127.0.0.1:9' }] }), {
    identitySource: await simulatedSource(world, { quoteLatencyMs: 300 }),
    autoRotate: false,
  });
});
afterAll(async () => {
  await srv?.close({ drainTimeoutMs: 100 });
});

/** Writes `request` on a new TLS connection; the answer so far and whether the server closed, after `waitMs`. */
function exchange(request: string, waitMs: number): Promise<{ answer: string; closedByServer: boolean }> {
  return new Promise((resolve, reject) => {
    const s = tls.connect({ host: '127.0.0.1', port: srv.port, rejectUnauthorized: false }, () => s.write(request));
    let answer = '';
    let closedByServer = false;
    s.on('data', (d: Buffer) => (answer += d.toString('latin1')));
    s.on('end', () => (closedByServer = true));
    s.on('close', () => (closedByServer = true));
    s.on('error', reject);
    setTimeout(() => {
      s.destroy();
      resolve({ answer, closedByServer });
    }, waitMs);
  });
}

const status = (answer: string) => Number(/^HTTP\/1\.1 (\d{3})/.exec(answer)?.[1] ?? 0);
const counter = async (kind: string, result: string): Promise<number> => {
  const text = await srv.metrics.registry.metrics();
  const m = new RegExp(`^ratls_evidence_requests_total\\{kind="${kind}",result="${result}"\\} (\\d+)`, 'm').exec(text);
  return Number(m?.[1] ?? 0);
};

describe('HEAD on control routes', () => {
  it.each(['/healthz', '/readyz', '/metrics', '/.well-known/ratls/certificate'])('HEAD %s answers 200 like GET, without a body', async (path) => {
    const { answer } = await exchange(`HEAD ${path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n`, 1000);
    expect(status(answer)).toBe(200);
    expect(answer.split('\r\n\r\n')[1]).toBe('');
    const text = await srv.metrics.registry.metrics();
    expect(text).not.toMatch(/ratls_requests_total\{[^}]*route="control",method="HEAD",status="500"/);
  });
});

describe('control requests that declare a body', () => {
  const nonce = () => randomBytes(32).toString('hex');
  it.each([
    ['session (fast path)', () => `/.well-known/ratls/session?nonce=${nonce()}`],
    ['nonce evidence', () => `/.well-known/ratls/evidence?nonce=${nonce()}`],
    ['health', () => '/healthz'],
    ['unknown control route', () => '/.well-known/ratls/x'],
  ])('%s: answered, then the connection is closed and the body never awaited', async (_name, path) => {
    const { answer, closedByServer } = await exchange(`GET ${path()} HTTP/1.1\r\nHost: localhost\r\nContent-Length: 100000000\r\n\r\nab`, 2500);
    expect(status(answer)).toBeGreaterThanOrEqual(200);
    expect(answer.toLowerCase()).toContain('connection: close');
    expect(closedByServer).toBe(true);
  });

  it('a chunked body is treated the same', async () => {
    const { closedByServer } = await exchange(`GET /healthz HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab`, 1500);
    expect(closedByServer).toBe(true);
  });

  it('without a body the connection stays open for the next request (keep-alive unchanged)', async () => {
    const { answer, closedByServer } = await exchange(`GET /healthz HTTP/1.1\r\nHost: localhost\r\nContent-Length: 0\r\n\r\n`, 1000);
    expect(status(answer)).toBe(200);
    expect(closedByServer).toBe(false);
  });
});

describe('a client that leaves while its session evidence is queued', () => {
  it('is counted as aborted, not as an evidence error', async () => {
    const before = { error: await counter('session', 'error'), aborted: await counter('session', 'aborted'), ok: await counter('session', 'ok') };
    // quotes take 300 ms and the clients leave after 50 ms: the first one's quote is already being
    // made (it completes: ok), the others wait for the next batch and are dropped from it
    await Promise.all(
      Array.from({ length: 5 }, () =>
        exchange(`GET /.well-known/ratls/session?nonce=${randomBytes(32).toString('hex')} HTTP/1.1\r\nHost: localhost\r\n\r\n`, 50),
      ),
    );
    const settled = async () => (await counter('session', 'aborted')) + (await counter('session', 'ok')) - before.aborted - before.ok;
    for (let i = 0; i < 50 && (await settled()) < 5; i++) await new Promise((r) => setTimeout(r, 100));
    expect(await settled()).toBe(5);
    expect(await counter('session', 'aborted')).toBeGreaterThanOrEqual(before.aborted + 4);
    expect(await counter('session', 'error')).toBe(before.error);
  });
});
