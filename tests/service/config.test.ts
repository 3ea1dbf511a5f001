import { afterEach, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseListen, readServiceConfigFile, resolveServiceConfig, ServiceConfigError, BUNDLED_POLICIES_DIR } from '../../src/service/config.ts';
import { startAttestService } from '../../src/service/server.ts';
import type { EvidenceVerifier } from '../../src/service/evidence.ts';

const dirs: string[] = [];
const tmp = () => {
  const d = mkdtempSync(join(tmpdir(), 'ratls-svc-cfg-'));
  dirs.push(d);
  return d;
};
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

describe('config', () => {
  it('parses listen addresses', () => {
    expect(parseListen('127.0.0.1:8444')).toEqual({ host: '127.0.0.1', port: 8444 });
    expect(parseListen('[::1]:0')).toEqual({ host: '::1', port: 0 });
    expect(parseListen(':9000')).toEqual({ host: '127.0.0.1', port: 9000 });
    expect(() => parseListen('localhost')).toThrow(ServiceConfigError);
    expect(() => parseListen('a:99999')).toThrow(ServiceConfigError);
  });

  it('reads the example config, resolving paths relative to it', () => {
    const f = readServiceConfigFile(resolve(import.meta.dirname, '../../config/attest-service.example.yaml'));
    expect(f.policiesDir).toBe(BUNDLED_POLICIES_DIR);
    expect(f.rateLimit).toEqual({ ratePerSecond: 20, burst: 40 });
    const c = resolveServiceConfig(f, { listen: '127.0.0.1:0' });
    expect(c.port).toBe(0);
    expect(c.alg).toBe('ES256');
  });

  it('rejects unknown keys, short admin tokens and bad algorithms', () => {
    const d = tmp();
    writeFileSync(join(d, 'c.yaml'), 'ratelimit: false\n');
    expect(() => readServiceConfigFile(join(d, 'c.yaml'))).toThrow(/unknown key "ratelimit"/);
    writeFileSync(join(d, 'tok'), 'short\n');
    expect(() => resolveServiceConfig({ adminTokenFile: join(d, 'tok') }, {})).toThrow(/at least 16/);
    expect(() => resolveServiceConfig({}, { alg: 'HS256' as 'ES256' })).toThrow(/ES256 or ES384/);
  });
});

const never: EvidenceVerifier = {
  verifyQuote: () => new Promise(() => undefined),
  verifyCertificate: () => new Promise(() => undefined),
  verifyEvidence: () => new Promise(() => undefined),
};

describe('service lifecycle', () => {
  it('a verification that hangs is answered 503 VERIFY_TIMEOUT', async () => {
    const d = tmp();
    const s = await startAttestService({ keyDir: join(d, 'k'), policiesDir: BUNDLED_POLICIES_DIR, verifier: never, verifyTimeoutMs: 200 });
    try {
      const { readTestFile, loadManifest } = await import('../helpers/testdata.ts');
      const q = readTestFile(loadManifest().quotes[0]!.file);
      const r = await fetch(`${s.url}/v1/attest`, { method: 'POST', body: JSON.stringify({ quote: Buffer.from(q).toString('base64') }) });
      expect(r.status).toBe(503);
      expect(r.headers.get('retry-after')).toBe('5');
      expect((await r.json()).error.code).toBe('VERIFY_TIMEOUT');
    } finally {
      await s.close();
    }
  });

  it('rotates on schedule at start and with rotateKey, keeping earlier kids published', async () => {
    const d = tmp();
    let now = new Date('2026-01-01T00:00:00Z');
    const base = {
      keyDir: join(d, 'k'),
      policiesDir: BUNDLED_POLICIES_DIR,
      verifier: never,
      clock: () => now,
      tokenTtlSeconds: 600,
      keyRotationSeconds: 86400,
    };
    const a = await startAttestService(base);
    const k1 = a.keys.current().kid;
    await a.close();
    now = new Date('2026-01-01T12:00:00Z');
    const b = await startAttestService(base);
    expect(b.keys.current().kid).toBe(k1); // younger than a day: kept
    await b.close();
    now = new Date('2026-01-02T00:00:01Z');
    const c = await startAttestService(base);
    const k2 = c.keys.current().kid;
    expect(k2).not.toBe(k1); // older than a day: rotated at start
    const jwks = (await (await fetch(`${c.url}/.well-known/jwks.json`)).json()) as { keys: Array<{ kid: string }> };
    expect(jwks.keys.map((k) => k.kid).sort()).toEqual([k1, k2].sort());
    await c.close();
    const e = await startAttestService({ ...base, rotateKey: true });
    expect(e.keys.current().kid).not.toBe(k2);
    expect(e.keys.jwks().keys).toHaveLength(3);
    await e.close();
  });

  it('refuses to start without a default policy', async () => {
    const d = tmp();
    await expect(startAttestService({ keyDir: join(d, 'k'), policiesDir: d, verifier: never })).rejects.toMatchObject({ code: 'POLICY_INVALID' });
  });
});
