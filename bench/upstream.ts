/**
 * Benchmark upstream (plain HTTP, its own process): `npm run bench -- upstream [--port N]`.
 *   GET /small                      -> 2-byte body "ok"
 *   GET /stream?n=N&gap=MS&size=B   -> N NDJSON lines (0 = until the client leaves), one every MS,
 *                                      each {"t":"<monotonic ns when written>", ...} padded to B bytes
 * process.hrtime is CLOCK_MONOTONIC, shared by every process on the machine, so a client can
 * subtract the upstream's write time from its own arrival time.
 * Prints {"port":N} on stdout once listening.
 */
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';

/** Starts the upstream; resolves to the server. */
export async function startBenchUpstream(port = 0): Promise<http.Server> {
  const server = http.createServer({ noDelay: true, keepAliveTimeout: 120_000 }, (req, res) => {
    const url = req.url ?? '/';
    if (url === '/small') {
      res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '2' });
      res.end('ok');
      return;
    }
    if (url.startsWith('/stream')) {
      const q = new URLSearchParams(url.slice(url.indexOf('?') + 1));
      const n = Number(q.get('n') ?? 100);
      const gap = Number(q.get('gap') ?? 10);
      const size = Number(q.get('size') ?? 100);
      res.writeHead(200, { 'content-type': 'application/x-ndjson' });
      let i = 0;
      const tick = (): void => {
        const head = `{"t":"${process.hrtime.bigint()}","i":${i},"p":"`;
        res.write(`${head}${'x'.repeat(Math.max(0, size - head.length - 3))}"}\n`);
        i++;
        if (n > 0 && i >= n) {
          clearInterval(timer);
          res.end();
        }
      };
      const timer = setInterval(tick, gap);
      res.on('close', () => clearInterval(timer));
      return;
    }
    res.writeHead(404);
    res.end();
  });
  server.maxConnections = 100_000;
  await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
  return server;
}

export async function run(args: string[]): Promise<void> {
  const i = args.indexOf('--port');
  const server = await startBenchUpstream(i >= 0 ? Number(args[i + 1]) : 0);
  process.stdout.write(`${JSON.stringify({ port: (server.address() as AddressInfo).port })}\n`);
  process.once('SIGTERM', () => {
    server.closeAllConnections();
    server.close(() => process.exit(0));
  });
}
