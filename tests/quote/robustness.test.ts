import { describe, expect, it } from 'vitest';
import { parseQuote, splitPemCertificates } from '../../src/quote/parse.ts';
import { verifyQuote } from '../../src/verify/dcap.ts';
import { ERROR_CODES } from '../../src/core/errors.ts';
import { loadManifest, readTestFile, collateralDirFor, loadCollateralDir } from '../helpers/testdata.ts';
import { typedParse } from '../verify/helpers.ts';

const m = loadManifest().quotes.find((x) => x.id === 'v5-90c06f000000-gotdxguest.dat')!;
const quote = readTestFile(m.file);
const collateral = loadCollateralDir(collateralDirFor(m.collateral!.set));
const now = new Date(m.verification_time!.iso);

/** Deterministic PRNG so failures reproduce. */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe('parser robustness: only typed errors, never a hang', () => {
  it('every truncation of a real quote fails with a typed error', () => {
    const used = parseQuote(quote).length;
    for (let len = 0; len < used; len++) {
      const code = typedParse(quote.subarray(0, len));
      expect(code, `length ${len}`).not.toBe('parsed');
      expect(['QUOTE_TRUNCATED', 'QUOTE_MALFORMED', 'PCK_CHAIN_MALFORMED']).toContain(code);
    }
  });

  it('random bytes of many lengths give typed errors', () => {
    const r = rng(1);
    for (let i = 0; i < 2000; i++) {
      const len = Math.floor(r() * 6000);
      const b = new Uint8Array(len);
      for (let j = 0; j < len; j++) b[j] = Math.floor(r() * 256);
      if (i % 2 === 0 && len >= 8) {
        // make half of them look like a TDX v4/v5 header so deeper code is exercised
        b.set([i % 4 === 0 ? 4 : 5, 0, 2, 0, 0x81, 0, 0, 0]);
      }
      const code = typedParse(b);
      expect(code).not.toBe('parsed');
    }
  });

  it('random bit flips anywhere in the quote give a typed error or a verified parse', () => {
    const r = rng(2);
    for (let i = 0; i < 3000; i++) {
      const b = quote.slice();
      const at = Math.floor(r() * b.length);
      b[at] = b[at]! ^ (1 << Math.floor(r() * 8));
      typedParse(b);
    }
  });

  it('hostile PEM text (many unterminated BEGIN markers) is split in linear time', () => {
    const text = '-----BEGIN CERTIFICATE-----A'.repeat(200_000) + '-----END CERTIFICATE-----';
    const t = performance.now();
    expect(splitPemCertificates(text)).toHaveLength(1);
    expect(splitPemCertificates('-----BEGIN CERTIFICATE-----'.repeat(200_000))).toEqual([]);
    expect(performance.now() - t).toBeLessThan(1000);
  });

  it('huge declared lengths are rejected without allocation', () => {
    const b = quote.slice();
    const sigLenAt = parseQuote(quote).signedBytes.length;
    new DataView(b.buffer).setUint32(sigLenAt, 0xffffffff, true);
    expect(typedParse(b)).toBe('QUOTE_TRUNCATED');
  });
});

describe('verifier robustness: never throws, every error code is stable', () => {
  it('truncations, flips and random inputs resolve to typed rejections', async () => {
    const r = rng(3);
    const inputs: Uint8Array[] = [];
    for (let len = 0; len < quote.length; len += 97) inputs.push(quote.subarray(0, len));
    for (let i = 0; i < 300; i++) {
      const b = quote.slice();
      const at = Math.floor(r() * b.length);
      b[at] = b[at]! ^ (1 << Math.floor(r() * 8));
      inputs.push(b);
    }
    for (const input of inputs) {
      const res = await verifyQuote(input, { collateral, now });
      if (res.ok) continue; // a flip in trailing padding-free area cannot pass, but be exact below
      for (const e of res.errors) {
        expect(ERROR_CODES).toContain(e.code);
        expect(e.code).not.toBe('INTERNAL');
        expect(e.message.length).toBeGreaterThan(10);
      }
    }
  });

  it('mangled collateral gives typed errors', async () => {
    const r = rng(4);
    const bad = [
      { tcbInfoJson: '' },
      { tcbInfoJson: '{"tcbInfo":' },
      { tcbInfoJson: '[]' },
      { tcbInfoJson: collateral.tcbInfoJson.slice(0, 500) },
      { qeIdentityJson: '{"enclaveIdentity":{"id":"QE","version":2},"signature":"00"}' },
      { pckCrl: new Uint8Array([0x30, 0x82, 0xff, 0xff]) },
      { rootCaCrl: new Uint8Array(0) },
      { tcbInfoIssuerChain: '' },
      { pckCrlIssuerChain: '-----BEGIN CERTIFICATE-----\n!!!\n-----END CERTIFICATE-----' },
    ];
    for (let i = 0; i < 200; i++) {
      const crl = collateral.pckCrl.slice();
      const at = Math.floor(r() * crl.length);
      crl[at] = crl[at]! ^ 0xff;
      bad.push({ pckCrl: crl });
      const text = collateral.tcbInfoJson.split('');
      text[Math.floor(r() * text.length)] = String.fromCharCode(32 + Math.floor(r() * 90));
      bad.push({ tcbInfoJson: text.join('') });
    }
    for (const c of bad) {
      const res = await verifyQuote(quote, { collateral: { ...collateral, ...c }, now });
      if (res.ok) continue; // e.g. a whitespace-only change outside the signed object
      for (const e of res.errors) {
        expect(ERROR_CODES).toContain(e.code);
        expect(e.code).not.toBe('INTERNAL');
      }
    }
  });
});
