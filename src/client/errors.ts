import { RatlsError, type ErrorCode } from '../core/errors.ts';
import type { VerificationResult } from '../core/types.ts';

/**
 * Thrown (or passed to callbacks) when a server fails attestation. The TLS socket it concerns has
 * already been destroyed and no request byte was written to it.
 */
export class AttestationError extends RatlsError {
  /** The full verification result: every check, the TCB status, the quote summary. */
  readonly result: VerificationResult;
  /** host:port of the server that was refused. */
  readonly peer: string;

  constructor(peer: string, result: VerificationResult) {
    const first = result.errors[0] ?? { code: 'INTERNAL' as ErrorCode, message: 'Verification failed without a reason (bug).' };
    const more =
      result.errors.length > 1
        ? ` (+${result.errors.length - 1} more: ${result.errors
            .slice(1)
            .map((e) => e.code)
            .join(', ')})`
        : '';
    super(first.code, `Attestation of ${peer} failed: ${first.message}${more}`);
    this.name = 'AttestationError';
    this.result = result;
    this.peer = peer;
  }
}
