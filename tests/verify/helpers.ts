/** Shared fixtures for verifier tests: the manifest's quotes with their collateral and time. */
import { loadManifest, readTestFile, collateralDirFor, loadCollateralDir, type ManifestQuote } from '../helpers/testdata.ts';
import type { Collateral } from '../../src/core/types.ts';
import { expect } from 'vitest';
import { parseQuote } from '../../src/quote/parse.ts';
import { RatlsError } from '../../src/core/errors.ts';

export interface Vector {
  m: ManifestQuote;
  quote: Uint8Array;
  collateral?: Collateral;
  now: Date;
}

export const manifest = loadManifest();

export function vector(id: string): Vector {
  const m = manifest.quotes.find((q) => q.id === id);
  if (!m) throw new Error(`no manifest quote ${id}`);
  return toVector(m);
}

export function toVector(m: ManifestQuote): Vector {
  const v: Vector = {
    m,
    quote: readTestFile(m.file),
    now: new Date(m.verification_time?.iso ?? '2025-06-01T00:00:00Z'),
  };
  if (m.collateral) v.collateral = loadCollateralDir(collateralDirFor(m.collateral.set));
  return v;
}

/** A genuine quote that verifies UpToDate (v4) and one v5 quote. */
export const V4_OK = 'v4-b0c06f000000-dcapqvl.dat';
export const V5_OK = 'v5-90c06f000000-gotdxguest.dat';
export const OUTDATED = 'v4-00806f050000-zkdcap.dat';

/** Parses and returns 'parsed' or the RatlsError code; any other exception fails the test. */
export function typedParse(bytes: Uint8Array): string {
  try {
    parseQuote(bytes);
    return 'parsed';
  } catch (err) {
    expect(err).toBeInstanceOf(RatlsError);
    return (err as RatlsError).code;
  }
}
