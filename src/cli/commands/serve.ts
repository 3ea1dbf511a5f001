/**
 * `ratls serve`: the attested reverse proxy. Config: YAML file < RATLS_* env < flags.
 * `--demo` (what `npm start` runs) adds simulated TDX in ./.ratls and the demo apps: an
 * open-webui-shaped app (every path goes there) in front of an Ollama-shaped backend.
 */
import { join } from 'node:path';
import type { Command } from 'commander';
import { type CliIo, UsageError } from '../io.ts';
import {
  ConfigError,
  envToRaw,
  mergeRaw,
  openWebuiRoute,
  parseUpstreamSpec,
  readConfigFile,
  validateConfig,
  type RawConfig,
  type ServeConfig,
} from '../../proxy/config.ts';
import { startRatlsServer, type RunningRatlsServer } from '../../proxy/server.ts';
import { renderBanner, type BannerDemo } from '../../proxy/banner.ts';
import { RatlsError } from '../../core/errors.ts';
import { explainFsError, prepareStateDirs } from '../../proxy/state-dirs.ts';
import { startDemoApps, type RunningDemoApps } from '../../demo/apps.ts';
import { FLAGS } from '../flags.ts';

interface ServeFlags {
  config?: string;
  listen?: string;
  simulate?: boolean;
  simDir?: string;
  simQuoteLatency?: string;
  upstream?: string[];
  openWebui?: string;
  ollama?: string;
  demo?: boolean;
  tls12?: boolean;
  keyAlg?: string;
  certValidity?: string;
  maxBody?: string;
  upstreamTimeout?: string;
  drainTimeout?: string;
  host?: string[];
  blockOllamaAdmin?: boolean;
  logLevel?: string;
  engine?: string;
  profile?: string;
  ollamaListen?: string;
  ollamaTokenFile?: string;
}

const collect = (v: string, prev: string[] = []): string[] => [...prev, v];

/** Turns flags into the raw config layer that overrides file and env. */
function flagsToRaw(f: ServeFlags): RawConfig {
  const raw: Record<string, unknown> = {};
  const tls: Record<string, unknown> = {};
  const evidence: Record<string, unknown> = {};
  const limits: Record<string, unknown> = {};
  if (f.listen) raw.listen = f.listen;
  if (f.simulate) evidence.provider = 'simulated';
  if (f.simDir) evidence.simDir = f.simDir;
  if (f.simQuoteLatency) evidence.simQuoteLatency = f.simQuoteLatency;
  if (f.upstream?.length) raw.routes = f.upstream.map(parseUpstreamSpec);
  if (f.openWebui || f.ollama) raw.upstreams = { ...(f.openWebui ? { openWebui: f.openWebui } : {}), ...(f.ollama ? { ollama: f.ollama } : {}) };
  if (f.tls12) tls.minVersion = 'TLSv1.2';
  if (f.keyAlg) tls.keyAlg = f.keyAlg;
  if (f.certValidity) tls.validity = f.certValidity;
  if (f.host?.length) tls.hosts = f.host;
  if (f.profile) tls.profile = f.profile;
  if (f.maxBody) limits.maxBody = f.maxBody;
  if (f.upstreamTimeout) limits.upstreamTimeout = f.upstreamTimeout;
  if (f.drainTimeout) raw.shutdown = { drainTimeout: f.drainTimeout };
  if (f.logLevel) raw.log = { level: f.logLevel };
  if (f.demo) raw.demo = true;
  if (f.ollamaListen || f.ollamaTokenFile) {
    raw.ollamaListener = { ...(f.ollamaListen ? { listen: f.ollamaListen } : {}), ...(f.ollamaTokenFile ? { tokenFile: f.ollamaTokenFile } : {}) };
  }
  if (f.engine) raw.engine = f.engine;
  if (Object.keys(tls).length) raw.tls = tls;
  if (Object.keys(evidence).length) raw.evidence = evidence;
  if (Object.keys(limits).length) raw.limits = limits;
  return raw;
}

/** Resolves the effective config; demo defaults sit below the file, env and flags. */
export function resolveServeConfig(f: ServeFlags, env: NodeJS.ProcessEnv): { config: ServeConfig; routesGiven: boolean } {
  const file = f.config ?? env.RATLS_CONFIG;
  const layers: RawConfig[] = [file ? readConfigFile(file) : {}, envToRaw(env), flagsToRaw(f)];
  const demo = f.demo === true || layers.some((l) => l.demo === true);
  let raw: RawConfig = demo ? { listen: '127.0.0.1:8443', evidence: { provider: 'simulated' } } : {};
  for (const l of layers) raw = mergeRaw(raw, l);
  const routesGiven = raw.routes !== undefined;
  const config = validateConfig(raw);
  if (f.blockOllamaAdmin) for (const r of config.routes) if (r.rewriteHost || r.name === 'ollama') r.blockOllamaAdmin = true;
  return { config, routesGiven };
}

export function registerServeCommand(program: Command, io: CliIo): void {
  program
    .command('serve')
    .description(
      'Run the attested TLS reverse proxy in front of open-webui; Ollama is reached through open-webui (/ollama/, login or API key), never published directly. Listen address default 0.0.0.0:8443 (--demo: 127.0.0.1:8443); env RATLS_* and --config (config/ratls.example.yaml) as well',
    )
    .addOption(FLAGS.config())
    .addOption(FLAGS.listen())
    .addOption(FLAGS.simulate())
    .addOption(FLAGS.simDir())
    .option('--sim-quote-latency <duration>', 'simulated provider: time per quote, one at a time, as on real TDX (e.g. 40ms)')
    .option('--open-webui <url>', "open-webui's origin, http://host:port; every path on the listener goes there (default http://127.0.0.1:8080)")
    .addOption(FLAGS.ollama())
    .option('--upstream <spec>', 'custom route PREFIX=URL[,strip][,host][,block-admin]; repeat for more (replaces the default route to open-webui)', collect)
    .option('--demo', 'simulated TDX plus the demo apps: an open-webui-shaped app in front of an Ollama-shaped backend (npm start)')
    .option('--tls12', 'also accept TLS 1.2 (default: TLS 1.3 only)')
    .addOption(FLAGS.keyAlg())
    .option('--cert-validity <duration>', 'certificate lifetime, e.g. 24h; rotated at 2/3 of it')
    .addOption(FLAGS.host())
    .option('--max-body <size>', 'largest request body, e.g. 100MiB')
    .option('--upstream-timeout <duration>', 'how long to wait for upstream response headers, e.g. 10m')
    .option('--drain-timeout <duration>', 'how long SIGTERM waits for in-flight streams, e.g. 30s')
    .option('--block-ollama-admin', 'on custom routes to Ollama (--upstream ...,host): refuse its pull/push/create/delete/copy routes')
    .option(
      '--ollama-listen <host:port>',
      "opt-in: a second listener (same RA-TLS identity) for Ollama's own API, Bearer token required, admin routes blocked (ollamaListener.listen)",
    )
    .option(
      '--ollama-token-file <file>',
      "the Ollama listener's access token (mode 600; or env RATLS_OLLAMA_TOKEN); at least 32 characters, e.g. openssl rand -hex 32",
    )
    .option('--log-level <level>', 'fatal, error, warn, info, debug, trace or silent')
    .addOption(FLAGS.profile())
    .option('--engine <name>', 'upstream client for HTTP requests: undici (the only one; http-proxy-3 is accepted, means undici and warns)')
    .action(async (flags: ServeFlags) => {
      let resolved: ReturnType<typeof resolveServeConfig>;
      try {
        resolved = resolveServeConfig(flags, process.env);
      } catch (err) {
        if (err instanceof ConfigError) throw new UsageError(err.message);
        throw err;
      }
      const { config, routesGiven } = resolved;
      await runServe(config, routesGiven, io, process.env);
    });
}

/**
 * The sentence for a failed start. Only an error of listen() itself is about the port: a permission
 * error anywhere else (a state directory, a key file) names its path and operation instead.
 */
async function startFailure(err: unknown, config: ServeConfig): Promise<string> {
  if (err instanceof RatlsError) return `${err.message} [${err.code}]`;
  const e = err as NodeJS.ErrnoException;
  const where = `${config.listen.host}:${config.listen.port}`;
  if (e?.syscall === 'listen' || e?.syscall === 'bind') {
    if (e.code === 'EADDRINUSE') return `cannot listen on ${where}: the address is in use (EADDRINUSE). Pick another with --listen HOST:PORT.`;
    if (e.code === 'EACCES') {
      return `cannot listen on ${where}: permission denied (EACCES; ports below 1024 need CAP_NET_BIND_SERVICE). Pick a port above 1023 with --listen HOST:PORT.`;
    }
    return `cannot listen on ${where} (${e.code ?? e.message}). Pick another with --listen HOST:PORT.`;
  }
  if (typeof e?.path === 'string' && typeof e.syscall === 'string') return `cannot start: ${await explainFsError(err, e.syscall, e.path)}`;
  throw err;
}

/** Starts everything, prints the banner, and resolves after a signal closed the server. */
async function runServe(config: ServeConfig, routesGiven: boolean, io: CliIo, env: NodeJS.ProcessEnv): Promise<void> {
  // Handlers go in before anything starts: a supervisor's SIGTERM that lands during start-up or
  // right after the banner must still drain, not kill the process mid-stream.
  const stop = watchStopSignals(io);
  try {
    await serveUntilStopped(config, routesGiven, io, env, stop);
  } finally {
    stop.dispose();
  }
}

interface StopSignals {
  /** Resolves with the first SIGTERM/SIGINT. */
  readonly requested: Promise<NodeJS.Signals>;
  dispose(): void;
}

function watchStopSignals(io: CliIo): StopSignals {
  let signals = 0;
  let resolveRequested: (sig: NodeJS.Signals) => void = () => {};
  const requested = new Promise<NodeJS.Signals>((resolve) => (resolveRequested = resolve));
  const onSignal = (sig: NodeJS.Signals): void => {
    signals++;
    if (signals > 1) {
      io.err(`ratls serve: second ${sig}, exiting without draining\n`);
      process.exit(1);
    }
    resolveRequested(sig);
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  return {
    requested,
    dispose: () => {
      process.off('SIGTERM', onSignal);
      process.off('SIGINT', onSignal);
    },
  };
}

async function serveUntilStopped(config: ServeConfig, routesGiven: boolean, io: CliIo, env: NodeJS.ProcessEnv, stop: StopSignals): Promise<void> {
  let demo: RunningDemoApps | undefined;
  let bannerDemo: BannerDemo | undefined;
  if (config.demo && !routesGiven) {
    demo = await startDemoApps({ host: '127.0.0.1', webuiPort: 0, ollamaPort: 0, stateDir: env.RATLS_DEMO_DIR ?? '.ratls/demo' });
    config.upstreams = { openWebui: demo.webui.url, ollama: demo.ollama.url };
    config.routes = [openWebuiRoute(demo.webui.url)];
    bannerDemo = { webuiUrl: demo.webui.url, ollamaUrl: demo.ollama.url, credentials: demo.credentials };
  }
  let srv: RunningRatlsServer;
  try {
    await prepareStateDirs(config);
    srv = await startRatlsServer(config);
  } catch (err) {
    await demo?.close();
    io.err(`ratls serve: ${await startFailure(err, config)}\n`);
    io.setExitCode(2);
    return;
  }
  const identity = srv.identity();
  io.err(
    renderBanner({
      url: srv.url,
      port: srv.port,
      config,
      identity,
      measurements: srv.source.measurements?.(identity),
      ...(srv.ollama ? { ollamaListenerUrl: srv.ollama.url } : {}),
      ...(identity.simulated ? { simRootPath: join(config.evidence.simDir, 'root.pem') } : {}),
      ...(bannerDemo ? { demo: bannerDemo } : {}),
      ...(srv.measurement
        ? {
            workload: {
              binding: srv.measurement.binding,
              models: srv.measurement.measurer?.models().map((m) => m.name) ?? [],
              bootLog: srv.measurement.raw('boot') !== undefined,
            },
          }
        : {}),
    }),
  );

  const sig = await stop.requested;
  io.err(`ratls serve: ${sig} received, draining in-flight requests (up to ${Math.round(config.shutdown.drainTimeoutMs / 1000)} s)\n`);
  try {
    await srv.close();
  } finally {
    await demo?.close();
  }
}
