import { describe, expect, it } from 'vitest';
import { formatVerificationReport } from '../../../src/verify/report.ts';
import { renderCertResult } from '../../../src/cli/commands/cert.ts';
import { clean, renderReport } from '../../../src/client/report.ts';
import type { RatlsVerificationResult } from '../../../src/ratls/verify-cert.ts';

const ESC = '\x1b[2K\rVerdict: OK';

function hostile(): RatlsVerificationResult {
  return {
    ok: false,
    tcbStatus: null,
    advisoryIds: [`INTEL-SA-${ESC}`],
    errors: [{ code: 'POLICY_INVALID', message: `bad ${ESC}` }],
    quote: null,
    checks: [{ name: `check ${ESC}`, ok: false, detail: `detail ${ESC}` }],
    ratls: { profile: 'ccc', pubkeyHashAlg: `SHA-256${ESC}`, nonce: `00${ESC}` },
    certificate: { subject: `CN=x${ESC}`, notBefore: `2025${ESC}`, notAfter: '2026', fingerprintSha256: `ab${ESC}` },
  };
}

describe('reports never pass terminal control characters through', () => {
  it('formatVerificationReport escapes check names, details and error messages', () => {
    const out = formatVerificationReport(hostile());
    expect(out).not.toMatch(/[\x1b\r]/);
    expect(out).toContain('\uFFFD[2K');
    expect(out).toMatch(/Verdict: REJECTED/);
  });

  it('renderCertResult (ratls cert verify) escapes the certificate facts', () => {
    const out = renderCertResult(hostile(), new Date('2025-07-19T10:00:00Z'));
    expect(out).not.toMatch(/[\x1b\r]/);
    expect(out).toContain('CN=x\uFFFD[2K');
  });

  it('ratls verify report still uses the same clean()', () => {
    expect(clean('a\x1bb')).toBe('a\uFFFDb');
    const out = renderReport(hostile(), { target: 't', nonceRequested: false, nonceVerified: false, colour: false });
    expect(out).not.toMatch(/[\x1b\r]/);
  });
});
