import { describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { defaultServeConfig, envToRaw, loadServeConfig, parseListen, readConfigFile, validateConfig, ConfigError } from '../../src/proxy/config.ts';
import { resolveServeConfig } from '../../src/cli/commands/serve.ts';

const EXAMPLE = join(import.meta.dirname, '../../config/ratls.example.yaml');

describe('serve config', () => {
  it('the example file documents exactly the defaults', () => {
    const c = validateConfig(readConfigFile(EXAMPLE));
    const d = defaultServeConfig();
    expect({ ...c, tls: { ...c.tls, rotateAt: 0 } }).toEqual({ ...d, tls: { ...d.tls, rotateAt: 0 } });
    expect(c.tls.rotateAt).toBeCloseTo(2 / 3, 3);
  });

  it('engine: undici is the HTTP engine; http-proxy-3 is accepted, means undici and warns; anything else is refused', () => {
    expect(validateConfig({}).engine).toBe('undici');
    expect(validateConfig({}).warnings).toEqual([]);
    expect(validateConfig({ engine: 'undici' }).warnings).toEqual([]);
    for (const c of [
      validateConfig({ engine: 'http-proxy-3' }),
      loadServeConfig({ env: { RATLS_ENGINE: 'http-proxy-3' } }),
      resolveServeConfig({ engine: 'http-proxy-3' }, {}).config,
    ]) {
      expect(c.engine).toBe('undici');
      expect(c.warnings).toEqual([expect.stringContaining('engine: http-proxy-3 is no longer an HTTP engine')]);
    }
    expect(() => validateConfig({ engine: 'nginx' })).toThrow(ConfigError);
    expect(() => validateConfig({ engine: 'nginx' })).toThrow(/"engine" must be one of undici, http-proxy-3/);
  });

  it('layers file < env < flags', () => {
    const c = loadServeConfig({ file: EXAMPLE, env: { RATLS_LISTEN: '127.0.0.1:9000', RATLS_MAX_BODY: '5MiB' }, flags: { listen: '[::1]:9443' } });
    expect(c.listen).toEqual({ host: '::1', port: 9443 });
    expect(c.limits.maxBodyBytes).toBe(5 * 1024 * 1024);
    const { config } = resolveServeConfig({ demo: true }, { PORT: '9999' });
    expect(config.listen).toEqual({ host: '127.0.0.1', port: 9999 });
    expect(config.evidence.provider).toBe('simulated');
  });

  it('routes every path to open-webui by default and publishes no route to Ollama', () => {
    const c = validateConfig({});
    expect(c.upstreams).toEqual({ openWebui: 'http://127.0.0.1:8080', ollama: 'http://127.0.0.1:11434' });
    expect(c.routes).toEqual([
      { prefix: '/', target: 'http://127.0.0.1:8080', stripPrefix: false, rewriteHost: false, blockOllamaAdmin: false, name: 'open-webui' },
    ]);
    expect(c.routes.some((r) => r.target === c.upstreams.ollama || r.prefix.startsWith('/ollama'))).toBe(false);
  });

  it('takes the open-webui and Ollama origins from the file, env (RATLS_OPEN_WEBUI_URL, RATLS_OLLAMA_URL) and flags (--open-webui, --ollama)', () => {
    const fromEnv = validateConfig(envToRaw({ RATLS_OPEN_WEBUI_URL: 'http://open-webui:8080/', RATLS_OLLAMA_URL: 'http://ollama:11434' }));
    expect(fromEnv.upstreams).toEqual({ openWebui: 'http://open-webui:8080', ollama: 'http://ollama:11434' });
    expect(fromEnv.routes).toHaveLength(1);
    expect(fromEnv.routes[0]).toMatchObject({ prefix: '/', target: 'http://open-webui:8080', name: 'open-webui' });
    const { config } = resolveServeConfig({ openWebui: 'http://10.0.0.2:3000', ollama: 'http://10.0.0.3:11434' }, { RATLS_OPEN_WEBUI_URL: 'http://ignored:1' });
    expect(config.upstreams).toEqual({ openWebui: 'http://10.0.0.2:3000', ollama: 'http://10.0.0.3:11434' });
    expect(config.routes.map((r) => `${r.prefix} ${r.target}`)).toEqual(['/ http://10.0.0.2:3000']);
  });

  it('--upstream still replaces the default route for custom layouts', () => {
    const { config, routesGiven } = resolveServeConfig({ upstream: ['/=http://127.0.0.1:3000', '/docs/=http://127.0.0.1:8000,strip'] }, {});
    expect(routesGiven).toBe(true);
    expect(config.routes.map((r) => [r.prefix, r.target, r.stripPrefix])).toEqual([
      ['/', 'http://127.0.0.1:3000', false],
      ['/docs/', 'http://127.0.0.1:8000', true],
    ]);
  });

  it('parses upstream specs from env and flags', () => {
    const raw = envToRaw({ RATLS_UPSTREAMS: '/ollama/=http://127.0.0.1:11434,strip,host,block-admin /=http://127.0.0.1:8080' });
    const c = validateConfig(raw);
    expect(c.routes[0]).toMatchObject({ prefix: '/ollama/', stripPrefix: true, rewriteHost: true, blockOllamaAdmin: true });
    expect(c.routes[1]).toMatchObject({ prefix: '/', stripPrefix: false });
  });

  it.each([
    [{ bogus: 1 }, /Unknown config key "bogus"/],
    [{ tls: { minVersion: 'TLSv1.1' } }, /tls\.minVersion.*TLSv1\.3, TLSv1\.2/],
    [{ tls: { rotateAt: 1.5 } }, /tls\.rotateAt/],
    [{ limits: { maxBody: 'huge' } }, /limits\.maxBody/],
    [{ limits: { upstreamTimeout: 'soon' } }, /limits\.upstreamTimeout/],
    [{ routes: [{ prefix: 'x', target: 'http://a' }] }, /routes\[0\]\.prefix/],
    [{ routes: [{ prefix: '/', target: 'ftp://a' }] }, /routes\[0\]\.target/],
    [{ routes: [{ prefix: '/.well-known/ratls/x/', target: 'http://a' }] }, /control routes/],
    [{ routes: [{ prefix: '/', target: 'http://a/b' }] }, /origin without path/],
    [{ listen: 'nope' }, /HOST:PORT/],
    [{ upstreams: { openWebui: 'http://a:1/ui' } }, /upstreams\.openWebui.*origin/],
    [{ upstreams: { ollama: 'ftp://a' } }, /upstreams\.ollama.*http/],
    [{ upstreams: { ollama: 'not a url' } }, /upstreams\.ollama/],
    [{ upstreams: { vllm: 'http://a' } }, /Unknown config key "upstreams\.vllm"/],
    [{ evidence: { simQuoteLatency: 'slow' } }, /evidence\.simQuoteLatency/],
    [{ evidence: { simQuoteLatency: '2m' } }, /at most 60s/],
    [{ evidence: { maxQueued: 0 } }, /evidence\.maxQueued.*from 1/],
    [{ evidence: { maxPerPeer: 1.5 } }, /evidence\.maxPerPeer/],
  ])('rejects %j with a clear message', (raw, msg) => {
    expect(() => validateConfig(raw)).toThrow(ConfigError);
    expect(() => validateConfig(raw)).toThrow(msg);
  });

  it('session evidence limits and the simulated quote latency: file, env (RATLS_SIM_QUOTE_LATENCY) and --sim-quote-latency', () => {
    const d = validateConfig({});
    expect(d.evidence).toMatchObject({ simQuoteLatencyMs: 0, maxQueued: 4096, maxBatch: 1024, maxPerPeer: 256 });
    expect(validateConfig({ evidence: { maxQueued: '10', maxBatch: 5, maxPerPeer: 3 } }).evidence).toMatchObject({ maxQueued: 10, maxBatch: 5, maxPerPeer: 3 });
    expect(validateConfig(envToRaw({ RATLS_SIM_QUOTE_LATENCY: '40ms' })).evidence.simQuoteLatencyMs).toBe(40);
    expect(resolveServeConfig({ simulate: true, simQuoteLatency: '0.04s' }, {}).config.evidence.simQuoteLatencyMs).toBe(40);
  });

  it('parses listen addresses', () => {
    expect(parseListen(':8443')).toEqual({ host: '0.0.0.0', port: 8443 });
    expect(parseListen('[::]:1')).toEqual({ host: '::', port: 1 });
    expect(() => parseListen('a:70000')).toThrow(/0-65535/);
  });

  it('the Ollama listener is off by default, on with ollamaListener.listen (file, RATLS_OLLAMA_LISTEN, --ollama-listen), admin block on', () => {
    expect(validateConfig({}).ollamaListener).toBeUndefined();
    const fromFile = validateConfig({ ollamaListener: { listen: '0.0.0.0:11443', tokenFile: '/etc/ratls/ollama-token' } });
    expect(fromFile.ollamaListener).toEqual({
      listen: { host: '0.0.0.0', port: 11443 },
      tokenFile: '/etc/ratls/ollama-token',
      tokenEnv: 'RATLS_OLLAMA_TOKEN',
      blockAdmin: true,
    });
    const fromEnv = validateConfig(envToRaw({ RATLS_OLLAMA_LISTEN: '127.0.0.1:11443', RATLS_OLLAMA_TOKEN_FILE: '/run/secrets/t' }));
    expect(fromEnv.ollamaListener).toMatchObject({ listen: { host: '127.0.0.1', port: 11443 }, tokenFile: '/run/secrets/t' });
    const { config } = resolveServeConfig({ ollamaListen: '127.0.0.1:11500', ollamaTokenFile: 't' }, {});
    expect(config.ollamaListener).toMatchObject({ listen: { host: '127.0.0.1', port: 11500 }, tokenFile: 't', blockAdmin: true });
    // the token itself is never configuration: there is no key for it
    expect(() => validateConfig({ ollamaListener: { listen: '127.0.0.1:1', token: 'x' } })).toThrow(/Unknown config key "ollamaListener.token"/);
  });

  it.each([
    [{ ollamaListener: { tokenFile: 't' } }, /ollamaListener.listen" must be "HOST:PORT" to turn the Ollama listener on/],
    [{ listen: '0.0.0.0:8443', ollamaListener: { listen: '127.0.0.1:8443' } }, /uses the port of "listen"/],
    [{ ollamaListener: { listen: '127.0.0.1:11443', tokenEnv: 'not a name' } }, /ollamaListener.tokenEnv" must be an environment variable name/],
    [{ ollamaListener: { listen: '127.0.0.1:11443', blockAdmin: 'maybe' } }, /ollamaListener.blockAdmin" must be true or false/],
  ])('refuses a wrong Ollama listener section %#', (raw, message) => {
    expect(() => validateConfig(raw)).toThrow(message);
  });
});
