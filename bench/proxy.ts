/**
 * `npm run bench -- proxy [--duration S] [--connections N] [--runs N] [--streams N] [--quick]`
 *
 * Same upstream (bench/upstream.ts, own process), in the same run, three ways:
 *   direct  plain HTTP to the upstream
 *   ratls   through `ratls serve` (own process, simulated RA-TLS certificate, logs on to /dev/null)
 *   nginx   through Debian nginx as a plain TLS reverse proxy (1 worker, like Node's one thread)
 * Measures: keep-alive small-request throughput, time to first byte (warm keep-alive and new TLS
 * connection), one-way per-chunk latency of token streams (p50/p99, added = proxy - direct), and
 * RSS of the proxy holding N concurrent open streams. Load is generated in separate processes.
 * Results: bench/results/proxy-<time>.json and a summary on stdout.
 */
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';
import { Pool, Client, Agent, request } from 'undici';
import { cpuMs, median, numFlag, percentile, strFlag } from './stats.ts';

const BENCH_DIR = dirname(fileURLToPath(import.meta.url));
const ROOT = join(BENCH_DIR, '..');

// ---------------------------------------------------------------- helpers

const r2 = (x: number): number => Math.round(x * 100) / 100;
const r3 = (x: number): number => Math.round(x * 1000) / 1000;

interface Child {
  proc: ChildProcess;
  info: Record<string, unknown>;
}

/** Spawns `bench/run.ts proxy --role ...` (or another bench module) and reads its first JSON line. */
function spawnRole(module: string, args: string[], opts: { waitLine?: boolean } = {}): Promise<Child> {
  const proc = spawn(process.execPath, ['--import', 'tsx', join(BENCH_DIR, 'run.ts'), module, ...args], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  if (opts.waitLine === false) return Promise.resolve({ proc, info: {} });
  return new Promise((resolve, reject) => {
    const rl = createInterface({ input: proc.stdout! });
    rl.once('line', (line) => resolve({ proc, info: JSON.parse(line) as Record<string, unknown> }));
    proc.once('exit', (code) => reject(new Error(`${module} ${args.join(' ')} exited ${code}`)));
  });
}

/** Runs a role to completion and returns its JSON result line. */
async function runRole(args: string[]): Promise<Record<string, unknown>> {
  const c = await spawnRole('proxy', args);
  await new Promise((r) => c.proc.once('exit', r));
  return c.info;
}

function stop(c: ChildProcess | undefined): Promise<void> {
  if (!c || c.exitCode !== null) return Promise.resolve();
  return new Promise((r) => {
    c.once('exit', () => r());
    c.kill('SIGTERM');
    setTimeout(() => c.kill('SIGKILL'), 5000).unref();
  });
}

function rssMiB(pid: number): number {
  const s = readFileSync(`/proc/${pid}/status`, 'utf8');
  const m = /VmRSS:\s+(\d+) kB/.exec(s);
  return m ? Number(m[1]) / 1024 : NaN;
}

// ---------------------------------------------------------------- child roles

/** Role "proxy": runs ratls serve in-process and prints its port. */
async function roleProxy(args: string[]): Promise<void> {
  const { validateConfig } = await import('../src/proxy/config.ts');
  const { startRatlsServer } = await import('../src/proxy/server.ts');
  const { createProxyLogger } = await import('../src/proxy/logger.ts');
  const engine = strFlag(args, '--engine', '');
  const config = validateConfig({
    listen: '127.0.0.1:0',
    // No --engine: the configuration default, as `ratls serve` runs it.
    ...(engine ? { engine } : {}),
    evidence: { provider: 'simulated', simDir: strFlag(args, '--sim-dir', '') },
    routes: [{ prefix: '/', target: `http://127.0.0.1:${numFlag(args, '--upstream', 0)}` }],
  });
  // The default logger of `ratls serve` (batched pino), writing to a file instead of stdout (stdout
  // carries the port line); nginx writes its access log to a file in the same directory.
  const { logger } = createProxyLogger({ level: strFlag(args, '--log', 'info'), dest: strFlag(args, '--log-file', '/dev/null') });
  const hotPath = strFlag(args, '--hot-path', 'raw') as 'raw' | 'hono';
  const srv = await startRatlsServer(config, { logger, hotPath });
  process.stdout.write(`${JSON.stringify({ port: srv.port, pid: process.pid })}\n`);
  process.once('SIGTERM', () => void srv.close({ drainTimeoutMs: 100 }).then(() => process.exit(0)));
}

const tlsAgentOpts = { connect: { rejectUnauthorized: false } };

/** Role "load": keep-alive throughput of GET /small with N connections for D seconds. */
async function roleLoad(args: string[]): Promise<void> {
  const url = strFlag(args, '--url', '');
  const conns = numFlag(args, '--connections', 50);
  const durationMs = numFlag(args, '--duration', 5) * 1000;
  const pool = new Pool(url, { connections: conns, pipelining: 1, ...tlsAgentOpts });
  // Warm up: open every connection (TLS handshakes are not what this measures), then one second of
  // load so every target's JIT has settled before the clock starts.
  await Promise.all(Array.from({ length: conns * 2 }, async () => (await pool.request({ path: '/small', method: 'GET' })).body.dump()));
  const warmEnd = performance.now() + numFlag(args, '--warmup', 1) * 1000;
  let warmed = 0;
  await Promise.all(
    Array.from({ length: conns }, async () => {
      while (performance.now() < warmEnd) {
        await (await pool.request({ path: '/small', method: 'GET' })).body.dump();
        warmed++;
      }
    }),
  );
  const cpu0 = process.cpuUsage();
  let count = 0;
  let errors = 0;
  const lat: number[] = [];
  const end = performance.now() + durationMs;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: conns }, async () => {
      while (performance.now() < end) {
        const s = performance.now();
        try {
          const r = await pool.request({ path: '/small', method: 'GET' });
          await r.body.dump();
          if (r.statusCode === 200) count++;
          else errors++;
        } catch {
          errors++;
        }
        lat.push(performance.now() - s);
      }
    }),
  );
  const secs = (performance.now() - t0) / 1000;
  lat.sort((a, b) => a - b);
  await pool.close();
  const cpu = process.cpuUsage(cpu0);
  const loadCpuUs = (cpu.user + cpu.system) / Math.max(1, count + errors);
  process.stdout.write(
    `${JSON.stringify({ rps: count / secs, count, errors, warmed: warmed + conns * 2, loadCpuUs, p50: percentile(lat, 50), p99: percentile(lat, 99), tls: url.startsWith('https:') ? await tlsParams(url) : null })}\n`,
  );
}

/** The TLS version and cipher a target negotiates with Node's defaults (the same for every target). */
async function tlsParams(url: string): Promise<string> {
  const { connect } = await import('node:tls');
  const u = new URL(url);
  return new Promise((resolve) => {
    const s = connect({ host: u.hostname, port: Number(u.port), rejectUnauthorized: false, ALPNProtocols: ['http/1.1'] }, () => {
      const c = s.getCipher();
      resolve(`${s.getProtocol() ?? '?'} ${c.standardName ?? c.name} ${(s.getEphemeralKeyInfo() as { name?: string } | null)?.name ?? ''}`.trim());
      s.end();
    });
    s.once('error', (e) => resolve(`error ${e.message}`));
  });
}

/** Role "ttfb": time to response headers, sequential, warm keep-alive and new connections. */
async function roleTtfb(args: string[]): Promise<void> {
  const url = strFlag(args, '--url', '');
  const n = numFlag(args, '--n', 300);
  const warm = new Client(url, tlsAgentOpts);
  await (await warm.request({ path: '/small', method: 'GET' })).body.dump();
  const w: number[] = [];
  for (let i = 0; i < n; i++) {
    const s = performance.now();
    const r = await warm.request({ path: '/small', method: 'GET' });
    w.push(performance.now() - s);
    await r.body.dump();
  }
  await warm.close();
  const c: number[] = [];
  for (let i = 0; i < Math.ceil(n / 3); i++) {
    const cl = new Client(url, tlsAgentOpts);
    const s = performance.now();
    const r = await cl.request({ path: '/small', method: 'GET' });
    c.push(performance.now() - s);
    await r.body.dump();
    await cl.close();
  }
  w.sort((a, b) => a - b);
  c.sort((a, b) => a - b);
  process.stdout.write(
    `${JSON.stringify({ warmP50: percentile(w, 50), warmP99: percentile(w, 99), newConnP50: percentile(c, 50), newConnP99: percentile(c, 99) })}\n`,
  );
}

/** K concurrent token streams against one URL; one-way latency of every line (upstream write -> arrival). */
async function chunkRound(url: string, agent: Agent, k: number, n: number, gap: number): Promise<number[]> {
  const lat: number[] = [];
  await Promise.all(
    Array.from({ length: k }, async () => {
      const r = await request(`${url}/stream?n=${n}&gap=${gap}&size=100`, { dispatcher: agent });
      let buf = '';
      for await (const chunk of r.body) {
        const now = process.hrtime.bigint();
        buf += (chunk as Buffer).toString();
        let i: number;
        while ((i = buf.indexOf('\n')) >= 0) {
          const line = buf.slice(0, i);
          buf = buf.slice(i + 1);
          const t = /"t":"(\d+)"/.exec(line);
          if (t) lat.push(Number(now - BigInt(t[1]!)) / 1e6);
        }
      }
    }),
  );
  return lat.sort((a, b) => a - b);
}

/**
 * Role "chunks": many short rounds; in each round every URL (name=url, comma-separated) gets K
 * concurrent streams of N lines, in a rotating order so no target always follows another. Prints
 * each target's per-round p50 and p99 and all lines' p50/p99.
 */
async function roleChunks(args: string[]): Promise<void> {
  const targets = strFlag(args, '--urls', '')
    .split(',')
    .map((x) => x.split('=') as [string, string]);
  const k = numFlag(args, '--streams', 16);
  const n = numFlag(args, '--n', 100);
  const gap = numFlag(args, '--gap', 5);
  const rounds = numFlag(args, '--rounds', 10);
  const agent = new Agent({ ...tlsAgentOpts, connections: null });
  const out: Record<string, { roundP50: number[]; roundP99: number[]; all: number[] }> = {};
  for (let r = 0; r < rounds; r++) {
    for (let j = 0; j < targets.length; j++) {
      const [name, url] = targets[(j + r) % targets.length]!;
      const lat = await chunkRound(url, agent, k, n, gap);
      const o = (out[name] ??= { roundP50: [], roundP99: [], all: [] });
      o.roundP50.push(percentile(lat, 50));
      o.roundP99.push(percentile(lat, 99));
      for (const x of lat) o.all.push(x);
    }
  }
  await agent.close();
  const result = Object.fromEntries(
    Object.entries(out).map(([name, o]) => {
      o.all.sort((a, b) => a - b);
      return [
        name,
        { lines: o.all.length, p50: percentile(o.all, 50), p99: percentile(o.all, 99), max: o.all.at(-1), roundP50: o.roundP50, roundP99: o.roundP99 },
      ];
    }),
  );
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

/** Role "streams": holds N open streams (one connection each) until SIGTERM. */
async function roleStreams(args: string[]): Promise<void> {
  const url = strFlag(args, '--url', '');
  const n = numFlag(args, '--n', 5000);
  const agent = new Agent({ ...tlsAgentOpts, connections: null, pipelining: 1, headersTimeout: 120_000, bodyTimeout: 0 });
  let open = 0;
  let failed = 0;
  const bodies: Array<AsyncIterator<unknown>> = [];
  const t0 = performance.now();
  // Open in batches so the handshake burst does not starve everything else.
  for (let b = 0; b < n; b += 250) {
    await Promise.all(
      Array.from({ length: Math.min(250, n - b) }, async () => {
        try {
          const r = await request(`${url}/stream?n=0&gap=1000&size=100`, { dispatcher: agent });
          const it = r.body[Symbol.asyncIterator]();
          await it.next();
          bodies.push(it);
          open++;
          // keep consuming so flow control never stalls the stream
          void (async () => {
            try {
              while (!(await it.next()).done);
            } catch {
              /* closed at exit */
            }
          })();
        } catch {
          failed++;
        }
      }),
    );
  }
  process.stdout.write(`${JSON.stringify({ open, failed, openSeconds: (performance.now() - t0) / 1000 })}\n`);
  process.once('SIGTERM', () => process.exit(0));
  await new Promise(() => {});
}

// ---------------------------------------------------------------- nginx

async function startNginx(dir: string, upstreamPort: number, workers: number | 'auto'): Promise<{ port: number; proc: ChildProcess; dir: string }> {
  // Each nginx gets its own prefix directory (pid file, temp paths, access log).
  dir = join(dir, `nginx-${workers}`);
  mkdirSync(dir, { recursive: true });
  const key = join(dir, 'nginx.key');
  const cert = join(dir, 'nginx.crt');
  execFileSync(
    'openssl',
    ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-subj', '/CN=localhost', '-days', '1', '-keyout', key, '-out', cert],
    { stdio: 'ignore' },
  );
  // A port the kernel just handed out and released (a random one collided with a live socket).
  const port = await freePort();
  const conf = join(dir, 'nginx.conf');
  writeFileSync(
    conf,
    `worker_processes ${workers};
worker_rlimit_nofile 19000;
daemon off;
pid ${dir}/nginx.pid;
error_log ${dir}/nginx-error.log warn;
events { worker_connections 16000; }
http {
  # One line per request, like ratls serve (nginx's default: unbuffered writes).
  access_log ${dir}/access.log combined;
  client_body_temp_path ${dir}/body; proxy_temp_path ${dir}/proxy; fastcgi_temp_path ${dir}/fcgi;
  uwsgi_temp_path ${dir}/uwsgi; scgi_temp_path ${dir}/scgi;
  client_max_body_size 100m;
  upstream up { server 127.0.0.1:${upstreamPort}; keepalive 256; }
  server {
    listen 127.0.0.1:${port} ssl;
    ssl_certificate ${cert}; ssl_certificate_key ${key};
    ssl_protocols TLSv1.2 TLSv1.3;
    keepalive_requests 1000000;
    location / {
      proxy_pass http://up;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $host;
      proxy_set_header X-Forwarded-For $remote_addr;
      proxy_set_header X-Forwarded-Proto https;
      proxy_set_header X-Forwarded-Host $host;
      proxy_set_header X-Forwarded-Port $server_port;
      proxy_buffering off;
      proxy_request_buffering off;
      proxy_read_timeout 600s;
    }
  }
}
`,
  );
  const proc = spawn('nginx', ['-c', conf, '-p', dir], { stdio: ['ignore', 'ignore', 'inherit'] });
  for (let i = 0; i < 100 && proc.exitCode === null; i++) {
    try {
      const c = new Client(`https://127.0.0.1:${port}`, tlsAgentOpts);
      await (await c.request({ path: '/small', method: 'GET' })).body.dump();
      await c.close();
      return { port, proc, dir };
    } catch {
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  await stop(proc);
  throw new Error(`nginx did not start; see ${dir}/nginx-error.log`);
}

async function freePort(): Promise<number> {
  const { createServer } = await import('node:net');
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

function nginxPids(dir: string): { master: number; workers: number[] } {
  const master = Number(readFileSync(join(dir, 'nginx.pid'), 'utf8').trim());
  const workers = execFileSync('pgrep', ['-P', String(master)])
    .toString()
    .trim()
    .split('\n')
    .map(Number);
  return { master, workers };
}

function nginxRssMiB(dir: string): number {
  const { master, workers } = nginxPids(dir);
  return [master, ...workers].reduce((a, p) => a + rssMiB(p), 0);
}

// ---------------------------------------------------------------- orchestrator

export async function run(args: string[]): Promise<void> {
  const role = strFlag(args, '--role', '');
  if (role === 'proxy') return roleProxy(args);
  if (role === 'load') return roleLoad(args);
  if (role === 'ttfb') return roleTtfb(args);
  if (role === 'chunks') return roleChunks(args);
  if (role === 'streams') return roleStreams(args);

  const quick = args.includes('--quick');
  const runs = numFlag(args, '--runs', quick ? 1 : 4);
  const duration = numFlag(args, '--duration', quick ? 3 : 4);
  const connections = numFlag(args, '--connections', 50);
  const nStreams = numFlag(args, '--streams', quick ? 500 : 5000);
  const withNginx = !args.includes('--no-nginx');
  const chunkStreams = numFlag(args, '--chunk-streams', 16);
  const chunkLines = numFlag(args, '--chunk-lines', 100);
  const chunkRounds = numFlag(args, '--chunk-rounds', quick ? 4 : 10);

  const dir = mkdtempSync(join(tmpdir(), 'ratls-bench-'));
  const { initSimulatedWorld } = await import('../src/tee/simulated/world.ts');
  await initSimulatedWorld(join(dir, 'sim'));

  const started: Array<ChildProcess | undefined> = [];
  const cleanup = async (): Promise<void> => {
    for (const c of started.reverse()) await stop(c);
    rmSync(dir, { recursive: true, force: true });
  };
  const up = await spawnRole('upstream', []);
  started.push(up.proc);
  const upPort = up.info.port as number;
  const proxyArgs = (name: string, extra: string[]): string[] => [
    '--role',
    'proxy',
    '--upstream',
    String(upPort),
    '--sim-dir',
    join(dir, 'sim'),
    '--log-file',
    join(dir, `${name}.log`),
    ...extra,
  ];
  // `ratls` is the default configuration (no engine given), exactly as `ratls serve` starts.
  let proxy: Child, honoProxy: Child;
  let nginx: Awaited<ReturnType<typeof startNginx>> | undefined;
  let nginxAuto: typeof nginx;
  try {
    proxy = await spawnRole('proxy', proxyArgs('ratls', []));
    started.push(proxy.proc);
    honoProxy = await spawnRole('proxy', proxyArgs('ratls-hono', ['--hot-path', 'hono']));
    started.push(honoProxy.proc);
    nginx = withNginx ? await startNginx(dir, upPort, 1) : undefined;
    started.push(nginx?.proc);
    nginxAuto = withNginx ? await startNginx(dir, upPort, 'auto') : undefined;
    started.push(nginxAuto?.proc);
  } catch (err) {
    await cleanup();
    throw err;
  }
  const targets: Record<string, string> = {
    direct: `http://127.0.0.1:${upPort}`,
    ratls: `https://127.0.0.1:${proxy.info.port as number}`,
    ...(nginx ? { nginx: `https://127.0.0.1:${nginx.port}` } : {}),
  };
  const os = await import('node:os');
  const results: Record<string, unknown> = {
    date: new Date().toISOString(),
    node: process.version,
    runs,
    duration,
    connections,
    cpus: os.cpus().length,
    loadavgBefore: os.loadavg(),
  };

  try {
    // Throughput, TTFB and chunks, interleaved per run so machine noise hits all targets alike.
    const thr: Record<string, number[]> = {};
    const ttfb: Record<string, Array<Record<string, number>>> = {};
    const chunks: Record<string, ChunkResult[]> = {};
    const cpu: Record<string, number[]> = {};
    const tls: Record<string, string> = {};
    const loadCpu: Record<string, number[]> = {};
    const all = {
      ...targets,
      'ratls-hono': `https://127.0.0.1:${honoProxy.info.port as number}`,
      ...(nginxAuto ? { 'nginx-auto': `https://127.0.0.1:${nginxAuto.port}` } : {}),
    };
    // The processes whose CPU time is the cost of the hop (nginx: its workers).
    const cpuPids: Record<string, number[]> = {
      direct: [up.proc.pid!],
      ratls: [proxy.info.pid as number],
      'ratls-hono': [honoProxy.info.pid as number],
      ...(nginx ? { nginx: nginxPids(nginx.dir).workers } : {}),
      ...(nginxAuto ? { 'nginx-auto': nginxPids(nginxAuto.dir).workers } : {}),
    };
    const cpuOf = (name: string): number => cpuPids[name]!.reduce((a, p) => a + cpuMs(p), 0);
    for (let i = 0; i < runs; i++) {
      // Odd runs go in reverse order, so drift in the machine's load does not favour one target.
      const order = i % 2 ? Object.entries(all).reverse() : Object.entries(all);
      for (const [name, url] of order) {
        const c0 = cpuOf(name);
        const r = await runRole(['--role', 'load', '--url', url, '--connections', String(connections), '--duration', String(duration)]);
        // The hop's CPU over the whole role (warm-up included) divided by every request it served.
        const perReq = ((cpuOf(name) - c0) * 1000) / Math.max(1, (r.count as number) + (r.errors as number) + (r.warmed as number));
        (loadCpu[name] ??= []).push(r.loadCpuUs as number);
        (thr[name] ??= []).push(r.rps as number);
        (cpu[name] ??= []).push(perReq);
        if (r.tls) tls[name] = r.tls as string;
        console.error(
          `run ${i + 1}/${runs} ${name.padEnd(10)} ${Math.round(r.rps as number)} req/s, ${Math.round(perReq)} us CPU/request in the ${name === 'direct' ? 'upstream' : 'proxy'}, ${Math.round(r.loadCpuUs as number)} in the load generator (errors ${r.errors as number})`,
        );
      }
      for (const [name, url] of Object.entries(targets)) {
        (ttfb[name] ??= []).push((await runRole(['--role', 'ttfb', '--url', url, '--n', quick ? '150' : '300'])) as Record<string, number>);
      }
      // Per-chunk latency: many short rounds, every target in every round; direct is measured twice
      // (A/A) so the difference between two identical targets gives the noise of the method.
      const chunkTargets = [['direct', targets.direct!], ['direct-again', targets.direct!], ...Object.entries(targets).filter(([k]) => k !== 'direct')].map(
        ([k, u]) => `${k}=${u}`,
      );
      const cr = (await runRole([
        '--role',
        'chunks',
        '--urls',
        chunkTargets.join(','),
        '--streams',
        String(chunkStreams),
        '--n',
        String(chunkLines),
        '--gap',
        '5',
        '--rounds',
        String(chunkRounds),
      ])) as Record<string, ChunkResult>;
      for (const [name, v] of Object.entries(cr)) (chunks[name] ??= []).push(v);
    }
    results.loadavgAfter = os.loadavg();
    results.tls = tls;
    results.loadGeneratorCpuUsPerRequest = Object.fromEntries(Object.entries(loadCpu).map(([k, v]) => [k, r2(median(v))]));
    const med = (xs: Array<Record<string, number>>, k: string): number => median(xs.map((x) => x[k]!));
    results.throughputRps = Object.fromEntries(Object.entries(thr).map(([k, v]) => [k, { median: r2(median(v)), runs: v.map(r2) }]));
    results.cpuUsPerRequest = Object.fromEntries(
      Object.entries(cpu).map(([k, v]) => [k, { median: r2(median(v)), runs: v.map(r2), process: k === 'direct' ? 'upstream' : 'proxy' }]),
    );
    results.ttfbMs = Object.fromEntries(
      Object.entries(ttfb).map(([k, v]) => [
        k,
        { warmP50: r2(med(v, 'warmP50')), warmP99: r2(med(v, 'warmP99')), newConnP50: r2(med(v, 'newConnP50')), newConnP99: r2(med(v, 'newConnP99')) },
      ]),
    );
    // Per round: target's median (and p99) line latency minus direct's in the same round. Summarised
    // over all rounds of all runs as p50 / p99 of those differences; "noise (direct A/A)" is the same
    // computation for the direct target against itself.
    const roundsOf = (name: string, key: 'roundP50' | 'roundP99'): number[] => chunks[name]!.flatMap((x) => x[key]);
    results.chunkLatencyMs = Object.fromEntries(
      Object.entries(chunks).map(([k, v]) => [
        k,
        {
          p50: r3(median(v.map((x) => x.p50))),
          p99: r3(median(v.map((x) => x.p99))),
          max: r3(Math.max(...v.map((x) => x.max))),
          lines: v.reduce((a, x) => a + x.lines, 0),
        },
      ]),
    );
    const dP50 = roundsOf('direct', 'roundP50');
    const dP99 = roundsOf('direct', 'roundP99');
    results.chunkAddedMs = Object.fromEntries(
      Object.keys(chunks)
        .filter((k) => k !== 'direct')
        .map((k) => {
          const diff50 = roundsOf(k, 'roundP50')
            .map((x, j) => x - dP50[j]!)
            .sort((a, b) => a - b);
          const diff99 = roundsOf(k, 'roundP99')
            .map((x, j) => x - dP99[j]!)
            .sort((a, b) => a - b);
          return [
            k === 'direct-again' ? 'noise (direct A/A)' : k,
            {
              rounds: diff50.length,
              medianDiff: { p50: r3(percentile(diff50, 50)), p99: r3(percentile(diff50, 99)) },
              p99Diff: { p50: r3(percentile(diff99, 50)), p99: r3(percentile(diff99, 99)) },
            },
          ];
        }),
    );

    // Concurrent open streams and RSS.
    const streams: Record<string, unknown> = {};
    const rssOf = (name: string): number => (name === 'nginx' ? nginxRssMiB(nginx!.dir) : rssMiB(cpuPids[name]![0]!));
    for (const name of ['ratls', ...(nginx ? ['nginx'] : [])]) {
      const before = rssOf(name);
      const holder = await spawnRole('proxy', ['--role', 'streams', '--url', targets[name]!, '--n', String(nStreams)]);
      await new Promise((r) => setTimeout(r, 3000));
      const after = rssOf(name);
      let active: number | undefined;
      if (name !== 'nginx') {
        const m = await request(`${targets[name]!}/metrics`, { dispatcher: new Agent(tlsAgentOpts) });
        active = Number(/ratls_active_streams (\d+)/.exec(await m.body.text())?.[1]);
      }
      streams[name] = { requested: nStreams, ...holder.info, activeOnProxy: active, rssBeforeMiB: r2(before), rssWithStreamsMiB: r2(after) };
      console.error(`${name}: ${JSON.stringify(streams[name])}`);
      await stop(holder.proc);
      await new Promise((r) => setTimeout(r, 2000));
    }
    results.openStreams = streams;
  } finally {
    await cleanup();
  }

  mkdirSync(join(BENCH_DIR, 'results'), { recursive: true });
  const out = join(BENCH_DIR, 'results', `proxy-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
  writeFileSync(out, `${JSON.stringify(results, null, 2)}\n`);
  printSummary(results);
  console.log(`\nresults: ${out}`);
}

interface ChunkResult {
  lines: number;
  p50: number;
  p99: number;
  max: number;
  roundP50: number[];
  roundP99: number[];
}
interface AddedLatency {
  rounds: number;
  medianDiff: { p50: number; p99: number };
  p99Diff: { p50: number; p99: number };
}

function printSummary(r: Record<string, unknown>): void {
  const thr = r.throughputRps as Record<string, { median: number; runs: number[] }>;
  const cpu = r.cpuUsPerRequest as Record<string, { median: number }>;
  const tt = r.ttfbMs as Record<string, Record<string, number>>;
  const cl = r.chunkLatencyMs as Record<string, { p50: number; p99: number }>;
  const add = r.chunkAddedMs as Record<string, AddedLatency>;
  const st = r.openStreams as Record<string, Record<string, number>>;
  console.log(
    `\nproxy bench (${r.runs as number} runs, medians; ${r.cpus as number} CPUs, load ${(r.loadavgBefore as number[]).map((x) => x.toFixed(1)).join(' ')})`,
  );
  console.log(`TLS negotiated: ${JSON.stringify(r.tls)}`);
  console.log(`load generator CPU us/request: ${JSON.stringify(r.loadGeneratorCpuUsPerRequest)}`);
  console.log('target      req/s  cpu us/req  ttfb warm p50/p99 ms  ttfb new-conn p50 ms  chunk p50/p99 ms');
  for (const k of Object.keys(thr)) {
    const t = tt[k];
    const c = cl[k];
    console.log(
      `${k.padEnd(11)} ${String(Math.round(thr[k]!.median)).padStart(6)}  ${String(Math.round(cpu[k]?.median ?? NaN)).padStart(10)}  ${t ? `${t.warmP50}/${t.warmP99}`.padEnd(20) : ''.padEnd(20)}  ${t ? String(t.newConnP50).padEnd(20) : ''.padEnd(20)}  ${c ? `${c.p50}/${c.p99}` : ''}`,
    );
  }
  console.log('per-chunk added latency over direct, ms, per round (p50 / p99 over rounds):');
  for (const [k, a] of Object.entries(add))
    console.log(
      `  ${k.padEnd(20)} median line +${a.medianDiff.p50} / +${a.medianDiff.p99}   p99 line +${a.p99Diff.p50} / +${a.p99Diff.p99}   (${a.rounds} rounds)`,
    );
  if (thr.nginx) {
    const ratio = (k: string, n: string): string => `${((thr[k]!.median / thr[n]!.median) * 100).toFixed(0)}%`;
    console.log(
      `ratls (default config)/nginx 1 worker: ${ratio('ratls', 'nginx')} (goal >= 50%); per run: ${thr.ratls!.runs.map((x, i) => `${((x / thr.nginx!.runs[i]!) * 100).toFixed(0)}%`).join(' ')}; CPU per request ${(cpu.ratls!.median / cpu.nginx!.median).toFixed(1)}x nginx`,
    );
    if (thr['nginx-auto']) console.log(`ratls (default config)/nginx auto workers: ${ratio('ratls', 'nginx-auto')}`);
  }
  if (thr['ratls-hono']) console.log(`hot path through Hono: ${((thr['ratls-hono'].median / thr.ratls!.median) * 100).toFixed(0)}% of the raw hot path`);
  const noise = add['noise (direct A/A)'];
  if (add.ratls)
    console.log(
      `ratls added per-chunk latency: median line ${add.ratls.medianDiff.p50} ms (p99 over rounds ${add.ratls.medianDiff.p99}); p99 line ${add.ratls.p99Diff.p50} ms (goal < 1 ms); noise A/A: median line ${noise?.medianDiff.p50} (p99 ${noise?.medianDiff.p99}), p99 line ${noise?.p99Diff.p50} (p99 ${noise?.p99Diff.p99})`,
    );
  for (const [k, v] of Object.entries(st))
    console.log(`${k}: ${v.open}/${v.requested} streams open, RSS ${v.rssBeforeMiB} -> ${v.rssWithStreamsMiB} MiB${k !== 'nginx' ? ' (goal < 1024)' : ''}`);
}
