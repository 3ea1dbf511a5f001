import { describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { INTEL_SGX_ROOT_CA_PEM, INTEL_SGX_ROOT_CA_SHA256, isIntelRoot } from '../../src/verify/roots.ts';
import { rootToDer } from '../../src/verify/x509.ts';
import { parsePolicy, policyToYaml } from '../../src/verify/policy-file.ts';

describe('isIntelRoot and PEM roots in policies', () => {
  const der = rootToDer(INTEL_SGX_ROOT_CA_PEM);
  const rewrapped = `-----BEGIN CERTIFICATE-----\r\n${INTEL_SGX_ROOT_CA_PEM.replace(/-----[A-Z ]+-----/g, '')
    .replace(/\s+/g, '')
    .replace(/(.{76})/g, '$1\r\n')}\r\n-----END CERTIFICATE-----`;

  it('recognises the pinned root as PEM (any wrapping) or DER, and nothing else', () => {
    expect(createHash('sha256').update(der).digest('hex')).toBe(INTEL_SGX_ROOT_CA_SHA256);
    expect(isIntelRoot(INTEL_SGX_ROOT_CA_PEM)).toBe(true);
    expect(isIntelRoot(rewrapped)).toBe(true);
    expect(isIntelRoot(der)).toBe(true);
    expect(isIntelRoot(der.slice(0, -1))).toBe(false);
    expect(isIntelRoot('not a certificate')).toBe(false);
  });

  it('policyToYaml writes "intel" for a re-wrapped Intel root', () => {
    const p = parsePolicy({ trustedRoots: [rewrapped] });
    expect(policyToYaml(p)).toMatch(/trustedRoots:\s*\n\s*- intel/);
  });

  it('parses a 1 MiB root of unterminated BEGIN lines quickly', () => {
    const begin = '-----BEGIN CERTIFICATE-----';
    const t0 = performance.now();
    expect(() => parsePolicy({ trustedRoots: [begin.repeat(Math.ceil((1 << 20) / begin.length))] })).toThrow(/no PEM certificate/);
    expect(performance.now() - t0).toBeLessThan(200);
  });
});
