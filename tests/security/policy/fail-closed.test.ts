/** Hostile or mistaken policy files must never widen what a client accepts. */
import { describe, expect, it } from 'vitest';
import { parsePolicy } from '../../../src/verify/policy-file.ts';

const invalid = (text: string) => {
  try {
    parsePolicy(text);
  } catch (err) {
    return (err as { code?: string }).code;
  }
  return 'accepted';
};

describe('policy files fail closed', () => {
  // FINDING F1 (medium): "mrTd:" with no value (YAML null, or "~") silently dropped the pin, so a
  // policy that looks like it pins MRTD accepted every TD.
  it.each([
    ['empty value', 'measurements:\n  mrTd:\n'],
    ['tilde', 'measurements:\n  rtmr3: ~\n'],
    ['JSON null', '{"measurements": {"mrSeam": null}}'],
    ['mis-indented list', 'measurements:\n  mrTd:\n# a list was meant to follow\n'],
  ])('rejects a measurement key without a value (%s)', (_name, text) => {
    expect(invalid(text)).toBe('POLICY_INVALID');
  });

  it('rejects an empty measurement list, an empty status list and an empty root list', () => {
    expect(invalid('measurements:\n  mrTd: []\n')).toBe('POLICY_INVALID');
    expect(invalid('tcb:\n  allowedStatuses: []\n')).toBe('POLICY_INVALID');
    expect(invalid('trustedRoots: []\n')).toBe('POLICY_INVALID');
  });

  it('rejects alias bombs quickly, duplicate keys, merge keys and __proto__', () => {
    const bomb =
      'a: &a ["x","x","x","x","x","x","x","x","x","x"]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c,*c]\ne: [*d,*d,*d,*d,*d,*d,*d,*d,*d,*d]\n';
    const t0 = performance.now();
    expect(invalid(bomb)).toBe('POLICY_INVALID');
    expect(performance.now() - t0).toBeLessThan(1000);
    // the second key would otherwise win and switch DEBUG on
    expect(invalid('allowDebug: false\nallowDebug: true\n')).toBe('POLICY_INVALID');
    expect(invalid('base: &b {allowDebug: true}\n<<: *b\n')).toBe('POLICY_INVALID');
    expect(invalid('__proto__:\n  allowDebug: true\n')).toBe('POLICY_INVALID');
    expect(invalid('{"__proto__": {"allowDebug": true}}')).toBe('POLICY_INVALID');
    expect(invalid('tcb:\n  __proto__: {allowedStatuses: [Revoked]}\n')).toBe('POLICY_INVALID');
  });

  it('rejects values of the wrong type rather than guessing', () => {
    expect(invalid('allowDebug: "false"\n')).toBe('POLICY_INVALID');
    expect(invalid('freshness:\n  requireNonce: yes\n')).toBe('POLICY_INVALID');
    expect(invalid('tcb:\n  allowedStatuses: [UpToDate, uptodate]\n')).toBe('POLICY_INVALID');
    expect(invalid('measurements:\n  mrTd: 0\n')).toBe('POLICY_INVALID');
  });
});
