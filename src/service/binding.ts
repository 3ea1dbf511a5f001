/**
 * REPORTDATA binding of a raw quote to the caller's nonce and runtime data.
 *
 * Rule (docs/attest-service.md): with input `m = nonce || runtimeData` (either part may be empty),
 * REPORTDATA must be SHA-512(m) (all 64 bytes, the way Intel Trust Authority's TDX adapters bind
 * nonce and user data), or SHA-256(m) followed by 32 zero bytes. Both are collision resistant, so
 * accepting either lets a relying party use whichever its attester already produces; the token says
 * which one matched.
 */
import { concatBytes, constantTimeEqual, digest } from '../core/bytes.ts';
import type { VerifyError } from '../core/errors.ts';

import type { BindingRule } from '../token/claims.ts';

export type { BindingRule } from '../token/claims.ts';

/** Outcome of the binding check. */
export type BindingResult = { ok: true; rule: BindingRule } | { ok: false; error: VerifyError };

/** Checks REPORTDATA (64 bytes) against nonce and runtime data; call only when one of them was given. */
export async function checkReportDataBinding(
  reportData: Uint8Array,
  nonce: Uint8Array | undefined,
  runtimeData: Uint8Array | undefined,
): Promise<BindingResult> {
  const m = concatBytes(nonce ?? new Uint8Array(0), runtimeData ?? new Uint8Array(0));
  const s512 = await digest('SHA-512', m);
  const s256 = concatBytes(await digest('SHA-256', m), new Uint8Array(32));
  // evaluate both comparisons regardless, so timing does not reveal which rule was tried first
  const a = constantTimeEqual(reportData, s512);
  const b = constantTimeEqual(reportData, s256);
  if (a) return { ok: true, rule: 'sha512' };
  if (b) return { ok: true, rule: 'sha256-zero-padded' };
  const what = nonce && runtimeData ? 'nonce || runtimeData' : nonce ? 'nonce' : 'runtimeData';
  return {
    ok: false,
    error: {
      code: nonce ? 'NONCE_MISMATCH' : 'REPORTDATA_MISMATCH',
      message: `The quote's REPORTDATA is neither SHA-512(${what}) nor SHA-256(${what}) padded with zeros; the quote was not produced for this ${nonce ? 'nonce' : 'runtime data'}.`,
    },
  };
}
