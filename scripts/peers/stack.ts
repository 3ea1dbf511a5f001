/**
 * The whole real stack on loopback, as an admin would run it in a TD (simulated here):
 *
 *   browser -> ratls connect (http, verifies) -> ratls serve (RA-TLS, default routing: / -> open-webui)
 *           -> open-webui (its own /ollama/, /openai/, /api/, /ws/socket.io) -> Ollama (tiny models)
 *
 * `ratls serve` and `ratls connect` run as the CLI (bin/ratls), in their own processes, exactly
 * as documented. Everything listens on 127.0.0.1 at ports the programs pick (open-webui's is
 * reserved first because ratls serve must know it). stop() ends all of it, newest first.
 */
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startProcess, type PeerProcess } from './process.ts';
import { createTinyModels, freePort, startOllama, startOpenWebui, type RunningOllama, type RunningOpenWebui, type TinyModel } from './peers.ts';

const RATLS_BIN = fileURLToPath(new URL('../../bin/ratls', import.meta.url));

export interface RunningStack {
  /** Working directory of this run (logs, data, the simulated world). */
  dir: string;
  ollama: RunningOllama;
  models: TinyModel[];
  openWebui: RunningOpenWebui;
  /** `ratls serve`: https URL (no trailing slash) and the simulated root that verifies it. */
  serve: { url: string; port: number; rootPem: string; proc: PeerProcess };
  /**
   * A second `ratls serve` in front of Ollama itself (Host rewritten, model-admin routes blocked),
   * same simulated world: direct Ollama API access on a listener of its own.
   */
  ollamaServe: { url: string; port: number; proc: PeerProcess };
  /** `ratls connect`: the plain-http address a browser opens. */
  connect: { url: string; port: number; proc: PeerProcess };
  /** Stops every process, copies the logs to `logsTo` (if given) and removes the working directory. */
  stop(): Promise<void>;
}

export interface StackOptions {
  /** Where stop() copies every *.log of the run (kept for reading after a failure). */
  logsTo?: string;
  /** Keep the whole working directory (RATLS_PEERS_KEEP=1 does the same). */
  keepDir?: boolean;
  log?: (line: string) => void;
}

/** The caller's environment without RATLS_* settings, so only the flags given here configure the CLI. */
function cliEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('RATLS_') || k === 'RATLS_TESTDATA') env[k] = v;
  return env;
}

function copyLogs(from: string, to: string): void {
  mkdirSync(to, { recursive: true });
  const walk = (d: string): void => {
    for (const name of readdirSync(d)) {
      const p = join(d, name);
      if (statSync(p).isDirectory()) walk(p);
      else if (name.endsWith('.log')) copyFileSync(p, join(to, name));
    }
  };
  walk(from);
}

export async function startStack(opts: StackOptions = {}): Promise<RunningStack> {
  const log = opts.log ?? (() => {});
  const dir = mkdtempSync(join(tmpdir(), 'ratls-peers-'));
  const started: Array<{ stop(): Promise<void> }> = [];
  const stopAll = async (): Promise<void> => {
    if (!existsSync(dir)) return;
    for (const s of started.reverse()) await s.stop().catch(() => {});
    started.length = 0;
    if (opts.logsTo) copyLogs(dir, opts.logsTo);
    if (!(opts.keepDir || process.env.RATLS_PEERS_KEEP === '1')) rmSync(dir, { recursive: true, force: true });
  };
  try {
    const t0 = Date.now();
    const ollama = await startOllama(join(dir, 'ollama'));
    started.push(ollama);
    log(`ollama ${ollama.version} on ${ollama.url} (${Date.now() - t0} ms)`);

    const owPort = await freePort();
    const simDir = join(dir, 'sim');
    const startServe = async (name: string, routing: string[]): Promise<{ url: string; port: number; proc: PeerProcess }> => {
      const proc = startProcess(
        name,
        process.execPath,
        [RATLS_BIN, 'serve', '--simulate', '--sim-dir', simDir, '--listen', '127.0.0.1:0', ...routing, '--log-level', 'warn'],
        // the measured workload: read Ollama's models and both versions every second (docs/eventlog.md)
        { env: { ...cliEnv(), RATLS_MEASUREMENT_POLL: '1s' }, logFile: join(dir, `${name.replace(/ /g, '-')}.log`) },
      );
      started.push(proc);
      const m = await proc.waitForLine(/listening on (https:\/\/127\.0\.0\.1:(\d+))\/?/, 60_000);
      return { url: m[1]!, port: Number(m[2]), proc };
    };
    // the default routing (every path to open-webui), only open-webui's address given
    const serve = {
      ...(await startServe('ratls serve', ['--open-webui', `http://127.0.0.1:${owPort}`, '--ollama', ollama.url])),
      rootPem: join(simDir, 'root.pem'),
    };
    log(`ratls serve on ${serve.url} -> open-webui on 127.0.0.1:${owPort}`);
    const ollamaServe = await startServe('ratls serve ollama', ['--upstream', `/=${ollama.url},host,block-admin`]);
    log(`ratls serve on ${ollamaServe.url} -> ollama on ${ollama.url}`);

    const connectProc = startProcess(
      'ratls connect',
      process.execPath,
      [RATLS_BIN, 'connect', '--upstream', serve.url, '--root', serve.rootPem, '--nonce', '--listen', '127.0.0.1:0'],
      { env: cliEnv(), logFile: join(dir, 'ratls-connect.log') },
    );
    started.push(connectProc);
    const cm = await connectProc.waitForLine(/ratls connect: (http:\/\/127\.0\.0\.1:(\d+)) -> /, 60_000);
    const connect = { url: cm[1]!, port: Number(cm[2]), proc: connectProc };
    await connectProc.waitForLine(/status page /, 30_000);
    // its own status API, not its wording, says whether it verified ratls serve
    const status = (await (await fetch(`${connect.url}/.ratls/status?format=json`)).json()) as { state?: string };
    if (status.state !== 'verified') throw new Error(`ratls connect did not verify ratls serve (state ${String(status.state)}): ${connectProc.tail()}`);
    log(`ratls connect on ${connect.url} (attestation verified)`);

    // open-webui takes the longest to start: make the models meanwhile.
    const t1 = Date.now();
    const modelsP = createTinyModels(ollama, join(dir, 'ollama'));
    const owP = startOpenWebui({
      dir: join(dir, 'open-webui'),
      port: owPort,
      ollamaUrl: ollama.url,
      webuiUrl: serve.url,
      corsOrigins: [serve.url],
    });
    const [models, openWebui] = await Promise.allSettled([modelsP, owP]).then((r) => {
      const bad = r.find((x) => x.status === 'rejected');
      if (r[1].status === 'fulfilled') started.push(r[1].value);
      if (bad) throw (bad as PromiseRejectedResult).reason;
      return [(r[0] as PromiseFulfilledResult<TinyModel[]>).value, (r[1] as PromiseFulfilledResult<RunningOpenWebui>).value] as const;
    });
    log(`open-webui ${openWebui.version} ready on ${openWebui.url} (${Date.now() - t1} ms); models ${models.map((m) => m.name).join(', ')}`);

    return {
      dir,
      ollama,
      models,
      openWebui,
      serve,
      ollamaServe,
      connect,
      stop: stopAll,
    };
  } catch (err) {
    await stopAll();
    if (err instanceof Error && opts.logsTo) err.message += `\n(logs of this run: ${opts.logsTo})`;
    throw err;
  }
}
