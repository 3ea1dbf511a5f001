/**
 * The proxy's configuration digest, recorded as a measured event (docs/eventlog.md): SHA-384 of the
 * RFC 8785 canonical JSON of the effective configuration, where non-integer numbers are written as
 * their decimal text and URLs lose any user:password part. Nothing in ServeConfig is a secret, and
 * the credential strip makes sure none slips in through a URL. Node-only.
 */
import { createHash } from 'node:crypto';
import { canonicalJson } from '../eventlog/jcs.ts';
import type { ServeConfig } from './config.ts';

function stripUserinfo(s: string): string {
  if (!/^[a-z][a-z0-9+.-]*:\/\/[^/]*@/i.test(s)) return s;
  try {
    const u = new URL(s);
    u.username = '';
    u.password = '';
    return u.toString().replace(/\/$/, s.endsWith('/') ? '/' : '');
  } catch {
    return s;
  }
}

function view(v: unknown): unknown {
  if (typeof v === 'number') return Number.isSafeInteger(v) ? v : String(v);
  if (typeof v === 'string') return stripUserinfo(v);
  if (Array.isArray(v)) return v.map(view);
  if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, view(x)]));
  return v;
}

/** The canonical text the digest is taken of (what an admin recomputes to check a pinned digest). */
export function canonicalConfig(config: ServeConfig): string {
  return canonicalJson(view(config));
}

/** Lower-case hex SHA-384 of {@link canonicalConfig}. */
export function configDigest(config: ServeConfig): string {
  return createHash('sha384').update(canonicalConfig(config)).digest('hex');
}
