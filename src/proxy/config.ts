/**
 * Configuration of `ratls serve`: the typed shape, defaults, and loading from YAML < env < flags
 * with validation that names the offending key. Node-only.
 */
import { parse as parseYaml } from 'yaml';
import { parseDuration, parseSize, formatSize } from './units.ts';
import { INTEL_PCS_URL } from '../collateral/pcs.ts';
import { RatlsError } from '../core/errors.ts';
import { readTrustedFile } from '../core/trusted-path.ts';

/** One upstream route, matched by longest path prefix. */
export interface RouteConfig {
  /** Path prefix with leading and trailing slash, e.g. "/ollama/"; "/" is the catch-all. */
  prefix: string;
  /** Upstream origin, http://host:port (plain HTTP inside the VM). */
  target: string;
  /** Remove the prefix before forwarding ("/ollama/api/tags" -> "/api/tags"). */
  stripPrefix: boolean;
  /**
   * Send the upstream's own host:port as Host. Ollama rejects requests whose Host is not a local
   * name, so its route needs this; open-webui wants the client's Host to build links.
   */
  rewriteHost: boolean;
  /** Answer 403 to Ollama's model-management routes (pull, push, create, delete, copy). */
  blockOllamaAdmin: boolean;
  /** Label used in logs and metrics (default: the prefix). */
  name: string;
}

export type EvidenceProviderChoice = 'auto' | 'configfs-tsm' | 'simulated';

/** The opt-in direct Ollama listener (docs/serve.md says why it is off by default). */
export interface OllamaListenerConfig {
  listen: { host: string; port: number };
  /** File holding the access token (mode 600). */
  tokenFile?: string;
  /** Environment variable holding the token itself, when no file is given (default RATLS_OLLAMA_TOKEN). */
  tokenEnv: string;
  /** Refuse Ollama's model-management routes (pull, push, create, delete, copy, blobs); default true. */
  blockAdmin: boolean;
}

/** The environment variable the Ollama listener's token is read from by default. */
export const DEFAULT_OLLAMA_TOKEN_ENV = 'RATLS_OLLAMA_TOKEN';

/** Complete, validated configuration of one proxy instance. */
export interface ServeConfig {
  listen: { host: string; port: number };
  tls: {
    /** 'TLSv1.3' (default) or 'TLSv1.2' to admit older clients. */
    minVersion: 'TLSv1.3' | 'TLSv1.2';
    keyAlg: 'P-256' | 'P-384';
    /** Certificate lifetime in ms (default 24 h). */
    validityMs: number;
    /** Fraction of the lifetime after which a new certificate is made (default 2/3). */
    rotateAt: number;
    /** DNS names / IPs put in the certificate's subjectAltName. */
    hosts: string[];
    /** Put collateral into the certificate so offline verifiers need no PCCS (default true). */
    stapleCollateral: boolean;
    /**
     * 'ccc' (default): CCC Interoperable RA-TLS evidence. 'dstack': the quote in dstack's extension
     * with REPORTDATA = SHA-512("ratls-cert:" || SPKI), for dstack-aware verifiers.
     */
    profile: 'ccc' | 'dstack';
  };
  /**
   * Where the proxy gets the DCAP collateral it staples when the evidence provider has none of its
   * own (configfs-tsm on real TDX). Fetched at start and at every rotation.
   */
  collateral: {
    /** PCCS base URL, tried before PCS (e.g. https://pccs.internal:8081). */
    pccsUrl?: string;
    /** Intel PCS v4 base URL (default https://api.trustedservices.intel.com). */
    pcsUrl: string;
    /** Disk cache of fetched collateral; survives restarts and honours nextUpdate. */
    cacheDir?: string;
    /** Local collateral directories (seven-file layout), tried first. */
    directories: string[];
    /** Never use the network: cache and directories only. */
    offline: boolean;
    /**
     * true: refuse to start (and keep the old certificate at rotation) when no collateral can be
     * fetched. false (default): serve the certificate unstapled, log a warning and set
     * ratls_collateral_stapled to 0; offline and browser verifiers then fail.
     */
    required: boolean;
  };
  /**
   * The apps this proxy fronts. The public listener sends every path to open-webui (its own
   * /ollama/ and /openai/ routes included, which it authenticates); Ollama is never routed from
   * the public listener by default, because Ollama's API has no authentication at all.
   */
  upstreams: {
    /** open-webui's origin (default http://127.0.0.1:8080); the default route "/" goes here. */
    openWebui: string;
    /**
     * Ollama's origin (default http://127.0.0.1:11434). Not published by the default routes; kept
     * for the opt-in, token-protected Ollama listener and for measuring the models it serves.
     */
    ollama: string;
  };
  /**
   * The opt-in direct Ollama listener: its own port, the same RA-TLS identity and control routes as
   * the public listener, every other request to upstreams.ollama only with the Bearer access token.
   * Absent (the default): Ollama is not published at all.
   */
  ollamaListener?: OllamaListenerConfig;
  evidence: {
    provider: EvidenceProviderChoice;
    /** State directory of the simulated TDX world. */
    simDir: string;
    configfsRoot: string;
    /** Simulated provider only: time per quote, one at a time, to model real TDX (about 40 ms). Default 0. */
    simQuoteLatencyMs: number;
    /** Session evidence requests that may wait for the next quote (default 4096); more get 503 + Retry-After. */
    maxQueued: number;
    /** Sessions one quote covers at most (default 1024). */
    maxBatch: number;
    /** Evidence requests one client address may have waiting (default 256); more get 503 + Retry-After. */
    maxPerPeer: number;
  };
  routes: RouteConfig[];
  limits: {
    /** Largest accepted request body in bytes (default 100 MiB); larger gets 413. */
    maxBodyBytes: number;
    /** How long to wait for the upstream's response headers (default 10 min, for slow models). */
    upstreamTimeoutMs: number;
    /** Time allowed for a client to send request headers (slowloris guard, default 60 s). */
    headersTimeoutMs: number;
    /** Time allowed for a whole request body to arrive (default 1 h; 0 = unlimited). */
    requestTimeoutMs: number;
    /**
     * Longest pause in a request body (default 60 s; 0 = none): after that long without a byte
     * the client gets 408 and the upstream request is cancelled, so slow senders cannot hold
     * upstream connections. Pauses the proxy causes itself (a slow upstream) do not count.
     */
    bodyIdleTimeoutMs: number;
    /** Idle keep-alive time of client connections (default 65 s). */
    keepAliveTimeoutMs: number;
  };
  shutdown: { drainTimeoutMs: number };
  log: { level: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent' };
  /** Start the built-in demo upstream and route to it (npm start). */
  demo: boolean;
  /**
   * Client used for the upstream leg of plain HTTP requests: undici, the only one. WebSocket
   * upgrades use http-proxy-3. The value 'http-proxy-3' is still accepted and means undici (see
   * docs/serve.md, Engines), with a warning.
   */
  engine: 'undici';
  /** Sentences about accepted but deprecated settings; the banner and the log repeat them. */
  warnings: string[];
}

/** Thrown for invalid configuration; the message names the key and what is accepted. */
export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

export const DEFAULT_OPEN_WEBUI_URL = 'http://127.0.0.1:8080';
export const DEFAULT_OLLAMA_URL = 'http://127.0.0.1:11434';

/**
 * The default routing: every path to open-webui, Host passed through (it builds links from it).
 * open-webui's frontend calls /ollama/ and /openai/ on its own origin and its backend serves them
 * behind its login, so they must reach open-webui, not Ollama.
 */
export function openWebuiRoute(target: string): RouteConfig {
  return { prefix: '/', target, stripPrefix: false, rewriteHost: false, blockOllamaAdmin: false, name: 'open-webui' };
}

/**
 * The route of the Ollama listener: every path to Ollama with its own host:port as Host (Ollama
 * refuses requests whose Host is not a local name when it listens on loopback).
 */
export function ollamaListenerRoute(target: string, blockAdmin: boolean): RouteConfig {
  return { prefix: '/', target, stripPrefix: false, rewriteHost: true, blockOllamaAdmin: blockAdmin, name: 'ollama-listener' };
}

/** Defaults for every key; tests and the CLI start from here. */
export function defaultServeConfig(): ServeConfig {
  return {
    listen: { host: '0.0.0.0', port: 8443 },
    tls: {
      minVersion: 'TLSv1.3',
      keyAlg: 'P-256',
      validityMs: 24 * 3_600_000,
      rotateAt: 2 / 3,
      hosts: ['localhost', '127.0.0.1'],
      stapleCollateral: true,
      profile: 'ccc',
    },
    upstreams: { openWebui: DEFAULT_OPEN_WEBUI_URL, ollama: DEFAULT_OLLAMA_URL },
    evidence: {
      provider: 'auto',
      simDir: '.ratls/sim',
      configfsRoot: '/sys/kernel/config/tsm',
      simQuoteLatencyMs: 0,
      maxQueued: 4096,
      maxBatch: 1024,
      maxPerPeer: 256,
    },
    collateral: { pcsUrl: INTEL_PCS_URL, directories: [], offline: false, required: false },
    routes: [openWebuiRoute(DEFAULT_OPEN_WEBUI_URL)],
    limits: {
      maxBodyBytes: 100 * 1024 * 1024,
      upstreamTimeoutMs: 600_000,
      headersTimeoutMs: 60_000,
      requestTimeoutMs: 3_600_000,
      bodyIdleTimeoutMs: 60_000,
      keepAliveTimeoutMs: 65_000,
    },
    shutdown: { drainTimeoutMs: 30_000 },
    log: { level: 'info' },
    demo: false,
    engine: 'undici',
    warnings: [],
  };
}

/** A partial config as found in YAML, env or flags, before validation. */
export type RawConfig = Record<string, unknown>;

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Deep-merges `over` into `base` (objects merge, arrays and scalars replace). */
export function mergeRaw(base: RawConfig, over: RawConfig): RawConfig {
  const out: Obj = { ...base };
  for (const [k, v] of Object.entries(over)) {
    if (v === undefined) continue;
    out[k] = isObj(v) && isObj(out[k]) ? mergeRaw(out[k] as Obj, v) : v;
  }
  return out;
}

/** Reads a YAML config file; errors name the file. */
export function readConfigFile(path: string): RawConfig {
  let text: string;
  try {
    // it decides what is published and where requests go: only if nobody else could have written it
    text = readTrustedFile(path, { what: 'config file', kind: 'config' }).toString('utf8');
  } catch (err) {
    if (err instanceof RatlsError) throw new ConfigError(`${err.message} [${err.code}]`);
    throw new ConfigError(`Cannot read config file ${path}: ${(err as Error).message}`);
  }
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (err) {
    throw new ConfigError(`Config file ${path} is not valid YAML: ${(err as Error).message}`);
  }
  if (doc === null || doc === undefined) return {};
  if (!isObj(doc)) throw new ConfigError(`Config file ${path} must contain a YAML mapping at the top level.`);
  return doc;
}

/** Parses "host:port", "[::1]:port" or ":port". */
export function parseListen(value: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d{1,5})$/.exec(value.trim());
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535) throw new ConfigError(`listen "${value}" must look like HOST:PORT, e.g. 127.0.0.1:8443 (port 0-65535).`);
  return { host: m[1] ?? (m[2] || '0.0.0.0'), port };
}

/**
 * Parses an upstream flag/env value: "PREFIX=URL[,strip][,host][,block-admin]", e.g.
 * "/=http://127.0.0.1:8080" or "/app2/=http://10.0.0.5:3000,strip".
 */
export function parseUpstreamSpec(spec: string): RawConfig {
  const [head, ...opts] = spec.split(',');
  const eq = head?.indexOf('=') ?? -1;
  if (!head || eq <= 0) throw new ConfigError(`upstream "${spec}" must look like PREFIX=URL[,strip][,host][,block-admin], e.g. /=http://127.0.0.1:8080`);
  const route: RawConfig = { prefix: head.slice(0, eq), target: head.slice(eq + 1) };
  for (const o of opts) {
    if (o === 'strip') route.stripPrefix = true;
    else if (o === 'host') route.rewriteHost = true;
    else if (o === 'block-admin') route.blockOllamaAdmin = true;
    else throw new ConfigError(`upstream "${spec}": unknown option "${o}" (use strip, host or block-admin).`);
  }
  return route;
}

/** Maps RATLS_* environment variables onto a raw config. Unknown RATLS_* names are ignored. */
export function envToRaw(env: NodeJS.ProcessEnv): RawConfig {
  const raw: Obj = {};
  const set = (path: string[], v: unknown): void => {
    let o = raw;
    for (const k of path.slice(0, -1)) o = (o[k] = isObj(o[k]) ? o[k] : {}) as Obj;
    o[path[path.length - 1]!] = v;
  };
  if (env.RATLS_LISTEN) set(['listen'], env.RATLS_LISTEN);
  else if (env.PORT) set(['listen'], `${env.RATLS_HOST ?? '127.0.0.1'}:${env.PORT}`);
  if (env.RATLS_TLS_MIN_VERSION) set(['tls', 'minVersion'], env.RATLS_TLS_MIN_VERSION);
  if (env.RATLS_KEY_ALG) set(['tls', 'keyAlg'], env.RATLS_KEY_ALG);
  if (env.RATLS_CERT_VALIDITY) set(['tls', 'validity'], env.RATLS_CERT_VALIDITY);
  if (env.RATLS_HOSTS)
    set(
      ['tls', 'hosts'],
      env.RATLS_HOSTS.split(',')
        .map((s) => s.trim())
        .filter(Boolean),
    );
  if (env.RATLS_EVIDENCE_PROVIDER) set(['evidence', 'provider'], env.RATLS_EVIDENCE_PROVIDER);
  if (env.RATLS_SIM_DIR) set(['evidence', 'simDir'], env.RATLS_SIM_DIR);
  if (env.RATLS_CONFIGFS_ROOT) set(['evidence', 'configfsRoot'], env.RATLS_CONFIGFS_ROOT);
  if (env.RATLS_SIM_QUOTE_LATENCY) set(['evidence', 'simQuoteLatency'], env.RATLS_SIM_QUOTE_LATENCY);
  if (env.RATLS_OPEN_WEBUI_URL) set(['upstreams', 'openWebui'], env.RATLS_OPEN_WEBUI_URL);
  if (env.RATLS_OLLAMA_URL) set(['upstreams', 'ollama'], env.RATLS_OLLAMA_URL);
  if (env.RATLS_OLLAMA_LISTEN) set(['ollamaListener', 'listen'], env.RATLS_OLLAMA_LISTEN);
  if (env.RATLS_OLLAMA_TOKEN_FILE) set(['ollamaListener', 'tokenFile'], env.RATLS_OLLAMA_TOKEN_FILE);
  if (env.RATLS_UPSTREAMS) set(['routes'], env.RATLS_UPSTREAMS.split(/\s+/).filter(Boolean).map(parseUpstreamSpec));
  if (env.RATLS_MAX_BODY) set(['limits', 'maxBody'], env.RATLS_MAX_BODY);
  if (env.RATLS_UPSTREAM_TIMEOUT) set(['limits', 'upstreamTimeout'], env.RATLS_UPSTREAM_TIMEOUT);
  if (env.RATLS_BODY_IDLE_TIMEOUT) set(['limits', 'bodyIdleTimeout'], env.RATLS_BODY_IDLE_TIMEOUT);
  if (env.RATLS_DRAIN_TIMEOUT) set(['shutdown', 'drainTimeout'], env.RATLS_DRAIN_TIMEOUT);
  if (env.RATLS_LOG_LEVEL) set(['log', 'level'], env.RATLS_LOG_LEVEL);
  if (env.RATLS_ENGINE) set(['engine'], env.RATLS_ENGINE);
  if (env.RATLS_PROFILE) set(['tls', 'profile'], env.RATLS_PROFILE);
  if (env.RATLS_PCCS_URL) set(['collateral', 'pccsUrl'], env.RATLS_PCCS_URL);
  if (env.RATLS_PCS_URL) set(['collateral', 'pcsUrl'], env.RATLS_PCS_URL);
  if (env.RATLS_COLLATERAL_CACHE_DIR) set(['collateral', 'cacheDir'], env.RATLS_COLLATERAL_CACHE_DIR);
  if (env.RATLS_COLLATERAL_DIRS)
    set(
      ['collateral', 'directories'],
      env.RATLS_COLLATERAL_DIRS.split(',')
        .map((s) => s.trim())
        .filter(Boolean),
    );
  if (env.RATLS_COLLATERAL_OFFLINE) set(['collateral', 'offline'], env.RATLS_COLLATERAL_OFFLINE);
  if (env.RATLS_COLLATERAL_REQUIRED) set(['collateral', 'required'], env.RATLS_COLLATERAL_REQUIRED);
  return raw;
}

const KNOWN: Record<string, readonly string[]> = {
  '': ['listen', 'tls', 'upstreams', 'ollamaListener', 'evidence', 'collateral', 'routes', 'limits', 'shutdown', 'log', 'demo', 'engine'],
  upstreams: ['openWebui', 'ollama'],
  ollamaListener: ['listen', 'tokenFile', 'tokenEnv', 'blockAdmin'],
  tls: ['minVersion', 'keyAlg', 'validity', 'rotateAt', 'hosts', 'stapleCollateral', 'profile'],
  collateral: ['pccsUrl', 'pcsUrl', 'cacheDir', 'directories', 'offline', 'required'],
  evidence: ['provider', 'simDir', 'configfsRoot', 'simQuoteLatency', 'maxQueued', 'maxBatch', 'maxPerPeer'],
  limits: ['maxBody', 'upstreamTimeout', 'headersTimeout', 'requestTimeout', 'bodyIdleTimeout', 'keepAliveTimeout'],
  shutdown: ['drainTimeout'],
  log: ['level'],
  route: ['prefix', 'target', 'stripPrefix', 'rewriteHost', 'blockOllamaAdmin', 'name'],
};

function checkKeys(o: Obj, section: string, where: string): void {
  const known = KNOWN[section]!;
  for (const k of Object.keys(o)) {
    if (!known.includes(k)) throw new ConfigError(`Unknown config key "${where}${k}" (known: ${known.join(', ')}).`);
  }
}

function section(raw: Obj, key: string): Obj {
  const v = raw[key];
  if (v === undefined || v === null) return {};
  if (!isObj(v)) throw new ConfigError(`Config key "${key}" must be a mapping.`);
  checkKeys(v, key, `${key}.`);
  return v;
}

function bool(v: unknown, key: string, dflt: boolean): boolean {
  if (v === undefined) return dflt;
  if (typeof v === 'boolean') return v;
  if (v === 'true') return true;
  if (v === 'false') return false;
  throw new ConfigError(`Config key "${key}" must be true or false, got ${JSON.stringify(v)}.`);
}

function duration(v: unknown, key: string, dflt: number): number {
  if (v === undefined) return dflt;
  const ms = parseDuration(v);
  if (ms === undefined) throw new ConfigError(`Config key "${key}" must be a duration like "30s", "10m" or "24h", got ${JSON.stringify(v)}.`);
  return ms;
}

function count(v: unknown, key: string, dflt: number, min: number, max: number): number {
  if (v === undefined) return dflt;
  const n = typeof v === 'string' && /^\d+$/.test(v.trim()) ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < min || n > max) {
    throw new ConfigError(`Config key "${key}" must be a whole number from ${min} to ${max}, got ${JSON.stringify(v)}.`);
  }
  return n;
}

function oneOf<T extends string>(v: unknown, key: string, allowed: readonly T[], dflt: T): T {
  if (v === undefined) return dflt;
  if (typeof v === 'string' && (allowed as readonly string[]).includes(v)) return v as T;
  throw new ConfigError(`Config key "${key}" must be one of ${allowed.join(', ')}, got ${JSON.stringify(v)}.`);
}

function serviceUrl(v: unknown, key: string): string {
  let u: URL;
  try {
    u = new URL(String(v));
  } catch {
    throw new ConfigError(`Config key "${key}" must be a URL like https://pccs.example:8081, got ${JSON.stringify(v)}.`);
  }
  if (u.protocol !== 'https:' && u.protocol !== 'http:')
    throw new ConfigError(`Config key "${key}" must use https: (or http: for a PCCS on a trusted network).`);
  return String(v).replace(/\/+$/, '');
}

function validateCollateral(c: Obj, d: ServeConfig['collateral']): ServeConfig['collateral'] {
  let directories = d.directories;
  if (c.directories !== undefined) {
    if (!Array.isArray(c.directories) || !c.directories.every((x) => typeof x === 'string' && x.length > 0)) {
      throw new ConfigError('Config key "collateral.directories" must be a list of directory paths.');
    }
    directories = c.directories as string[];
  }
  const str = (v: unknown, key: string): string => {
    if (typeof v !== 'string' || v.length === 0) throw new ConfigError(`Config key "${key}" must be a non-empty string.`);
    return v;
  };
  return {
    ...(c.pccsUrl !== undefined ? { pccsUrl: serviceUrl(c.pccsUrl, 'collateral.pccsUrl') } : {}),
    pcsUrl: c.pcsUrl === undefined ? d.pcsUrl : serviceUrl(c.pcsUrl, 'collateral.pcsUrl'),
    ...(c.cacheDir !== undefined ? { cacheDir: str(c.cacheDir, 'collateral.cacheDir') } : {}),
    directories,
    offline: bool(c.offline, 'collateral.offline', d.offline),
    required: bool(c.required, 'collateral.required', d.required),
  };
}

/** An upstream origin (http or https, no path): the error names the key. */
function origin(v: unknown, key: string, example: string): string {
  let u: URL;
  try {
    u = new URL(String(v));
  } catch {
    throw new ConfigError(`Config key "${key}" must be a URL like ${example}, got ${JSON.stringify(v)}.`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new ConfigError(`Config key "${key}" must use http: or https:, got ${JSON.stringify(v)}.`);
  if (u.pathname !== '/' || u.search || u.username || u.password)
    throw new ConfigError(`Config key "${key}" must be an origin like ${example} (no path, query or credentials), got ${JSON.stringify(v)}.`);
  return u.origin;
}

function validateRoute(v: unknown, i: number): RouteConfig {
  const where = `routes[${i}]`;
  if (!isObj(v)) throw new ConfigError(`${where} must be a mapping with prefix and target.`);
  checkKeys(v, 'route', `${where}.`);
  const prefix = v.prefix;
  if (typeof prefix !== 'string' || !prefix.startsWith('/')) throw new ConfigError(`${where}.prefix must be a path starting with "/", e.g. "/ollama/".`);
  if (prefix.startsWith('/.well-known/ratls')) throw new ConfigError(`${where}.prefix may not shadow the control routes under /.well-known/ratls/.`);
  const normPrefix = prefix.endsWith('/') ? prefix : `${prefix}/`;
  let target: URL;
  try {
    target = new URL(String(v.target));
  } catch {
    throw new ConfigError(`${where}.target must be a URL like http://127.0.0.1:8080, got ${JSON.stringify(v.target)}.`);
  }
  if (target.protocol !== 'http:' && target.protocol !== 'https:') throw new ConfigError(`${where}.target must use http: or https:.`);
  if (target.pathname !== '/' || target.search)
    throw new ConfigError(`${where}.target must be an origin without path or query (use stripPrefix to drop the prefix).`);
  return {
    prefix: normPrefix,
    target: target.origin,
    stripPrefix: bool(v.stripPrefix, `${where}.stripPrefix`, false),
    rewriteHost: bool(v.rewriteHost, `${where}.rewriteHost`, false),
    blockOllamaAdmin: bool(v.blockOllamaAdmin, `${where}.blockOllamaAdmin`, false),
    name: typeof v.name === 'string' && v.name ? v.name : normPrefix,
  };
}

function simQuoteLatency(v: unknown, dflt: number): number {
  const ms = duration(v, 'evidence.simQuoteLatency', dflt);
  if (ms > 60_000) throw new ConfigError('Config key "evidence.simQuoteLatency" must be at most 60s (real TDX takes about 40ms).');
  return ms;
}

/** The Ollama listener section: off unless it names an address; the token itself is never config. */
function validateOllamaListener(o: Obj, publicListen: { host: string; port: number }): OllamaListenerConfig | undefined {
  if (Object.keys(o).length === 0) return undefined;
  if (typeof o.listen !== 'string' || o.listen.length === 0) {
    throw new ConfigError(
      'Config key "ollamaListener.listen" must be "HOST:PORT" to turn the Ollama listener on (e.g. "0.0.0.0:11443"), or leave the section out.',
    );
  }
  const listen = parseListen(o.listen);
  if (listen.port !== 0 && listen.port === publicListen.port) {
    throw new ConfigError(`Config key "ollamaListener.listen" (${o.listen}) uses the port of "listen"; the Ollama listener needs its own port.`);
  }
  if (o.tokenFile !== undefined && (typeof o.tokenFile !== 'string' || o.tokenFile.length === 0)) {
    throw new ConfigError('Config key "ollamaListener.tokenFile" must be the path of a file holding the access token.');
  }
  const tokenEnv = o.tokenEnv === undefined ? DEFAULT_OLLAMA_TOKEN_ENV : o.tokenEnv;
  if (typeof tokenEnv !== 'string' || !/^[A-Za-z_][A-Za-z0-9_]*$/.test(tokenEnv)) {
    throw new ConfigError(`Config key "ollamaListener.tokenEnv" must be an environment variable name, got ${JSON.stringify(o.tokenEnv)}.`);
  }
  return {
    listen,
    ...(o.tokenFile !== undefined ? { tokenFile: o.tokenFile as string } : {}),
    tokenEnv,
    blockAdmin: bool(o.blockAdmin, 'ollamaListener.blockAdmin', true),
  };
}

/** Validates a merged raw config (YAML < env < flags) into a complete {@link ServeConfig}. */
export function validateConfig(raw: RawConfig): ServeConfig {
  checkKeys(raw, '', '');
  const d = defaultServeConfig();
  const tls = section(raw, 'tls');
  const ev = section(raw, 'evidence');
  const lim = section(raw, 'limits');
  const sd = section(raw, 'shutdown');
  const log = section(raw, 'log');
  const col = section(raw, 'collateral');
  const ups = section(raw, 'upstreams');
  const ol = section(raw, 'ollamaListener');
  const upstreams = {
    openWebui: ups.openWebui === undefined ? d.upstreams.openWebui : origin(ups.openWebui, 'upstreams.openWebui', DEFAULT_OPEN_WEBUI_URL),
    ollama: ups.ollama === undefined ? d.upstreams.ollama : origin(ups.ollama, 'upstreams.ollama', DEFAULT_OLLAMA_URL),
  };

  let listen = d.listen;
  if (raw.listen !== undefined) {
    if (typeof raw.listen === 'string') listen = parseListen(raw.listen);
    else if (typeof raw.listen === 'number') listen = { host: d.listen.host, port: raw.listen };
    else throw new ConfigError('Config key "listen" must be "HOST:PORT", e.g. "0.0.0.0:8443".');
  }

  const rotateAt = tls.rotateAt === undefined ? d.tls.rotateAt : Number(tls.rotateAt);
  if (!(rotateAt > 0 && rotateAt < 1)) throw new ConfigError('Config key "tls.rotateAt" must be a fraction between 0 and 1 (default 0.6667).');
  const validityMs = duration(tls.validity, 'tls.validity', d.tls.validityMs);
  if (validityMs < 60_000) throw new ConfigError('Config key "tls.validity" must be at least 1m.');
  let hosts = d.tls.hosts;
  if (tls.hosts !== undefined) {
    if (!Array.isArray(tls.hosts) || tls.hosts.length === 0 || !tls.hosts.every((h) => typeof h === 'string' && h.length > 0)) {
      throw new ConfigError('Config key "tls.hosts" must be a non-empty list of DNS names or IP addresses.');
    }
    hosts = tls.hosts as string[];
  }

  let routes = [openWebuiRoute(upstreams.openWebui)];
  if (raw.routes !== undefined) {
    if (!Array.isArray(raw.routes) || raw.routes.length === 0) throw new ConfigError('Config key "routes" must be a non-empty list.');
    routes = raw.routes.map(validateRoute);
    const seen = new Set<string>();
    for (const r of routes) {
      if (seen.has(r.prefix)) throw new ConfigError(`Two routes have the prefix "${r.prefix}".`);
      seen.add(r.prefix);
    }
  }

  let maxBodyBytes = d.limits.maxBodyBytes;
  if (lim.maxBody !== undefined) {
    const n = parseSize(lim.maxBody);
    if (n === undefined || n < 1) throw new ConfigError(`Config key "limits.maxBody" must be a size like "100MiB", got ${JSON.stringify(lim.maxBody)}.`);
    maxBodyBytes = n;
  }

  const ollamaListener = validateOllamaListener(ol, listen);
  const simDir = ev.simDir === undefined ? d.evidence.simDir : String(ev.simDir);
  const configfsRoot = ev.configfsRoot === undefined ? d.evidence.configfsRoot : String(ev.configfsRoot);
  return {
    listen,
    tls: {
      minVersion: oneOf(tls.minVersion, 'tls.minVersion', ['TLSv1.3', 'TLSv1.2'] as const, d.tls.minVersion),
      keyAlg: oneOf(tls.keyAlg, 'tls.keyAlg', ['P-256', 'P-384'] as const, d.tls.keyAlg),
      validityMs,
      rotateAt,
      hosts,
      stapleCollateral: bool(tls.stapleCollateral, 'tls.stapleCollateral', d.tls.stapleCollateral),
      profile: oneOf(tls.profile, 'tls.profile', ['ccc', 'dstack'] as const, d.tls.profile),
    },
    upstreams,
    ...(ollamaListener ? { ollamaListener } : {}),
    evidence: {
      provider: oneOf(ev.provider, 'evidence.provider', ['auto', 'configfs-tsm', 'simulated'] as const, d.evidence.provider),
      simDir,
      configfsRoot,
      simQuoteLatencyMs: simQuoteLatency(ev.simQuoteLatency, d.evidence.simQuoteLatencyMs),
      maxQueued: count(ev.maxQueued, 'evidence.maxQueued', d.evidence.maxQueued, 1, 1 << 20),
      maxBatch: count(ev.maxBatch, 'evidence.maxBatch', d.evidence.maxBatch, 1, 1 << 20),
      maxPerPeer: count(ev.maxPerPeer, 'evidence.maxPerPeer', d.evidence.maxPerPeer, 1, 1 << 20),
    },
    collateral: validateCollateral(col, d.collateral),
    routes,
    limits: {
      maxBodyBytes,
      upstreamTimeoutMs: duration(lim.upstreamTimeout, 'limits.upstreamTimeout', d.limits.upstreamTimeoutMs),
      headersTimeoutMs: duration(lim.headersTimeout, 'limits.headersTimeout', d.limits.headersTimeoutMs),
      requestTimeoutMs: duration(lim.requestTimeout, 'limits.requestTimeout', d.limits.requestTimeoutMs),
      bodyIdleTimeoutMs: duration(lim.bodyIdleTimeout, 'limits.bodyIdleTimeout', d.limits.bodyIdleTimeoutMs),
      keepAliveTimeoutMs: duration(lim.keepAliveTimeout, 'limits.keepAliveTimeout', d.limits.keepAliveTimeoutMs),
    },
    shutdown: { drainTimeoutMs: duration(sd.drainTimeout, 'shutdown.drainTimeout', d.shutdown.drainTimeoutMs) },
    log: { level: oneOf(log.level, 'log.level', ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const, d.log.level) },
    demo: bool(raw.demo, 'demo', d.demo),
    engine: 'undici',
    warnings: engineWarnings(raw.engine),
  };
}

/**
 * `engine` once chose between undici and http-proxy-3 for plain HTTP. http-proxy-3 is no longer an
 * HTTP engine (docs/serve.md, Engines): its value is still accepted, so existing configurations
 * keep starting, and means undici, with a warning.
 */
function engineWarnings(v: unknown): string[] {
  const engine = oneOf(v, 'engine', ['undici', 'http-proxy-3'] as const, 'undici');
  if (engine === 'undici') return [];
  return [
    'engine: http-proxy-3 is no longer an HTTP engine; plain HTTP goes through undici (WebSockets still use http-proxy-3). Remove the setting (see docs/serve.md, Engines).',
  ];
}

/** Loads the effective config: YAML file (optional) < RATLS_* env < flags. */
export function loadServeConfig(opts: { file?: string; env?: NodeJS.ProcessEnv; flags?: RawConfig }): ServeConfig {
  let raw: RawConfig = opts.file ? readConfigFile(opts.file) : {};
  raw = mergeRaw(raw, envToRaw(opts.env ?? {}));
  raw = mergeRaw(raw, opts.flags ?? {});
  return validateConfig(raw);
}

/** For messages: "100 MiB". */
export { formatSize };
