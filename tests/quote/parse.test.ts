import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { parseQuote } from '../../src/quote/parse.ts';
import { summarizeQuote } from '../../src/quote/summary.ts';
import { INTEL_SGX_ROOT_CA_PEM } from '../../src/verify/roots.ts';
import { loadManifest, readTestFile } from '../helpers/testdata.ts';

const manifest = loadManifest();

describe('parseQuote over the real TDX quotes', () => {
  for (const m of manifest.quotes) {
    it(`parses ${m.id}`, () => {
      const bytes = readTestFile(m.file);
      const q = parseQuote(bytes);
      expect(q.length).toBe(m.quote_bytes_used);
      const s = summarizeQuote(q);
      expect(s.version).toBe(m.fields.version);
      expect(s.mrTd).toBe(m.fields.mr_td);
      expect(s.reportData).toBe(m.fields.report_data);
      expect(s.tdAttributes).toBe(m.fields.td_attributes);
      for (const [k, f] of [
        ['teeTcbSvn', 'tee_tcb_svn'],
        ['mrSeam', 'mr_seam'],
        ['xfam', 'xfam'],
        ['rtmr0', 'rtmr0'],
        ['rtmr3', 'rtmr3'],
        ['qeVendorId', 'qe_vendor_id'],
        ['userData', 'header_user_data'],
      ] as const) {
        if (typeof m.fields[f] === 'string') expect(s[k]).toBe(m.fields[f]);
      }
      expect(q.certification.pckChainPem.length).toBe(3);
      expect(q.signedBytes.length).toBe(m.fields.version === 5 ? 48 + 6 + (q.bodyType === 3 ? 648 : 584) : 48 + 584);
    });
  }
});

describe('pinned root', () => {
  it('INTEL_SGX_ROOT_CA_PEM equals certs/intel-sgx-root-ca.pem', () => {
    const file = readFileSync(new URL('../../certs/intel-sgx-root-ca.pem', import.meta.url), 'utf8');
    expect(INTEL_SGX_ROOT_CA_PEM.trim()).toBe(file.trim());
  });
});
