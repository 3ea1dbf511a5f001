import { describe, expect, it } from 'vitest';
import { collateralDirFor, loadCollateralDir } from '../helpers/testdata.ts';
import { collateralValidUntil, pckCrlCa } from '../../src/collateral/inspect.ts';

const DIR = collateralDirFor('dcapqvl-b0c06f000000-2025-06');

describe('pckCrlCa on hostile stapled text', () => {
  it('handles a 1 MiB chain of unterminated BEGIN lines in linear time', () => {
    const begin = '-----BEGIN CERTIFICATE-----';
    const hostile = begin.repeat(Math.ceil((1 << 20) / begin.length));
    const t0 = performance.now();
    expect(pckCrlCa({ pckCrlIssuerChain: hostile })).toBeUndefined();
    expect(performance.now() - t0).toBeLessThan(100);
  });

  it('still reads the CA and validity of real collateral', () => {
    const c = loadCollateralDir(DIR);
    expect(pckCrlCa(c)).toBe('platform');
    expect(collateralValidUntil(c)!.toISOString()).toBe('2025-07-19T10:00:35.000Z');
    expect(pckCrlCa({ pckCrlIssuerChain: 'garbage' })).toBeUndefined();
  });
});
