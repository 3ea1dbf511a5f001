/**
 * Static checks of Dockerfile, .dockerignore and deploy/compose.yaml against the proxy's own config
 * loader, so the deployment cannot drift from what `ratls serve` accepts. No Docker engine is
 * involved: docs/deploy.md says what was checked by running the image's steps.
 */
import { describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { envToRaw, validateConfig } from '../../src/proxy/config.ts';
import { compose, exampleEnv, read, ROOT } from './compose-file.ts';

describe('deploy/compose.yaml', () => {
  const env = exampleEnv();
  const c = compose(env);
  const ratls = c.services.ratls!;

  it('gives ratls serve an environment its config loader accepts, listening on all interfaces', () => {
    const config = validateConfig(envToRaw(ratls.environment!));
    expect(config.listen).toEqual({ host: '0.0.0.0', port: 8443 });
    expect(config.evidence.provider).toBe('configfs-tsm');
    expect(config.tls.hosts).toContain(env.PUBLIC_HOST);
    expect(config.collateral.cacheDir).toBe('/var/lib/ratls/collateral');
    expect(config.collateral.required).toBe(false);
    // The configfs-tsm mount's container side is where the provider looks.
    const tsm = ratls.volumes!.find((v) => v.startsWith('/sys/kernel/config/tsm:'))!;
    expect(tsm.split(':')[1]).toBe(config.evidence.configfsRoot);
    expect(config.evidence.configfsRoot.startsWith('/sys/')).toBe(false);
    // Every path goes to open-webui by its service name, /ollama/ included (open-webui serves it
    // behind its login); Ollama is known but never routed to from the public listener.
    expect(config.routes.map((r) => [r.prefix, r.target])).toEqual([['/', 'http://open-webui:8080']]);
    expect(config.upstreams).toEqual({ openWebui: 'http://open-webui:8080', ollama: 'http://ollama:11434' });
  });

  it('publishes only the proxy, on the port it listens on, locked down', () => {
    const published = Object.entries(c.services)
      .filter(([, s]) => s.ports?.length)
      .map(([n]) => n);
    expect(published).toEqual(['ratls']);
    expect(ratls.ports).toEqual([`${env.RATLS_PORT}:8443`]);
    expect(ratls.cap_drop).toEqual(['ALL']);
    expect(ratls.read_only).toBe(true);
  });

  it('configures open-webui and Ollama as their images document', () => {
    const webui = c.services['open-webui']!.environment!;
    expect(webui.OLLAMA_BASE_URL).toBe('http://ollama:11434');
    expect(webui.WEBUI_URL).toBe(`https://${env.PUBLIC_HOST}:${env.RATLS_PORT}`);
    expect(webui.CORS_ALLOW_ORIGIN).toBe(webui.WEBUI_URL);
    expect(webui.WEBUI_SECRET_KEY).toBe('test-secret');
    expect(c.services.ollama!.environment!.OLLAMA_HOST).toBe('0.0.0.0:11434');
    expect(c.services.ollama!.healthcheck).toBeDefined();
  });

  it('refuses to interpolate without WEBUI_SECRET_KEY', () => {
    expect(() => compose({ ...env, WEBUI_SECRET_KEY: '' })).toThrow(/WEBUI_SECRET_KEY/);
  });

  it('keeps deploy/.env (which holds WEBUI_SECRET_KEY) out of git, but not the example', () => {
    // check-ignore exits 0 for an ignored path and 1 for one that is not; --no-index: untracked or not.
    const ignored = (p: string): boolean => {
      try {
        execFileSync('git', ['check-ignore', '-q', '--no-index', p], { cwd: ROOT, stdio: 'ignore' });
        return true;
      } catch (err) {
        if ((err as { status?: number }).status === 1) return false;
        throw err;
      }
    };
    expect(ignored('deploy/.env')).toBe(true);
    expect(ignored('deploy/.env.example')).toBe(false);
    expect(read('deploy/compose.yaml')).toContain('deploy/.env');
  });
});

describe('Dockerfile and .dockerignore', () => {
  const df = read('Dockerfile');

  it('copies only what exists and is not ignored, and runs ratls serve on 0.0.0.0 as a non-root user', () => {
    const copied = [...df.matchAll(/^COPY (?!--from)(\S+)/gm)].map((m) => m[1]!);
    expect(copied.length).toBeGreaterThan(0);
    const ignored = read('.dockerignore')
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l && !l.startsWith('#'));
    for (const p of copied) {
      expect(existsSync(join(ROOT, p)), p).toBe(true);
      expect(ignored, p).not.toContain(p);
    }
    for (const p of ['package.json', 'package-lock.json', 'bin', 'src', 'certs', 'config']) expect(df).toContain(p);
    expect(df).toMatch(/RATLS_LISTEN=0\.0\.0\.0:8443/);
    expect(df).toMatch(/^USER node$/m);
    expect(df).toMatch(/^ENTRYPOINT \["node", "bin\/ratls", "serve"\]$/m);
    expect(df).toMatch(/HEALTHCHECK[\s\S]*\/readyz/);
    expect(df).toMatch(/npm ci --omit=dev/);
  });
});
