import { describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parsePolicy, policyToYaml, INTEL_SGX_ROOT_CA_PEM } from '../../src/verify/policy-file.ts';
import { defaultCacheDir, loadPolicyFile, resolveCliPolicy } from '../../src/policy/load.ts';
import { RatlsError } from '../../src/core/errors.ts';

const MRTD = 'ab'.repeat(48);

function policyError(fn: () => unknown): RatlsError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(RatlsError);
    expect((err as RatlsError).code).toBe('POLICY_INVALID');
    return err as RatlsError;
  }
  throw new Error('expected POLICY_INVALID');
}

describe('policy file', () => {
  it('defaults to the Intel root, UpToDate only, no DEBUG, session binding, connections re-attested after an hour', () => {
    const p = parsePolicy('');
    expect(p.trustedRoots).toEqual([INTEL_SGX_ROOT_CA_PEM]);
    expect(p.appraisal.allowedTcbStatuses).toEqual(['UpToDate']);
    expect(p.appraisal.allowDebug).toBe(false);
    expect(p.freshness.requireNonce).toBe(false);
    expect(p.freshness.binding).toBe('session');
    expect(p.freshness.maxConnectionAgeSeconds).toBe(3600);
    expect(p.appraisal.ppid).toBeUndefined();
  });

  it('reads freshness.binding, maxConnectionAge and platform pins, and writes them back', () => {
    const p = parsePolicy(
      'freshness: {binding: certificate, maxConnectionAge: 30m}\nplatform: {ppid: ["0x00112233445566778899AABBCCDDEEFF"], fmspc: ["00806f050000"], pceId: ["0000"]}',
    );
    expect(p.freshness.binding).toBe('certificate');
    expect(p.freshness.maxConnectionAgeSeconds).toBe(1800);
    expect(p.appraisal.ppid).toEqual(['00112233445566778899aabbccddeeff']);
    expect(p.appraisal.fmspc).toEqual(['00806f050000']);
    expect(p.appraisal.pceId).toEqual(['0000']);
    expect(parsePolicy(policyToYaml(p))).toEqual(p);
    expect(parsePolicy('freshness: {maxConnectionAge: 0}').freshness.maxConnectionAgeSeconds).toBe(0);
    expect(parsePolicy('freshness: {maxConnectionAge: 90}').freshness.maxConnectionAgeSeconds).toBe(90);
    expect(policyError(() => parsePolicy('freshness: {binding: key}')).message).toContain('"freshness.binding"');
    expect(policyError(() => parsePolicy('freshness: {maxConnectionAge: soon}')).message).toContain('"freshness.maxConnectionAge"');
    expect(policyError(() => parsePolicy('platform: {ppid: [abcd]}')).message).toContain('"platform.ppid[0]"');
    expect(policyError(() => parsePolicy('platform: {ppid: }')).message).toContain('"platform.ppid"');
    expect(policyError(() => parsePolicy('platform: {serial: [aa]}')).message).toContain('"platform.serial"');
  });

  it('parses the example policy', () => {
    const p = loadPolicyFile(new URL('../../config/policy.example.yaml', import.meta.url).pathname);
    expect(p.appraisal.allowedTcbStatuses).toEqual(['UpToDate', 'SWHardeningNeeded']);
    expect(p.appraisal.allowedAdvisoryIds).toEqual(['INTEL-SA-00837']);
    expect(p.appraisal.mrTd?.[0]).toMatch(/^91eb2b44/);
    expect(p.appraisal.tdAttributes).toEqual(['0000001000000000']);
    expect(p.freshness).toEqual({ binding: 'session', requireNonce: false, maxCertAgeSeconds: 86400, maxConnectionAgeSeconds: 3600 });
    expect(p.collateral.pcsUrl).toBe('https://api.trustedservices.intel.com');
  });

  it('accepts JSON, normalises hex case and 0x', () => {
    const p = parsePolicy(JSON.stringify({ measurements: { mrTd: ['0x' + MRTD.toUpperCase()] } }));
    expect(p.appraisal.mrTd).toEqual([MRTD]);
  });

  it('names the bad key', () => {
    expect(policyError(() => parsePolicy('allowDebg: true')).message).toContain('"allowDebg"');
    expect(policyError(() => parsePolicy('measurements: {mrtd: [aa]}')).message).toContain('"measurements.mrtd"');
    expect(policyError(() => parsePolicy(`measurements: {mrTd: [${MRTD}, abcd]}`)).message).toContain('"measurements.mrTd[1]"');
    expect(policyError(() => parsePolicy('tcb: {allowedStatuses: [Fine]}')).message).toContain('"tcb.allowedStatuses[0]"');
    expect(policyError(() => parsePolicy('freshness: {maxCertAgeSeconds: -1}')).message).toContain('freshness.maxCertAgeSeconds');
    expect(policyError(() => parsePolicy('allowDebug: "yes"')).message).toContain('"allowDebug"');
    expect(policyError(() => parsePolicy('collateral: {pccsUrl: "not a url"}')).message).toContain('collateral.pccsUrl');
    expect(
      policyError(() =>
        parsePolicy('trustedRoots: [/nonexistent/root.pem]', {
          readFile: () => {
            throw new Error('ENOENT');
          },
        }),
      ).message,
    ).toContain('trustedRoots[0]');
    expect(policyError(() => parsePolicy('- a\n- b')).message).toContain('mapping');
    expect(policyError(() => parsePolicy('measurements: {tdAttributes: [0000001000000000]}')).message).toMatch(/measurements.tdAttributes\[0\].*quote hex/);
    expect(policyError(() => parsePolicy('a: [')).message).toContain('not valid YAML');
  });

  it('reads roots from files relative to the policy and round-trips through YAML', () => {
    const dir = mkdtempSync(join(tmpdir(), 'ratls-policy-'));
    const pemBody = readFileSync(new URL('../../certs/intel-sgx-root-ca.pem', import.meta.url), 'utf8');
    writeFileSync(join(dir, 'root.pem'), pemBody.replace('BEGIN CERTIFICATE', 'BEGIN CERTIFICATE'));
    writeFileSync(join(dir, 'p.yaml'), `trustedRoots: [root.pem]\nmeasurements: {mrTd: [${MRTD}]}\ncollateral: {cacheDir: cache}\n`);
    const p = loadPolicyFile(join(dir, 'p.yaml'));
    expect(p.trustedRoots).toHaveLength(1);
    expect(p.collateral.cacheDir).toBe(join(dir, 'cache'));
    const again = parsePolicy(policyToYaml(p, 'pinned\nfor review'));
    expect(again.appraisal).toEqual(p.appraisal);
    expect(again.trustedRoots).toEqual([INTEL_SGX_ROOT_CA_PEM]);
    expect(policyToYaml(p, 'pinned')).toMatch(/^# pinned\n/);
  });

  it('the CLI caches collateral by default', () => {
    expect(defaultCacheDir({ RATLS_CACHE_DIR: '/x' })).toBe('/x');
    expect(defaultCacheDir({ XDG_CACHE_HOME: '/c' })).toBe('/c/ratls/collateral');
    expect(resolveCliPolicy({}).collateral.cacheDir).toBe(defaultCacheDir());
  });

  it('--root replaces the trusted roots', () => {
    const root = new URL('../../certs/intel-sgx-root-ca.pem', import.meta.url).pathname;
    expect(resolveCliPolicy({ root: [root] }).trustedRoots).toHaveLength(1);
    expect(() => loadPolicyFile('/nonexistent/policy.yaml')).toThrow(/Cannot read the policy file/);
  });
});

describe('root certificate files', () => {
  it('accept DER as well as PEM, and refuse a file that is neither', async () => {
    const { mkdtemp, writeFile, rm } = await import('node:fs/promises');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const { resolveCliPolicy } = await import('../../src/policy/load.ts');
    const { INTEL_SGX_ROOT_CA_PEM } = await import('../../src/verify/roots.ts');
    const { pemToDers } = await import('../../src/verify/x509.ts');
    const dir = await mkdtemp(join(tmpdir(), 'ratls-rootfile-'));
    try {
      const der = join(dir, 'root.der');
      await writeFile(der, pemToDers(INTEL_SGX_ROOT_CA_PEM)[0]!);
      const fromDer = resolveCliPolicy({ root: [der] }).trustedRoots;
      expect(fromDer.map((p) => p.replace(/\s+/g, ''))).toEqual([INTEL_SGX_ROOT_CA_PEM.replace(/\s+/g, '')]);
      const junk = join(dir, 'junk.der');
      await writeFile(junk, new Uint8Array([0x30, 0x03, 0x02, 0x01, 0x00, 0xff]));
      expect(() => resolveCliPolicy({ root: [junk] })).toThrow(/neither PEM nor a DER certificate/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
