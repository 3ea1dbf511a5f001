/**
 * RFC 8785 JSON Canonicalization Scheme for the values event logs carry: objects, arrays, strings,
 * booleans, null and safe integers. Keys are sorted by UTF-16 code units and strings are escaped as
 * ECMAScript's JSON.stringify does, which is what RFC 8785 specifies; other numbers are refused
 * (their canonical form needs the full ECMAScript number serialisation, which no event needs).
 * Browser-safe.
 */
import { RatlsError } from '../core/errors.ts';

/** A JSON value an event may carry. */
export type JcsValue = null | boolean | number | string | JcsValue[] | { [key: string]: JcsValue };

/** The canonical text of `v`. Throws RatlsError EVENTLOG_MALFORMED for values outside the subset. */
export function canonicalJson(v: unknown, depth = 0): string {
  if (depth > 16) throw new RatlsError('EVENTLOG_MALFORMED', 'An event value is nested more than 16 levels deep.');
  if (v === null) return 'null';
  if (typeof v === 'boolean') return v ? 'true' : 'false';
  if (typeof v === 'number') {
    if (!Number.isSafeInteger(v)) throw new RatlsError('EVENTLOG_MALFORMED', `An event value holds the number ${v}; only whole numbers up to 2^53 are used.`);
    return String(v);
  }
  if (typeof v === 'string') return JSON.stringify(v);
  if (Array.isArray(v)) return `[${v.map((x) => canonicalJson(x, depth + 1)).join(',')}]`;
  if (typeof v === 'object') {
    const o = v as Record<string, unknown>;
    // Default sort compares UTF-16 code units, exactly RFC 8785's order.
    const keys = Object.keys(o)
      .filter((k) => o[k] !== undefined)
      .sort();
    return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(o[k], depth + 1)}`).join(',')}}`;
  }
  throw new RatlsError('EVENTLOG_MALFORMED', `An event value of type ${typeof v} cannot be canonicalised.`);
}
