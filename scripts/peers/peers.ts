/**
 * Starts the real peers on loopback for tests and by hand: Ollama (built by build-ollama.sh) with a
 * throw-away model store and the tiny random-weight models, and open-webui (installed by
 * install-open-webui.sh) with a throw-away data directory and secret. Each returns a handle whose
 * stop() ends the process group.
 */
import { randomBytes } from 'node:crypto';
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { startProcess, type PeerProcess } from './process.ts';
import { PEERS_SCRIPTS_DIR, requirePeers } from './pins.ts';

/** A free loopback TCP port (for a server that cannot report the port it picked). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      const port = typeof a === 'object' && a ? a.port : 0;
      s.close(() => resolve(port));
    });
  });
}

/** Polls `url` until it answers 200, the process exits, or time runs out. */
export async function waitForHttp(proc: PeerProcess, url: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < deadline) {
    if (proc.hasExited()) throw new Error(`${proc.name} exited before ${url} answered. Output (${proc.logFile}):\n${proc.tail().slice(-4000)}`);
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(5000) });
      await res.arrayBuffer();
      if (res.status === 200) return;
      last = `HTTP ${res.status}`;
    } catch (err) {
      last = err instanceof Error ? err.message : String(err);
    }
    await new Promise((r) => setTimeout(r, 500));
  }
  throw new Error(`${proc.name}: ${url} did not answer 200 within ${timeoutMs} ms (last: ${last}). Output (${proc.logFile}):\n${proc.tail().slice(-4000)}`);
}

export interface RunningOllama {
  url: string;
  port: number;
  version: string;
  proc: PeerProcess;
  /** The `ollama` binary, and the environment that points its client at this server. */
  bin: string;
  clientEnv: NodeJS.ProcessEnv;
  stop(): Promise<void>;
}

/** `ollama serve` on 127.0.0.1 at a port it picks, models in `dir`/models. */
export async function startOllama(dir: string): Promise<RunningOllama> {
  const paths = requirePeers(['ollama']);
  mkdirSync(join(dir, 'models'), { recursive: true });
  mkdirSync(join(dir, 'home'), { recursive: true });
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    // Ollama keeps its identity key under $HOME/.ollama: a throw-away home, too.
    HOME: join(dir, 'home'),
    OLLAMA_HOST: '127.0.0.1:0',
    OLLAMA_MODELS: join(dir, 'models'),
    OLLAMA_NOPRUNE: '1',
  };
  const proc = startProcess('ollama', paths.ollamaBin, ['serve'], { env, cwd: dir, logFile: join(dir, 'ollama.log') });
  const m = await proc.waitForLine(/Listening on 127\.0\.0\.1:(\d+)/, 60_000);
  const port = Number(m[1]);
  const url = `http://127.0.0.1:${port}`;
  const res = await fetch(`${url}/api/version`);
  const { version } = (await res.json()) as { version: string };
  if (version !== paths.ollamaVersion) {
    await proc.stop();
    throw new Error(`ollama at ${paths.ollamaBin} reports version ${version}, pinned ${paths.ollamaVersion}; rerun bash scripts/peers/build-ollama.sh`);
  }
  return {
    url,
    port,
    version,
    proc,
    bin: paths.ollamaBin,
    clientEnv: { ...env, OLLAMA_HOST: `127.0.0.1:${port}` },
    stop: () => proc.stop(),
  };
}

export interface TinyModel {
  /** Ollama's name, e.g. ratls-tiny-a:latest */
  name: string;
  /** The manifest digest /api/tags reports. */
  digest: string;
  /** sha256 of the GGUF file, which Ollama stores as the model layer (`sha256:...`). */
  ggufSha256: string;
  /** Seed of the random weights. */
  seed: number;
}

/** The two tiny models (different random weights, so different digests). */
export const TINY_MODELS = [
  { name: 'ratls-tiny-a', seed: 1 },
  { name: 'ratls-tiny-b', seed: 2 },
] as const;

/**
 * Writes each tiny GGUF into `dir` and imports it with `ollama create` from a Modelfile. Greedy
 * decoding and a fixed answer length make every answer deterministic.
 */
export async function createTinyModels(ollama: RunningOllama, dir: string): Promise<TinyModel[]> {
  const paths = requirePeers(['gguf']);
  const run = async (name: string, cmd: string, args: string[], env?: NodeJS.ProcessEnv): Promise<void> => {
    const p = startProcess(name, cmd, args, { env: env ?? process.env, cwd: dir, logFile: join(dir, `${name}.log`) });
    const how = await p.exited;
    await p.stop();
    if (how !== 0) throw new Error(`${name} failed (${how}): ${p.tail().slice(-3000)}`);
  };
  for (const { name, seed } of TINY_MODELS) {
    const gguf = join(dir, `${name}.gguf`);
    await run(`make-${name}`, paths.ggufPython, [join(PEERS_SCRIPTS_DIR, 'make-tiny-model.py'), gguf, String(seed)]);
    const modelfile = join(dir, `${name}.Modelfile`);
    writeFileSync(
      modelfile,
      [
        `FROM ${gguf}`,
        // Mentioning .Tools gives the model Ollama's "tools" capability: open-webui's chat page sends
        // tools with every request, and Ollama refuses those for models that lack it.
        'TEMPLATE """{{- if .Tools }}tools:{{ range .Tools }} {{ .Function.Name }}{{ end }}',
        '{{ end }}{{- range .Messages }}{{ .Role }}: {{ .Content }}',
        '{{ end }}assistant:"""',
        'PARAMETER temperature 0',
        // one thread: ggml's worker threads spin while they wait for each other, which on a busy
        // 2-core machine turned 12 tokens from milliseconds into tens of seconds
        'PARAMETER num_thread 1',
        'PARAMETER num_predict 12',
        // Greedy decoding of random weights settles into one repeated word, and Ollama aborts a
        // generation that repeats a token more than 30 times; penalising repeats keeps long answers going.
        'PARAMETER frequency_penalty 5',
        // open-webui's chat page sends tool descriptions and a system prompt: thousands of tokens
        // with this byte-level vocabulary, and a prompt that fills the context leaves no room to answer
        'PARAMETER num_ctx 4096',
        '',
      ].join('\n'),
    );
    await run(`create-${name}`, ollama.bin, ['create', name, '-f', modelfile], ollama.clientEnv);
  }
  const tags = (await (await fetch(`${ollama.url}/api/tags`)).json()) as { models: Array<{ name: string; digest: string }> };
  return TINY_MODELS.map(({ name, seed }) => {
    const t = tags.models.find((m) => m.name === `${name}:latest`);
    if (!t) throw new Error(`ollama /api/tags does not list ${name}:latest after ollama create`);
    const ggufSha256 = createHash('sha256')
      .update(readFileSync(join(dir, `${name}.gguf`)))
      .digest('hex');
    return { name: t.name, digest: t.digest, ggufSha256, seed };
  });
}

export interface OpenWebuiOptions {
  /** Working directory of this run: data/ and the log go here. */
  dir: string;
  port: number;
  ollamaUrl: string;
  /** WEBUI_URL: the address users type, i.e. the proxy's. */
  webuiUrl: string;
  /** CORS_ALLOW_ORIGIN entries: the proxy's URL (`ratls connect` presents that origin for its own page). */
  corsOrigins: string[];
  /** Addresses uvicorn takes X-Forwarded-* from (FORWARDED_ALLOW_IPS): the proxy's. */
  forwardedAllowIps?: string;
  env?: Record<string, string>;
}

export interface RunningOpenWebui {
  url: string;
  port: number;
  version: string;
  dataDir: string;
  proc: PeerProcess;
  stop(): Promise<void>;
}

/** `open-webui serve` on 127.0.0.1:`port` with a throw-away DATA_DIR and secret, offline. */
export async function startOpenWebui(o: OpenWebuiOptions): Promise<RunningOpenWebui> {
  const paths = requirePeers(['openWebui']);
  const dataDir = join(o.dir, 'open-webui-data');
  mkdirSync(dataDir, { recursive: true });
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    LANG: 'C.UTF-8',
    DATA_DIR: dataDir,
    WEBUI_SECRET_KEY: randomBytes(32).toString('hex'),
    // No internet here; also turns off update checks and model downloads (HF_HUB_OFFLINE).
    OFFLINE_MODE: 'true',
    HF_HUB_OFFLINE: '1',
    OLLAMA_BASE_URL: o.ollamaUrl,
    ENABLE_OPENAI_API: 'false',
    WEBUI_URL: o.webuiUrl,
    CORS_ALLOW_ORIGIN: o.corsOrigins.join(';'),
    FORWARDED_ALLOW_IPS: o.forwardedAllowIps ?? '127.0.0.1',
    ENABLE_API_KEYS: 'true',
    // The audit log records the client address and URL open-webui saw (checked by the tests).
    AUDIT_LOG_LEVEL: 'METADATA',
    ...o.env,
  };
  const bin = join(paths.openWebuiDir, 'bin', 'open-webui');
  const proc = startProcess('open-webui', bin, ['serve', '--host', '127.0.0.1', '--port', String(o.port)], {
    env,
    cwd: o.dir,
    logFile: join(o.dir, 'open-webui.log'),
  });
  const url = `http://127.0.0.1:${o.port}`;
  try {
    // Importing open-webui (torch, transformers...) takes 20-30 s on an idle machine; allow for load.
    await waitForHttp(proc, `${url}/health`, 300_000);
  } catch (err) {
    await proc.stop();
    throw err;
  }
  const cfg = (await (await fetch(`${url}/api/config`)).json()) as { version?: string };
  if (cfg.version !== paths.openWebuiVersion) {
    await proc.stop();
    throw new Error(`open-webui reports version ${String(cfg.version)}, pinned ${paths.openWebuiVersion}`);
  }
  return { url, port: o.port, version: cfg.version, dataDir, proc, stop: () => proc.stop(15_000) };
}
