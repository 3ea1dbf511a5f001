/**
 * What session binding costs: new attested connections per second and their set-up latency
 * (TLS handshake to "may send the first request byte") at 1, 10 and 100 concurrent clients,
 * `certificate` vs `session` binding in the same run, against `ratls serve` in a process of its own
 * whose simulated provider models real TDX (40 ms per quote, one at a time). Then the server's
 * CPU per evidence request: the certificate's cached evidence, a fresh quote (session, batch of
 * one; legacy nonce), and session evidence under load (batched).
 *
 *   npm run bench -- session [--rounds 3] [--seconds 4] [--latency 40] [--levels 1,10,100]
 */
import tls from 'node:tls';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { randomBytes } from 'node:crypto';
import { cpuMs, median, numFlag, percentile, strFlag } from './stats.ts';

const BENCH_DIR = fileURLToPath(new URL('.', import.meta.url));
const ROOT = join(BENCH_DIR, '..');

const r1 = (x: number): number => Math.round(x * 10) / 10;
const r2 = (x: number): number => Math.round(x * 100) / 100;

// ---------------------------------------------------------------- server role

/** `ratls serve` with the simulated provider at the given quote latency; prints {port, pid}. */
async function roleServer(args: string[]): Promise<void> {
  const { validateConfig } = await import('../src/proxy/config.ts');
  const { startRatlsServer } = await import('../src/proxy/server.ts');
  const http = await import('node:http');
  const up = http.createServer((_req, res) => res.end('ok'));
  await new Promise<void>((r) => up.listen(0, '127.0.0.1', r));
  const config = validateConfig({
    listen: '127.0.0.1:0',
    log: { level: 'silent' },
    evidence: { provider: 'simulated', simDir: strFlag(args, '--sim-dir', ''), simQuoteLatency: `${numFlag(args, '--latency', 40)}ms` },
    routes: [{ prefix: '/', target: `http://127.0.0.1:${(up.address() as { port: number }).port}` }],
  });
  const srv = await startRatlsServer(config, { autoRotate: false });
  process.stdout.write(JSON.stringify({ port: srv.port, pid: process.pid }) + '\n');
  process.once('SIGTERM', () => {
    void srv.close({ drainTimeoutMs: 100 }).then(() => process.exit(0));
  });
}

// ---------------------------------------------------------------- driver

interface Server {
  proc: ChildProcess;
  port: number;
  pid: number;
}

function startServer(simDir: string, latencyMs: number): Promise<Server> {
  const proc = spawn(
    process.execPath,
    ['--import', 'tsx', join(BENCH_DIR, 'run.ts'), 'session', '--role', 'server', '--sim-dir', simDir, '--latency', String(latencyMs)],
    {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  return new Promise((resolve, reject) => {
    createInterface({ input: proc.stdout! }).once('line', (line) => {
      const info = JSON.parse(line) as { port: number; pid: number };
      resolve({ proc, ...info });
    });
    proc.once('exit', (code) => reject(new Error(`server exited ${code}`)));
  });
}

function stop(p: ChildProcess): Promise<void> {
  if (p.exitCode !== null) return Promise.resolve();
  return new Promise((r) => {
    p.once('exit', () => r());
    p.kill('SIGTERM');
    setTimeout(() => p.kill('SIGKILL'), 5000).unref();
  });
}

type Binding = 'certificate' | 'session';

interface RoundResult {
  binding: Binding;
  clients: number;
  connections: number;
  errors: number;
  perSecond: number;
  p50: number;
  p99: number;
  /** CPU per connection (ms) of the client process and of the server process. */
  clientCpuMs: number;
  serverCpuMs: number;
}

/** `clients` workers opening attested connections back to back for `seconds`. */
async function round(srv: Server, binding: Binding, clients: number, seconds: number, attest: (s: tls.TLSSocket) => Promise<unknown>): Promise<RoundResult> {
  const latencies: number[] = [];
  let errors = 0;
  const end = performance.now() + seconds * 1000;
  const worker = async () => {
    while (performance.now() < end) {
      const t0 = performance.now();
      const s = tls.connect({ port: srv.port, host: '127.0.0.1', rejectUnauthorized: false, ALPNProtocols: ['http/1.1'] });
      s.on('error', () => {});
      try {
        await new Promise<void>((resolve, reject) => {
          s.once('secureConnect', () => resolve());
          s.once('error', reject);
        });
        await attest(s);
        latencies.push(performance.now() - t0);
      } catch {
        errors++;
      } finally {
        s.destroy();
      }
    }
  };
  const t0 = performance.now();
  const cpu0 = process.cpuUsage();
  const srv0 = cpuMs(srv.pid);
  await Promise.all(Array.from({ length: clients }, worker));
  const elapsed = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  const n = Math.max(1, latencies.length);
  latencies.sort((a, b) => a - b);
  return {
    binding,
    clients,
    connections: latencies.length,
    errors,
    perSecond: latencies.length / elapsed,
    p50: percentile(latencies, 50),
    p99: percentile(latencies, 99),
    clientCpuMs: (cpu.user + cpu.system) / 1000 / n,
    serverCpuMs: (cpuMs(srv.pid) - srv0) / n,
  };
}

/** Server CPU per request for `n` sequential requests of `path()` on one keep-alive connection. */
async function cpuPerRequest(srv: Server, n: number, path: () => string): Promise<number> {
  const { rawGet } = await import('../src/client/evidence-request.ts');
  const s = tls.connect({ port: srv.port, host: '127.0.0.1', rejectUnauthorized: false });
  await new Promise<void>((r) => s.once('secureConnect', () => r()));
  for (let i = 0; i < 20; i++) await rawGet(s, '127.0.0.1', path(), 15_000); // warm-up
  const c0 = cpuMs(srv.pid);
  for (let i = 0; i < n; i++) {
    const r = await rawGet(s, '127.0.0.1', path(), 15_000);
    if (r.status !== 200) throw new Error(`${path()}: HTTP ${r.status}`);
  }
  const used = cpuMs(srv.pid) - c0;
  s.destroy();
  return (used / n) * 1000; // µs
}

/** Server CPU per session evidence request while `conns` connections ask back to back (batched). */
async function cpuUnderLoad(srv: Server, conns: number, seconds: number): Promise<{ perRequestUs: number; requests: number; meanBatch: number }> {
  const { rawGet } = await import('../src/client/evidence-request.ts');
  const sockets = await Promise.all(
    Array.from({ length: conns }, async () => {
      const s = tls.connect({ port: srv.port, host: '127.0.0.1', rejectUnauthorized: false });
      await new Promise<void>((r) => s.once('secureConnect', () => r()));
      return s;
    }),
  );
  let requests = 0;
  const c0 = cpuMs(srv.pid);
  const end = performance.now() + seconds * 1000;
  await Promise.all(
    sockets.map(async (s) => {
      while (performance.now() < end) {
        const r = await rawGet(s, '127.0.0.1', `/.well-known/ratls/session?nonce=${randomBytes(32).toString('hex')}`, 15_000);
        if (r.status === 200) requests++;
      }
    }),
  );
  const used = cpuMs(srv.pid) - c0;
  const m = await rawGet(sockets[0]!, '127.0.0.1', '/metrics', 5000);
  for (const s of sockets) s.destroy();
  const text = Buffer.from(m.body).toString();
  const sum = Number(/ratls_evidence_batch_size_sum (\S+)/.exec(text)?.[1]);
  const count = Number(/ratls_evidence_batch_size_count (\S+)/.exec(text)?.[1]);
  return { perRequestUs: (used / Math.max(1, requests)) * 1000, requests, meanBatch: sum / count };
}

export async function run(args: string[]): Promise<void> {
  if (strFlag(args, '--role', '') === 'server') return roleServer(args);
  const rounds = numFlag(args, '--rounds', 3);
  const seconds = numFlag(args, '--seconds', 4);
  const latency = numFlag(args, '--latency', 40);
  const levels = strFlag(args, '--levels', '1,10,100').split(',').map(Number);

  const { initSimulatedWorld } = await import('../src/tee/simulated/index.ts');
  const { Attestor } = await import('../src/client/attestor.ts');
  const { defaultClientPolicy } = await import('../src/verify/policy-file.ts');
  const simDir = mkdtempSync(join(tmpdir(), 'ratls-bench-session-'));
  const world = await initSimulatedWorld(simDir);
  const attestors = Object.fromEntries(
    (['certificate', 'session'] as const).map((binding) => {
      const p = defaultClientPolicy();
      p.trustedRoots = [world.rootPem];
      p.collateral = { offline: true };
      p.freshness.binding = binding;
      return [binding, new Attestor(p)];
    }),
  ) as Record<Binding, InstanceType<typeof Attestor>>;

  const srv = await startServer(simDir, latency);
  const all: RoundResult[] = [];
  try {
    const attest = (b: Binding) => (s: tls.TLSSocket) => attestors[b].attest(s, '127.0.0.1', srv.port);
    // warm-up: JIT, caches of parsed collateral and chains, on both paths
    for (const b of ['certificate', 'session'] as const) await round(srv, b, 10, 1, attest(b));
    for (const clients of levels) {
      for (let r = 0; r < rounds; r++) {
        // alternate which binding goes first, so drift in the machine's load does not favour one
        const order: Binding[] = r % 2 === 0 ? ['certificate', 'session'] : ['session', 'certificate'];
        for (const b of order) {
          const res = await round(srv, b, clients, seconds, attest(b));
          all.push(res);
          console.error(
            `  ${String(clients).padStart(3)} clients ${b.padEnd(11)} round ${r + 1}: ${r1(res.perSecond)} conn/s, p50 ${r1(res.p50)} ms, p99 ${r1(res.p99)} ms, ` +
              `CPU/conn client ${r2(res.clientCpuMs)} ms server ${r2(res.serverCpuMs)} ms, errors ${res.errors}`,
          );
        }
      }
    }
  } finally {
    await stop(srv.proc);
  }

  // server CPU per evidence request, quotes made at once (latency 0) so the run is short
  const fast = await startServer(simDir, 0);
  let cpu: Record<string, number | Record<string, number>>;
  try {
    cpu = {
      cachedCertificateEvidenceUs: r1(await cpuPerRequest(fast, 2000, () => '/.well-known/ratls/evidence')),
      sessionEvidenceOneQuoteEachUs: r1(await cpuPerRequest(fast, 400, () => `/.well-known/ratls/session?nonce=${randomBytes(32).toString('hex')}`)),
      nonceEvidenceOneQuoteEachUs: r1(await cpuPerRequest(fast, 400, () => `/.well-known/ratls/evidence?nonce=${randomBytes(32).toString('hex')}`)),
    };
  } finally {
    await stop(fast.proc);
  }
  const loaded = await startServer(simDir, latency);
  try {
    const l = await cpuUnderLoad(loaded, 64, 4);
    cpu.sessionEvidenceBatched64ConnectionsUs = r1(l.perRequestUs);
    cpu.batched = { requests: l.requests, meanBatch: r1(l.meanBatch) };
  } finally {
    await stop(loaded.proc);
  }

  const summary = levels.map((clients) => {
    const pick = (b: Binding) => all.filter((x) => x.binding === b && x.clients === clients);
    const agg = (b: Binding) => ({
      perSecond: r1(median(pick(b).map((x) => x.perSecond))),
      p50: r1(median(pick(b).map((x) => x.p50))),
      p99: r1(median(pick(b).map((x) => x.p99))),
      clientCpuMs: r2(median(pick(b).map((x) => x.clientCpuMs))),
      serverCpuMs: r2(median(pick(b).map((x) => x.serverCpuMs))),
      errors: pick(b).reduce((a, x) => a + x.errors, 0),
    });
    const c = agg('certificate');
    const s = agg('session');
    return { clients, certificate: c, session: s, rateRatio: r2(s.perSecond / c.perSecond), p50DeltaMs: r1(s.p50 - c.p50) };
  });
  const result = {
    at: new Date().toISOString(),
    node: process.version,
    quoteLatencyMs: latency,
    rounds,
    seconds,
    loadAverage: readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' '),
    summary,
    cpu,
    rounds_: all.map((x) => ({
      ...x,
      perSecond: r1(x.perSecond),
      p50: r1(x.p50),
      p99: r1(x.p99),
      clientCpuMs: r2(x.clientCpuMs),
      serverCpuMs: r2(x.serverCpuMs),
    })),
  };
  const outDir = join(BENCH_DIR, 'results');
  mkdirSync(outDir, { recursive: true });
  const file = join(outDir, `session-${result.at.replace(/[:.]/g, '-')}.json`);
  writeFileSync(file, JSON.stringify(result, null, 2));
  console.log(`quote latency ${latency} ms, one at a time; medians over ${rounds} rounds of ${seconds} s; load average ${result.loadAverage}`);
  console.log('clients | certificate conn/s  p50  p99 CPU(c+s) | session conn/s  p50  p99 CPU(c+s) | rate ratio | p50 delta');
  const cpuText = (x: { clientCpuMs: number; serverCpuMs: number }) => `${x.clientCpuMs}+${x.serverCpuMs}`;
  for (const s of summary) {
    console.log(
      `${String(s.clients).padStart(7)} | ${String(s.certificate.perSecond).padStart(18)} ${String(s.certificate.p50).padStart(5)} ${String(s.certificate.p99).padStart(5)} ${cpuText(s.certificate).padStart(8)} | ` +
        `${String(s.session.perSecond).padStart(14)} ${String(s.session.p50).padStart(5)} ${String(s.session.p99).padStart(5)} ${cpuText(s.session).padStart(8)} | ${String(s.rateRatio).padStart(10)} | ${s.p50DeltaMs} ms`,
    );
  }
  console.log('server CPU per evidence request (µs):', JSON.stringify(cpu));
  console.log(`results: ${file}`);
}
