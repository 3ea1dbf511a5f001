/** Node loader for client policy files; parsing and validation live in src/verify/policy-file.ts. */
import { homedir } from 'node:os';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { RatlsError } from '../core/errors.ts';
import { readTrustedFile } from '../core/trusted-path.ts';
import { parseCertificate } from '../verify/x509.ts';
import { defaultClientPolicy, parsePolicy, type ClientPolicy } from '../verify/policy-file.ts';

/**
 * Policies, and the roots they name, decide which servers pass: they are read only when nobody but
 * their owner (this user or root) could have written them (src/core/trusted-path.ts).
 */
const POLICY_FILE = { what: 'policy file', kind: 'config' } as const;
const ROOT_FILE = { what: 'trusted root certificate file', kind: 'config' } as const;

/** Root certificate files may be PEM (one or more certificates) or a single DER certificate. */
function readRootFile(path: string): string {
  const bytes = readTrustedFile(path, ROOT_FILE);
  if (bytes.includes('-----BEGIN')) return bytes.toString('utf8');
  parseCertificate(new Uint8Array(bytes), 'POLICY_INVALID', `Root certificate file ${path} (neither PEM nor a DER certificate)`);
  const b64 = bytes.toString('base64').replace(/.{64}/g, '$&\n').replace(/\n$/, '');
  return `-----BEGIN CERTIFICATE-----\n${b64}\n-----END CERTIFICATE-----\n`;
}

/**
 * Reads and validates a policy file (YAML or JSON). Root certificate paths and collateral
 * directories inside it are resolved relative to the file's directory.
 * @throws RatlsError POLICY_INVALID when the file cannot be read or is invalid; PATH_UNTRUSTED
 *   when it (or a root file it names) could have been written by someone else.
 */
export function loadPolicyFile(path: string): ClientPolicy {
  let text: string;
  try {
    text = readTrustedFile(path, POLICY_FILE).toString('utf8');
  } catch (err) {
    if (err instanceof RatlsError) throw err;
    throw new RatlsError('POLICY_INVALID', `Cannot read the policy file ${path}: ${err instanceof Error ? err.message : String(err)}`);
  }
  const base = dirname(resolve(path));
  const rel = (p: string) => (p === '~' || p.startsWith('~/') ? join(homedir(), p.slice(1)) : isAbsolute(p) ? p : resolve(base, p));
  const policy = parsePolicy(text, { readFile: (p) => readRootFile(rel(p)) });
  if (policy.collateral.cacheDir) policy.collateral.cacheDir = rel(policy.collateral.cacheDir);
  if (policy.collateral.directories) policy.collateral.directories = policy.collateral.directories.map(rel);
  return policy;
}

/** Collateral cache of the CLI: $RATLS_CACHE_DIR, else $XDG_CACHE_HOME/ratls/collateral, else ~/.cache/ratls/collateral. */
export function defaultCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.RATLS_CACHE_DIR) return env.RATLS_CACHE_DIR;
  return join(env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'ratls', 'collateral');
}

/**
 * The policy a CLI command runs with: the file when given (else the default), with `--root` files
 * replacing the trusted roots. A root given on the command line is trusted instead of Intel's.
 * Without a cacheDir in the policy, the CLI caches fetched collateral in {@link defaultCacheDir}.
 */
export function resolveCliPolicy(opts: { policy?: string; root?: string[] }): ClientPolicy {
  const policy = opts.policy ? loadPolicyFile(opts.policy) : defaultClientPolicy();
  if (!policy.collateral.cacheDir) policy.collateral.cacheDir = defaultCacheDir();
  if (opts.root && opts.root.length > 0) {
    policy.trustedRoots = parsePolicy({ trustedRoots: opts.root }, { readFile: readRootFile }).trustedRoots;
  }
  return policy;
}
