import { describe, expect, it } from 'vitest';
import { encodeQuote, encodeQuoteHeader, encodeTdReportBody, encodeEnclaveReport, quoteSignedBytes, type QuoteParts } from '../../src/quote/encode.ts';
import { parseQuote } from '../../src/quote/parse.ts';
import { RatlsError } from '../../src/core/errors.ts';
import { toHex } from '../../src/core/bytes.ts';
import { loadManifest, readTestFile } from '../helpers/testdata.ts';
import { quoteParts } from '../helpers/quote.ts';

const fill = (n: number, v: number) => new Uint8Array(n).fill(v);

function parts(): QuoteParts {
  return {
    header: { qeSvn: 7, pceSvn: 11, userData: fill(20, 0xee) },
    body: {
      teeTcbSvn: fill(16, 1),
      mrSeam: fill(48, 2),
      mrSignerSeam: fill(48, 0),
      seamAttributes: fill(8, 0),
      tdAttributes: fill(8, 0),
      xfam: fill(8, 3),
      mrTd: fill(48, 4),
      mrConfigId: fill(48, 5),
      mrOwner: fill(48, 6),
      mrOwnerConfig: fill(48, 7),
      rtmr0: fill(48, 8),
      rtmr1: fill(48, 9),
      rtmr2: fill(48, 10),
      rtmr3: fill(48, 11),
      reportData: fill(64, 12),
    },
    signature: fill(64, 13),
    attestationKey: fill(64, 14),
    qeReport: encodeEnclaveReport({
      cpuSvn: fill(16, 1),
      miscSelect: 5,
      attributes: fill(16, 2),
      mrEnclave: fill(32, 3),
      mrSigner: fill(32, 4),
      isvProdId: 2,
      isvSvn: 6,
      reportData: fill(64, 5),
    }),
    qeReportSignature: fill(64, 15),
    qeAuthData: Uint8Array.from({ length: 32 }, (_, i) => i),
    pckChainPem: '',
  };
}

describe('encodeQuote', () => {
  it('lays out a v4 TDX quote that parseQuote reads back field by field', () => {
    // A real PCK chain so the parser's PEM split has something to find.
    const m = loadManifest().quotes.find((q) => q.fields.version === 4)!;
    const real = parseQuote(readTestFile(m.file));
    const p = { ...parts(), pckChainPem: new TextDecoder().decode(real.certification.certData) };
    const bytes = encodeQuote(p);
    const q = parseQuote(bytes);
    expect(q.length).toBe(bytes.length);
    expect(q.header).toMatchObject({ version: 4, attestationKeyType: 2, teeType: 0x81, qeSvn: 7, pceSvn: 11 });
    expect(toHex(q.header.qeVendorId)).toBe('939a7233f79c4ca9940a0db3957f0607');
    expect(q.body.mrTd).toEqual(p.body.mrTd);
    expect(q.body.reportData).toEqual(p.body.reportData);
    expect(q.body.rtmr3).toEqual(p.body.rtmr3);
    expect(q.signature).toEqual(p.signature);
    expect(q.attestationKey).toEqual(p.attestationKey);
    expect(q.certification.qeReport.raw).toEqual(p.qeReport);
    expect(q.certification.qeReport.isvSvn).toBe(6);
    expect(q.certification.qeReport.miscSelect).toBe(5);
    expect(q.certification.qeAuthData).toEqual(p.qeAuthData);
    expect(q.certification.pckChainPem.length).toBe(real.certification.pckChainPem.length);
    expect(q.signedBytes).toEqual(quoteSignedBytes(p));
    expect(toHex(quoteSignedBytes(p))).toBe(toHex(new Uint8Array([...encodeQuoteHeader(p.header), ...encodeTdReportBody(p.body)])));
  });

  it('re-encodes a real v4 quote byte for byte (up to its declared length)', () => {
    for (const m of loadManifest().quotes.filter((x) => x.fields.version === 4)) {
      const raw = readTestFile(m.file);
      const q = parseQuote(raw);
      const re = encodeQuote(quoteParts(q));
      expect(toHex(re), m.id).toBe(toHex(raw.subarray(0, q.length)));
    }
  });

  it('refuses wrong field sizes with QUOTE_MALFORMED', () => {
    const bad = parts();
    bad.body.mrTd = fill(47, 0);
    expect(() => encodeQuote(bad)).toThrow(RatlsError);
    expect(() => encodeQuote({ ...parts(), signature: fill(63, 0) })).toThrow(/quote signature must be 64 bytes/);
    expect(() => encodeQuoteHeader({ qeSvn: 70000, pceSvn: 0 })).toThrow(/16 bits/);
  });
});
