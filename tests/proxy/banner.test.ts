/** The start-up banner says where Ollama is and that it is not published, and warns when a custom route publishes it. */
import { describe, expect, it } from 'vitest';
import { renderBanner } from '../../src/proxy/banner.ts';
import { validateConfig } from '../../src/proxy/config.ts';
import type { ServingIdentity } from '../../src/proxy/identity-source.ts';

const identity: ServingIdentity = {
  certPem: '',
  certDer: new Uint8Array(),
  keyPem: '',
  notBefore: new Date('2026-01-01T00:00:00Z'),
  notAfter: new Date('2026-01-02T00:00:00Z'),
  fingerprintSha256: 'ab'.repeat(32),
  simulated: false,
  providerName: 'configfs-tsm',
};
const banner = (raw: Record<string, unknown>) => renderBanner({ url: 'https://127.0.0.1:8443/', port: 8443, config: validateConfig(raw), identity });

describe('serve banner', () => {
  it('default routing: one route to open-webui, Ollama named and not published', () => {
    const b = banner({});
    expect(b).toContain('route /            -> http://127.0.0.1:8080 (open-webui)');
    expect(b).toContain('Ollama             http://127.0.0.1:11434: not published; open-webui serves it under /ollama/ behind its login');
    expect(b).not.toContain('WARNING');
  });

  it('repeats configuration warnings (a deprecated engine) as WARNING lines', () => {
    expect(banner({ engine: 'http-proxy-3' })).toMatch(/\n {2}WARNING {12}engine: http-proxy-3 is no longer an HTTP engine; plain HTTP goes through undici/);
  });

  it.each([
    [
      {
        routes: [
          { prefix: '/ollama/', target: 'http://127.0.0.1:11434', stripPrefix: true, rewriteHost: true },
          { prefix: '/', target: 'http://127.0.0.1:8080' },
        ],
      },
    ],
    [{ upstreams: { ollama: 'http://10.0.0.3:11434' }, routes: [{ prefix: '/', target: 'http://10.0.0.3:11434' }] }],
    [
      {
        routes: [
          { prefix: '/models/', target: 'http://10.0.0.9:9000', name: 'ollama' },
          { prefix: '/', target: 'http://127.0.0.1:8080' },
        ],
      },
    ],
  ])('warns when a custom route publishes Ollama: %j', (raw) => {
    expect(banner(raw)).toMatch(/WARNING\s+route \S+ publishes Ollama's API, which has no authentication/);
  });
});

describe('serve banner with the opt-in Ollama listener', () => {
  it('names its URL, the token requirement and the admin block, and still says the public listener does not publish Ollama', () => {
    const config = validateConfig({ ollamaListener: { listen: '0.0.0.0:11443' } });
    const b = renderBanner({ url: 'https://127.0.0.1:8443/', port: 8443, config, identity, ollamaListenerUrl: 'https://localhost:11443/' });
    expect(b).toContain(
      'Ollama listener    https://localhost:11443/ -> http://127.0.0.1:11434 (Bearer access token required, admin routes blocked, Host rewritten)',
    );
    expect(b).toContain('Ollama             http://127.0.0.1:11434: not published on this listener');
    const open = validateConfig({ ollamaListener: { listen: '0.0.0.0:11443', blockAdmin: false } });
    expect(renderBanner({ url: 'https://127.0.0.1:8443/', port: 8443, config: open, identity, ollamaListenerUrl: 'https://localhost:11443/' })).toContain(
      'admin routes ALLOWED (ollamaListener.blockAdmin: false)',
    );
  });
});
