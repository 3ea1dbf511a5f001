import { describe, expect, it } from 'vitest';
import { parseQuote } from '../../src/quote/parse.ts';
import { parseQeIdentity } from '../../src/verify/qe-identity.ts';
import { splitSignedJson } from '../../src/verify/signed-json.ts';
import { parseTcbInfo, type TcbInfo } from '../../src/verify/tcb-info.ts';
import { pckInfoFromQuote } from '../../src/verify/pck.ts';
import { evaluateQeIdentity, evaluateTcb, type QeEvaluation } from '../../src/verify/tcb.ts';
import type { TcbStatus } from '../../src/core/types.ts';
import { vector } from './helpers.ts';

// A v4 quote on a TDX_01 module (TEE_TCB_SVN 06 01 03 ..) and its genuine TCB info.
const v = vector('v4-b0c06f000000-dcapqvl.dat');
const quote = parseQuote(v.quote);
const pck = pckInfoFromQuote(quote);
const rawInfo = splitSignedJson(v.collateral!.tcbInfoJson, 'tcbInfo', 'TCB info').body;
const qeId = parseQeIdentity(splitSignedJson(v.collateral!.qeIdentityJson, 'enclaveIdentity', 'QE identity').body);
const qeOk = evaluateQeIdentity(qeId, quote.certification.qeReport) as QeEvaluation;

function info(mutate: (b: Record<string, any>) => void = () => {}): TcbInfo {
  const b = structuredClone(rawInfo) as Record<string, any>;
  mutate(b);
  return parseTcbInfo(b);
}

describe("Intel's TDX TCB rules", () => {
  it('genuine data: UpToDate through TDX_01', () => {
    const ev = evaluateTcb(info(), pck, quote, qeOk);
    expect(qeOk.status).toBe('UpToDate');
    expect(ev.status).toBe('UpToDate');
    expect(ev.moduleStatus).toBe('UpToDate');
  });

  it('wire order of tcbLevels does not matter (canonical order)', () => {
    const reversed = evaluateTcb(
      info((b) => b.tcbLevels.reverse()),
      pck,
      quote,
      qeOk,
    );
    expect(reversed.status).toBe('UpToDate');
    expect(reversed.tdxLevel).toEqual(evaluateTcb(info(), pck, quote, qeOk).tdxLevel);
  });

  it('TEE_TCB_SVN bytes 0-1 are skipped when byte 1 > 0, graded by the module identity instead', () => {
    // Demand a higher module SVN in byte 0 of every level: Intel ignores it (dcap-qvl would not).
    const ev = evaluateTcb(
      info((b) => b.tcbLevels.forEach((l: any) => (l.tcb.tdxtcbcomponents[0].svn = 200))),
      pck,
      quote,
      qeOk,
    );
    expect(ev.status).toBe('UpToDate');
    // ...but the module identity's own levels grade byte 0.
    const mod = evaluateTcb(
      info((b) => {
        const id = b.tdxModuleIdentities.find((m: any) => m.id === 'TDX_01');
        id.tcbLevels = [
          { tcb: { isvsvn: 200 }, tcbDate: '2030-01-01T00:00:00Z', tcbStatus: 'UpToDate' },
          { tcb: { isvsvn: 1 }, tcbDate: '2020-01-01T00:00:00Z', tcbStatus: 'OutOfDate', advisoryIDs: ['INTEL-SA-TEST'] },
        ];
      }),
      pck,
      quote,
      qeOk,
    );
    expect(mod.status).toBe('OutOfDate');
    expect(mod.advisories).toEqual({ platform: [], tdxModule: ['INTEL-SA-TEST'], qe: [] });
  });

  it('no module identity for the quoted module version: TDX_MODULE_MISMATCH', () => {
    const ev = evaluateTcb(
      info((b) => (b.tdxModuleIdentities = b.tdxModuleIdentities.filter((m: any) => m.id !== 'TDX_01'))),
      pck,
      quote,
      qeOk,
    );
    expect(ev.status).toBeNull();
    expect(ev.error?.code).toBe('TDX_MODULE_MISMATCH');
  });

  it('module SVN below every module level: TCB_NOT_SUPPORTED', () => {
    const ev = evaluateTcb(
      info((b) => {
        b.tdxModuleIdentities.find((m: any) => m.id === 'TDX_01').tcbLevels = [{ tcb: { isvsvn: 99 }, tcbDate: '2030-01-01T00:00:00Z', tcbStatus: 'UpToDate' }];
      }),
      pck,
      quote,
      qeOk,
    );
    expect(ev.error?.code).toBe('TCB_NOT_SUPPORTED');
  });

  const converge = (level: TcbStatus, module: TcbStatus, qe: QeEvaluation['status']): TcbStatus | null => {
    const i = info((b) => {
      for (const l of b.tcbLevels) l.tcbStatus = level;
      for (const m of b.tdxModuleIdentities) for (const l of m.tcbLevels) l.tcbStatus = module;
    });
    return evaluateTcb(i, pck, quote, { status: qe }).status;
  };

  it('convergence with module and QE statuses follows TcbLevelCheck.cpp', () => {
    expect(converge('ConfigurationNeeded', 'OutOfDate', 'UpToDate')).toBe('OutOfDateConfigurationNeeded');
    expect(converge('SWHardeningNeeded', 'OutOfDate', 'UpToDate')).toBe('OutOfDate');
    expect(converge('UpToDate', 'Revoked', 'UpToDate')).toBe('Revoked');
    expect(converge('ConfigurationAndSWHardeningNeeded', 'UpToDate', 'OutOfDate')).toBe('OutOfDateConfigurationNeeded');
    expect(converge('UpToDate', 'UpToDate', 'OutOfDate')).toBe('OutOfDate');
    expect(converge('OutOfDateConfigurationNeeded', 'UpToDate', 'OutOfDate')).toBe('OutOfDateConfigurationNeeded');
    expect(converge('UpToDate', 'UpToDate', 'Revoked')).toBe('Revoked');
    expect(converge('UpToDate', 'UpToDate', 'NotSupported')).toBeNull();
    expect(converge('SWHardeningNeeded', 'UpToDate', 'UpToDate')).toBe('SWHardeningNeeded');
  });

  it('QE identity mismatches are QE_IDENTITY_MISMATCH', () => {
    const r = quote.certification.qeReport;
    expect(evaluateQeIdentity({ ...qeId, isvProdId: 1 }, r)).toMatchObject({ code: 'QE_IDENTITY_MISMATCH' });
    expect(evaluateQeIdentity({ ...qeId, mrSigner: new Uint8Array(32) }, r)).toMatchObject({ code: 'QE_IDENTITY_MISMATCH' });
    expect(evaluateQeIdentity({ ...qeId, miscselect: 1 }, r)).toMatchObject({ code: 'QE_IDENTITY_MISMATCH' });
    const attrs = qeId.attributes.slice();
    attrs[0] = attrs[0]! ^ 0x01;
    expect(evaluateQeIdentity({ ...qeId, attributes: attrs }, r)).toMatchObject({ code: 'QE_IDENTITY_MISMATCH' });
    expect(evaluateQeIdentity({ ...qeId, tcbLevels: [{ isvSvn: 99, tcbDate: '', status: 'UpToDate', advisoryIds: [] }] }, r)).toEqual({
      status: 'NotSupported',
    });
  });
});

describe('TD 1.5 relaunch rule (TDRelaunchCheck.cpp)', () => {
  const v5 = vector('v5-90c06f000000-gotdxguest.dat');
  const q5 = parseQuote(v5.quote);
  const pck5 = pckInfoFromQuote(q5);
  const info5 = parseTcbInfo(splitSignedJson(v5.collateral!.tcbInfoJson, 'tcbInfo', 'TCB info').body);
  const withSvns = (svn: number[], svn2: number[]) => {
    const body = {
      ...q5.body,
      teeTcbSvn: Uint8Array.from({ length: 16 }, (_, i) => svn[i] ?? 0),
      teeTcbSvn2: Uint8Array.from({ length: 16 }, (_, i) => svn2[i] ?? 0),
    };
    return { ...q5, body };
  };

  it('an OutOfDate TD on an already updated platform is flagged relaunch-advised, status stays OutOfDate', () => {
    const ev = evaluateTcb(info5, pck5, withSvns([4, 1, 2], [6, 1, 3]), { status: 'UpToDate' });
    expect(ev.status).toBe('OutOfDate');
    expect(ev.moduleStatus).toBe('OutOfDate');
    expect(ev.relaunch).toBe('advised');
    expect(ev.qvlStatus).toBe('SGX_QL_QV_RESULT_TD_RELAUNCH_ADVISED');
    // real 2026-02 collateral: the module level carries advisories of its own, reported apart
    expect(ev.advisories).toEqual({
      platform: ['INTEL-SA-01036', 'INTEL-SA-01079', 'INTEL-SA-01099', 'INTEL-SA-01103', 'INTEL-SA-01111'],
      tdxModule: ['INTEL-SA-01036', 'INTEL-SA-01099'],
      qe: [],
    });
  });

  it('no relaunch advice when the platform itself is not updated', () => {
    const ev = evaluateTcb(info5, pck5, withSvns([4, 1, 2], [4, 1, 2]), { status: 'UpToDate' });
    expect(ev.status).toBe('OutOfDate');
    expect(ev.relaunch).toBeUndefined();
    expect(ev.qvlStatus).toBe('SGX_QL_QV_RESULT_OUT_OF_DATE');
  });
});
