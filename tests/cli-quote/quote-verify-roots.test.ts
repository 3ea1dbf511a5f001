import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as x509 from '@peculiar/x509';
import { INTEL_SGX_ROOT_CA_PEM } from '../../src/verify/roots.ts';
import { TESTDATA_DIR, collateralDirFor } from '../helpers/testdata.ts';
import { runCli } from '../helpers/cli.ts';

const run = runCli;

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ratls-qroot-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const base = () => [
  'quote',
  'verify',
  '--quote',
  join(TESTDATA_DIR, 'quotes', 'v4-b0c06f000000-dcapqvl.dat'),
  '--collateral',
  collateralDirFor('dcapqvl-b0c06f000000-2025-06'),
  '--at',
  '2025-07-19T10:00:34Z',
  '--json',
];

describe('ratls quote verify --root reads roots like ratls verify (policyFromFlags)', () => {
  it('accepts a PEM bundle (every certificate in it is a root, as for ratls verify)', async () => {
    const bundle = join(dir, 'bundle.pem');
    // A simulated root first, the Intel root second.
    const w = join(dir, 'world');
    expect((await run('sim', 'init', '--dir', w)).code).toBe(0);
    await writeFile(bundle, (await readFile(join(w, 'root.pem'), 'utf8')) + INTEL_SGX_ROOT_CA_PEM);
    const r = await run(...base(), '--root', bundle);
    expect(r.code).toBe(0);
    expect((JSON.parse(r.out) as { ok: boolean }).ok).toBe(true);
  });

  it('accepts a DER root, as ratls verify does', async () => {
    const der = join(dir, 'root.der');
    await writeFile(der, new Uint8Array(new x509.X509Certificate(INTEL_SGX_ROOT_CA_PEM).rawData));
    expect((await run(...base(), '--root', der)).code).toBe(0);
  });

  it('accepts a PEM root (unchanged)', async () => {
    const pem = join(dir, 'root.pem');
    await writeFile(pem, INTEL_SGX_ROOT_CA_PEM);
    expect((await run(...base(), '--root', pem)).code).toBe(0);
  });

  it('an unreadable or non-certificate root is a usage error (exit 2)', async () => {
    const junk = join(dir, 'junk.pem');
    await writeFile(junk, 'not a certificate\n');
    const [a, b] = [await run(...base(), '--root', junk), await run(...base(), '--root', join(dir, 'missing.pem'))];
    expect(a.code).toBe(2);
    expect(a.out).toBe('');
    expect(b.code).toBe(2);
  });
});
