/** Fakes for the rotation units: a clock whose timers run only when time is advanced, and an identity source without crypto. */
import { createHash } from 'node:crypto';
import type { ServingIdentity } from '../../src/proxy/identity-source.ts';
import type { StartTimer } from '../../src/proxy/rotation-schedule.ts';

interface Pending {
  at: number;
  seq: number;
  run: () => void;
}

/** Lets every promise chain that is ready run to its end. */
export const settle = (): Promise<void> => new Promise((r) => setImmediate(r));

export class FakeClock {
  private ms: number;
  private seq = 0;
  private pending: Pending[] = [];

  constructor(start = Date.UTC(2026, 0, 1)) {
    this.ms = start;
  }

  readonly now = (): Date => new Date(this.ms);

  readonly timer: StartTimer = (run, delayMs) => {
    const entry = { at: this.ms + Math.max(0, delayMs), seq: this.seq++, run };
    this.pending.push(entry);
    return () => {
      this.pending = this.pending.filter((p) => p !== entry);
    };
  };

  /** Milliseconds from now until each pending timer fires. */
  get timers(): number[] {
    return this.pending.map((p) => p.at - this.ms);
  }

  /** Moves time forward, firing due timers in order and letting promises settle after each. */
  async advance(ms: number): Promise<void> {
    const end = this.ms + ms;
    for (;;) {
      const due = this.pending.filter((p) => p.at <= end).sort((a, b) => a.at - b.at || a.seq - b.seq)[0];
      if (!due) break;
      this.pending = this.pending.filter((p) => p !== due);
      this.ms = due.at;
      due.run();
      await settle();
    }
    this.ms = end;
    await settle();
  }
}

/** An identity source that makes identities without keys or certificates (no crypto, no sockets). */
export function fakeIdentitySource(opts: { lifetimeMs: number }) {
  let n = 0;
  const failures: Error[] = [];
  const issued: ServingIdentity[] = [];
  return {
    issued,
    /** The next issue() calls reject with these errors, one each. */
    failNext(...errs: Error[]): void {
      failures.push(...errs);
    },
    async issue(now: Date): Promise<ServingIdentity> {
      const err = failures.shift();
      if (err) throw err;
      const certDer = new TextEncoder().encode(`certificate ${++n}`);
      const id: ServingIdentity = {
        certPem: `PEM ${n}`,
        certDer,
        keyPem: `KEY ${n}`,
        notBefore: now,
        notAfter: new Date(now.getTime() + opts.lifetimeMs),
        fingerprintSha256: createHash('sha256').update(certDer).digest('hex'),
        simulated: true,
        providerName: 'fake',
      };
      issued.push(id);
      return id;
    },
  };
}
