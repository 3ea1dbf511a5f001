import { describe, expect, it } from 'vitest';
import { verifyQuote } from '../../src/verify/dcap.ts';
import { ERROR_CODES } from '../../src/core/errors.ts';
import { manifest, toVector } from './helpers.ts';

describe('verifyQuote over every real quote in the manifest, at its verification time', () => {
  for (const m of manifest.quotes) {
    it(m.id, async () => {
      const v = toVector(m);
      const r = await verifyQuote(v.quote, {
        collateral: v.collateral!,
        now: v.now,
        policy: { allowedTcbStatuses: ['UpToDate', 'OutOfDate'], allowDebug: true },
      });
      for (const e of r.errors) expect(ERROR_CODES).toContain(e.code);
      expect(r.quote?.mrTd).toBe(m.fields.mr_td);
      const exp = m.expected ?? {};
      if (!m.collateral) {
        // no collateral published for this FMSPC: reported as missing collateral, never ok
        expect(r.ok).toBe(false);
        expect(r.tcbStatus).toBeNull();
        expect(r.errors.map((e) => e.code)).toEqual(['COLLATERAL_MISSING']);
        expect(r.quote?.fmspc).toBe(m.pck.fmspc);
      } else if (typeof exp.tcb_status === 'string') {
        expect(r.tcbStatus).toBe(exp.tcb_status);
        expect(r.advisoryIds).toEqual(exp.advisory_ids ?? []);
        expect(r.errors).toEqual([]);
        expect(r.ok).toBe(true);
      } else if (typeof exp.error === 'string' && /no matching/.test(exp.error)) {
        expect(r.ok).toBe(false);
        expect(r.tcbStatus).toBeNull();
        expect(r.errors.map((e) => e.code)).toContain('TCB_NOT_SUPPORTED');
        // every cryptographic check passed: only the TCB level fails
        expect(r.checks.filter((c) => !c.ok).map((c) => c.name)).toEqual(['TCB level']);
      } else {
        // verdict held back by the manifest: the signatures and collateral must all verify
        expect(r.checks.filter((c) => !c.ok && c.name !== 'TCB level' && c.name !== 'policy')).toEqual([]);
      }
      expect(r.nonIntelRoot).toBeUndefined();
    });
  }

  it('reports the held-back verdicts (derived under Intel rules)', async () => {
    const derived: Record<string, unknown> = {};
    for (const m of manifest.quotes.filter((q) => q.collateral && q.expected?.tcb_status === undefined && !q.expected?.error)) {
      const v = toVector(m);
      const r = await verifyQuote(v.quote, { collateral: v.collateral!, now: v.now });
      derived[m.id] = { tcbStatus: r.tcbStatus, advisoryIds: r.advisoryIds, errors: r.errors.map((e) => e.code) };
    }
    // Pinned so a change in the TCB rules shows up as a diff; see docs/verifier.md for the reasoning.
    expect(derived).toEqual({
      'v4-gcp-cos113-00806f050000-gotdxguest.dat': { tcbStatus: 'UpToDate', advisoryIds: [], errors: [] },
      'v4-azure-00806f050000-trustee.bin': {
        tcbStatus: 'OutOfDate',
        advisoryIds: ['INTEL-SA-00960', 'INTEL-SA-00982', 'INTEL-SA-00986'],
        errors: ['TCB_STATUS_NOT_ALLOWED'],
      },
      'v5-aliyun-90c06f000000-trustee.dat': { tcbStatus: null, advisoryIds: [], errors: ['TCB_NOT_SUPPORTED'] },
    });
  });

  it('default policy: UpToDate DEBUG TD has Intel status UpToDate but is rejected with TD_DEBUG', async () => {
    const v = toVector(manifest.quotes.find((q) => q.id === 'v4-50806f000000-trustee-debug.dat')!);
    const r = await verifyQuote(v.quote, { collateral: v.collateral!, now: v.now });
    expect(r.tcbStatus).toBe('UpToDate');
    expect(r.ok).toBe(false);
    expect(r.errors.map((e) => e.code)).toEqual(['TD_DEBUG']);
  });

  it('default policy rejects OutOfDate with TCB_STATUS_NOT_ALLOWED but keeps Intel status and advisories', async () => {
    const v = toVector(manifest.quotes.find((q) => q.id === 'v4-00806f050000-zkdcap.dat')!);
    const r = await verifyQuote(v.quote, { collateral: v.collateral!, now: v.now });
    expect(r.ok).toBe(false);
    expect(r.tcbStatus).toBe('OutOfDate');
    expect(r.advisoryIds).toEqual(['INTEL-SA-00960', 'INTEL-SA-00982', 'INTEL-SA-00986']);
    expect(r.errors.map((e) => e.code)).toEqual(['TCB_STATUS_NOT_ALLOWED']);
  });
});
