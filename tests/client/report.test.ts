/**
 * Verdicts say what they proved: a pass with no MRTD/RTMR pinned proves the platform only, and says
 * so with the command that pins it; reports and the connect refusal page put what the policy
 * expects next to what the evidence shows.
 */
import { describe, expect, it } from 'vitest';
import { renderReport, verdictText, policyCheckJson } from '../../src/client/report.ts';
import { refusalHtml, refusalJson, statusHtml, type ConnectStatus } from '../../src/client/pages.ts';
import { comparePolicy } from '../../src/verify/report.ts';
import type { QuoteSummary, VerificationResult } from '../../src/core/types.ts';
import type { AttestationEvent } from '../../src/client/attestor.ts';

const hex = (b: string, n: number) => b.repeat(n);
const QUOTE = {
  version: 4,
  attestationKeyType: 2,
  teeType: 'TDX',
  qeSvn: 1,
  pceSvn: 1,
  qeVendorId: '00',
  userData: '00',
  bodyType: 2,
  teeTcbSvn: '00',
  mrSeam: hex('5e', 48),
  mrSignerSeam: hex('00', 48),
  seamAttributes: hex('00', 8),
  tdAttributes: hex('00', 8),
  xfam: hex('e7', 8),
  mrTd: hex('a1', 48),
  mrConfigId: hex('00', 48),
  mrOwner: hex('00', 48),
  mrOwnerConfig: hex('00', 48),
  rtmr0: hex('b0', 48),
  rtmr1: hex('b1', 48),
  rtmr2: hex('b2', 48),
  rtmr3: hex('00', 48),
  reportData: hex('00', 64),
  debug: false,
} satisfies QuoteSummary;

const passed = (over: Partial<VerificationResult> = {}): VerificationResult => ({
  ok: true,
  tcbStatus: 'UpToDate',
  advisoryIds: [],
  errors: [],
  quote: QUOTE,
  checks: [{ name: 'quote signature', ok: true, detail: 'ECDSA P-256' }],
  ...over,
});

describe('verdicts', () => {
  it('a pass with nothing pinned says the platform is genuine and no software is pinned, with the pin command', () => {
    const r = passed();
    expect(verdictText(r, comparePolicy({}, r.quote, r.tcbStatus, []))).toBe(
      'PASS: genuine Intel TDX platform (TCB UpToDate), but no software is pinned: any TD on it passes',
    );
    const out = renderReport(r, {
      target: 'https://vm:8443',
      nonceRequested: false,
      nonceVerified: false,
      colour: false,
      pinCommands: ['ratls policy from --url https://vm:8443 --out policy.yaml', 'ratls verify https://vm:8443 --policy policy.yaml'],
    });
    expect(out).toContain(
      'Pin it:         ratls policy from --url https://vm:8443 --out policy.yaml\n                  ratls verify https://vm:8443 --policy policy.yaml\n',
    );
    expect(out).toMatch(/MRTD\s+not pinned\s+a1a1/);
    expect(out).toMatch(/DEBUG\s+not allowed\s+no/);
  });

  it('pinning only MRSEAM/XFAM/attributes is not pinning software', () => {
    const r = passed();
    const cmp = comparePolicy({ mrSeam: [QUOTE.mrSeam], xfam: [QUOTE.xfam] }, r.quote, r.tcbStatus, []);
    expect(cmp).toMatchObject({ pinned: ['MRSEAM', 'XFAM'], softwarePinned: false });
    expect(verdictText(r, cmp)).toMatch(/no software is pinned/);
  });

  it('a pass with MRTD/RTMRs pinned names them; a simulated root is named as such', () => {
    const r = passed({ nonIntelRoot: true });
    const policy = { mrTd: [`0x${QUOTE.mrTd.toUpperCase()}`], rtmr1: [QUOTE.rtmr1] };
    expect(verdictText(r, comparePolicy(policy, r.quote, r.tcbStatus, []))).toBe(
      'PASS: platform verified under a SIMULATED / non-Intel root (TCB UpToDate), and the TD matches the pinned MRTD, RTMR1',
    );
    const out = renderReport(r, { target: 't', nonceRequested: false, nonceVerified: false, colour: false, policy, pinCommands: ['never shown'] });
    expect(out).not.toContain('Pin it');
    expect(out).toMatch(/MRTD\s+matches\s+a1a1/);
    expect(out).toMatch(/RTMR0\s+not pinned\s+b0b0/);
    expect(policyCheckJson(r, policy)).toMatchObject({ softwarePinned: true, pinned: ['MRTD', 'RTMR1'] });
  });

  it('a rejection shows each expected value under the mismatching one', () => {
    const r = passed({ ok: false, errors: [{ code: 'MEASUREMENT_MISMATCH', message: 'MRTD is ...' }] });
    const policy = { mrTd: [hex('ff', 48), hex('ee', 48)], allowedTcbStatuses: ['UpToDate' as const, 'SWHardeningNeeded' as const] };
    const out = renderReport(r, { target: 't', kind: 'quote', nonceRequested: false, nonceVerified: false, colour: false, policy, at: new Date(0) });
    expect(out).toMatch(/^TDX quote verification of t\n {2}Verdict:\s+REJECTED\n/);
    expect(out).toContain(
      `MRTD         MISMATCH    ${QUOTE.mrTd}\n                 expected    ${hex('ff', 48)}\n                 expected    ${hex('ee', 48)}\n`,
    );
    expect(out).toMatch(/TCB status:\s+UpToDate\s+\(policy allows: UpToDate, SWHardeningNeeded\)/);
    expect(out).toContain('Verified at:    1970-01-01T00:00:00.000Z');
    expect(out).not.toContain('Freshness');
  });
});

describe('connect pages: expected next to presented', () => {
  const event = (r: VerificationResult): AttestationEvent => ({ peer: 'vm:8443', result: r, nonceVerified: false, at: new Date(0) });

  it('the refusal page and JSON show what the policy expects and what the server presented', () => {
    const r = passed({ ok: false, quote: { ...QUOTE, debug: true, tdAttributes: '0100000000000000' }, errors: [{ code: 'TD_DEBUG', message: 'debug' }] });
    const policy = { rtmr2: [hex('cc', 48)] };
    const html = refusalHtml('https://vm:8443', event(r), undefined, policy);
    const table = /<table id="ratls-expectations">(.*?)<\/table>/s.exec(html)![1]!;
    expect(table).toContain(`<tr class="bad"><td>DEBUG</td><td class="h">no</td><td class="h">yes</td><td>MISMATCH</td></tr>`);
    expect(table).toContain(`<tr class="bad"><td>RTMR2</td><td class="h">${hex('cc', 48)}</td><td class="h">${QUOTE.rtmr2}</td><td>MISMATCH</td></tr>`);
    expect(table).toContain(`<tr><td>MRTD</td><td class="h"><em>not pinned</em></td><td class="h">${QUOTE.mrTd}</td><td>ok</td></tr>`);
    const json = JSON.parse(refusalJson('https://vm:8443', event(r), undefined, policy)) as { policyCheck: { rows: Array<{ what: string; ok: boolean }> } };
    expect(json.policyCheck.rows.filter((x) => !x.ok).map((x) => x.what)).toEqual(['DEBUG', 'RTMR2']);
  });

  it('the status page says when no software is pinned', () => {
    const s: ConnectStatus = {
      upstream: 'https://vm:8443',
      state: 'verified',
      lastVerified: event(passed()),
      lastFailure: null,
      verifications: 1,
      refusals: 0,
      certificateChanges: 0,
      lastCertificateChangeAt: null,
      policy: {},
    };
    const html = statusHtml(s);
    expect(html).toContain('but no software is pinned: any TD on it passes');
    expect(html).toContain('id="ratls-unpinned"');
  });
});
