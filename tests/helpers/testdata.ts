/**
 * Loads the shared real-quote vectors from ../shared/testdata/tdx (never copied into this repo).
 */
import { readFileSync, existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join, resolve } from 'node:path';
import type { Collateral } from '../../src/core/types.ts';

const here = fileURLToPath(new URL('.', import.meta.url));

/** Absolute path of the shared TDX test data directory. */
export const TESTDATA_DIR = resolve(process.env.RATLS_TESTDATA ?? join(here, '../../../shared/testdata/tdx'));

export interface ManifestQuote {
  id: string;
  file: string;
  quote_bytes_total: number;
  quote_bytes_used: number;
  verification_time?: { iso: string; unix: number; source: string } | null;
  fields: Record<string, unknown> & { version: number; mr_td: string; report_data: string; td_attributes: string };
  pck: Record<string, unknown> & { fmspc: string; chain_file: string };
  expected?: { tcb_status?: string | null; advisory_ids?: string[] } & Record<string, unknown>;
  collateral?: { set: string; files: Record<string, string> } | null;
  [k: string]: unknown;
}

export function loadManifest(): { quotes: ManifestQuote[] } & Record<string, unknown> {
  const path = join(TESTDATA_DIR, 'MANIFEST.json');
  if (!existsSync(path)) throw new Error(`TDX test data not found at ${path}; set RATLS_TESTDATA`);
  return JSON.parse(readFileSync(path, 'utf8')) as { quotes: ManifestQuote[] };
}

export function readTestFile(rel: string): Uint8Array {
  return new Uint8Array(readFileSync(join(TESTDATA_DIR, rel)));
}

/** Reads a collateral directory in the seven-file layout. */
export function loadCollateralDir(dir: string): Collateral {
  const f = (n: string) => join(dir, n);
  return {
    tcbInfoJson: readFileSync(f('tcb_info.json'), 'utf8'),
    tcbInfoIssuerChain: readFileSync(f('tcb_info_issuer_chain.pem'), 'utf8'),
    qeIdentityJson: readFileSync(f('qe_identity.json'), 'utf8'),
    qeIdentityIssuerChain: readFileSync(f('qe_identity_issuer_chain.pem'), 'utf8'),
    pckCrl: new Uint8Array(readFileSync(f('pck_crl.der'))),
    pckCrlIssuerChain: readFileSync(f('pck_crl_issuer_chain.pem'), 'utf8'),
    rootCaCrl: new Uint8Array(readFileSync(f('root_ca_crl.der'))),
  };
}

export function collateralDirFor(set: string): string {
  return join(TESTDATA_DIR, 'collateral', set);
}
