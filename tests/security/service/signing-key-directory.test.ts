/**
 * The attestation service signs tokens with keys it keeps in its key directory, and publishes them
 * in its JWKS. Only the mode bits used to be checked, not the owner: a local user who created the
 * directory first (say under /tmp) could plant a key dated in the future; the service adopted it as
 * its active key, signed with it, published it, and every token the attacker signed verified. Now
 * the directory and every key file must belong to the service's own user, be nobody else's to
 * write or swap (no link, no parent others can write), and the files readable by nobody else.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chmodSync, chownSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { calculateJwkThumbprint, exportJWK, generateKeyPair } from 'jose';
import { KeyStore } from '../../../src/service/keys.ts';
import { startAttestService } from '../../../src/service/server.ts';
import { stubVerifier } from '../../service/stub-verifier.ts';

const asRoot = process.getuid?.() === 0;
const OTHER = 4242;
const POLICIES = resolve(import.meta.dirname, '../../../config/policies');
const OPTS = { alg: 'ES256' as const, maxTokenTtlSeconds: 300 };

let base: string;
beforeAll(() => {
  base = mkdtempSync(join(tmpdir(), 'ratls-keydir-'));
  chmodSync(base, 0o1777); // like /tmp: everyone may create entries, nobody may take others'
});
afterAll(() => rmSync(base, { recursive: true, force: true }));

/** Writes a key file the way an attacker would: a key of their own, dated in the future so it wins. */
async function plantKey(dir: string): Promise<{ kid: string; file: string }> {
  const { privateKey } = await generateKeyPair('ES256', { extractable: true });
  const jwk = await exportJWK(privateKey);
  const kid = await calculateJwkThumbprint({ kty: jwk.kty!, crv: jwk.crv!, x: jwk.x!, y: jwk.y! }, 'sha256');
  const file = join(dir, `key-${kid}.json`);
  writeFileSync(file, JSON.stringify({ kid, alg: 'ES256', createdAt: '2099-01-01T00:00:00.000Z', privateJwk: { ...jwk, kid, alg: 'ES256' } }), { mode: 0o600 });
  return { kid, file };
}

describe('attestation service signing key directory', () => {
  it('baseline: a fresh directory of its own gets a key of its own', async () => {
    const dir = join(base, 'fresh');
    const store = await KeyStore.open(dir, OPTS);
    expect(readdirSync(dir)).toEqual([`key-${store.current().kid}.json`]);
  });

  it.runIf(asRoot)('refuses a directory another user created first, with their key in it', async () => {
    const dir = join(base, 'planted');
    mkdirSync(dir, { mode: 0o700 });
    const { kid } = await plantKey(dir);
    chownSync(join(dir, `key-${kid}.json`), OTHER, OTHER);
    chownSync(dir, OTHER, OTHER);
    await expect(KeyStore.open(dir, OPTS)).rejects.toMatchObject({ code: 'KEY_STORE_FAILED', message: expect.stringContaining(`belongs to uid ${OTHER}`) });
    const svc = startAttestService({ keyDir: dir, policiesDir: POLICIES, verifier: stubVerifier, rateLimit: false });
    await expect(svc).rejects.toMatchObject({ code: 'KEY_STORE_FAILED' });
    await svc.then((s) => s.close()).catch(() => undefined);
  });

  it.runIf(asRoot)('refuses a key file another user owns in its own directory', async () => {
    const dir = join(base, 'foreign-file');
    await KeyStore.open(dir, OPTS);
    const { file } = await plantKey(dir);
    chownSync(file, OTHER, OTHER);
    await expect(KeyStore.open(dir, OPTS)).rejects.toMatchObject({ code: 'KEY_STORE_FAILED', message: expect.stringContaining(`belongs to uid ${OTHER}`) });
  });

  it('refuses a key directory that is a symbolic link', async () => {
    const real = join(base, 'real-keys');
    mkdirSync(real, { mode: 0o700 });
    await plantKey(real);
    const link = join(base, 'keys-link');
    symlinkSync(real, link);
    await expect(KeyStore.open(link, OPTS)).rejects.toMatchObject({ code: 'KEY_STORE_FAILED', message: expect.stringContaining('is a symbolic link') });
  });

  it('refuses a key file that is a symbolic link', async () => {
    const dir = join(base, 'linked-file');
    mkdirSync(dir, { mode: 0o700 });
    const elsewhere = join(base, 'elsewhere');
    mkdirSync(elsewhere, { mode: 0o700 });
    const { kid, file } = await plantKey(elsewhere);
    symlinkSync(file, join(dir, `key-${kid}.json`));
    await expect(KeyStore.open(dir, OPTS)).rejects.toMatchObject({ code: 'KEY_STORE_FAILED', message: expect.stringContaining('is a symbolic link') });
  });

  it('refuses a key directory below a directory others can write to (not sticky)', async () => {
    const open = join(base, 'open');
    mkdirSync(open);
    chmodSync(open, 0o777);
    await expect(KeyStore.open(join(open, 'keys'), OPTS)).rejects.toMatchObject({
      code: 'KEY_STORE_FAILED',
      message: expect.stringContaining(`lies in ${open}, which is writable by every user`),
    });
  });
});
