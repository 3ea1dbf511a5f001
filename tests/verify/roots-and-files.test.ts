import { describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { INTEL_SGX_ROOT_CA_PEM, INTEL_SGX_ROOT_CA_SHA256 } from '../../src/verify/roots.ts';
import { pemToDers } from '../../src/verify/x509.ts';
import { digest, toHex } from '../../src/core/bytes.ts';
import { loadCollateralDir, writeCollateralDir } from '../../src/collateral/file.ts';
import { collateralDirFor, readTestFile, TESTDATA_DIR } from '../helpers/testdata.ts';

describe('pinned Intel root', () => {
  it('equals certs/intel-sgx-root-ca.pem and the shared DER', async () => {
    const file = readFileSync(new URL('../../certs/intel-sgx-root-ca.pem', import.meta.url), 'utf8');
    expect(INTEL_SGX_ROOT_CA_PEM.trim()).toBe(file.trim());
    const der = pemToDers(INTEL_SGX_ROOT_CA_PEM)[0]!;
    expect(toHex(await digest('SHA-256', der))).toBe(INTEL_SGX_ROOT_CA_SHA256);
    expect(toHex(der)).toBe(toHex(readTestFile('intel/intel_sgx_root_ca.der')));
  });
});

describe('collateral directory bundle', () => {
  it('round-trips the seven files byte for byte', async () => {
    const src = collateralDirFor('zkdcap-00806f050000-2025-01');
    const c = await loadCollateralDir(src);
    const dir = mkdtempSync(join(tmpdir(), 'ratls-coll-'));
    try {
      await writeCollateralDir(dir, c);
      for (const f of [
        'tcb_info.json',
        'qe_identity.json',
        'pck_crl.der',
        'root_ca_crl.der',
        'tcb_info_issuer_chain.pem',
        'qe_identity_issuer_chain.pem',
        'pck_crl_issuer_chain.pem',
      ]) {
        expect(readFileSync(join(dir, f)).equals(readFileSync(join(src, f)))).toBe(true);
      }
      expect(await loadCollateralDir(dir)).toEqual(c);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('names the missing file with COLLATERAL_MISSING', async () => {
    await expect(loadCollateralDir(join(TESTDATA_DIR, 'quotes'))).rejects.toMatchObject({ code: 'COLLATERAL_MISSING' });
  });
});
