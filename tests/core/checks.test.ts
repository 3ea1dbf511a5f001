/** The one recorder of checks and the failed-result helpers every verifier and caller shares. */
import { describe, expect, it } from 'vitest';
import { CheckRecorder, failedResult, withError } from '../../src/core/checks.ts';
import { RatlsError } from '../../src/core/errors.ts';
import type { VerificationResult } from '../../src/core/types.ts';

describe('CheckRecorder', () => {
  it('keeps checks in order and is ok only while nothing failed', () => {
    const rec = new CheckRecorder();
    rec.pass('first');
    rec.pass('second', 'with detail');
    expect(rec.ok).toBe(true);
    rec.fail('third', { code: 'CERT_EXPIRED', message: 'expired' });
    rec.skip('fourth', 'not evaluated');
    expect(rec.ok).toBe(false);
    expect(rec.result()).toEqual({
      ok: false,
      tcbStatus: null,
      advisoryIds: [],
      errors: [{ code: 'CERT_EXPIRED', message: 'expired' }],
      quote: null,
      checks: [
        { name: 'first', ok: true },
        { name: 'second', ok: true, detail: 'with detail' },
        { name: 'third', ok: false, detail: 'expired' },
        { name: 'fourth', ok: false, detail: 'not evaluated' },
      ],
    });
  });

  it('a skipped check adds no error, so it alone does not fail the result', () => {
    const rec = new CheckRecorder();
    rec.skip('TCB level', 'not evaluated');
    expect(rec.result().ok).toBe(true);
  });

  it('puts the code before the message when asked (the DCAP report style)', () => {
    const rec = new CheckRecorder({ codeInDetail: true });
    rec.fail('quote signature', { code: 'QUOTE_SIGNATURE_INVALID', message: 'altered' });
    expect(rec.checks[0]!.detail).toBe('QUOTE_SIGNATURE_INVALID: altered');
  });

  it('check() passes or fails by the error and says which', () => {
    const rec = new CheckRecorder();
    expect(rec.check('a', undefined, 'fine')).toBe(true);
    expect(rec.check('b', { code: 'CRL_INVALID', message: 'bad' }, 'ignored on failure')).toBe(false);
    expect(rec.checks).toEqual([
      { name: 'a', ok: true, detail: 'fine' },
      { name: 'b', ok: false, detail: 'bad' },
    ]);
  });

  it('failWith() keeps a RatlsError code and hides other exceptions behind the fallback code', () => {
    const rec = new CheckRecorder();
    rec.failWith('typed', new RatlsError('PCK_CHAIN_MALFORMED', 'bad chain'), 'INTERNAL');
    rec.failWith('untyped', new TypeError('x is undefined'), 'QUOTE_MALFORMED');
    expect(rec.errors).toEqual([
      { code: 'PCK_CHAIN_MALFORMED', message: 'bad chain' },
      { code: 'QUOTE_MALFORMED', message: 'Unexpected failure: x is undefined' },
    ]);
  });

  it('reports the outcome it is given and nonIntelRoot only when true', () => {
    const rec = new CheckRecorder();
    const r = rec.result({ tcbStatus: 'OutOfDate', advisoryIds: ['INTEL-SA-1'], nonIntelRoot: false });
    expect(r.tcbStatus).toBe('OutOfDate');
    expect(r.advisoryIds).toEqual(['INTEL-SA-1']);
    expect('nonIntelRoot' in r).toBe(false);
    expect(rec.result({ nonIntelRoot: true }).nonIntelRoot).toBe(true);
  });

  it('around() puts its own checks and errors before a nested result, and fails if either failed', () => {
    const inner: VerificationResult = {
      ok: true,
      tcbStatus: 'UpToDate',
      advisoryIds: [],
      errors: [],
      quote: null,
      checks: [{ name: 'inner', ok: true }],
      nonIntelRoot: true,
    };
    const passing = new CheckRecorder();
    passing.pass('outer');
    expect(passing.around(inner)).toEqual({ ...inner, checks: [{ name: 'outer', ok: true }, ...inner.checks] });

    const failing = new CheckRecorder();
    failing.fail('nonce', { code: 'NONCE_MISMATCH', message: 'other nonce' });
    const r = failing.around(inner);
    expect(r.ok).toBe(false);
    expect(r.tcbStatus).toBe('UpToDate');
    expect(r.errors.map((e) => e.code)).toEqual(['NONCE_MISMATCH']);
    expect(r.checks.map((c) => c.name)).toEqual(['nonce', 'inner']);
  });
});

describe('failed results', () => {
  it('failedResult holds the error alone, as a named check when asked', () => {
    const e = { code: 'CONNECTION_FAILED' as const, message: 'closed' };
    expect(failedResult(e)).toEqual({ ok: false, tcbStatus: null, advisoryIds: [], errors: [e], quote: null, checks: [] });
    expect(failedResult(e, { check: 'connect' }).checks).toEqual([{ name: 'connect', ok: false, detail: 'closed' }]);
  });

  it('withError adds an error, fails the result and leaves the rest as it was', () => {
    const ok = new CheckRecorder().result({ tcbStatus: 'UpToDate' });
    const r = withError(ok, { code: 'NONCE_MISSING', message: 'send a nonce' });
    expect(r.ok).toBe(false);
    expect(r.tcbStatus).toBe('UpToDate');
    expect(r.errors).toEqual([{ code: 'NONCE_MISSING', message: 'send a nonce' }]);
    expect(ok.errors).toEqual([]);
  });
});
