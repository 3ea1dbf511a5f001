/** The hand-written evidence request reads hostile responses safely and never hangs. */
import { afterEach, describe, expect, it } from 'vitest';
import net from 'node:net';
import { rawGet } from '../../src/client/evidence-request.ts';
import { renderReport } from '../../src/client/report.ts';
import { RatlsError } from '../../src/core/errors.ts';

let server: net.Server | undefined;
afterEach(async () => {
  await new Promise<void>((r) => (server ? server.close(() => r()) : r()));
  server = undefined;
});

/** A TCP server that answers the first request with `reply` (then does nothing). */
async function replying(reply: Buffer | string): Promise<net.Socket> {
  server = net.createServer((s) => {
    s.once('data', () => s.write(reply));
    s.on('error', () => {});
  });
  await new Promise<void>((r) => server!.listen(0, '127.0.0.1', r));
  const sock = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
  await new Promise<void>((r) => sock.once('connect', () => r()));
  return sock;
}

async function code(p: Promise<unknown>): Promise<string> {
  const e = await p.then(
    () => 'resolved',
    (err: unknown) => err,
  );
  return e instanceof RatlsError ? e.code : String(e);
}

describe('rawGet', () => {
  it('reads Content-Length and chunked bodies and leaves following bytes on the socket', async () => {
    const s1 = await replying('HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabcEXTRA');
    const r1 = await rawGet(s1, 'h', '/e', 2000);
    expect(r1.status).toBe(200);
    expect(Buffer.from(r1.body).toString()).toBe('abc');
    expect(String(await new Promise((r) => s1.once('data', r)))).toBe('EXTRA');
    s1.destroy();
    await new Promise<void>((r) => server!.close(() => r()));
    const s2 = await replying('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n');
    expect(Buffer.from((await rawGet(s2, 'h', '/e', 2000)).body).toString()).toBe('abcde');
    s2.destroy();
  });

  it.each([
    ['not HTTP', 'SSH-2.0-OpenSSH\r\n\r\n', 'EVIDENCE_MALFORMED'],
    ['bad chunk size', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n', 'EVIDENCE_MALFORMED'],
    ['no length', 'HTTP/1.1 200 OK\r\n\r\nabc', 'EVIDENCE_MALFORMED'],
    ['huge body', 'HTTP/1.1 200 OK\r\nContent-Length: 99999999\r\n\r\n', 'EVIDENCE_MALFORMED'],
    ['huge headers', 'HTTP/1.1 200 OK\r\n' + 'X: y\r\n'.repeat(5000), 'EVIDENCE_MALFORMED'],
    ['connection close', 'HTTP/1.1 200 OK\r\nContent-Length: 1\r\nConnection: close\r\n\r\na', 'CONNECTION_FAILED'],
    ['truncated then silent', 'HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nab', 'CONNECTION_FAILED'],
  ])('rejects %s', async (_name, reply, expected) => {
    const s = await replying(reply);
    expect(await code(rawGet(s, 'h', '/e', 500))).toBe(expected);
    s.destroy();
  });
});

describe('readable report', () => {
  const result = {
    ok: false,
    tcbStatus: 'OutOfDate' as const,
    advisoryIds: ['INTEL-SA-00837'],
    quote: null,
    nonIntelRoot: true,
    errors: [{ code: 'TCB_STATUS_NOT_ALLOWED' as const, message: 'OutOfDate is not allowed.' }],
    checks: [{ name: 'TCB level', ok: false, detail: 'OutOfDate' }],
  };
  it('uses colours only on a terminal', () => {
    const plain = renderReport(result, { target: 'https://x', nonceRequested: false, nonceVerified: false, colour: false });
    expect(plain).not.toContain('\x1b[');
    expect(plain).toContain('REJECTED');
    expect(plain).toContain('SIMULATED');
    expect(plain).toContain('TCB_STATUS_NOT_ALLOWED: OutOfDate is not allowed.');
    expect(renderReport(result, { target: 'https://x', nonceRequested: false, nonceVerified: false, colour: true })).toContain('\x1b[31mREJECTED\x1b[0m');
  });
});
