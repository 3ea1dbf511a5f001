/**
 * Configuration file of `ratls attest-service` (YAML or JSON) and its merge with command-line flags.
 * Paths in the file are relative to the file's directory. Unknown keys are rejected so a typo never
 * silently weakens the service (for example a misspelt rateLimit).
 */
import { statSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml } from 'yaml';
import type { AttestServiceConfig } from './server.ts';
import type { SigningAlg } from './keys.ts';
import { RatlsError } from '../core/errors.ts';
import { readTrustedFile } from '../core/trusted-path.ts';

/** The file format (all keys optional). */
export interface AttestServiceFile {
  listen?: string;
  keyDir?: string;
  policiesDir?: string;
  defaultPolicy?: string;
  collateralDirs?: string[];
  collateralCacheDir?: string;
  pccsUrl?: string;
  offline?: boolean;
  roots?: string[];
  tokenTtlSeconds?: number;
  alg?: SigningAlg;
  issuer?: string;
  audience?: string;
  keyRotationSeconds?: number;
  rateLimit?: { ratePerSecond: number; burst: number } | false;
  bodyLimitBytes?: number;
  verifyTimeoutMs?: number;
  adminTokenFile?: string;
  tls?: { cert: string; key: string };
}

/** Thrown for an unusable configuration; the CLI prints it and exits 2. */
export class ServiceConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ServiceConfigError';
  }
}

const KEYS: ReadonlyArray<keyof AttestServiceFile> = [
  'listen',
  'keyDir',
  'policiesDir',
  'defaultPolicy',
  'collateralDirs',
  'collateralCacheDir',
  'pccsUrl',
  'offline',
  'roots',
  'tokenTtlSeconds',
  'alg',
  'issuer',
  'audience',
  'keyRotationSeconds',
  'rateLimit',
  'bodyLimitBytes',
  'verifyTimeoutMs',
  'adminTokenFile',
  'tls',
];
const PATH_KEYS = ['keyDir', 'policiesDir', 'collateralCacheDir', 'adminTokenFile'] as const;

/** The policies shipped with the package (config/policies). */
export const BUNDLED_POLICIES_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '../../config/policies');

/** Reads and validates a config file, resolving its paths relative to the file. */
export function readServiceConfigFile(path: string): AttestServiceFile {
  let doc: unknown;
  try {
    doc = parseYaml(readTrustedFile(path, { what: 'config file', kind: 'config' }).toString('utf8'), { maxAliasCount: 50 });
  } catch (err) {
    if (err instanceof RatlsError) throw new ServiceConfigError(`${err.message} [${err.code}]`);
    throw new ServiceConfigError(`Cannot read the config file ${path}: ${err instanceof Error ? err.message : String(err)}`);
  }
  if (doc === null || doc === undefined) return {};
  if (typeof doc !== 'object' || Array.isArray(doc)) throw new ServiceConfigError(`${path}: the config must be a mapping.`);
  const o = doc as Record<string, unknown>;
  for (const k of Object.keys(o)) {
    if (!(KEYS as readonly string[]).includes(k)) throw new ServiceConfigError(`${path}: unknown key "${k}"; allowed: ${KEYS.join(', ')}.`);
  }
  const base = dirname(resolve(path));
  const rel = (p: unknown, key: string): string => {
    if (typeof p !== 'string' || p.length === 0) throw new ServiceConfigError(`${path}: "${key}" must be a non-empty string.`);
    return isAbsolute(p) ? p : resolve(base, p);
  };
  const out = { ...o } as AttestServiceFile & Record<string, unknown>;
  for (const k of PATH_KEYS) if (o[k] !== undefined) out[k] = rel(o[k], k);
  for (const k of ['collateralDirs', 'roots'] as const) {
    if (o[k] !== undefined) {
      if (!Array.isArray(o[k])) throw new ServiceConfigError(`${path}: "${k}" must be a list of paths.`);
      out[k] = (o[k] as unknown[]).map((p, i) => rel(p, `${k}[${i}]`));
    }
  }
  if (o.tls !== undefined) {
    const t = o.tls as Record<string, unknown>;
    if (typeof t !== 'object' || t === null) throw new ServiceConfigError(`${path}: "tls" must have cert and key paths.`);
    out.tls = { cert: rel(t.cert, 'tls.cert'), key: rel(t.key, 'tls.key') };
  }
  return out;
}

/** Parses HOST:PORT ("[::1]:8444", "0.0.0.0:8444", ":8444"). */
export function parseListen(s: string): { host: string; port: number } {
  const m = /^(?:\[([0-9a-fA-F:]+)\]|([^:]*)):(\d{1,5})$/.exec(s.trim());
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535) throw new ServiceConfigError(`--listen "${s}" is not HOST:PORT (e.g. 127.0.0.1:8444 or [::1]:8444).`);
  return { host: m[1] ?? (m[2] || '127.0.0.1'), port };
}

function num(v: unknown, what: string, min: number, max: number): number {
  const n = typeof v === 'string' ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isFinite(n) || n < min || n > max) throw new ServiceConfigError(`${what} must be a number between ${min} and ${max}.`);
  return n;
}

/**
 * Builds the service configuration from the file (if any) overridden by flags. Reads the PEM roots,
 * TLS files and admin token file; nothing else touches the disk here.
 */
export function resolveServiceConfig(file: AttestServiceFile, flags: Partial<AttestServiceFile>): AttestServiceConfig {
  const f: AttestServiceFile = { ...file };
  for (const [k, v] of Object.entries(flags)) if (v !== undefined) (f as Record<string, unknown>)[k] = v;
  const { host, port } = parseListen(f.listen ?? '127.0.0.1:8444');
  const alg = f.alg ?? 'ES256';
  if (alg !== 'ES256' && alg !== 'ES384') throw new ServiceConfigError(`--alg must be ES256 or ES384, not "${String(alg)}".`);
  // the admin token, roots and TLS files decide who may rotate keys and which servers pass
  const read = (p: string, what: string): string => {
    try {
      return readTrustedFile(p, { what, kind: 'config' }).toString('utf8');
    } catch (err) {
      if (err instanceof RatlsError) throw new ServiceConfigError(`${err.message} [${err.code}]`);
      throw new ServiceConfigError(`Cannot read the ${what} ${p}: ${err instanceof Error ? err.message : String(err)}`);
    }
  };
  let adminToken: string | undefined;
  if (f.adminTokenFile) {
    adminToken = read(f.adminTokenFile, 'admin token file').trim();
    if (adminToken.length < 16) throw new ServiceConfigError('The admin token must be at least 16 characters; generate one with `openssl rand -hex 32`.');
    // like the signing keys: a secret others could read may already have leaked
    const mode = statSync(f.adminTokenFile).mode;
    if (process.platform !== 'win32' && (mode & 0o077) !== 0) {
      throw new ServiceConfigError(
        `The admin token file ${f.adminTokenFile} is readable by group or others (mode ${(mode & 0o777).toString(8)}); chmod 600 it and replace the token if others may have read it.`,
      );
    }
  }
  if (f.rateLimit !== undefined && f.rateLimit !== false) {
    num(f.rateLimit.ratePerSecond, 'rateLimit.ratePerSecond', 0.001, 1e6);
    num(f.rateLimit.burst, 'rateLimit.burst', 1, 1e6);
  }
  return {
    host,
    port,
    keyDir: f.keyDir ?? resolve('.ratls/attest-service/keys'),
    policiesDir: f.policiesDir ?? BUNDLED_POLICIES_DIR,
    ...(f.defaultPolicy ? { defaultPolicy: f.defaultPolicy } : {}),
    ...(f.roots && f.roots.length > 0 ? { roots: f.roots.map((p) => read(p, 'root certificate file')) } : {}),
    alg,
    tokenTtlSeconds: f.tokenTtlSeconds !== undefined ? num(f.tokenTtlSeconds, 'tokenTtlSeconds', 1, 604800) : 300,
    ...(f.issuer ? { issuer: f.issuer } : {}),
    ...(f.audience ? { audience: f.audience } : {}),
    ...(f.keyRotationSeconds !== undefined ? { keyRotationSeconds: num(f.keyRotationSeconds, 'keyRotationSeconds', 0, 1e9) } : {}),
    ...(f.rateLimit !== undefined ? { rateLimit: f.rateLimit } : {}),
    ...(f.bodyLimitBytes !== undefined ? { bodyLimitBytes: num(f.bodyLimitBytes, 'bodyLimitBytes', 1024, 16 * 1024 * 1024) } : {}),
    ...(f.verifyTimeoutMs !== undefined ? { verifyTimeoutMs: num(f.verifyTimeoutMs, 'verifyTimeoutMs', 100, 600_000) } : {}),
    ...(f.collateralDirs && f.collateralDirs.length > 0 ? { collateralDirs: f.collateralDirs } : {}),
    ...(f.collateralCacheDir ? { collateralCacheDir: f.collateralCacheDir } : {}),
    ...(f.pccsUrl ? { pccsUrl: f.pccsUrl } : {}),
    ...(f.offline !== undefined ? { offline: f.offline } : {}),
    ...(adminToken ? { adminToken } : {}),
    ...(f.tls ? { tls: { cert: read(f.tls.cert, 'TLS certificate file'), key: read(f.tls.key, 'TLS key file') } } : {}),
  };
}
