/**
 * Named appraisal policies of the attestation service: one file per policy in a directory
 * (`<name>.yaml`, `.yml` or `.json`, the client policy format of src/verify/policy-file.ts). The
 * policy's name is its file name; its hash (SHA-256 of the file bytes) goes into every token so a
 * relying party can tell which version of a policy was applied.
 */
import { readdirSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { loadPolicyFile } from '../policy/load.ts';
import { parsePolicy, type ClientPolicy } from '../verify/policy-file.ts';
import { isIntelRoot } from '../verify/roots.ts';
import { rootToDer } from '../verify/x509.ts';
import { RatlsError } from '../core/errors.ts';
import { checkTrustedDirectory, readTrustedFile } from '../core/trusted-path.ts';

/** One loaded policy. */
export interface NamedPolicy {
  name: string;
  /** SHA-256 (hex) of the policy file as read. */
  hash: string;
  policy: ClientPolicy;
  /** True when a trusted root other than Intel's is configured (e.g. a simulated root). */
  nonIntelRoots: boolean;
}

/** The set of policies the service knows, with the name used when a request names none. */
export interface PolicySet {
  defaultName: string;
  byName: Map<string, NamedPolicy>;
}

const FILE = /^([A-Za-z0-9][A-Za-z0-9._-]{0,63})\.(ya?ml|json)$/;

/**
 * Loads every policy file in `dir`. `rootsOverride` (from `--root`) replaces the trusted roots of
 * every policy, the way `--root` does for the other commands; nothing but an explicit root ever
 * makes a non-Intel root trusted.
 * @throws RatlsError POLICY_INVALID naming the file, or when the default policy is missing.
 */
export function loadPolicies(dir: string, opts: { defaultName?: string; rootsOverride?: string[] } = {}): PolicySet {
  let names: string[];
  try {
    // whoever can add a file here adds a policy relying parties may name
    checkTrustedDirectory(dir, { what: 'policy directory', kind: 'config' });
    names = readdirSync(dir).sort();
  } catch (err) {
    if (err instanceof RatlsError) throw err;
    throw new RatlsError('POLICY_INVALID', `Cannot read the policy directory ${dir}: ${(err as Error).message}`);
  }
  const byName = new Map<string, NamedPolicy>();
  for (const file of names) {
    const m = FILE.exec(file);
    if (!m) continue;
    const name = m[1]!;
    if (byName.has(name)) throw new RatlsError('POLICY_INVALID', `Policy "${name}" is defined twice in ${dir}; keep one file per name.`);
    const path = join(dir, file);
    let policy: ClientPolicy;
    try {
      policy = loadPolicyFile(path);
    } catch (err) {
      if (err instanceof RatlsError && err.code === 'PATH_UNTRUSTED') throw err;
      const msg = err instanceof Error ? err.message : String(err);
      throw new RatlsError('POLICY_INVALID', `Policy file ${path}: ${msg}`);
    }
    if (opts.rootsOverride && opts.rootsOverride.length > 0) {
      policy.trustedRoots = parsePolicy({ trustedRoots: opts.rootsOverride }).trustedRoots;
    }
    const hash = createHash('sha256')
      .update(readTrustedFile(path, { what: 'policy file', kind: 'config' }))
      .update(opts.rootsOverride?.join('') ?? '')
      .digest('hex');
    byName.set(name, { name, hash, policy, nonIntelRoots: policy.trustedRoots.some((r) => !isIntelRoot(r)) });
  }
  const defaultName = opts.defaultName ?? 'default';
  if (!byName.has(defaultName)) {
    throw new RatlsError(
      'POLICY_INVALID',
      `The policy directory ${dir} has no "${defaultName}" policy (${defaultName}.yaml); requests without "policy" need one.`,
    );
  }
  return { defaultName, byName };
}

/** Public description of a policy for `GET /v1/policies` (no secrets in policies, but no file paths either). */
export function describePolicy(p: NamedPolicy, isDefault: boolean): Record<string, unknown> {
  const a = p.policy.appraisal;
  const measurements: Record<string, string[]> = {};
  for (const k of ['mrTd', 'rtmr0', 'rtmr1', 'rtmr2', 'rtmr3', 'mrSeam', 'xfam', 'tdAttributes'] as const) {
    const v = a[k];
    if (v) measurements[k] = [...v];
  }
  return {
    name: p.name,
    hash: p.hash,
    default: isDefault,
    allowedTcbStatuses: a.allowedTcbStatuses ?? ['UpToDate'],
    ...(a.allowedAdvisoryIds ? { allowedAdvisoryIds: a.allowedAdvisoryIds } : {}),
    ...(a.minTcbEvaluationDataNumber !== undefined ? { minTcbEvaluationDataNumber: a.minTcbEvaluationDataNumber } : {}),
    allowDebug: a.allowDebug ?? false,
    measurements,
    trustedRoots: p.policy.trustedRoots.map((r) => (isIntelRoot(r) ? 'intel' : `sha256:${pemSha256(r)}`)),
    simulatedRootsTrusted: p.nonIntelRoots,
  };
}

/** SHA-256 of the root's DER, lower-case hex (as INTEL_SGX_ROOT_CA_SHA256 is written). */
function pemSha256(pem: string): string {
  let der: Uint8Array;
  try {
    der = rootToDer(pem);
  } catch {
    return 'unreadable';
  }
  return createHash('sha256').update(der).digest('hex');
}
