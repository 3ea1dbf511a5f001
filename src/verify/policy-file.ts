/**
 * Client policy files (YAML or JSON): what a client accepts from an RA-TLS server.
 *
 * Browser-safe: the parser takes text or an already-parsed object; reading files (the policy itself
 * and root certificates referenced by path) is done through an injected `readFile`, which the Node
 * loader in src/policy/load.ts supplies.
 */
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml';
import { RatlsError } from '../core/errors.ts';
import { INTEL_SGX_ROOT_CA_PEM, isIntelRoot } from './roots.ts';
import { splitPemCertificates } from '../quote/parse.ts';
import { TCB_STATUSES, type AppraisalPolicy, type TcbStatus } from '../core/types.ts';

export { INTEL_SGX_ROOT_CA_PEM };

/** Where clients get collateral when the certificate does not staple it (or it is stale). */
export interface CollateralSettings {
  /** A PCCS base URL, e.g. https://pccs.example:8081 (tried before PCS). */
  pccsUrl?: string;
  /** Intel PCS base URL; default https://api.trustedservices.intel.com when not offline. */
  pcsUrl?: string;
  /** Disk cache directory (survives restarts; honours nextUpdate). */
  cacheDir?: string;
  /** Local collateral directories in the seven-file layout (one subdirectory per FMSPC). */
  directories?: string[];
  /** Never use the network: stapled, cache and directories only. */
  offline?: boolean;
}

/**
 * What a connection's evidence must be bound to.
 * - `session` (default): evidence obtained on the connection, before any request, whose REPORTDATA
 *   commits to this TLS session's RFC 9266 exporter, the certificate key and our nonce. A relay
 *   holding a leaked TLS key cannot obtain it (see docs/ratls.md).
 * - `certificate`: the certificate's quote alone (key binding), plus a nonce round trip when
 *   `requireNonce`. Relayable by whoever holds the TLS private key.
 */
export type FreshnessBinding = 'session' | 'certificate';

/** Freshness requirements. */
export interface FreshnessSettings {
  /** Default 'session'. */
  binding: FreshnessBinding;
  /**
   * With `binding: certificate`: also do the nonce round trip to /.well-known/ratls/evidence on each
   * new connection (key + nonce: fresh, still relayable). With `binding: session` the session
   * evidence already carries our nonce, so this adds nothing.
   */
  requireNonce: boolean;
  /** Reject certificates older than this (notBefore to now). */
  maxCertAgeSeconds?: number;
  /**
   * Close an attested connection after its current response once it is this old (WebSockets with
   * close code 1001), so a long session is re-attested on its next connection. 0 = no limit.
   */
  maxConnectionAgeSeconds: number;
}

/** Default of `freshness.maxConnectionAge`: one hour (docs/policy.md says why). */
export const DEFAULT_MAX_CONNECTION_AGE_SECONDS = 3600;

/** A parsed, validated client policy. */
export interface ClientPolicy {
  appraisal: AppraisalPolicy;
  /** Trusted root certificates (PEM). Default: the Intel SGX Root CA only. */
  trustedRoots: string[];
  freshness: FreshnessSettings;
  collateral: CollateralSettings;
}

/** True when the policy pins the platform the quote comes from (PPID, FMSPC or PCE ID). */
export function platformPinned(policy: ClientPolicy): boolean {
  const a = policy.appraisal;
  return a.ppid !== undefined || a.fmspc !== undefined || a.pceId !== undefined;
}

/** How the parser reads root certificates referenced by path (Node: fs; browser: not available). */
export interface PolicyParseOptions {
  readFile?: (path: string) => string;
}

/** The policy used when none is given: Intel root, UpToDate only, no DEBUG, no pinned measurements. */
export function defaultClientPolicy(): ClientPolicy {
  return {
    appraisal: { allowedTcbStatuses: ['UpToDate'], allowDebug: false },
    trustedRoots: [INTEL_SGX_ROOT_CA_PEM],
    freshness: { binding: 'session', requireNonce: false, maxConnectionAgeSeconds: DEFAULT_MAX_CONNECTION_AGE_SECONDS },
    collateral: {},
  };
}

const TOP_KEYS = ['version', 'trustedRoots', 'tcb', 'allowDebug', 'measurements', 'platform', 'freshness', 'collateral'] as const;
const TCB_KEYS = ['allowedStatuses', 'allowedAdvisoryIds', 'minEvaluationDataNumber'] as const;
const FRESHNESS_KEYS = ['binding', 'requireNonce', 'maxCertAgeSeconds', 'maxConnectionAge'] as const;
const BINDINGS: readonly FreshnessBinding[] = ['session', 'certificate'];
/** Platform identity name -> byte length (from the PCK certificate). */
const PLATFORM: Record<string, number> = { ppid: 16, fmspc: 6, pceId: 2 };
const COLLATERAL_KEYS = ['pccsUrl', 'pcsUrl', 'cacheDir', 'directories', 'offline'] as const;
/** Measurement name -> byte length. */
const MEASUREMENTS: Record<string, number> = {
  mrTd: 48,
  rtmr0: 48,
  rtmr1: 48,
  rtmr2: 48,
  rtmr3: 48,
  mrSeam: 48,
  xfam: 8,
  tdAttributes: 8,
};

function invalid(key: string, why: string): never {
  throw new RatlsError('POLICY_INVALID', `Policy key "${key}": ${why}`);
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function checkKeys(obj: Record<string, unknown>, allowed: readonly string[], prefix: string): void {
  for (const k of Object.keys(obj)) {
    if (!allowed.includes(k)) {
      invalid(prefix + k, `unknown key; allowed here: ${allowed.join(', ')}.`);
    }
  }
}

function asBool(v: unknown, key: string): boolean {
  if (typeof v !== 'boolean') invalid(key, 'must be true or false.');
  return v;
}

function asString(v: unknown, key: string): string {
  if (typeof v !== 'string' || v.length === 0) invalid(key, 'must be a non-empty string.');
  return v;
}

function asStringList(v: unknown, key: string): string[] {
  if (typeof v === 'string') return [asString(v, key)];
  if (!Array.isArray(v)) invalid(key, 'must be a string or a list of strings.');
  return v.map((x, i) => asString(x, `${key}[${i}]`));
}

function asUrl(v: unknown, key: string): string {
  const s = asString(v, key);
  let u: URL;
  try {
    u = new URL(s);
  } catch {
    invalid(key, `"${s}" is not a URL.`);
  }
  if (u.protocol !== 'https:' && u.protocol !== 'http:') invalid(key, 'must be an http(s) URL.');
  return s.replace(/\/+$/, '');
}

function parseMeasurement(v: unknown, key: string, bytes: number): string[] {
  const items = Array.isArray(v) ? v : [v];
  items.forEach((x, i) => {
    // YAML reads unquoted all-digit (or 1e5-like) hex as a number; say so instead of "not a string"
    if (typeof x === 'number') invalid(Array.isArray(v) ? `${key}[${i}]` : key, 'looks like a number to YAML; quote hex values ("0000001000000000").');
  });
  const list = asStringList(v, key);
  if (list.length === 0) invalid(key, 'an empty list would reject every server; remove the key to skip this check.');
  return list.map((raw, i) => {
    const hex = raw.trim().toLowerCase().replace(/^0x/, '');
    if (!/^[0-9a-f]*$/.test(hex) || hex.length !== bytes * 2) {
      invalid(`${key}[${i}]`, `must be ${bytes * 2} hex digits (${bytes} bytes).`);
    }
    return hex;
  });
}

const AGE_UNITS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86400 };

/** Seconds from a whole number of seconds or "90s", "30m", "1h", "1d"; 0 means no limit. */
function parseAge(v: unknown, key: string): number {
  if (typeof v === 'number' && Number.isInteger(v) && v >= 0) return v;
  const m = typeof v === 'string' ? /^\s*(\d+)\s*([smhd]?)\s*$/.exec(v) : null;
  if (!m) invalid(key, 'must be a whole number of seconds or a duration like "30m", "1h" (0 = no limit).');
  return Number(m[1]) * AGE_UNITS[m[2] || 's']!;
}

function parseRoots(v: unknown, opts: PolicyParseOptions): string[] {
  const entries = Array.isArray(v) ? v : [v];
  if (entries.length === 0) invalid('trustedRoots', 'must list at least one root (use "intel" for the Intel SGX Root CA).');
  const out: string[] = [];
  entries.forEach((e, i) => {
    const key = `trustedRoots[${i}]`;
    const s = asString(e, key).trim();
    if (s.toLowerCase() === 'intel') {
      out.push(INTEL_SGX_ROOT_CA_PEM);
      return;
    }
    let text = s;
    if (!s.includes('-----BEGIN')) {
      if (!opts.readFile) invalid(key, 'a root given by file path cannot be read here; inline the PEM.');
      try {
        text = opts.readFile(s);
      } catch (err) {
        // a root file others could have written is refused as such, not as a policy mistake
        if (err instanceof RatlsError && err.code === 'PATH_UNTRUSTED') throw err;
        invalid(key, `cannot read "${s}" (${err instanceof Error ? err.message : String(err)}).`);
      }
    }
    const pems = splitPemCertificates(text);
    if (pems.length === 0) invalid(key, 'holds no PEM certificate.');
    out.push(...pems.map((p) => p + '\n'));
  });
  return out;
}

/**
 * Parses and validates a policy document (YAML or JSON text, or an already-parsed object).
 * Unknown keys are rejected so that a typo never silently weakens a policy.
 * @throws RatlsError POLICY_INVALID naming the offending key.
 */
export function parsePolicy(input: string | unknown, opts: PolicyParseOptions = {}): ClientPolicy {
  let doc: unknown = input;
  if (typeof input === 'string') {
    try {
      doc = parseYaml(input, { maxAliasCount: 50 });
    } catch (err) {
      throw new RatlsError('POLICY_INVALID', `The policy is not valid YAML/JSON: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
  if (doc === null || doc === undefined) doc = {};
  if (!isRecord(doc)) throw new RatlsError('POLICY_INVALID', 'The policy must be a mapping (YAML) or an object (JSON).');
  checkKeys(doc, TOP_KEYS, '');
  if (doc.version !== undefined && doc.version !== 1) invalid('version', 'only version 1 is supported.');

  const policy = defaultClientPolicy();
  if (doc.trustedRoots !== undefined) policy.trustedRoots = parseRoots(doc.trustedRoots, opts);

  if (doc.tcb !== undefined) {
    if (!isRecord(doc.tcb)) invalid('tcb', 'must be a mapping.');
    checkKeys(doc.tcb, TCB_KEYS, 'tcb.');
    if (doc.tcb.allowedStatuses !== undefined) {
      const list = asStringList(doc.tcb.allowedStatuses, 'tcb.allowedStatuses');
      if (list.length === 0) invalid('tcb.allowedStatuses', 'must allow at least one status.');
      list.forEach((s, i) => {
        if (!TCB_STATUSES.includes(s as TcbStatus)) {
          invalid(`tcb.allowedStatuses[${i}]`, `"${s}" is not a TCB status; use one of ${TCB_STATUSES.join(', ')}.`);
        }
      });
      policy.appraisal.allowedTcbStatuses = list as TcbStatus[];
    }
    if (doc.tcb.allowedAdvisoryIds !== undefined) {
      policy.appraisal.allowedAdvisoryIds =
        Array.isArray(doc.tcb.allowedAdvisoryIds) && doc.tcb.allowedAdvisoryIds.length === 0
          ? []
          : asStringList(doc.tcb.allowedAdvisoryIds, 'tcb.allowedAdvisoryIds');
    }
  }
  if (isRecord(doc.tcb) && doc.tcb.minEvaluationDataNumber !== undefined) {
    const n = doc.tcb.minEvaluationDataNumber;
    if (typeof n !== 'number' || !Number.isInteger(n) || n < 1 || n > 0xffffffff) {
      invalid('tcb.minEvaluationDataNumber', "must be a whole number from 1 (Intel's tcbEvaluationDataNumber, raised at each TCB recovery).");
    }
    policy.appraisal.minTcbEvaluationDataNumber = n;
  }
  if (doc.allowDebug !== undefined) policy.appraisal.allowDebug = asBool(doc.allowDebug, 'allowDebug');

  if (doc.measurements !== undefined) {
    if (!isRecord(doc.measurements)) invalid('measurements', 'must be a mapping.');
    checkKeys(doc.measurements, Object.keys(MEASUREMENTS), 'measurements.');
    for (const [name, bytes] of Object.entries(MEASUREMENTS)) {
      const v = doc.measurements[name];
      if (v === undefined) continue;
      // "mrTd:" with no value reads as null; skipping it would turn an intended pin into "any TD"
      if (v === null) invalid(`measurements.${name}`, 'has no value; give the expected hex value(s), or remove the key to skip this check.');
      (policy.appraisal as Record<string, unknown>)[name] = parseMeasurement(v, `measurements.${name}`, bytes);
    }
  }

  if (doc.platform !== undefined) {
    if (!isRecord(doc.platform)) invalid('platform', 'must be a mapping.');
    checkKeys(doc.platform, Object.keys(PLATFORM), 'platform.');
    for (const [name, bytes] of Object.entries(PLATFORM)) {
      const v = doc.platform[name];
      if (v === undefined) continue;
      if (v === null) invalid(`platform.${name}`, 'has no value; give the expected hex value(s), or remove the key to skip this check.');
      (policy.appraisal as Record<string, unknown>)[name] = parseMeasurement(v, `platform.${name}`, bytes);
    }
  }

  if (doc.freshness !== undefined) {
    if (!isRecord(doc.freshness)) invalid('freshness', 'must be a mapping.');
    checkKeys(doc.freshness, FRESHNESS_KEYS, 'freshness.');
    const b = doc.freshness.binding;
    if (b !== undefined) {
      if (typeof b !== 'string' || !(BINDINGS as readonly string[]).includes(b)) {
        invalid('freshness.binding', `must be one of ${BINDINGS.join(', ')} (certificate is relayable if the TLS key leaks).`);
      }
      policy.freshness.binding = b as FreshnessBinding;
    }
    if (doc.freshness.maxConnectionAge !== undefined)
      policy.freshness.maxConnectionAgeSeconds = parseAge(doc.freshness.maxConnectionAge, 'freshness.maxConnectionAge');
    if (doc.freshness.requireNonce !== undefined) policy.freshness.requireNonce = asBool(doc.freshness.requireNonce, 'freshness.requireNonce');
    const age = doc.freshness.maxCertAgeSeconds;
    if (age !== undefined) {
      if (typeof age !== 'number' || !Number.isInteger(age) || age <= 0) invalid('freshness.maxCertAgeSeconds', 'must be a positive whole number of seconds.');
      policy.freshness.maxCertAgeSeconds = age;
    }
  }

  if (doc.collateral !== undefined) {
    if (!isRecord(doc.collateral)) invalid('collateral', 'must be a mapping.');
    const c = doc.collateral;
    checkKeys(c, COLLATERAL_KEYS, 'collateral.');
    if (c.pccsUrl !== undefined) policy.collateral.pccsUrl = asUrl(c.pccsUrl, 'collateral.pccsUrl');
    if (c.pcsUrl !== undefined) policy.collateral.pcsUrl = asUrl(c.pcsUrl, 'collateral.pcsUrl');
    if (c.cacheDir !== undefined) policy.collateral.cacheDir = asString(c.cacheDir, 'collateral.cacheDir');
    if (c.directories !== undefined) policy.collateral.directories = asStringList(c.directories, 'collateral.directories');
    if (c.offline !== undefined) policy.collateral.offline = asBool(c.offline, 'collateral.offline');
  }
  return policy;
}

/** What `policyToYaml` writes for roots: "intel" for the Intel root, inline PEM otherwise. */
function rootEntry(pem: string): string {
  return isIntelRoot(pem) ? 'intel' : pem;
}

/**
 * Serialises a policy back to the file format (YAML), with an optional leading comment.
 * parsePolicy(policyToYaml(p)) yields an equivalent policy.
 */
export function policyToYaml(policy: ClientPolicy, comment?: string): string {
  const a = policy.appraisal;
  const measurements: Record<string, string[]> = {};
  for (const name of Object.keys(MEASUREMENTS)) {
    const v = (a as Record<string, unknown>)[name];
    if (Array.isArray(v)) measurements[name] = v as string[];
  }
  const platform: Record<string, string[]> = {};
  for (const name of Object.keys(PLATFORM)) {
    const v = (a as Record<string, unknown>)[name];
    if (Array.isArray(v)) platform[name] = v as string[];
  }
  const doc: Record<string, unknown> = {
    version: 1,
    trustedRoots: policy.trustedRoots.map(rootEntry),
    tcb: {
      allowedStatuses: a.allowedTcbStatuses ?? ['UpToDate'],
      ...(a.allowedAdvisoryIds ? { allowedAdvisoryIds: a.allowedAdvisoryIds } : {}),
      ...(a.minTcbEvaluationDataNumber !== undefined ? { minEvaluationDataNumber: a.minTcbEvaluationDataNumber } : {}),
    },
    allowDebug: a.allowDebug ?? false,
    measurements,
    ...(Object.keys(platform).length > 0 ? { platform } : {}),
    freshness: {
      binding: policy.freshness.binding,
      requireNonce: policy.freshness.requireNonce,
      ...(policy.freshness.maxCertAgeSeconds !== undefined ? { maxCertAgeSeconds: policy.freshness.maxCertAgeSeconds } : {}),
      maxConnectionAge: policy.freshness.maxConnectionAgeSeconds,
    },
  };
  if (Object.keys(policy.collateral).length > 0) doc.collateral = { ...policy.collateral };
  const body = stringifyYaml(doc, { lineWidth: 0 });
  // YAML also breaks lines at CR, NEL and U+2028/9: split on all of them and drop other controls,
  // so text in the comment (URLs, file names) can never become a key
  const head = comment
    ? comment
        .split(/\r\n|[\n\r\u0085\u2028\u2029]/)
        .map((l) => `# ${l.replace(/[\x00-\x1f\x7f-\x9f]/g, '?')}`.trimEnd())
        .join('\n') + '\n'
    : '';
  return head + body;
}
