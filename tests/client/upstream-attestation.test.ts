/** The attestation state of `ratls connect`: status counters, certificate changes, and the rate-limited gate. */
import { describe, expect, it } from 'vitest';
import type { AttestationEvent } from '../../src/client/attestor.ts';
import { UpstreamAttestation } from '../../src/client/upstream-attestation.ts';
import { RatlsError } from '../../src/core/errors.ts';

function event(certSha256: string | undefined, ok: boolean, at = new Date(Date.UTC(2026, 0, 1))): AttestationEvent {
  return {
    peer: 'vm.example:8443',
    result: {
      ok,
      tcbStatus: ok ? 'UpToDate' : null,
      advisoryIds: [],
      errors: ok ? [] : [{ code: 'TD_DEBUG', message: 'The TD runs in DEBUG mode.' }],
      quote: null,
      checks: [],
    },
    ...(certSha256 ? { certSha256 } : {}),
    nonceVerified: false,
    at,
  };
}

/**
 * A state whose check() reports what `next` says (verified or refused) through the state, like the
 * attested agent does, after `release()` when held; on a fake clock.
 */
function setup(opts: { retryIntervalMs?: number } = {}) {
  let ms = 1_000_000;
  let next: 'verified' | 'refused' | Error = 'verified';
  let held: Promise<void> | undefined;
  let release = (): void => {};
  const lines: string[] = [];
  let checks = 0;
  const state: UpstreamAttestation = new UpstreamAttestation({
    upstream: 'https://vm.example:8443',
    peer: 'vm.example:8443',
    check: async () => {
      checks++;
      await held;
      if (next instanceof Error) throw next;
      if (next === 'verified') state.verified(event('aa', true));
      else state.rejected(event('bb', false));
    },
    log: (l) => lines.push(l),
    clockMs: () => ms,
    ...(opts.retryIntervalMs !== undefined ? { retryIntervalMs: opts.retryIntervalMs } : {}),
  });
  return {
    state,
    lines,
    checks: () => checks,
    tick: (d: number) => (ms += d),
    answer: (a: typeof next) => (next = a),
    hold: () => {
      held = new Promise<void>((r) => (release = r));
    },
    release: () => {
      held = undefined;
      release();
    },
  };
}

describe('UpstreamAttestation: status', () => {
  it('starts unknown with zero counters', () => {
    const { state } = setup();
    expect(state.status).toMatchObject({ upstream: 'https://vm.example:8443', state: 'unknown', verifications: 0, refusals: 0, certificateChanges: 0 });
  });

  it('counts a certificate change only between two verified certificates, and logs it', () => {
    const { state, lines } = setup();
    state.verified(event('aa', true));
    state.verified(event('aa', true));
    expect(state.status.certificateChanges).toBe(0);
    state.rejected(event('bb', false));
    const at = new Date(Date.UTC(2026, 0, 2));
    state.verified(event('cc', true, at));
    expect(state.status).toMatchObject({ state: 'verified', verifications: 3, refusals: 1, certificateChanges: 1, lastCertificateChangeAt: at.toISOString() });
    expect(lines).toEqual(['upstream REFUSED: TD_DEBUG: The TD runs in DEBUG mode.', 'upstream certificate changed (now cc); it passed attestation']);
  });

  it('keeps the last failure after a later success (the refusal page and status show it)', () => {
    const { state } = setup();
    const bad = event('bb', false);
    state.rejected(bad);
    state.verified(event('aa', true));
    expect(state.status.lastFailure).toBe(bad);
    expect(state.status.state).toBe('verified');
  });

  it('scrubs terminal escapes from what the upstream said before logging it', () => {
    const { state, lines } = setup();
    const e = event('bb', false);
    e.result.errors = [{ code: 'TD_DEBUG', message: 'bad\u001b[2J\u001b]0;title\u0007 server' }];
    state.rejected(e);
    expect(lines[0]).not.toMatch(/\u001b|\u0007/);
  });

  it('a check that throws is recorded as a refusal with CONNECTION_FAILED (reattest never throws)', async () => {
    const t = setup();
    t.answer(new RatlsError('CONNECTION_FAILED', 'connect ECONNREFUSED 127.0.0.1:8443'));
    await t.state.reattest();
    expect(t.state.status.state).toBe('refused');
    expect(t.state.status.lastFailure).toMatchObject({
      peer: 'vm.example:8443',
      nonceVerified: false,
      at: new Date(1_000_000),
      result: { ok: false, errors: [{ code: 'CONNECTION_FAILED' }], checks: [{ name: 'connect', ok: false, detail: 'connect ECONNREFUSED 127.0.0.1:8443' }] },
    });
  });
});

describe('UpstreamAttestation: admission', () => {
  it('admits at once while verified, without a new check', async () => {
    const t = setup();
    await t.state.reattest();
    const before = t.checks();
    expect(await t.state.admit()).toBe(true);
    expect(t.checks()).toBe(before);
  });

  it('while refused, re-attests before answering, at most once per retry interval', async () => {
    const t = setup({ retryIntervalMs: 1000 });
    t.answer('refused');
    expect(await t.state.admit()).toBe(false);
    expect(t.checks()).toBe(1);
    t.tick(999);
    expect(await t.state.admit()).toBe(false);
    expect(t.checks()).toBe(1);
    t.tick(1);
    t.answer('verified');
    expect(await t.state.admit()).toBe(true);
    expect(t.checks()).toBe(2);
  });

  it('concurrent requests while refused share one re-attestation', async () => {
    const t = setup({ retryIntervalMs: 0 });
    t.state.rejected(event('bb', false));
    t.hold();
    const waiting = [t.state.admit(), t.state.admit(), t.state.admit()];
    t.release();
    expect(await Promise.all(waiting)).toEqual([true, true, true]);
    expect(t.checks()).toBe(1);
  });
});
