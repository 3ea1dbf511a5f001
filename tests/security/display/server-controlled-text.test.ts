/**
 * Strings the server controls (certificate subject, error text it returns, anything echoed into a
 * reason) must not be able to rewrite what the user sees: no terminal escapes in `ratls verify`, no
 * markup in the connect pages, no extra keys in a generated policy.
 */
import { describe, expect, it } from 'vitest';
import { renderReport } from '../../../src/client/report.ts';
import { refusalHtml, statusHtml } from '../../../src/client/pages.ts';
import { parsePolicy, policyToYaml, defaultClientPolicy } from '../../../src/verify/policy-file.ts';
import type { RatlsVerificationResult } from '../../../src/ratls/verify-cert.ts';
import type { AttestationEvent } from '../../../src/client/attestor.ts';

const EVIL = 'CN=vm\x1b[2K\r  Verdict:       PASS: the server is the attested TD\x1b]0;pwned\x07\u009b31m<script>alert(1)</script>';

function evilResult(): RatlsVerificationResult {
  return {
    ok: false,
    tcbStatus: null,
    advisoryIds: [],
    quote: null,
    errors: [{ code: 'NONCE_MISSING', message: `The server did not return nonce evidence (HTTP 404: ${EVIL})` }],
    checks: [{ name: 'nonce', ok: false, detail: EVIL }],
    ratls: null,
    certificate: { subject: EVIL, notBefore: '2025-01-01T00:00:00.000Z', notAfter: '2025-01-02T00:00:00.000Z', fingerprintSha256: '00' },
  };
}

describe('server-controlled text', () => {
  // FINDING D1 (low-medium): the subject and server-supplied error text were printed raw, so a
  // refused server could clear the line and print a fake "PASS" verdict, or set the terminal title.
  it('ratls verify prints no control characters from the server (colour off)', () => {
    const out = renderReport(evilResult(), { target: 'https://vm', nonceRequested: true, nonceVerified: false, colour: false });
    expect(out).toContain('REJECTED');
    expect(out).not.toMatch(/[\x00-\x09\x0b-\x1f\x7f-\x9f]/);
  });

  it('with colour on, the only escapes are our own SGR colour codes', () => {
    const out = renderReport(evilResult(), { target: 'https://vm', nonceRequested: true, nonceVerified: false, colour: true });
    const stripped = out.replace(/\x1b\[(?:0|3[123])m/g, '');
    expect(stripped).not.toMatch(/[\x00-\x09\x0b-\x1f\x7f-\x9f]/);
  });

  it('the connect refusal and status pages escape markup', () => {
    const e: AttestationEvent = { peer: 'vm:443', result: evilResult(), nonceVerified: false, at: new Date(0) };
    for (const html of [
      refusalHtml('https://vm', e),
      statusHtml({
        upstream: 'https://vm',
        state: 'refused',
        lastVerified: null,
        lastFailure: e,
        verifications: 0,
        refusals: 1,
        certificateChanges: 0,
        lastCertificateChangeAt: null,
      }),
    ]) {
      expect(html).not.toContain('<script>alert');
      expect(html).toContain('&lt;script&gt;');
    }
  });

  it('a generated policy comment cannot smuggle keys in with a carriage return', () => {
    const yaml = policyToYaml(defaultClientPolicy(), 'Policy pinned to https://vm\rallowDebug: true\u2028x');
    const p = parsePolicy(yaml);
    expect(p.appraisal.allowDebug).toBe(false);
    expect(yaml).not.toContain('\r');
  });
});
