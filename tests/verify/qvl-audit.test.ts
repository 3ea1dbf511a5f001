/**
 * Regression tests from the audit against Intel's QVL (intel/SGX-TDX-DCAP-QuoteVerificationLibrary,
 * Src/AttestationLibrary + Src/AttestationParsers). Each case is a rule where the verifier used to
 * accept (or read differently) what Intel's QVL refuses; see docs/verifier.md "Audit against Intel's QVL".
 */
import { describe, expect, it } from 'vitest';
import { parseQuote } from '../../src/quote/parse.ts';
import { parseQeIdentity } from '../../src/verify/qe-identity.ts';
import { splitSignedJson } from '../../src/verify/signed-json.ts';
import { parseTcbInfo } from '../../src/verify/tcb-info.ts';
import { DerReader, TAG, derRoot, parseTime } from '../../src/verify/der.ts';
import { RatlsError, type ErrorCode } from '../../src/core/errors.ts';
import { parsePckExtensions, pckInfoFromQuote } from '../../src/verify/pck.ts';
import { OID, crlHasRequiredExtensions, parseCrl } from '../../src/verify/x509.ts';
import { evaluateQeIdentity, evaluateTcb, type QeEvaluation } from '../../src/verify/tcb.ts';
import { vector } from './helpers.ts';

const v = vector('v4-b0c06f000000-dcapqvl.dat');
const quote = parseQuote(v.quote);
const pck = pckInfoFromQuote(quote);
const rawInfo = splitSignedJson(v.collateral!.tcbInfoJson, 'tcbInfo', 'TCB info').body;
const rawQe = splitSignedJson(v.collateral!.qeIdentityJson, 'enclaveIdentity', 'QE identity').body;
const qeOk = evaluateQeIdentity(parseQeIdentity(rawQe), quote.certification.qeReport) as QeEvaluation;

type Json = Record<string, any>;

function mutated<T>(raw: Json, parse: (b: Json) => T, mutate: (b: Json) => void): T {
  const b = structuredClone(raw);
  mutate(b);
  return parse(b);
}

function codeOf(fn: () => unknown): ErrorCode | 'no error' | 'untyped' {
  try {
    fn();
    return 'no error';
  } catch (err) {
    return err instanceof RatlsError ? err.code : 'untyped';
  }
}

const tcbInfo = (m: (b: Json) => void) => () => mutated(rawInfo, parseTcbInfo, m);
const qeIdentity = (m: (b: Json) => void) => () => mutated(rawQe, parseQeIdentity, m);

describe('TCB info structure as Intel parses it (TcbInfo.cpp)', () => {
  it('tcbType must be present and 0', () => {
    expect(codeOf(tcbInfo((b) => delete b.tcbType))).toBe('COLLATERAL_MALFORMED');
    expect(codeOf(tcbInfo((b) => (b.tcbType = 1)))).toBe('COLLATERAL_MALFORMED');
    expect(codeOf(tcbInfo((b) => (b.tcbType = '0')))).toBe('COLLATERAL_MALFORMED');
    expect(codeOf(tcbInfo(() => {}))).toBe('no error');
  });

  it('a TDX TCB info without tdxModule is refused', () => {
    expect(codeOf(tcbInfo((b) => delete b.tdxModule))).toBe('COLLATERAL_MALFORMED');
  });

  it('empty tcbLevels, empty tdxModuleIdentities and a module identity without levels are refused', () => {
    expect(codeOf(tcbInfo((b) => (b.tcbLevels = [])))).toBe('COLLATERAL_MALFORMED');
    expect(codeOf(tcbInfo((b) => (b.tdxModuleIdentities = [])))).toBe('COLLATERAL_MALFORMED');
    expect(codeOf(tcbInfo((b) => (b.tdxModuleIdentities[0].tcbLevels = [])))).toBe('COLLATERAL_MALFORMED');
  });

  it('the same TCB level twice is refused (Intel: "Detected duplicated TCB levels")', () => {
    // Same SVNs with a different status: which one wins would depend on order.
    expect(codeOf(tcbInfo((b) => b.tcbLevels.push({ ...structuredClone(b.tcbLevels[0]), tcbStatus: 'Revoked' })))).toBe('COLLATERAL_MALFORMED');
  });

  it('two module levels with one ISVSVN are refused', () => {
    expect(
      codeOf(tcbInfo((b) => b.tdxModuleIdentities[0].tcbLevels.push({ ...structuredClone(b.tdxModuleIdentities[0].tcbLevels[0]), tcbStatus: 'Revoked' }))),
    ).toBe('COLLATERAL_MALFORMED');
  });

  it('dates must be YYYY-MM-DDTHH:MM:SSZ naming a real time', () => {
    for (const bad of [
      '2025-06-19',
      '2025-06-19T10:32:27+00:00',
      '2025-06-19T10:32:27.000Z',
      '2025-02-30T00:00:00Z',
      '2025-13-01T00:00:00Z',
      'June 19, 2025',
      1750329147,
    ]) {
      expect(codeOf(tcbInfo((b) => (b.issueDate = bad))), String(bad)).toBe('COLLATERAL_MALFORMED');
      expect(codeOf(tcbInfo((b) => (b.tcbLevels[0].tcbDate = bad))), String(bad)).toBe('COLLATERAL_MALFORMED');
    }
  });
});

describe('TDX module TCB status (TdxModuleCheck.cpp)', () => {
  it('a matched module level with a status Intel does not define for modules is an error, not a pass', () => {
    const info = mutated(rawInfo, parseTcbInfo, (b) => {
      const id = b.tdxModuleIdentities.find((m: Json) => m.id === 'TDX_01');
      id.tcbLevels = [{ tcb: { isvsvn: 0 }, tcbDate: '2024-01-01T00:00:00Z', tcbStatus: 'ConfigurationNeeded' }];
    });
    const ev = evaluateTcb(info, pck, quote, qeOk);
    expect(ev.status).toBeNull();
    expect(ev.error?.code).toBe('COLLATERAL_MALFORMED');
  });
});

describe('QE identity as Intel reads it (EnclaveIdentityV2.cpp, EnclaveReportVerifier.cpp)', () => {
  it('levels are walked in the served order: the first level with isvsvn <= the QE ISVSVN decides', () => {
    // Intel keeps the QE levels as a vector and takes the first match; it never sorts them.
    const qe = mutated(rawQe, parseQeIdentity, (b) => {
      b.tcbLevels = [
        { tcb: { isvsvn: 2 }, tcbDate: '2020-01-01T00:00:00Z', tcbStatus: 'OutOfDate' },
        { tcb: { isvsvn: 4 }, tcbDate: '2024-01-01T00:00:00Z', tcbStatus: 'UpToDate' },
      ];
    });
    const ev = evaluateQeIdentity(qe, quote.certification.qeReport);
    expect(ev).toMatchObject({ status: 'OutOfDate' });
  });

  it("QE level statuses outside Intel's set (e.g. SWHardeningNeeded) are refused", () => {
    expect(codeOf(qeIdentity((b) => (b.tcbLevels[0].tcbStatus = 'SWHardeningNeeded')))).toBe('COLLATERAL_MALFORMED');
    expect(codeOf(qeIdentity((b) => (b.tcbLevels = [])))).toBe('COLLATERAL_MALFORMED');
  });
});

describe('TD 1.5 relaunch rule names an unknown module (TDRelaunchCheck.cpp)', () => {
  const v5 = vector('v5-90c06f000000-gotdxguest.dat');
  const q5 = parseQuote(v5.quote);
  const pck5 = pckInfoFromQuote(q5);
  const info5 = parseTcbInfo(splitSignedJson(v5.collateral!.tcbInfoJson, 'tcbInfo', 'TCB info').body);
  const withSvns = (svn: number[], svn2: number[]) => ({
    ...q5,
    body: {
      ...q5.body,
      teeTcbSvn: Uint8Array.from({ length: 16 }, (_, i) => svn[i] ?? 0),
      teeTcbSvn2: Uint8Array.from({ length: 16 }, (_, i) => svn2[i] ?? 0),
    },
  });

  it('TEE_TCB_SVN_2 with a module version that has no identity: TDX_MODULE_MISMATCH, as Intel fails', () => {
    const ev = evaluateTcb(info5, pck5, withSvns([4, 1, 2], [6, 0x7f, 3]), { status: 'UpToDate' });
    expect(ev.status).toBeNull();
    expect(ev.error?.code).toBe('TDX_MODULE_MISMATCH');
  });
});

describe('signed JSON documents are read as Intel reads them', () => {
  const text = v.collateral!.tcbInfoJson;

  it('a member name repeated inside the signed object is refused (JSON.parse keeps the last, rapidjson the first)', () => {
    const dup = text.replace('"tcbInfo":{', '"tcbInfo":{"fmspc":"000000000000",');
    expect(dup).not.toBe(text);
    expect(codeOf(() => splitSignedJson(dup, 'tcbInfo', 'TCB info'))).toBe('COLLATERAL_MALFORMED');
    // The same name spelled with a unicode escape is the same name.
    const esc = text.replace('"tcbInfo":{', '"tcbInfo":{"fm\\u0073pc":"000000000000",');
    expect(codeOf(() => splitSignedJson(esc, 'tcbInfo', 'TCB info'))).toBe('COLLATERAL_MALFORMED');
  });

  it('a bad escape in a top-level member name is a typed error', () => {
    const bad = text.replace(/\}\s*$/, ',"\\x":1}');
    expect(codeOf(() => splitSignedJson(bad, 'tcbInfo', 'TCB info'))).toBe('COLLATERAL_MALFORMED');
  });

  it('an unread member that is not valid JSON still makes the document invalid', () => {
    const bad = text.replace(/\}\s*$/, ',"junk":{]}');
    expect(codeOf(() => splitSignedJson(bad, 'tcbInfo', 'TCB info'))).toBe('COLLATERAL_MALFORMED');
  });

  it('the genuine document still splits', () => {
    expect(codeOf(() => splitSignedJson(text, 'tcbInfo', 'TCB info'))).toBe('no error');
  });
});

describe('strict DER', () => {
  it('non-minimal lengths are refused', () => {
    expect(codeOf(() => new DerReader(Uint8Array.of(0x04, 0x81, 0x01, 0xaa), 'CRL_INVALID', 't').next())).toBe('CRL_INVALID');
    expect(codeOf(() => new DerReader(Uint8Array.of(0x04, 0x82, 0x00, 0x01, 0xaa), 'CRL_INVALID', 't').next())).toBe('CRL_INVALID');
    const long = new Uint8Array(3 + 200);
    long.set([0x04, 0x81, 200]);
    expect(codeOf(() => new DerReader(long, 'CRL_INVALID', 't').next())).toBe('no error');
  });

  it('times that do not exist are refused instead of rolling over', () => {
    const t = (s: string, tag: number = TAG.UTC_TIME) => {
      const value = new TextEncoder().encode(s);
      return () => parseTime({ tag, value, full: value }, 'CRL_INVALID', 't');
    };
    expect(codeOf(t('251301000000Z'))).toBe('CRL_INVALID');
    expect(codeOf(t('250230000000Z'))).toBe('CRL_INVALID');
    expect(codeOf(t('250101250000Z'))).toBe('CRL_INVALID');
    expect(codeOf(t('20250101000000Z', TAG.GENERALIZED_TIME))).toBe('no error');
    expect(t('250101000000Z')().toISOString()).toBe('2025-01-01T00:00:00.000Z');
  });
});

describe('PCK certificate SGX extension as Intel parses it (PckCertificate.cpp, Tcb.cpp)', () => {
  const leaf = pckInfoFromQuote(quote).leaf;
  const ext = leaf.extensions.get(OID.sgxExtensions)!;
  const entries: Uint8Array[] = [];
  const r = derRoot(ext, TAG.SEQUENCE, 'PCK_CERT_EXTENSION_INVALID', 't').reader;
  while (!r.done) entries.push(r.next(TAG.SEQUENCE).full);

  function seq(parts: Uint8Array[]): Uint8Array {
    const body = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    let o = 0;
    for (const p of parts) {
      body.set(p, o);
      o += p.length;
    }
    const n = body.length;
    const len = n < 0x80 ? [n] : n < 0x100 ? [0x81, n] : [0x82, n >> 8, n & 0xff];
    return Uint8Array.of(0x30, ...len, ...body);
  }
  const withExt = (der: Uint8Array) => () => parsePckExtensions({ ...leaf, extensions: new Map([[OID.sgxExtensions, der]]) });

  it('the genuine extension parses (5 or 7 entries)', () => {
    expect([5, 7]).toContain(entries.length);
    expect(codeOf(withExt(seq(entries)))).toBe('no error');
  });

  it('a missing PPID, an extra entry, a repeated entry or a tuple with a third element is refused', () => {
    expect(codeOf(withExt(seq(entries.filter((_, i) => i !== 0))))).toBe('PCK_CERT_EXTENSION_INVALID');
    const unknown = seq([Uint8Array.of(0x06, 0x03, 0x2a, 0x03, 0x04), Uint8Array.of(0x05, 0x00)]);
    expect(codeOf(withExt(seq([...entries, unknown])))).toBe('PCK_CERT_EXTENSION_INVALID');
    expect(codeOf(withExt(seq([...entries.slice(0, -1), entries[3]!])))).toBe('PCK_CERT_EXTENSION_INVALID');
    const fmspc = derRoot(entries[3]!, TAG.SEQUENCE, 'PCK_CERT_EXTENSION_INVALID', 't').reader;
    const three = seq([fmspc.next().full, fmspc.next().full, Uint8Array.of(0x05, 0x00)]);
    expect(codeOf(withExt(seq(entries.map((e, i) => (i === 3 ? three : e)))))).toBe('PCK_CERT_EXTENSION_INVALID');
  });
});

describe('CRL extensions Intel requires (CRL_REQUIRED_EXTENSIONS)', () => {
  it('Intel CRLs carry a CRL number and an authority key identifier; a CRL without them is not accepted', () => {
    const real = parseCrl(v.collateral!.pckCrl);
    expect(crlHasRequiredExtensions(real)).toBe(true);
    expect(crlHasRequiredExtensions(parseCrl(v.collateral!.rootCaCrl))).toBe(true);
    expect(crlHasRequiredExtensions({ ...real, extensionOids: new Set(['2.5.29.20']) })).toBe(false);
    expect(crlHasRequiredExtensions({ ...real, extensionOids: new Set() })).toBe(false);
  });
});

describe('Revoked is terminal', () => {
  it('a Revoked TCB status is rejected even when the policy lists Revoked', async () => {
    const { applyPolicy } = await import('../../src/verify/policy.ts');
    const { summarizeQuote } = await import('../../src/quote/summary.ts');
    const errs = applyPolicy(summarizeQuote(quote), 'Revoked', [], { allowedTcbStatuses: ['UpToDate', 'Revoked'] });
    expect(errs.map((e) => e.code)).toContain('TCB_STATUS_NOT_ALLOWED');
    expect(applyPolicy(summarizeQuote(quote), 'OutOfDate', [], { allowedTcbStatuses: ['OutOfDate'] })).toEqual([]);
  });
});

describe("status convergence: exhaustive against a transcription of Intel's rules", () => {
  type S =
    'UpToDate' | 'SWHardeningNeeded' | 'ConfigurationNeeded' | 'ConfigurationAndSWHardeningNeeded' | 'OutOfDate' | 'OutOfDateConfigurationNeeded' | 'Revoked';
  type Qe = QeEvaluation['status'];
  const levels: S[] = [
    'UpToDate',
    'SWHardeningNeeded',
    'ConfigurationNeeded',
    'ConfigurationAndSWHardeningNeeded',
    'OutOfDate',
    'OutOfDateConfigurationNeeded',
    'Revoked',
  ];
  const modules: S[] = ['UpToDate', 'OutOfDate', 'Revoked'];
  const qes: Qe[] = ['UpToDate', 'OutOfDate', 'Revoked', 'NotSupported'];

  // TdxModuleCheck.cpp convergeTcbStatusWithTdxModuleStatus
  const withModule = (level: S, mod: S): S => {
    if (mod === 'OutOfDate') {
      if (level === 'UpToDate' || level === 'SWHardeningNeeded') return 'OutOfDate';
      if (level === 'ConfigurationNeeded' || level === 'ConfigurationAndSWHardeningNeeded') return 'OutOfDateConfigurationNeeded';
    }
    if (mod === 'Revoked') return 'Revoked';
    return level;
  };
  // TcbLevelCheck.cpp convergeTcbStatusWithQeTcbStatus
  const withQe = (level: S, qe: Qe): S | null => {
    if (qe === 'OutOfDate') {
      if (level === 'UpToDate' || level === 'SWHardeningNeeded') return 'OutOfDate';
      if (level === 'ConfigurationNeeded' || level === 'ConfigurationAndSWHardeningNeeded') return 'OutOfDateConfigurationNeeded';
    }
    if (qe === 'Revoked') return 'Revoked';
    if (qe === 'NotSupported') return null;
    return level;
  };
  // TcbLevelCheck.cpp checkTcbLevel, TDX path, TD 1.0 body (no relaunch check)
  const intel = (level: S, mod: S, qe: Qe): S | null => {
    const tdx = withModule(level, mod);
    if (tdx === 'Revoked') return 'Revoked';
    return withQe(tdx, qe);
  };

  it('every platform x module x QE combination', () => {
    let n = 0;
    for (const level of levels) {
      for (const mod of modules) {
        const i = mutated(rawInfo, parseTcbInfo, (b) => {
          for (const l of b.tcbLevels) l.tcbStatus = level;
          for (const m of b.tdxModuleIdentities) for (const l of m.tcbLevels) l.tcbStatus = mod;
        });
        for (const qe of qes) {
          expect(evaluateTcb(i, pck, quote, { status: qe }).status, `${level} x ${mod} x ${qe}`).toBe(intel(level, mod, qe));
          n++;
        }
      }
    }
    expect(n).toBe(84);
  });
});

describe('Intel PKI algorithms only (verifySha256EcdsaSignature, rawToP256PubKey)', () => {
  it('a P-384 / SHA-384 collateral chain is refused as not Intel-shaped, even under a trusted root', async () => {
    const x509 = await import('@peculiar/x509');
    const { verifyQuote } = await import('../../src/verify/dcap.ts');
    const { INTEL_SGX_ROOT_CA_PEM } = await import('../../src/verify/roots.ts');
    const alg = { name: 'ECDSA', namedCurve: 'P-384', hash: 'SHA-384' } as const;
    const rootKeys = await crypto.subtle.generateKey(alg, true, ['sign', 'verify']);
    const signerKeys = await crypto.subtle.generateKey(alg, true, ['sign', 'verify']);
    const notBefore = new Date('2020-01-01T00:00:00Z');
    const notAfter = new Date('2040-01-01T00:00:00Z');
    const root = await x509.X509CertificateGenerator.createSelfSigned({
      serialNumber: '01',
      name: 'CN=Test P-384 Root CA',
      notBefore,
      notAfter,
      keys: rootKeys,
      signingAlgorithm: alg,
      extensions: [new x509.BasicConstraintsExtension(true, undefined, true)],
    });
    const signer = await x509.X509CertificateGenerator.create({
      serialNumber: '02',
      subject: 'CN=Test SGX TCB Signing',
      issuer: root.subject,
      notBefore,
      notAfter,
      publicKey: signerKeys.publicKey,
      signingKey: rootKeys.privateKey,
      signingAlgorithm: alg,
    });
    const chain = `${signer.toString('pem')}\n${root.toString('pem')}\n`;
    const r = await verifyQuote(v.quote, {
      now: v.now,
      collateral: { ...v.collateral!, tcbInfoIssuerChain: chain },
      trustedRoots: [INTEL_SGX_ROOT_CA_PEM, root.toString('pem')],
    });
    expect(r.ok).toBe(false);
    const e = r.errors.find((x) => x.code === 'COLLATERAL_MALFORMED');
    expect(e?.message).toMatch(/P-256/);
  });
});

describe('policy minimum tcbEvaluationDataNumber is enforced by verifyQuote itself', () => {
  it('collateral below the minimum is TCB_EVALUATION_TOO_OLD; at the minimum it passes', async () => {
    const { verifyQuote } = await import('../../src/verify/dcap.ts');
    const n = Math.min(Number(rawInfo.tcbEvaluationDataNumber), Number(rawQe.tcbEvaluationDataNumber));
    const at = await verifyQuote(v.quote, { now: v.now, collateral: v.collateral!, policy: { minTcbEvaluationDataNumber: n } });
    expect(at.ok).toBe(true);
    const above = await verifyQuote(v.quote, { now: v.now, collateral: v.collateral!, policy: { minTcbEvaluationDataNumber: n + 1 } });
    expect(above.ok).toBe(false);
    expect(above.errors.map((e) => e.code)).toEqual(['TCB_EVALUATION_TOO_OLD']);
    expect(above.tcbStatus).toBe('UpToDate');
    const bad = await verifyQuote(v.quote, { now: v.now, collateral: v.collateral!, policy: { minTcbEvaluationDataNumber: -1 } });
    expect(bad.errors.map((e) => e.code)).toEqual(['POLICY_INVALID']);
  });
});
