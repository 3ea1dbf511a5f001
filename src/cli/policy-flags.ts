import type { ClientPolicy } from '../verify/policy-file.ts';
import { resolveCliPolicy } from '../policy/load.ts';
import { UsageError } from './io.ts';
import { RatlsError } from '../core/errors.ts';

/** The `--policy FILE`, `--root PEM...`, `--binding` and `--nonce` flags shared by the client commands. */
export interface PolicyFlags {
  policy?: string;
  root?: string[];
  nonce?: boolean;
  binding?: string;
}

/** Builds the client policy from the flags; a bad file or root is a usage error (exit 2). */
export function policyFromFlags(flags: PolicyFlags): ClientPolicy {
  let policy: ClientPolicy;
  try {
    policy = resolveCliPolicy({ ...(flags.policy ? { policy: flags.policy } : {}), ...(flags.root ? { root: flags.root } : {}) });
  } catch (err) {
    throw new UsageError(err instanceof RatlsError ? `${err.message} [${err.code}]` : err instanceof Error ? err.message : String(err));
  }
  if (flags.binding !== undefined) {
    if (flags.binding !== 'session' && flags.binding !== 'certificate') {
      throw new UsageError(`--binding must be session or certificate (relayable if the TLS key leaks), got "${flags.binding}".`);
    }
    policy.freshness.binding = flags.binding;
  }
  if (flags.nonce) policy.freshness.requireNonce = true;
  return policy;
}
