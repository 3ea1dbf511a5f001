/**
 * Every known difference from Intel's QVL, one table per rule (docs/verifier.md "Differences from
 * Intel's QVL"): where we now follow Intel (advisories per level, the TD relaunch results, PCK chains
 * in any order, the pre-production root named) and where we stay stricter on purpose (exact signed
 * JSON bytes, issueDate, expiry, bytes inside the signature data). The RA-TLS certificate rules
 * (broken staples, CA-issued leaves) are in tests/ratls/staple-and-issuer.test.ts.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { verifyQuote } from '../../src/verify/dcap.ts';
import { parseQuote } from '../../src/quote/parse.ts';
import { encodeQuote } from '../../src/quote/encode.ts';
import { pckInfoFromQuote } from '../../src/verify/pck.ts';
import { parseCertificate, pemToDers, rootToDer } from '../../src/verify/x509.ts';
import { INTEL_SGX_PREPRODUCTION_ROOT_KEY_HEX, INTEL_SGX_ROOT_CA_PEM } from '../../src/verify/roots.ts';
import { fromHex, toArrayBuffer, toBase64, toHex } from '../../src/core/bytes.ts';
import type { ErrorCode } from '../../src/core/errors.ts';
import type { AppraisalPolicy, Collateral, QvlStatus, TcbStatus, VerificationResult } from '../../src/core/types.ts';
import {
  initSimulatedWorld,
  loadSimulatedProvider,
  loadWorld,
  simulatedCollateral,
  type LoadedWorld,
  type SimulatedProvider,
} from '../../src/tee/simulated/index.ts';
import { issueCrl } from '../../src/tee/simulated/pki.ts';
import { writeCollateralDir } from '../../src/collateral/file.ts';
import { editedCollateral, simulatedV5Quote, type Json } from '../helpers/simulated-tcb.ts';
import { quoteParts } from '../helpers/quote.ts';
import { runCli } from '../helpers/cli.ts';
import { manifest, toVector, vector, V4_OK } from './helpers.ts';

const codes = (r: VerificationResult): ErrorCode[] => r.errors.map((e) => e.code);
const toPem = (der: Uint8Array) => `-----BEGIN CERTIFICATE-----\n${toBase64(der).replace(/.{64}/g, '$&\n')}\n-----END CERTIFICATE-----\n`;

// ---- the simulated world: Intel-format collateral we can sign in any variant -----------------------

let dir: string;
let world: LoadedWorld;
let provider: SimulatedProvider;
let rootPem: string;
const now = new Date();

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'ratls-qvl-diff-'));
  rootPem = (await initSimulatedWorld(join(dir, 'w'), { now })).rootPem;
  world = await loadWorld(join(dir, 'w'));
  provider = await loadSimulatedProvider(join(dir, 'w'));
}, 60_000);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const verifySim = (quote: Uint8Array, collateral: Collateral, policy?: AppraisalPolicy) =>
  verifyQuote(quote, { collateral, now, trustedRoots: [rootPem], ...(policy ? { policy } : {}) });

/** The world's TDX_01 module identity inside a TCB info body. */
const module01 = (b: Json): Json => b.tdxModuleIdentities.find((m: Json) => m.id === 'TDX_01');

// ---- 1. advisory IDs per matched level ---------------------------------------------------------------

describe('1. advisories: the platform level (what Intel reports), the TDX module and the QE levels apart', () => {
  it('every manifest quote: each list equals the manifest component it names', async () => {
    let n = 0;
    for (const m of manifest.quotes) {
      const comp = (m.expected as { components?: Record<string, { advisory_ids?: string[] } | null> } | undefined)?.components;
      if (!comp || !m.collateral) continue;
      const v = toVector(m);
      const r = await verifyQuote(v.quote, {
        collateral: v.collateral!,
        now: v.now,
        policy: { allowedTcbStatuses: ['UpToDate', 'OutOfDate'], allowDebug: true },
      });
      expect(r.advisoryIds, m.id).toEqual(comp.platform_tcb_level?.advisory_ids ?? []);
      expect(r.tdxModuleAdvisoryIds, m.id).toEqual(comp.tdx_module?.advisory_ids ?? []);
      expect(r.qeAdvisoryIds, m.id).toEqual(comp.qe_identity?.advisory_ids ?? []);
      // and the manifest's own total stays true
      expect(r.advisoryIds, m.id).toEqual(m.expected?.advisory_ids ?? []);
      n++;
    }
    expect(n).toBeGreaterThanOrEqual(5);
  });

  interface AdvisoryCase {
    name: string;
    moduleAdvisories: string[];
    qeAdvisories: string[];
    allowed: string[] | undefined;
    want: { advisoryIds: string[]; tdxModuleAdvisoryIds: string[]; qeAdvisoryIds: string[]; errors: ErrorCode[] };
  }
  const MOD = 'SIMULATED-SA-MODULE';
  const QE = 'SIMULATED-SA-QE';
  const cases: AdvisoryCase[] = [
    {
      name: 'module and QE advisories are reported apart, not in advisoryIds',
      moduleAdvisories: [MOD],
      qeAdvisories: [QE],
      allowed: undefined,
      want: { advisoryIds: [], tdxModuleAdvisoryIds: [MOD], qeAdvisoryIds: [QE], errors: [] },
    },
    {
      name: 'the default policy still checks them: an allow-list without them rejects',
      moduleAdvisories: [MOD],
      qeAdvisories: [QE],
      allowed: [],
      want: { advisoryIds: [], tdxModuleAdvisoryIds: [MOD], qeAdvisoryIds: [QE], errors: ['ADVISORY_NOT_ALLOWED'] },
    },
    {
      name: 'an allow-list naming only the module advisory still rejects the QE one',
      moduleAdvisories: [MOD],
      qeAdvisories: [QE],
      allowed: [MOD],
      want: { advisoryIds: [], tdxModuleAdvisoryIds: [MOD], qeAdvisoryIds: [QE], errors: ['ADVISORY_NOT_ALLOWED'] },
    },
    {
      name: 'an allow-list naming both accepts',
      moduleAdvisories: [MOD],
      qeAdvisories: [QE],
      allowed: [MOD, QE],
      want: { advisoryIds: [], tdxModuleAdvisoryIds: [MOD], qeAdvisoryIds: [QE], errors: [] },
    },
    {
      name: 'no advisories anywhere: three empty lists',
      moduleAdvisories: [],
      qeAdvisories: [],
      allowed: [],
      want: { advisoryIds: [], tdxModuleAdvisoryIds: [], qeAdvisoryIds: [], errors: [] },
    },
  ];
  for (const c of cases) {
    it(c.name, async () => {
      // The quote's module SVN (5) lands on an OutOfDate module level carrying `moduleAdvisories`.
      const collateral = await editedCollateral(world, now, {
        tcbInfo: (b) => {
          module01(b).tcbLevels = [
            { tcb: { isvsvn: 6 }, tcbDate: '2024-03-13T00:00:00Z', tcbStatus: 'UpToDate' },
            { tcb: { isvsvn: 5 }, tcbDate: '2023-08-09T00:00:00Z', tcbStatus: 'OutOfDate', advisoryIDs: c.moduleAdvisories },
          ];
        },
        qeIdentity: (b) => {
          b.tcbLevels[0].advisoryIDs = c.qeAdvisories;
        },
      });
      const quote = await provider.getQuote(new Uint8Array(64));
      const r = await verifySim(quote, collateral, { allowedTcbStatuses: ['OutOfDate'], ...(c.allowed ? { allowedAdvisoryIds: c.allowed } : {}) });
      expect(r.tcbStatus).toBe('OutOfDate');
      expect({ advisoryIds: r.advisoryIds, tdxModuleAdvisoryIds: r.tdxModuleAdvisoryIds, qeAdvisoryIds: r.qeAdvisoryIds, errors: codes(r) }).toEqual(c.want);
      const tcbCheck = r.checks.find((x) => x.name === 'TCB level')!;
      if (c.moduleAdvisories.length) expect(tcbCheck.detail).toContain(`module advisories ${MOD}`);
    });
  }
});

// ---- 2. Intel's full result: the TD relaunch statuses ------------------------------------------------

describe("2. qvlStatus: Intel's sgx_ql_qv_result_t for every result, the TD relaunch ones included", () => {
  interface RelaunchCase {
    name: string;
    teeTcbSvn: string;
    teeTcbSvn2: string;
    tcbInfo?: (b: Json) => void;
    qeIdentity?: (b: Json) => void;
    tcbStatus: TcbStatus;
    qvlStatus: QvlStatus;
  }
  // The world's platform level: TDX components 05 00 02 (bytes 0-1 graded by TDX_01, whose levels are
  // SVN 5 UpToDate and SVN 3 OutOfDate). TEE_TCB_SVN 03 01 02 is a TD launched on module SVN 3.
  const LAUNCHED_OLD = '03010200000000000000000000000000';
  const CURRENT = '05010200000000000000000000000000';
  const cases: RelaunchCase[] = [
    { name: 'up to date: OK', teeTcbSvn: CURRENT, teeTcbSvn2: CURRENT, tcbStatus: 'UpToDate', qvlStatus: 'SGX_QL_QV_RESULT_OK' },
    {
      name: 'TD launched on an old module, platform since updated: TD_RELAUNCH_ADVISED (tcbStatus stays OutOfDate)',
      teeTcbSvn: LAUNCHED_OLD,
      teeTcbSvn2: CURRENT,
      tcbStatus: 'OutOfDate',
      qvlStatus: 'SGX_QL_QV_RESULT_TD_RELAUNCH_ADVISED',
    },
    {
      name: 'TEE_TCB_SVN_2 with module version 0 compared with the latest level directly',
      teeTcbSvn: LAUNCHED_OLD,
      teeTcbSvn2: '05000200000000000000000000000000',
      tcbStatus: 'OutOfDate',
      qvlStatus: 'SGX_QL_QV_RESULT_TD_RELAUNCH_ADVISED',
    },
    {
      name: 'the SGX-only level needs configuration: TD_RELAUNCH_ADVISED_CONFIG_NEEDED while tcbStatus is plain OutOfDate',
      teeTcbSvn: LAUNCHED_OLD,
      teeTcbSvn2: '05010300000000000000000000000000',
      // A newer level (late microcode 3) with the same SGX TCB matches the PCK certificate first
      // (the SGX-only level) but not the TD's microcode 2, which the UpToDate level grades.
      tcbInfo: (b) => {
        const newer = structuredClone(b.tcbLevels[0]);
        newer.tcb.tdxtcbcomponents[2].svn = 3;
        newer.tcbStatus = 'ConfigurationNeeded';
        newer.advisoryIDs = ['SIMULATED-SA-CONFIG'];
        b.tcbLevels.unshift(newer);
      },
      tcbStatus: 'OutOfDate',
      qvlStatus: 'SGX_QL_QV_RESULT_TD_RELAUNCH_ADVISED_CONFIG_NEEDED',
    },
    {
      name: 'configuration needed on the TD level itself: OutOfDateConfigurationNeeded, TD_RELAUNCH_ADVISED_CONFIG_NEEDED',
      teeTcbSvn: LAUNCHED_OLD,
      teeTcbSvn2: CURRENT,
      tcbInfo: (b) => {
        b.tcbLevels[0].tcbStatus = 'ConfigurationNeeded';
        b.tcbLevels[0].advisoryIDs = ['SIMULATED-SA-CONFIG'];
      },
      tcbStatus: 'OutOfDateConfigurationNeeded',
      qvlStatus: 'SGX_QL_QV_RESULT_TD_RELAUNCH_ADVISED_CONFIG_NEEDED',
    },
    {
      name: 'TEE_TCB_SVN_2 not current either: no relaunch advice, OUT_OF_DATE',
      teeTcbSvn: LAUNCHED_OLD,
      teeTcbSvn2: LAUNCHED_OLD,
      tcbStatus: 'OutOfDate',
      qvlStatus: 'SGX_QL_QV_RESULT_OUT_OF_DATE',
    },
    {
      name: 'QE out of date: relaunching would not help, OUT_OF_DATE',
      teeTcbSvn: LAUNCHED_OLD,
      teeTcbSvn2: CURRENT,
      qeIdentity: (b) => {
        b.tcbLevels = [
          { tcb: { isvsvn: 9 }, tcbDate: '2024-03-13T00:00:00Z', tcbStatus: 'UpToDate' },
          { tcb: { isvsvn: 1 }, tcbDate: '2023-08-09T00:00:00Z', tcbStatus: 'OutOfDate' },
        ];
      },
      tcbStatus: 'OutOfDate',
      qvlStatus: 'SGX_QL_QV_RESULT_OUT_OF_DATE',
    },
    {
      name: 'revoked module level: REVOKED',
      teeTcbSvn: LAUNCHED_OLD,
      teeTcbSvn2: CURRENT,
      tcbInfo: (b) => {
        module01(b).tcbLevels[1].tcbStatus = 'Revoked';
      },
      tcbStatus: 'Revoked',
      qvlStatus: 'SGX_QL_QV_RESULT_REVOKED',
    },
    {
      name: 'SWHardeningNeeded: SW_HARDENING_NEEDED',
      teeTcbSvn: CURRENT,
      teeTcbSvn2: CURRENT,
      tcbInfo: (b) => void (b.tcbLevels[0].tcbStatus = 'SWHardeningNeeded'),
      tcbStatus: 'SWHardeningNeeded',
      qvlStatus: 'SGX_QL_QV_RESULT_SW_HARDENING_NEEDED',
    },
    {
      name: 'ConfigurationAndSWHardeningNeeded: CONFIG_AND_SW_HARDENING_NEEDED',
      teeTcbSvn: CURRENT,
      teeTcbSvn2: CURRENT,
      tcbInfo: (b) => void (b.tcbLevels[0].tcbStatus = 'ConfigurationAndSWHardeningNeeded'),
      tcbStatus: 'ConfigurationAndSWHardeningNeeded',
      qvlStatus: 'SGX_QL_QV_RESULT_CONFIG_AND_SW_HARDENING_NEEDED',
    },
    {
      name: 'ConfigurationNeeded: CONFIG_NEEDED',
      teeTcbSvn: CURRENT,
      teeTcbSvn2: CURRENT,
      tcbInfo: (b) => void (b.tcbLevels[0].tcbStatus = 'ConfigurationNeeded'),
      tcbStatus: 'ConfigurationNeeded',
      qvlStatus: 'SGX_QL_QV_RESULT_CONFIG_NEEDED',
    },
  ];
  for (const c of cases) {
    it(c.name, async () => {
      const collateral = await editedCollateral(world, now, {
        ...(c.tcbInfo ? { tcbInfo: c.tcbInfo } : {}),
        ...(c.qeIdentity ? { qeIdentity: c.qeIdentity } : {}),
      });
      const quote = await simulatedV5Quote(world, provider, c.teeTcbSvn, c.teeTcbSvn2);
      expect(parseQuote(quote).bodyType).toBe(3);
      const r = await verifySim(quote, collateral, { allowedTcbStatuses: [c.tcbStatus] });
      expect({ tcbStatus: r.tcbStatus, qvlStatus: r.qvlStatus }).toEqual({ tcbStatus: c.tcbStatus, qvlStatus: c.qvlStatus });
      // Revoked is terminal whatever the policy; everything else is allowed here and verifies.
      expect(codes(r)).toEqual(c.tcbStatus === 'Revoked' ? ['TCB_STATUS_NOT_ALLOWED'] : []);
      if (c.qvlStatus.includes('RELAUNCH')) expect(r.checks.find((x) => x.name === 'TCB level')?.detail).toMatch(/TD relaunch advised/);
    });
  }

  it('no status, no Intel result: qvlStatus is null with tcbStatus', async () => {
    const collateral = await editedCollateral(world, now, {
      tcbInfo: (b) => (module01(b).tcbLevels = [{ tcb: { isvsvn: 9 }, tcbDate: '2024-03-13T00:00:00Z', tcbStatus: 'UpToDate' }]),
    });
    const r = await verifySim(await simulatedV5Quote(world, provider, CURRENT, CURRENT), collateral);
    expect(codes(r)).toEqual(['TCB_NOT_SUPPORTED']);
    expect({ tcbStatus: r.tcbStatus, qvlStatus: r.qvlStatus }).toEqual({ tcbStatus: null, qvlStatus: null });
  });

  it('a revoked PCK certificate is SGX_QL_QV_RESULT_REVOKED, as Intel maps STATUS_PCK_REVOKED', async () => {
    const quote = await provider.getQuote(new Uint8Array(64));
    const pckCrl = await issueCrl({
      issuer: world.pckCa,
      key: world.pckCaKey.privateKey,
      thisUpdate: new Date(now.getTime() - 3600_000),
      nextUpdate: new Date(now.getTime() + 86_400_000),
      revokedSerials: [toHex(pckInfoFromQuote(parseQuote(quote)).leaf.serial)],
    });
    const r = await verifySim(quote, { ...(await simulatedCollateral(world, now)), pckCrl });
    expect(codes(r)).toEqual(['PCK_REVOKED', 'TCB_STATUS_NOT_ALLOWED']);
    expect({ tcbStatus: r.tcbStatus, qvlStatus: r.qvlStatus }).toEqual({ tcbStatus: 'Revoked', qvlStatus: 'SGX_QL_QV_RESULT_REVOKED' });
  });

  it('the CLI --json contract carries qvlStatus and the advisory lists (ratls quote verify)', async () => {
    const collateral = await editedCollateral(world, now, { tcbInfo: cases[3]!.tcbInfo! });
    const cdir = join(dir, 'relaunch-collateral');
    await writeCollateralDir(cdir, collateral);
    const qfile = join(dir, 'relaunch.dat');
    writeFileSync(qfile, await simulatedV5Quote(world, provider, LAUNCHED_OLD, '05010300000000000000000000000000'));
    const rfile = join(dir, 'root.pem');
    writeFileSync(rfile, rootPem);
    const args = ['quote', 'verify', '--quote', qfile, '--collateral', cdir, '--root', rfile, '--at', now.toISOString()];
    const json = await runCli(...args, '--json', '--allow-status', 'OutOfDate');
    expect(json.code).toBe(0);
    const out = JSON.parse(json.out) as Record<string, unknown>;
    expect(out).toMatchObject({
      ok: true,
      tcbStatus: 'OutOfDate',
      qvlStatus: 'SGX_QL_QV_RESULT_TD_RELAUNCH_ADVISED_CONFIG_NEEDED',
      advisoryIds: [],
      tdxModuleAdvisoryIds: [],
      qeAdvisoryIds: [],
    });
    const text = await runCli(...args, '--allow-status', 'OutOfDate');
    expect(text.out).toMatch(/TCB status: +OutOfDate \(Intel QVL result SGX_QL_QV_RESULT_TD_RELAUNCH_ADVISED_CONFIG_NEEDED\)/);
  }, 60_000);
});

// ---- 5. the PCK chain in any order ----------------------------------------------------------------

describe("5. the quote's PCK chain is built from its certificates in any order, one path only", () => {
  const v = vector(V4_OK);
  const q = parseQuote(v.quote);
  const [leaf, ca, root] = q.certification.pckChainPem.map((p) => pemToDers(p)[0]!) as [Uint8Array, Uint8Array, Uint8Array];
  const withChain = (ders: Uint8Array[]) => encodeQuote({ ...quoteParts(q), pckChainPem: ders.map(toPem).join('') });
  const run = (quote: Uint8Array) => verifyQuote(quote, { collateral: v.collateral!, now: v.now });
  const permutations = <T>(xs: T[]): T[][] =>
    xs.length <= 1 ? [xs] : xs.flatMap((x, i) => permutations([...xs.slice(0, i), ...xs.slice(i + 1)]).map((p) => [x, ...p]));

  it('the certification data is signed by nothing: the quote signature covers header and body, the QE report only itself', () => {
    // What makes reordering harmless: the PCK chain lies outside every signed byte range.
    const rebuilt = parseQuote(withChain([root, ca, leaf]));
    expect(rebuilt.signedBytes).toEqual(q.signedBytes);
    expect(rebuilt.certification.qeReport.raw).toEqual(q.certification.qeReport.raw);
    expect(rebuilt.certification.certData).not.toEqual(q.certification.certData);
  });

  const accepted: Array<[string, Uint8Array[]]> = [
    ...permutations([leaf, ca, root]).map((p): [string, Uint8Array[]] => [
      `order ${p.map((d) => (d === leaf ? 'leaf' : d === ca ? 'CA' : 'root')).join(', ')}`,
      p,
    ]),
    ['root left out: leaf, CA', [leaf, ca]],
    ['root left out: CA, leaf', [ca, leaf]],
    ['byte-identical copies count once (Intel accepts them)', [ca, leaf, root, leaf, ca]],
  ];
  for (const [name, ders] of accepted) {
    it(`accepted: ${name}`, async () => {
      const quote = withChain(ders);
      const r = await run(quote);
      expect(r.errors).toEqual([]);
      expect(r.ok).toBe(true);
      expect(r.checks.find((c) => c.name === 'PCK chain signatures')?.detail).toMatch(
        /^Intel SGX PCK Certificate <- Intel SGX PCK Platform CA <- Intel SGX Root CA$/,
      );
      expect(pckInfoFromQuote(parseQuote(quote)).fmspc).toBe(v.m.pck.fmspc);
    });
  }

  // A certificate that differs from the CA only in its signature: same name, other bytes.
  const caTwin = ca.slice();
  caTwin[caTwin.length - 3] = caTwin[caTwin.length - 3]! ^ 0x01;
  const tcbSigner = pemToDers(v.collateral!.tcbInfoIssuerChain)[0]!;
  const rejected: Array<[string, Uint8Array[], ErrorCode, RegExp]> = [
    ['an extra certificate off the path (the TCB signing certificate)', [leaf, ca, root, tcbSigner], 'PCK_CHAIN_MALFORMED', /issue none of the others/],
    [
      'two different certificates with the CA name',
      [leaf, ca, caTwin, root],
      'PCK_CHAIN_MALFORMED',
      /2 different certificates named "Intel SGX PCK Platform CA"/,
    ],
    ['the leaf alone', [leaf], 'PCK_CHAIN_UNTRUSTED', /ends at "Intel SGX PCK Certificate", which is not a trusted root/],
    ['no leaf: CA and root', [ca, root], 'PCK_CHAIN_MALFORMED', /has 2 certificates including the root/],
    ['more copies than any chain needs (9)', [leaf, ca, root, leaf, ca, root, leaf, ca, root], 'PCK_CHAIN_MALFORMED', /holds 9 certificates/],
  ];
  for (const [name, ders, code, message] of rejected) {
    it(`refused: ${name}`, async () => {
      const r = await run(withChain(ders));
      expect(r.ok).toBe(false);
      expect(r.errors[0]?.code).toBe(code);
      expect(r.errors[0]?.message).toMatch(message);
    });
  }

  it('collateral issuer chains may come in any order too (root first)', async () => {
    const [signer, croot] = pemToDers(v.collateral!.tcbInfoIssuerChain) as [Uint8Array, Uint8Array];
    const r = await verifyQuote(v.quote, { collateral: { ...v.collateral!, tcbInfoIssuerChain: toPem(croot) + toPem(signer) }, now: v.now });
    expect(r.errors).toEqual([]);
  });
});

// ---- 6. Intel's pre-production (SBX) root --------------------------------------------------------

describe("6. Intel's pre-production (SBX) root is named when refused", () => {
  const v = vector(V4_OK);
  const q = parseQuote(v.quote);
  const prodDer = rootToDer(INTEL_SGX_ROOT_CA_PEM);
  // The production root's certificate with the pre-production key in place of its own: the subject
  // name both roots share and the pre-production key, which is what recognises it (its
  // self-signature no longer verifies, which the chain structure check never reaches).
  const sbxShaped = (() => {
    const prodKey = parseCertificate(prodDer).publicKey;
    const at = Buffer.from(prodDer).indexOf(Buffer.from(prodKey));
    const der = prodDer.slice();
    der.set(fromHex(INTEL_SGX_PREPRODUCTION_ROOT_KEY_HEX)!, at);
    return der;
  })();
  const [leaf, ca] = q.certification.pckChainPem.map((p) => pemToDers(p)[0]!) as [Uint8Array, Uint8Array];

  it('the pinned key is a P-256 point (WebCrypto imports it)', async () => {
    await expect(
      crypto.subtle.importKey('raw', toArrayBuffer(fromHex(INTEL_SGX_PREPRODUCTION_ROOT_KEY_HEX)!), { name: 'ECDSA', namedCurve: 'P-256' }, true, ['verify']),
    ).resolves.toBeDefined();
    const c = parseCertificate(sbxShaped);
    expect(c.subjectCn).toBe('Intel SGX Root CA');
  });

  const cases: Array<[string, () => Promise<VerificationResult>, ErrorCode, RegExp]> = [
    [
      'a quote whose PCK chain ends at it',
      () => verifyQuote(encodeQuote({ ...quoteParts(q), pckChainPem: [leaf, ca, sbxShaped].map(toPem).join('') }), { collateral: v.collateral!, now: v.now }),
      'PCK_CHAIN_UNTRUSTED',
      /PCK certificate chain ends at Intel's pre-production \(SBX\) root CA/,
    ],
    [
      'collateral whose TCB info issuer chain ends at it',
      () =>
        verifyQuote(v.quote, {
          collateral: { ...v.collateral!, tcbInfoIssuerChain: toPem(pemToDers(v.collateral!.tcbInfoIssuerChain)[0]!) + toPem(sbxShaped) },
          now: v.now,
        }),
      'COLLATERAL_CHAIN_UNTRUSTED',
      /TCB info issuer chain ends at Intel's pre-production \(SBX\) root CA/,
    ],
    [
      'both roots in one chain: two certificates named "Intel SGX Root CA"',
      () =>
        verifyQuote(encodeQuote({ ...quoteParts(q), pckChainPem: [leaf, ca, prodDer, sbxShaped].map(toPem).join('') }), {
          collateral: v.collateral!,
          now: v.now,
        }),
      'PCK_CHAIN_MALFORMED',
      /2 different certificates named "Intel SGX Root CA" \(one of them Intel's pre-production root\)/,
    ],
  ];
  for (const [name, run, code, message] of cases) {
    it(name, async () => {
      const r = await run();
      expect(r.ok).toBe(false);
      expect(codes(r)).toEqual([code]);
      expect(r.errors[0]!.message).toMatch(message);
    });
  }

  it('any other untrusted root keeps the generic message', async () => {
    const r = await verifyQuote(v.quote, { collateral: v.collateral!, now: v.now, trustedRoots: [rootPem] });
    expect(codes(r)).toEqual(['PCK_CHAIN_UNTRUSTED']);
    expect(r.errors[0]!.message).toMatch(/ends at "Intel SGX Root CA", which is not a trusted root/);
    expect(r.errors[0]!.message).not.toMatch(/pre-production/);
  });
});

// ---- 7. kept stricter than Intel on purpose ------------------------------------------------------

describe('7. kept stricter than Intel on purpose (docs/verifier.md gives each reason)', () => {
  const v = vector(V4_OK);
  const c = v.collateral!;
  const tcb = JSON.parse(c.tcbInfoJson) as { tcbInfo: { issueDate: string; nextUpdate: string } };
  const second = 1000;
  const cases: Array<[string, () => Promise<VerificationResult>, ErrorCode, TcbStatus | null]> = [
    [
      'signed JSON re-serialised (pretty-printed): Intel re-serialises and accepts, we verify the exact served bytes',
      () => verifyQuote(v.quote, { collateral: { ...c, tcbInfoJson: JSON.stringify(JSON.parse(c.tcbInfoJson), null, 2) }, now: v.now }),
      'COLLATERAL_SIGNATURE_INVALID',
      null,
    ],
    [
      'verification time before the TCB info issueDate: Intel does not look at issueDate',
      () => verifyQuote(v.quote, { collateral: c, now: new Date(Date.parse(tcb.tcbInfo.issueDate) - second) }),
      'COLLATERAL_NOT_YET_VALID',
      'UpToDate',
    ],
    [
      'expired TCB info: Intel returns its result with an expiration flag, we fail (and still report the status)',
      () => verifyQuote(v.quote, { collateral: c, now: new Date(Date.parse(tcb.tcbInfo.nextUpdate) + second) }),
      'COLLATERAL_EXPIRED',
      'UpToDate',
    ],
    [
      'bytes inside the declared signature data after the certification data: Intel ignores them, we refuse',
      async () => {
        const q = encodeQuote(quoteParts(parseQuote(v.quote)));
        const longer = new Uint8Array(q.length + 1);
        longer.set(q);
        const dv = new DataView(longer.buffer);
        dv.setUint32(632, dv.getUint32(632, true) + 1, true);
        return verifyQuote(longer, { collateral: c, now: v.now });
      },
      'QUOTE_MALFORMED',
      null,
    ],
  ];
  for (const [name, run, code, status] of cases) {
    it(name, async () => {
      const r = await run();
      expect(r.ok).toBe(false);
      expect(codes(r)).toContain(code);
      expect(r.tcbStatus).toBe(status);
      if (status) expect(r.qvlStatus).toBe('SGX_QL_QV_RESULT_OK');
    });
  }
});
