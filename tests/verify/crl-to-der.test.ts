import { describe, expect, it } from 'vitest';
import { collateralDirFor, loadCollateralDir } from '../helpers/testdata.ts';
import { crlToDer } from '../../src/verify/x509.ts';
import { toBase64, toHex } from '../../src/core/bytes.ts';

const der = loadCollateralDir(collateralDirFor('dcapqvl-b0c06f000000-2025-06')).pckCrl;
const enc = new TextEncoder();

describe('crlToDer, the one CRL normaliser', () => {
  it('accepts DER, DER plus a NUL terminator, PEM and hex (with or without a trailing NUL)', () => {
    expect(crlToDer(der, 'PCK CRL')).toEqual(der);
    expect(crlToDer(new Uint8Array([...der, 0, 0]), 'PCK CRL')).toEqual(der);
    const pem = `-----BEGIN X509 CRL-----\n${toBase64(der).replace(/(.{64})/g, '$1\n')}\n-----END X509 CRL-----\n`;
    expect(crlToDer(enc.encode(pem), 'PCK CRL')).toEqual(der);
    expect(crlToDer(new Uint8Array([...enc.encode(pem), 0]), 'PCK CRL')).toEqual(der);
    expect(crlToDer(enc.encode(toHex(der)), 'PCK CRL')).toEqual(der);
  });

  it('keeps a DER whose last octet is zero', () => {
    const z = new Uint8Array([0x30, 0x03, 0x02, 0x01, 0x00]);
    expect(crlToDer(z, 'x')).toEqual(z);
  });

  it('rejects garbage as COLLATERAL_MALFORMED naming the CRL', () => {
    expect(() => crlToDer(enc.encode('nope'), 'stapled PCK CRL')).toThrow(/stapled PCK CRL is neither DER, PEM nor hex/);
    expect(() => crlToDer(enc.encode('-----BEGIN X509 CRL-----@@@-----END X509 CRL-----'), 'x')).toThrow(
      expect.objectContaining({ code: 'COLLATERAL_MALFORMED' }),
    );
    expect(() => crlToDer(new Uint8Array([0xff, 0xfe]), 'x')).toThrow(expect.objectContaining({ code: 'COLLATERAL_MALFORMED' }));
  });

  it('is linear on 1 MiB of unterminated BEGIN lines', () => {
    const begin = '-----BEGIN X509 CRL-----';
    const t0 = performance.now();
    expect(() => crlToDer(enc.encode(begin.repeat(Math.ceil((1 << 20) / begin.length))), 'x')).toThrow(
      expect.objectContaining({ code: 'COLLATERAL_MALFORMED' }),
    );
    expect(performance.now() - t0).toBeLessThan(100);
  });
});
