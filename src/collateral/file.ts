/**
 * Collateral directory bundle (Node only): the seven files named as in Intel's PCS responses, the
 * layout `ratls quote verify --collateral DIR` reads and the test data uses.
 */
import { mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { RatlsError } from '../core/errors.ts';
import { fromHex } from '../core/bytes.ts';
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

/** Bytes of a dcap-qvl bundle field: hex text (its JSON form) or an array of byte values. */
function bundleBytes(v: unknown, field: string): Uint8Array {
  const bytes =
    typeof v === 'string'
      ? fromHex(v.replace(/^0x/, ''))
      : Array.isArray(v) && v.every((x) => Number.isInteger(x) && (x as number) >= 0 && (x as number) < 256)
        ? Uint8Array.from(v as number[])
        : undefined;
  if (!bytes) throw new RatlsError('COLLATERAL_MALFORMED', `The collateral bundle's "${field}" is neither hex text nor an array of bytes.`);
  return bytes;
}

function bundleText(o: Record<string, unknown>, field: string): string {
  const v = o[field];
  if (typeof v !== 'string') throw new RatlsError('COLLATERAL_MALFORMED', `The collateral bundle has no text "${field}".`);
  return v;
}

/**
 * Collateral from the single JSON bundle dcap-qvl (and tools built on it: dstack's verifier, NEAR
 * and Automata contracts) writes: the signed TCB info and QE identity bodies with their detached
 * signatures, CRLs as hex. The PCS response form is rebuilt around the bodies verbatim, so the
 * signed bytes are unchanged.
 */
export function collateralFromDcapQvlJson(text: string): Collateral {
  let o: unknown;
  try {
    o = JSON.parse(text);
  } catch {
    throw new RatlsError('COLLATERAL_MALFORMED', 'The collateral file is not JSON (a directory of PCS files or a dcap-qvl collateral JSON is expected).');
  }
  if (typeof o !== 'object' || o === null || Array.isArray(o) || !('tcb_info' in o)) {
    throw new RatlsError('COLLATERAL_MALFORMED', 'The collateral JSON is not a dcap-qvl bundle (no "tcb_info"); give a directory of PCS files instead.');
  }
  const b = o as Record<string, unknown>;
  const sig = (field: string): string => {
    const hex = Array.from(bundleBytes(b[field], field), (x) => x.toString(16).padStart(2, '0')).join('');
    if (hex.length !== 128) throw new RatlsError('COLLATERAL_MALFORMED', `The collateral bundle's "${field}" is not a 64-byte signature.`);
    return hex;
  };
  return {
    tcbInfoJson: `{"tcbInfo":${bundleText(b, 'tcb_info')},"signature":"${sig('tcb_info_signature')}"}`,
    tcbInfoIssuerChain: bundleText(b, 'tcb_info_issuer_chain'),
    qeIdentityJson: `{"enclaveIdentity":${bundleText(b, 'qe_identity')},"signature":"${sig('qe_identity_signature')}"}`,
    qeIdentityIssuerChain: bundleText(b, 'qe_identity_issuer_chain'),
    pckCrl: bundleBytes(b.pck_crl, 'pck_crl'),
    pckCrlIssuerChain: bundleText(b, 'pck_crl_issuer_chain'),
    rootCaCrl: bundleBytes(b.root_ca_crl, 'root_ca_crl'),
  };
}

/**
 * Reads collateral from `path`: a directory in the seven-file layout ({@link loadCollateralDir}) or
 * a dcap-qvl collateral JSON file ({@link collateralFromDcapQvlJson}).
 * @throws RatlsError COLLATERAL_MISSING or COLLATERAL_MALFORMED.
 * @example
 *   const c = await loadCollateral('tdx_quote_collateral.json');
 */
export async function loadCollateral(path: string): Promise<Collateral> {
  let isFile: boolean;
  try {
    isFile = (await stat(path)).isFile();
  } catch (err) {
    throw new RatlsError('COLLATERAL_MISSING', `Cannot read collateral ${path}: ${err instanceof Error ? err.message : String(err)}.`, { cause: err });
  }
  if (!isFile) return loadCollateralDir(path);
  return collateralFromDcapQvlJson(await readFile(path, 'utf8'));
}
