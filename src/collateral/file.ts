/**
 * Collateral directory bundle (Node only): the seven files named as in Intel's PCS responses, the
 * layout `ratls quote verify --collateral DIR` reads and the test data uses.
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { RatlsError } from '../core/errors.ts';
import type { Collateral } from '../core/types.ts';

/** File name for each collateral field. */
export const COLLATERAL_FILES: Readonly<Record<keyof Collateral, string>> = {
  tcbInfoJson: 'tcb_info.json',
  tcbInfoIssuerChain: 'tcb_info_issuer_chain.pem',
  qeIdentityJson: 'qe_identity.json',
  qeIdentityIssuerChain: 'qe_identity_issuer_chain.pem',
  pckCrl: 'pck_crl.der',
  pckCrlIssuerChain: 'pck_crl_issuer_chain.pem',
  rootCaCrl: 'root_ca_crl.der',
};

const BINARY: ReadonlySet<keyof Collateral> = new Set(['pckCrl', 'rootCaCrl']);

/**
 * Reads the seven collateral files from `dir`.
 * @throws RatlsError COLLATERAL_MISSING naming the first file that cannot be read.
 */
export async function loadCollateralDir(dir: string): Promise<Collateral> {
  const out: Partial<Record<keyof Collateral, string | Uint8Array>> = {};
  for (const [key, name] of Object.entries(COLLATERAL_FILES) as Array<[keyof Collateral, string]>) {
    const path = join(dir, name);
    let data: Buffer;
    try {
      data = await readFile(path);
    } catch (err) {
      const reason = err instanceof Error ? err.message : String(err);
      throw new RatlsError('COLLATERAL_MISSING', `Cannot read collateral file ${path}: ${reason}.`, { cause: err });
    }
    out[key] = BINARY.has(key) ? new Uint8Array(data) : data.toString('utf8');
  }
  return out as unknown as Collateral;
}

/** Writes `c` into `dir` (created if needed) in the seven-file layout, byte for byte. */
export async function writeCollateralDir(dir: string, c: Collateral): Promise<void> {
  await mkdir(dir, { recursive: true });
  for (const [key, name] of Object.entries(COLLATERAL_FILES) as Array<[keyof Collateral, string]>) {
    await writeFile(join(dir, name), c[key]);
  }
}
