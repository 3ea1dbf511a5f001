import { describe, expect, it } from 'vitest';
import { IdentityRotation } from '../../src/proxy/identity-rotation.ts';
import { RecentIdentities } from '../../src/proxy/recent-identities.ts';
import type { ServingIdentity } from '../../src/proxy/identity-source.ts';
import { FakeClock, fakeIdentitySource } from './fakes.ts';

const HOUR = 3_600_000;

describe('RecentIdentities: old connections get evidence for their own certificate', () => {
  it('answers for the current identity and the ones before it, up to `keep`', async () => {
    const src = fakeIdentitySource({ lifetimeMs: HOUR });
    const [a, b, c, d] = await Promise.all([1, 2, 3, 4].map(() => src.issue(new Date())));
    const recent = new RecentIdentities<ServingIdentity>(a!, 3);
    recent.add(b!);
    recent.add(c!);
    expect(recent.current).toBe(c);
    expect(recent.forCertificate(a!.certDer)).toBe(a);
    expect(recent.forCertificate(b!.certDer)).toBe(b);
    recent.add(d!);
    // a fell out: its connection gets the current identity (its evidence will not match, fail closed)
    expect(recent.forCertificate(a!.certDer)).toBe(d);
    expect(recent.forCertificate(b!.certDer)).toBe(b);
  });

  it.each([
    { name: 'no certificate (not a TLS connection)', der: undefined },
    { name: 'a certificate never served', der: new TextEncoder().encode('someone else') },
    { name: 'empty bytes', der: new Uint8Array(0) },
  ])('falls back to the current identity for $name', async ({ der }) => {
    const src = fakeIdentitySource({ lifetimeMs: HOUR });
    const first = await src.issue(new Date());
    const recent = new RecentIdentities(first);
    const second = await src.issue(new Date());
    recent.add(second);
    expect(recent.forCertificate(der)).toBe(second);
  });
});

/** A rotation on a fake clock with a fake source; records what listeners and observers were told. */
async function setup(opts: { lifetimeMs?: number; rotateAt?: number } = {}) {
  const clock = new FakeClock();
  const source = fakeIdentitySource({ lifetimeMs: opts.lifetimeMs ?? 24 * HOUR });
  const rotated: ServingIdentity[] = [];
  const failed: Array<{ message: string; retryMs: number }> = [];
  const rotation = await IdentityRotation.issue({
    source,
    now: clock.now,
    rotateAt: opts.rotateAt ?? 2 / 3,
    timer: clock.timer,
    onRotated: (id) => rotated.push(id),
    onRotationFailed: (err, retryMs) => failed.push({ message: (err as Error).message, retryMs }),
  });
  return { clock, source, rotation, rotated, failed };
}

describe('IdentityRotation', () => {
  it('issues the first identity at the current time', async () => {
    const t = await setup();
    expect(t.source.issued.length).toBe(1);
    expect(t.rotation.current()).toBe(t.source.issued[0]);
    expect(t.rotation.current().notBefore).toEqual(t.clock.now());
    expect(t.rotated).toEqual([]);
  });

  it('hands a new identity to every listener before it becomes current, then tells the observer', async () => {
    const t = await setup();
    const old = t.rotation.current();
    const seen: string[] = [];
    t.rotation.serveWith((id) => seen.push(`A got ${id.certPem} while current is ${t.rotation.current().certPem}`));
    t.rotation.serveWith((id) => seen.push(`B got ${id.certPem}`));
    const next = await t.rotation.rotate();
    expect(seen).toEqual(['A got PEM 2 while current is PEM 1', 'B got PEM 2']);
    expect(t.rotation.current()).toBe(next);
    expect(t.rotated).toEqual([next]);
    expect(t.rotation.forCertificate(old.certDer)).toBe(old);
    expect(t.rotation.forCertificate(next.certDer)).toBe(next);
  });

  it('a listener that cannot take the new identity fails the rotation and the old one stays current', async () => {
    const t = await setup();
    const old = t.rotation.current();
    t.rotation.serveWith(() => {
      throw new Error('bad key');
    });
    await expect(t.rotation.rotate()).rejects.toThrow('bad key');
    expect(t.rotation.current()).toBe(old);
    expect(t.rotated).toEqual([]);
    // the identity never served is not answered for
    expect(t.rotation.forCertificate(t.source.issued[1]!.certDer)).toBe(old);
  });

  it('a failed issue leaves everything as it was', async () => {
    const t = await setup();
    const old = t.rotation.current();
    t.source.failNext(new Error('configfs-tsm busy'));
    await expect(t.rotation.rotate()).rejects.toThrow('configfs-tsm busy');
    expect(t.rotation.current()).toBe(old);
    expect(t.rotated).toEqual([]);
  });

  it('a listener that stopped following is not told of later identities', async () => {
    const t = await setup();
    const seen: ServingIdentity[] = [];
    const unfollow = t.rotation.serveWith((id) => seen.push(id));
    await t.rotation.rotate();
    unfollow();
    await t.rotation.rotate();
    expect(seen).toEqual([t.source.issued[1]]);
  });

  it('rotates on its own at rotateAt of each lifetime', async () => {
    const t = await setup({ lifetimeMs: 24 * HOUR, rotateAt: 2 / 3 });
    t.rotation.autoRotate();
    await t.clock.advance(16 * HOUR - 1);
    expect(t.source.issued.length).toBe(1);
    await t.clock.advance(1);
    expect(t.source.issued.length).toBe(2);
    expect(t.rotation.current()).toBe(t.source.issued[1]);
    await t.clock.advance(16 * HOUR);
    expect(t.source.issued.length).toBe(3);
    expect(t.rotated.length).toBe(2);
  });

  it('after a failed automatic rotation keeps the old identity, reports, and retries within a minute', async () => {
    const t = await setup({ lifetimeMs: 24 * HOUR, rotateAt: 2 / 3 });
    const old = t.rotation.current();
    t.rotation.autoRotate();
    t.source.failNext(new Error('PCS unreachable'), new Error('PCS unreachable'));
    await t.clock.advance(16 * HOUR);
    expect(t.failed).toEqual([{ message: 'PCS unreachable', retryMs: 60_000 }]);
    expect(t.rotation.current()).toBe(old);
    await t.clock.advance(60_000);
    expect(t.failed.length).toBe(2);
    await t.clock.advance(60_000);
    expect(t.rotation.current()).not.toBe(old);
    expect(t.rotated.length).toBe(1);
  });

  it('retries sooner when little life is left', async () => {
    // 100 s lifetime, rotation at 90 %: 10 s left, retry after 1 s
    const t = await setup({ lifetimeMs: 100_000, rotateAt: 0.9 });
    t.rotation.autoRotate();
    t.source.failNext(new Error('no quote'));
    await t.clock.advance(90_000);
    expect(t.failed).toEqual([{ message: 'no quote', retryMs: 1000 }]);
  });

  it('stop ends automatic rotation; manual rotation still works', async () => {
    const t = await setup({ lifetimeMs: HOUR, rotateAt: 0.5 });
    t.rotation.autoRotate();
    t.rotation.stop();
    await t.clock.advance(10 * HOUR);
    expect(t.source.issued.length).toBe(1);
    await t.rotation.rotate();
    expect(t.source.issued.length).toBe(2);
  });
});
