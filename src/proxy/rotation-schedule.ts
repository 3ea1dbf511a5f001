/**
 * When certificates are rotated: at a fraction of their lifetime, and after a failed rotation
 * again soon, while the old certificate is still valid. Time comes in through a timer function
 * and delay callbacks, so the schedule is tested with a fake clock.
 */
import type { ServingIdentity } from './identity-source.ts';

/** Most setTimeout accepts; longer delays are re-armed in steps. */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/** Milliseconds from `now` until the rotation point of `id` (never negative). */
export function rotationDelay(id: ServingIdentity, rotateAt: number, now: Date): number {
  const nb = id.notBefore.getTime();
  const life = id.notAfter.getTime() - nb;
  return Math.max(0, nb + life * rotateAt - now.getTime());
}

/**
 * Milliseconds until the next attempt after a failed rotation: a tenth of what is left of the
 * current certificate's life, between 1 s and 1 min. At the default rotation point a third of the
 * life is left, so there is room for many attempts.
 */
export function rotationRetryDelay(current: ServingIdentity, now: Date): number {
  return Math.max(1000, Math.min(60_000, (current.notAfter.getTime() - now.getTime()) / 10));
}

/** Starts a one-shot timer; returns the function that cancels it. */
export type StartTimer = (run: () => void, delayMs: number) => () => void;

/** A Node timer that does not keep the process alive. */
export const unrefTimer: StartTimer = (run, delayMs) => {
  const t = setTimeout(run, delayMs);
  t.unref();
  return () => clearTimeout(t);
};

/** Options of {@link RotationSchedule}. */
export interface RotationScheduleOptions {
  /** Makes and installs a new identity. */
  rotate(): Promise<unknown>;
  /** Delay until the next rotation is due; read at start and after every success. */
  nextDelayMs(): number;
  /** Delay until the next attempt after a failure. */
  retryDelayMs(): number;
  /** Told about every failed rotation, with the delay until the next attempt. */
  onFailure?(err: unknown, retryMs: number): void;
  /** Default {@link unrefTimer}. */
  timer?: StartTimer;
  /** Longest single timer (default {@link MAX_TIMER_MS}). */
  maxTimerMs?: number;
}

/** Runs `rotate` when due, again and again, until stopped; one timer at a time. */
export class RotationSchedule {
  private cancel: (() => void) | undefined;
  private stopped = false;
  private readonly timer: StartTimer;
  private readonly maxTimerMs: number;

  constructor(private readonly o: RotationScheduleOptions) {
    this.timer = o.timer ?? unrefTimer;
    this.maxTimerMs = o.maxTimerMs ?? MAX_TIMER_MS;
  }

  /** Arms the first rotation. */
  start(): void {
    this.arm(this.o.nextDelayMs());
  }

  /** Cancels the pending timer; a rotation already running finishes but arms nothing. */
  stop(): void {
    this.stopped = true;
    this.cancel?.();
    this.cancel = undefined;
  }

  private arm(delayMs: number): void {
    if (this.stopped) return;
    this.cancel?.();
    const step = Math.max(0, Math.min(delayMs, this.maxTimerMs));
    this.cancel = this.timer(() => {
      if (step < delayMs) return this.arm(delayMs - step);
      this.o.rotate().then(
        () => this.arm(this.o.nextDelayMs()),
        (err: unknown) => {
          // Keep serving the old certificate (still valid) and try again soon.
          const retry = this.o.retryDelayMs();
          this.o.onFailure?.(err, retry);
          this.arm(retry);
        },
      );
    }, step);
  }
}
