import { describe, expect, it, afterEach } from 'vitest';
import { mkdtempSync, rmSync, statSync, readdirSync, chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KeyStore } from '../../src/service/keys.ts';
import { RatlsError } from '../../src/core/errors.ts';

const dirs: string[] = [];
function tmp(): string {
  const d = mkdtempSync(join(tmpdir(), 'ratls-keys-'));
  dirs.push(d);
  return d;
}
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

describe('KeyStore', () => {
  it('creates a key at first start with dir 0700 and file 0600, and reuses it on restart', async () => {
    const dir = join(tmp(), 'keys');
    const a = await KeyStore.open(dir, { alg: 'ES256', maxTokenTtlSeconds: 60 });
    expect(statSync(dir).mode & 0o777).toBe(0o700);
    const files = readdirSync(dir);
    expect(files).toHaveLength(1);
    expect(statSync(join(dir, files[0]!)).mode & 0o777).toBe(0o600);
    const b = await KeyStore.open(dir, { alg: 'ES384', maxTokenTtlSeconds: 60 });
    expect(b.current().kid).toBe(a.current().kid);
    expect(b.current().alg).toBe('ES256'); // an existing key keeps its algorithm
    const jwk = b.jwks().keys[0]!;
    expect(jwk).toMatchObject({ kty: 'EC', crv: 'P-256', kid: a.current().kid, alg: 'ES256', use: 'sig' });
    expect(jwk).not.toHaveProperty('d');
  });

  it('ES384 keys use P-384', async () => {
    const s = await KeyStore.open(join(tmp(), 'k'), { alg: 'ES384', maxTokenTtlSeconds: 60 });
    expect(s.jwks().keys[0]).toMatchObject({ crv: 'P-384', alg: 'ES384' });
  });

  it('rotation keeps the old public key until its tokens expired, then prunes it', async () => {
    let now = new Date('2026-01-01T00:00:00Z');
    const dir = join(tmp(), 'k');
    const s = await KeyStore.open(dir, { alg: 'ES256', maxTokenTtlSeconds: 300, now: () => now });
    const old = s.current().kid;
    const fresh = await s.rotate();
    expect(fresh).not.toBe(old);
    expect(s.current().kid).toBe(fresh);
    expect(
      s
        .jwks()
        .keys.map((k) => k.kid)
        .sort(),
    ).toEqual([old, fresh].sort());
    // a restart in between keeps both
    const again = await KeyStore.open(dir, { alg: 'ES256', maxTokenTtlSeconds: 300, now: () => now });
    expect(again.current().kid).toBe(fresh);
    expect(again.jwks().keys).toHaveLength(2);
    now = new Date(now.getTime() + 302_000);
    expect(s.jwks().keys.map((k) => k.kid)).toEqual([fresh]);
    await s.prune();
    expect(readdirSync(dir)).toHaveLength(1);
  });

  it('refuses key files readable by others', async () => {
    const dir = join(tmp(), 'k');
    await KeyStore.open(dir, { alg: 'ES256', maxTokenTtlSeconds: 60 });
    const f = join(dir, readdirSync(dir)[0]!);
    chmodSync(f, 0o644);
    await expect(KeyStore.open(dir, { alg: 'ES256', maxTokenTtlSeconds: 60 })).rejects.toMatchObject({ code: 'KEY_STORE_FAILED' });
  });

  it('refuses a key file it did not write', async () => {
    const dir = join(tmp(), 'k');
    mkdirSync(dir, { mode: 0o700 });
    writeFileSync(join(dir, 'key-abcdefghijk.json'), '{"kid":"x"}', { mode: 0o600 });
    const err = await KeyStore.open(dir, { alg: 'ES256', maxTokenTtlSeconds: 60 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RatlsError);
    expect((err as RatlsError).code).toBe('KEY_STORE_FAILED');
  });
});
