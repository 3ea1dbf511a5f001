import { describe, expect, it } from 'vitest';
import * as x509 from '@peculiar/x509';
import { parseQuote } from '../../src/quote/parse.ts';
import { verifyQuote } from '../../src/verify/dcap.ts';
import type { ErrorCode } from '../../src/core/errors.ts';
import type { Collateral, VerificationResult } from '../../src/core/types.ts';
import { parseCertificate, pemToDers } from '../../src/verify/x509.ts';
import { toBase64 } from '../../src/core/bytes.ts';
import { INTEL_SGX_ROOT_CA_PEM } from '../../src/verify/roots.ts';
import { vector, V4_OK, V5_OK, OUTDATED } from './helpers.ts';

const base = vector(V4_OK);
const collateral = base.collateral!;
const q = parseQuote(base.quote);
const off = (sub: Uint8Array): number => sub.byteOffset - q.signedBytes.byteOffset;

function flipped(bytes: Uint8Array, at: number, mask = 0x01): Uint8Array {
  const out = bytes.slice();
  out[at] = out[at]! ^ mask;
  return out;
}

async function run(quote: Uint8Array, c: Partial<Collateral> = {}, now = base.now, roots?: string[]): Promise<VerificationResult> {
  return verifyQuote(quote, { collateral: { ...collateral, ...c }, now, ...(roots ? { trustedRoots: roots } : {}) });
}

function codes(r: VerificationResult): ErrorCode[] {
  return r.errors.map((e) => e.code);
}

function expectRejected(r: VerificationResult, code: ErrorCode): void {
  expect(r.ok).toBe(false);
  expect(codes(r)).toContain(code);
  expect(r.tcbStatus).toBeNull();
}

/** Codes a flip in the signed header/body may legitimately produce, by position. */
function expectedForSignedByte(version: number, i: number): ErrorCode[] {
  if (i < 2) return ['QUOTE_UNSUPPORTED_VERSION', 'QUOTE_TRUNCATED', 'QUOTE_MALFORMED', 'QUOTE_UNSUPPORTED_BODY'];
  if (i < 4) return ['QUOTE_UNSUPPORTED_KEY_TYPE'];
  if (i < 8) return ['QUOTE_UNSUPPORTED_TEE'];
  if (i >= 12 && i < 28) return ['QUOTE_QE_VENDOR_UNKNOWN'];
  if (version === 5 && i >= 48 && i < 54) return ['QUOTE_UNSUPPORTED_BODY', 'QUOTE_MALFORMED'];
  return ['QUOTE_SIGNATURE_INVALID'];
}

describe('negative: every tampered part of a genuine quote is rejected with its own code', () => {
  it('baseline verifies', async () => {
    expect((await run(base.quote)).ok).toBe(true);
  });

  for (const id of [V4_OK, V5_OK]) {
    it(`flipping any byte of the signed header/body of ${id}`, async () => {
      const v = vector(id);
      const pq = parseQuote(v.quote);
      for (let i = 0; i < pq.signedBytes.length; i++) {
        const r = await verifyQuote(flipped(v.quote, i), { collateral: v.collateral!, now: v.now });
        expect(r.ok, `byte ${i}`).toBe(false);
        const allowed = expectedForSignedByte(pq.header.version, i);
        expect(
          codes(r).some((c) => allowed.includes(c)),
          `byte ${i}: ${codes(r).join(',')}`,
        ).toBe(true);
        expect(r.tcbStatus, `byte ${i}`).toBeNull();
      }
    }, 60_000);
  }

  it('every byte of the signature, attestation key, QE report, its signature and the QE auth data', async () => {
    const regions: Array<[string, Uint8Array, ErrorCode]> = [
      ['signature', q.signature, 'QUOTE_SIGNATURE_INVALID'],
      ['attestation key', q.attestationKey, 'QE_REPORT_DATA_MISMATCH'],
      ['QE report', q.certification.qeReport.raw, 'QE_REPORT_SIGNATURE_INVALID'],
      ['QE report signature', q.certification.qeReportSignature, 'QE_REPORT_SIGNATURE_INVALID'],
      ['QE auth data', q.certification.qeAuthData, 'QE_REPORT_DATA_MISMATCH'],
    ];
    for (const [name, region, code] of regions) {
      for (let i = 0; i < region.length; i++) {
        const r = await run(flipped(base.quote, off(region) + i));
        expect(r.ok, `${name} byte ${i}`).toBe(false);
        expect(codes(r), `${name} byte ${i}`).toContain(code);
        expect(r.tcbStatus).toBeNull();
      }
    }
  }, 60_000);

  it('every byte of the PCK chain: rejected with a PCK code unless the certificates are unchanged', async () => {
    const start = off(q.certification.certData);
    const chainDer = (quote: Uint8Array): string => {
      try {
        // the root is pinned, never taken from the quote, so a chain that lost it is the same chain
        return parseQuote(quote)
          .certification.pckChainPem.flatMap((p) => pemToDers(p))
          .slice(0, 2)
          .map((d) => toBase64(d))
          .join();
      } catch {
        return 'unparseable';
      }
    };
    const original = chainDer(base.quote);
    const pckCodes: ErrorCode[] = [
      'PCK_CHAIN_MALFORMED',
      'PCK_CHAIN_UNTRUSTED',
      'PCK_CHAIN_INVALID_SIGNATURE',
      'PCK_CERT_EXTENSION_INVALID',
      'QE_REPORT_SIGNATURE_INVALID',
      'COLLATERAL_MISMATCH',
      'CRL_INVALID',
    ];
    let rejected = 0;
    for (let i = 0; i < q.certification.certData.length; i++) {
      const t = flipped(base.quote, start + i);
      const r = await run(t);
      if (r.ok) {
        // only PEM whitespace, the trailing NUL or the embedded root's armour may change
        expect(chainDer(t), `byte ${i}`).toBe(original);
        continue;
      }
      rejected++;
      expect(
        codes(r).some((c) => pckCodes.includes(c)),
        `byte ${i}: ${codes(r).join(',')}`,
      ).toBe(true);
    }
    expect(rejected).toBeGreaterThan(q.certification.certData.length * 0.9);
  }, 120_000);

  it('quote signature', async () => {
    for (const at of [0, 31, 32, 63]) expectRejected(await run(flipped(base.quote, off(q.signature) + at)), 'QUOTE_SIGNATURE_INVALID');
  });

  it('attestation key', async () => {
    const r = await run(flipped(base.quote, off(q.attestationKey) + 10));
    expectRejected(r, 'QE_REPORT_DATA_MISMATCH');
  });

  it('QE report', async () => {
    for (const at of [0, 100, 320, 383]) expectRejected(await run(flipped(base.quote, off(q.certification.qeReport.raw) + at)), 'QE_REPORT_SIGNATURE_INVALID');
  });

  it('QE report signature', async () => {
    for (const at of [0, 40]) expectRejected(await run(flipped(base.quote, off(q.certification.qeReportSignature) + at)), 'QE_REPORT_SIGNATURE_INVALID');
  });

  it('QE auth data', async () => {
    expectRejected(await run(flipped(base.quote, off(q.certification.qeAuthData) + 3)), 'QE_REPORT_DATA_MISMATCH');
  });

  it('PCK leaf certificate (re-encoded with one changed key byte)', async () => {
    const leafPem = q.certification.pckChainPem[0]!;
    const der = pemToDers(leafPem)[0]!.slice();
    const leaf = parseCertificate(der);
    const keyAt = leaf.spki.byteOffset - der.byteOffset + leaf.spki.length - 1;
    der[keyAt] = der[keyAt]! ^ 0x01;
    const b64 = toBase64(der)
      .replace(/(.{64})/g, '$1\n')
      .trim();
    const newPem = `-----BEGIN CERTIFICATE-----\n${b64}\n-----END CERTIFICATE-----`;
    expect(newPem.length).toBe(leafPem.length);
    const text = new TextDecoder('latin1').decode(q.certification.certData);
    const start = off(q.certification.certData) + text.indexOf(leafPem);
    const tampered = base.quote.slice();
    tampered.set(new TextEncoder().encode(newPem), start);
    expectRejected(await run(tampered), 'PCK_CHAIN_INVALID_SIGNATURE');
  });

  it('PCK chain from another platform (valid chain, wrong key)', async () => {
    const other = vector(OUTDATED);
    const oq = parseQuote(other.quote);
    const tampered = spliceCertData(base.quote, q, oq.certification.certData);
    const r = await run(tampered);
    expect(r.ok).toBe(false);
    expect(codes(r)).toEqual(expect.arrayContaining(['QE_REPORT_SIGNATURE_INVALID']));
  });

  it('tampered TCB info text (status changed)', async () => {
    const t = collateral.tcbInfoJson.replace('"OutOfDate"', '"UpToDate"');
    expect(t).not.toBe(collateral.tcbInfoJson);
    expectRejected(await run(base.quote, { tcbInfoJson: t }), 'COLLATERAL_SIGNATURE_INVALID');
  });

  it('tampered TCB info signature', async () => {
    const t = collateral.tcbInfoJson.replace(/"signature":\s*"(.)/, (m, c: string) => m.slice(0, -1) + (c === '0' ? '1' : '0'));
    expect(t).not.toBe(collateral.tcbInfoJson);
    expectRejected(await run(base.quote, { tcbInfoJson: t }), 'COLLATERAL_SIGNATURE_INVALID');
  });

  it('tampered QE identity text', async () => {
    const t = collateral.qeIdentityJson.replace('"isvprodid":2', '"isvprodid":3').replace('"isvprodid": 2', '"isvprodid": 3');
    expect(t).not.toBe(collateral.qeIdentityJson);
    expectRejected(await run(base.quote, { qeIdentityJson: t }), 'COLLATERAL_SIGNATURE_INVALID');
  });

  it('duplicate signed member in the TCB info document', async () => {
    const t = collateral.tcbInfoJson.replace(/^\{/, '{"tcbInfo":{},');
    expectRejected(await run(base.quote, { tcbInfoJson: t }), 'COLLATERAL_MALFORMED');
  });

  it('a time after nextUpdate', async () => {
    const r = await run(base.quote, {}, new Date('2025-08-30T00:00:00Z'));
    expect(r.ok).toBe(false);
    expect(codes(r)).toContain('COLLATERAL_EXPIRED');
    expect(codes(r)).toContain('CRL_EXPIRED');
  });

  it('a time before issueDate', async () => {
    const r = await run(base.quote, {}, new Date('2025-06-01T00:00:00Z'));
    expect(r.ok).toBe(false);
    expect(codes(r)).toContain('COLLATERAL_NOT_YET_VALID');
  });

  it('a PCK certificate not yet valid', async () => {
    const r = await run(base.quote, {}, new Date('2024-01-01T00:00:00Z'));
    expect(codes(r)).toContain('PCK_CERT_NOT_YET_VALID');
  });

  it('a PCK certificate expired', async () => {
    const r = await run(base.quote, {}, new Date('2033-01-01T00:00:00Z'));
    expect(codes(r)).toContain('PCK_CERT_EXPIRED');
  });

  it('a foreign root replaces Intel: PCK_CHAIN_UNTRUSTED', async () => {
    const alg = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' };
    const keys = (await crypto.subtle.generateKey(alg, true, ['sign', 'verify'])) as CryptoKeyPair;
    const foreign = await x509.X509CertificateGenerator.createSelfSigned({
      serialNumber: '01',
      name: 'CN=Foreign Root',
      notBefore: new Date('2020-01-01'),
      notAfter: new Date('2040-01-01'),
      keys,
      signingAlgorithm: alg,
      extensions: [new x509.BasicConstraintsExtension(true, 1, true)],
    });
    const r = await run(base.quote, {}, base.now, [foreign.toString('pem')]);
    expectRejected(r, 'PCK_CHAIN_UNTRUSTED');
    // giving both roots keeps Intel's trust and does not flag a non-Intel root
    const both = await run(base.quote, {}, base.now, [foreign.toString('pem'), INTEL_SGX_ROOT_CA_PEM]);
    expect(both.ok).toBe(true);
    expect(both.nonIntelRoot).toBeUndefined();
  });

  it('collateral for another platform: COLLATERAL_MISMATCH', async () => {
    const other = vector(OUTDATED).collateral!;
    const r = await run(base.quote, { tcbInfoJson: other.tcbInfoJson });
    expect(codes(r)).toContain('COLLATERAL_MISMATCH');
    expect(r.ok).toBe(false);
  });

  it('tampered CRLs: CRL_INVALID', async () => {
    const pck = collateral.pckCrl.slice();
    pck[pck.length - 5] = pck[pck.length - 5]! ^ 0x01; // inside the signature
    expect(codes(await run(base.quote, { pckCrl: pck }))).toContain('CRL_INVALID');
    const root = collateral.rootCaCrl.slice();
    root[40] = root[40]! ^ 0x01; // inside the signed body
    expect(codes(await run(base.quote, { rootCaCrl: root }))).toContain('CRL_INVALID');
  });

  it('TCB info issuer chain replaced by the PCK chain: COLLATERAL_CHAIN_UNTRUSTED or MALFORMED', async () => {
    const r = await run(base.quote, { tcbInfoIssuerChain: q.certification.pckChainPem.join('\n') });
    expect(r.ok).toBe(false);
    expect(codes(r).some((c) => c === 'COLLATERAL_MALFORMED' || c === 'COLLATERAL_CHAIN_UNTRUSTED')).toBe(true);
  });

  it('TCB info issuer chain that is not a TCB Signing chain: COLLATERAL_CHAIN_UNTRUSTED', async () => {
    // a genuine Intel chain (PCK Platform CA <- root), but not the one allowed to sign TCB info
    const r = await run(base.quote, { tcbInfoIssuerChain: collateral.pckCrlIssuerChain });
    expect(r.ok).toBe(false);
    expect(codes(r)).toEqual(['COLLATERAL_CHAIN_UNTRUSTED']);
  });

  it('missing collateral: COLLATERAL_MISSING', async () => {
    const r = await verifyQuote(base.quote, { collateral: undefined as unknown as Collateral, now: base.now });
    expect(codes(r)).toEqual(['COLLATERAL_MISSING']);
  });

  it('policy: measurement and REPORTDATA mismatches', async () => {
    const r = await verifyQuote(base.quote, {
      collateral,
      now: base.now,
      policy: { mrTd: ['00'.repeat(48)], reportData: ['11'.repeat(64)] },
    });
    expect(r.tcbStatus).toBe('UpToDate');
    expect(codes(r)).toEqual(['MEASUREMENT_MISMATCH', 'REPORTDATA_MISMATCH']);
    const ok = await verifyQuote(base.quote, {
      collateral,
      now: base.now,
      policy: { mrTd: [String(base.m.fields.mr_td).toUpperCase()], reportData: [base.m.fields.report_data] },
    });
    expect(ok.ok).toBe(true);
  });

  it('invalid verification time: POLICY_INVALID', async () => {
    const r = await run(base.quote, {}, new Date('nope'));
    expect(codes(r)).toEqual(['POLICY_INVALID']);
  });
});

/** Replaces the PEM chain inside a quote, fixing the declared sizes. */
function spliceCertData(quote: Uint8Array, pq: ReturnType<typeof parseQuote>, pem: Uint8Array): Uint8Array {
  const start = pq.certification.certData.byteOffset - quote.byteOffset;
  const end = start + pq.certification.certData.length;
  const out = new Uint8Array(start + pem.length);
  out.set(quote.subarray(0, start));
  out.set(pem, start);
  const dv = new DataView(out.buffer);
  const delta = pem.length - (end - start);
  dv.setUint32(start - 4, pem.length, true); // inner cert data size
  const sigLenAt = pq.signedBytes.length;
  dv.setUint32(sigLenAt, dv.getUint32(sigLenAt, true) + delta, true);
  const outerSizeAt = sigLenAt + 4 + 128 + 2;
  dv.setUint32(outerSizeAt, dv.getUint32(outerSizeAt, true) + delta, true);
  return out;
}
