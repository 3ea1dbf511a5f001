import { describe, expect, it } from 'vitest';
import { RotationSchedule, rotationDelay, rotationRetryDelay } from '../../src/proxy/rotation-schedule.ts';
import type { ServingIdentity } from '../../src/proxy/identity-source.ts';
import { FakeClock } from './fakes.ts';

const HOUR = 3_600_000;
const T0 = Date.UTC(2026, 0, 1);

function life(notBefore: number, notAfter: number): ServingIdentity {
  return { notBefore: new Date(notBefore), notAfter: new Date(notAfter) } as ServingIdentity;
}

describe('rotation delays', () => {
  it.each([
    { name: 'a fresh 24 h certificate rotates after 16 h at 2/3', id: life(T0, T0 + 24 * HOUR), rotateAt: 2 / 3, now: T0, want: 16 * HOUR },
    { name: 'counts from notBefore, not from now', id: life(T0 - HOUR, T0 + 3 * HOUR), rotateAt: 0.5, now: T0, want: HOUR },
    { name: 'past the rotation point: now (never negative)', id: life(T0, T0 + HOUR), rotateAt: 0.5, now: T0 + 50 * 60_000, want: 0 },
  ])('rotationDelay: $name', ({ id, rotateAt, now, want }) => {
    expect(rotationDelay(id, rotateAt, new Date(now))).toBe(want);
  });

  it.each([
    { name: 'a tenth of the remaining life', left: 100_000, want: 10_000 },
    { name: 'at most a minute', left: 8 * HOUR, want: 60_000 },
    { name: 'at least a second', left: 5_000, want: 1_000 },
    { name: 'at least a second, also when already expired', left: -HOUR, want: 1_000 },
  ])('rotationRetryDelay: $name', ({ left, want }) => {
    expect(rotationRetryDelay(life(T0 - HOUR, T0 + left), new Date(T0))).toBe(want);
  });
});

/** A schedule on a fake clock whose rotations succeed unless told otherwise. */
function setup(opts: { next?: number | (() => number); retry?: number; maxTimerMs?: number } = {}) {
  const clock = new FakeClock();
  const rotations: number[] = [];
  const failures: Array<{ err: unknown; retryMs: number }> = [];
  let failWith: Error | undefined;
  let gate: Promise<void> | undefined;
  const schedule = new RotationSchedule({
    rotate: async () => {
      rotations.push(clock.now().getTime() - T0);
      await gate;
      if (failWith) throw failWith;
    },
    nextDelayMs: () => (typeof opts.next === 'function' ? opts.next() : (opts.next ?? 1000)),
    retryDelayMs: () => opts.retry ?? 100,
    onFailure: (err, retryMs) => failures.push({ err, retryMs }),
    timer: clock.timer,
    ...(opts.maxTimerMs ? { maxTimerMs: opts.maxTimerMs } : {}),
  });
  return {
    clock,
    schedule,
    rotations,
    failures,
    fail: (e: Error | undefined) => (failWith = e),
    hold: () => {
      let release!: () => void;
      gate = new Promise<void>((r) => (release = r));
      return () => {
        gate = undefined;
        release();
      };
    },
  };
}

describe('RotationSchedule', () => {
  it('rotates when due and arms the next rotation after each success', async () => {
    const t = setup({ next: 1000 });
    t.schedule.start();
    expect(t.clock.timers).toEqual([1000]);
    await t.clock.advance(999);
    expect(t.rotations).toEqual([]);
    await t.clock.advance(1);
    expect(t.rotations).toEqual([1000]);
    await t.clock.advance(2000);
    expect(t.rotations).toEqual([1000, 2000, 3000]);
    expect(t.clock.timers).toEqual([1000]);
  });

  it('splits a delay longer than one timer allows into steps and rotates only at the end', async () => {
    const t = setup({ next: 3500, maxTimerMs: 1000 });
    t.schedule.start();
    expect(t.clock.timers).toEqual([1000]);
    await t.clock.advance(3499);
    expect(t.rotations).toEqual([]);
    expect(t.clock.timers).toEqual([1]);
    await t.clock.advance(1);
    expect(t.rotations).toEqual([3500]);
  });

  it('a rotation already due runs at once', async () => {
    const delays = [-5, 1000];
    const t = setup({ next: () => delays.shift()! });
    t.schedule.start();
    expect(t.clock.timers).toEqual([0]);
    await t.clock.advance(0);
    expect(t.rotations).toEqual([0]);
    expect(t.clock.timers).toEqual([1000]);
  });

  it('after a failure reports it, retries after the retry delay, and resumes the normal delay after a success', async () => {
    const t = setup({ next: 1000, retry: 100 });
    const boom = new Error('quote generation failed');
    t.fail(boom);
    t.schedule.start();
    await t.clock.advance(1000);
    expect(t.failures).toEqual([{ err: boom, retryMs: 100 }]);
    expect(t.clock.timers).toEqual([100]);
    await t.clock.advance(100);
    expect(t.rotations).toEqual([1000, 1100]);
    t.fail(undefined);
    await t.clock.advance(100);
    expect(t.rotations).toEqual([1000, 1100, 1200]);
    expect(t.failures.length).toBe(2);
    expect(t.clock.timers).toEqual([1000]);
  });

  it('keeps one timer when started twice', () => {
    const t = setup();
    t.schedule.start();
    t.schedule.start();
    expect(t.clock.timers).toEqual([1000]);
  });

  it('stop cancels the pending timer', async () => {
    const t = setup();
    t.schedule.start();
    t.schedule.stop();
    expect(t.clock.timers).toEqual([]);
    await t.clock.advance(10_000);
    expect(t.rotations).toEqual([]);
  });

  it('a rotation running when stop is called finishes but arms nothing, success or failure', async () => {
    for (const err of [undefined, new Error('late failure')]) {
      const t = setup();
      t.fail(err);
      const release = t.hold();
      t.schedule.start();
      await t.clock.advance(1000);
      expect(t.rotations).toEqual([1000]);
      t.schedule.stop();
      release();
      await t.clock.advance(10_000);
      expect(t.clock.timers).toEqual([]);
      expect(t.rotations).toEqual([1000]);
    }
  });
});
