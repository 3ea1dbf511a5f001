/**
 * Static checks of the files for an existing open-webui + Ollama install (deploy/existing-install.*),
 * against deploy/compose.yaml and the proxy's config loader. The container test
 * (tests/container/existing-install.test.ts) runs them for real.
 */
import { describe, expect, it } from 'vitest';
import { parse as parseYaml, type ScalarTag, type CollectionTag } from 'yaml';
import { envToRaw, validateConfig } from '../../src/proxy/config.ts';
import { compose, exampleEnv, interpolate, read, type Service } from './compose-file.ts';

interface File {
  services: Record<string, Service & { image?: string; build?: unknown; secrets?: string[]; stop_grace_period?: string; depends_on?: string[] }>;
  volumes?: Record<string, unknown>;
  secrets?: Record<string, { file: string }>;
}

/** compose v2's `!reset`, kept visible: the value becomes { reset: <what was written> }. */
const resetTag: CollectionTag = { tag: '!reset', collection: 'seq', resolve: (seq) => ({ reset: seq.toJSON() }) };
const resetScalar: ScalarTag = { tag: '!reset', resolve: (v) => ({ reset: v }) };

const load = (path: string, env: Record<string, string>): File => parseYaml(interpolate(read(path), env), { customTags: [resetTag, resetScalar] }) as File;

describe('deploy/existing-install.override.yaml', () => {
  const env = exampleEnv();
  const o = load('deploy/existing-install.override.yaml', env);
  const base = compose(env).services.ratls! as File['services'][string];
  const ratls = o.services.ratls!;

  it("adds a ratls service with exactly deploy/compose.yaml's settings, from a prebuilt image", () => {
    const { build: _build, ...withoutBuild } = base;
    expect(ratls).toEqual({ ...withoutBuild, image: 'ratls-proxy:latest' });
    // every relative path of an override is resolved against open-webui's directory: none here
    expect(ratls.build).toBeUndefined();
    for (const v of ratls.volumes ?? []) expect(v.startsWith('.')).toBe(false);
  });

  it("reaches open-webui and Ollama by the service names of open-webui's compose file", () => {
    const config = validateConfig(envToRaw(ratls.environment!));
    expect(config.upstreams).toEqual({ openWebui: 'http://open-webui:8080', ollama: 'http://ollama:11434' });
    expect(config.routes.map((r) => r.target)).toEqual(['http://open-webui:8080']);
    expect(ratls.depends_on).toEqual(['open-webui', 'ollama']);
  });

  it('points open-webui at the public URL and a stable secret key, and adds no port of its own', () => {
    const webui = o.services['open-webui']!;
    expect(webui.environment).toEqual({
      WEBUI_URL: `https://${env.PUBLIC_HOST}:${env.RATLS_PORT}`,
      CORS_ALLOW_ORIGIN: `https://${env.PUBLIC_HOST}:${env.RATLS_PORT}`,
      WEBUI_SECRET_KEY: 'test-secret',
    });
    expect(webui.ports).toBeUndefined();
    expect(o.services.ollama).toBeUndefined();
    expect(Object.keys(o.volumes ?? {})).toEqual(['ratls-state']);
  });

  it('refuses to interpolate without PUBLIC_HOST or WEBUI_SECRET_KEY', () => {
    expect(() => load('deploy/existing-install.override.yaml', { ...env, PUBLIC_HOST: '' })).toThrow(/PUBLIC_HOST/);
    expect(() => load('deploy/existing-install.override.yaml', { ...env, WEBUI_SECRET_KEY: '' })).toThrow(/WEBUI_SECRET_KEY/);
  });

  it('uses no compose v2 syntax, so that docker-compose 1.29 reads it', () => {
    const yamlOf = (p: string): string =>
      read(p)
        .split('\n')
        .filter((l) => !l.trim().startsWith('#'))
        .join('\n');
    expect(yamlOf('deploy/existing-install.override.yaml')).not.toMatch(/!reset|!override/);
    expect(yamlOf('deploy/existing-install.ollama-listener.yaml')).not.toMatch(/!reset|!override/);
  });
});

describe('deploy/existing-install.unpublish.yaml', () => {
  it('resets the published ports of open-webui and Ollama, and nothing else', () => {
    const u = load('deploy/existing-install.unpublish.yaml', {});
    expect(u).toEqual({ services: { 'open-webui': { ports: { reset: [] } }, ollama: { ports: { reset: [] } } } });
  });
});

describe('deploy/existing-install.ollama-listener.yaml', () => {
  const env = { ...exampleEnv(), RATLS_OLLAMA_TOKEN_FILE: '/etc/ratls/ollama-token' };
  const l = load('deploy/existing-install.ollama-listener.yaml', env);
  const ratls = l.services.ratls!;

  it('opens the Ollama listener with the token from a secret file, never from the environment', () => {
    const merged = { ...load('deploy/existing-install.override.yaml', env).services.ratls!.environment, ...ratls.environment };
    const config = validateConfig(envToRaw(merged));
    expect(config.ollamaListener).toMatchObject({ listen: { host: '0.0.0.0', port: 11443 }, tokenFile: '/run/secrets/ratls-ollama-token', blockAdmin: true });
    expect(ratls.secrets).toEqual(['ratls-ollama-token']);
    expect(l.secrets).toEqual({ 'ratls-ollama-token': { file: '/etc/ratls/ollama-token' } });
    expect(Object.keys(ratls.environment!)).not.toContain('RATLS_OLLAMA_TOKEN');
    expect(ratls.ports).toEqual(['11443:11443']);
  });

  it('refuses to interpolate without a token file', () => {
    expect(() => load('deploy/existing-install.ollama-listener.yaml', { ...env, RATLS_OLLAMA_TOKEN_FILE: '' })).toThrow(/RATLS_OLLAMA_TOKEN_FILE/);
  });
});
