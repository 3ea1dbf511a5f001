/**
 * Inputs people hand to `ratls quote` that are not TDX quotes (fixtures in tests/fixtures/quote,
 * PROVENANCE.md there): each refusal names what the input is. And dcap-qvl's collateral JSON, the
 * bundle most TDX tooling passes around, is read as --collateral FILE.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseQuote } from '../../src/quote/parse.ts';
import { identifyOtherEvidence, sgxQuoteReportData } from '../../src/quote/identify.ts';
import { collateralFromDcapQvlJson, loadCollateral } from '../../src/collateral/file.ts';
import { verifyQuote } from '../../src/verify/dcap.ts';
import { runCli } from '../helpers/cli.ts';
import { TESTDATA_DIR, collateralDirFor, readTestFile } from '../helpers/testdata.ts';

const path = (name: string): string => fileURLToPath(new URL(`../fixtures/quote/${name}`, import.meta.url));
const fixture = (name: string): Uint8Array => new Uint8Array(readFileSync(path(name)));

const refusal = (b: Uint8Array): { code: string; message: string } => {
  try {
    parseQuote(b);
  } catch (err) {
    return err as { code: string; message: string };
  }
  throw new Error('parsed');
};

describe('not a TDX quote: named', () => {
  it('an SGX ECDSA quote (Occlum, from trustee) is QUOTE_UNSUPPORTED_TEE and its REPORTDATA is found', () => {
    const q = fixture('trustee-occlum-sgx-quote.dat');
    expect(refusal(q)).toMatchObject({ code: 'QUOTE_UNSUPPORTED_TEE', message: expect.stringMatching(/SGX ECDSA quote \(version 3\)/) });
    expect(sgxQuoteReportData(q)).toEqual(q.subarray(368, 432));
    // a TDX quote is not an SGX quote
    expect(sgxQuoteReportData(readTestFile('quotes/v4-b0c06f000000-dcapqvl.dat'))).toBeUndefined();
  });

  it('a TDREPORT (guest-components), a TPM quote (dstack), an Azure HCL report (trustee)', () => {
    expect(refusal(fixture('guest-components-tdreport.bin')).message).toMatch(/TDREPORT .*configfs-tsm/);
    expect(refusal(fixture('dstack-tpm-quote.bin')).message).toMatch(/TPM 2\.0 attestation structure/);
    expect(refusal(fixture('trustee-az-hcl-report.bin')).message).toMatch(/Azure confidential VM HCL report/);
  });

  it('a TCG log, the ACPI CCEL table, a certificate: named; unknown bytes keep the plain message', () => {
    const log = new Uint8Array(readFileSync(fileURLToPath(new URL('../fixtures/eventlog/gcp-cos113-ccel-table.bin', import.meta.url))));
    expect(identifyOtherEvidence(log)?.message).toMatch(/ACPI CCEL table/);
    expect(
      identifyOtherEvidence(new Uint8Array(readFileSync(fileURLToPath(new URL('../fixtures/eventlog/gcp-cos113-ccel-data.bin', import.meta.url)))))?.message,
    ).toMatch(/TCG event log/);
    expect(identifyOtherEvidence(Uint8Array.of(0x30, 0x82, 1, 2, ...new Uint8Array(60)))?.message).toMatch(/ratls cert verify/);
    const junk = new Uint8Array(600).fill(0x41);
    expect(identifyOtherEvidence(junk)).toBeUndefined();
    expect(refusal(junk)).toMatchObject({ code: 'QUOTE_UNSUPPORTED_VERSION', message: expect.stringMatching(/Quote version 16705 is not supported/) });
  });

  it('ratls quote inspect says so (exit 1)', async () => {
    const r = await runCli('quote', 'inspect', path('guest-components-tdreport.bin'));
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/QUOTE_UNSUPPORTED_VERSION: This is a TDREPORT/);
  });
});

describe("dcap-qvl's collateral JSON as --collateral FILE", () => {
  const bundle = join(collateralDirFor('dcapqvl-b0c06f000000-2025-06'), 'dcap-qvl-collateral.json');

  it('gives the same collateral as the seven-file directory, byte for byte where it is signed', async () => {
    const fromJson = collateralFromDcapQvlJson(readFileSync(bundle, 'utf8'));
    const fromDir = await loadCollateral(collateralDirFor('dcapqvl-b0c06f000000-2025-06'));
    expect(fromJson).toEqual(fromDir);
    const quote = readTestFile('quotes/v4-b0c06f000000-dcapqvl.dat');
    const r = await verifyQuote(quote, { collateral: fromJson, now: new Date('2025-07-19T10:00:34Z') });
    expect(r.errors).toEqual([]);
  });

  it('ratls quote verify takes it; a JSON that is no bundle is a usage error', async () => {
    const q = join(TESTDATA_DIR, 'quotes/v4-b0c06f000000-dcapqvl.dat');
    const ok = await runCli('quote', 'verify', q, '--collateral', bundle, '--at', '2025-07-19T10:00:34Z');
    expect(ok.code, ok.out).toBe(0);
    const bad = await runCli('quote', 'verify', q, '--collateral', path('../eventlog/trustee-tpm-evidence.json'));
    expect(bad.code).toBe(2);
    expect(bad.err).toMatch(/not a dcap-qvl bundle/);
  });
});

describe('hostile input: the identifiers never throw and stay in bounds', () => {
  it('random bytes, truncations and bit flips of real samples', () => {
    let seed = 7;
    const rnd = () => (seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32;
    const samples = ['trustee-occlum-sgx-quote.dat', 'guest-components-tdreport.bin', 'dstack-tpm-quote.bin', 'trustee-az-hcl-report.bin'].map(fixture);
    for (let i = 0; i < 400; i++) {
      const base = samples[i % samples.length]!;
      const cut = base.slice(0, Math.floor(rnd() * (base.length + 1)));
      const flipped = base.slice();
      flipped[Math.floor(rnd() * flipped.length)]! ^= 1 << Math.floor(rnd() * 8);
      const random = Uint8Array.from({ length: Math.floor(rnd() * 2000) }, () => Math.floor(rnd() * 256));
      for (const b of [cut, flipped, random]) {
        expect(() => identifyOtherEvidence(b)).not.toThrow();
        const rd = sgxQuoteReportData(b);
        if (rd) expect(rd.length).toBe(64);
        const e = (() => {
          try {
            parseQuote(b);
            return undefined;
          } catch (err) {
            return err as { code?: string };
          }
        })();
        if (e) expect(e.code).toMatch(/^(QUOTE_|PCK_CHAIN_)/);
      }
    }
  });

  it('a hostile collateral bundle is COLLATERAL_MALFORMED, never another exception', () => {
    for (const text of [
      '',
      '[]',
      'null',
      '{"tcb_info":1}',
      '{"tcb_info":"{}","tcb_info_signature":"zz"}',
      '{"tcb_info":"{}","tcb_info_signature":[1,2,300]}',
    ]) {
      expect(() => collateralFromDcapQvlJson(text)).toThrow(expect.objectContaining({ code: 'COLLATERAL_MALFORMED' }));
    }
  });
});
