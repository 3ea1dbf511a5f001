/**
 * Bearer access tokens the operator configures (the Ollama listener's): read from a file or an
 * environment variable, never from a flag (flags show in `ps`), refused when short, guessable or
 * readable by others, and compared in constant time. Node-only (reads files).
 */
import { readFileSync, statSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { RatlsError } from './errors.ts';
import { constantTimeEqual } from './bytes.ts';
import { distrust } from './trusted-path.ts';

/** Shortest token accepted, in characters. */
export const MIN_TOKEN_LENGTH = 32;
/** Least entropy a token's length and alphabet can carry, in bits (see {@link estimatedBits}). */
export const MIN_TOKEN_BITS = 128;

/** RFC 6750 b64token: what fits in `Authorization: Bearer ...` without quoting. */
const B64TOKEN = /^[A-Za-z0-9\-._~+/]+=*$/;
const GENERATE = 'generate one with `openssl rand -hex 32`';

/** Where a token comes from. */
export interface AccessTokenSource {
  /** A file holding the token (trailing newline allowed); must not be readable by group or others. */
  file?: string;
  /** The environment variable that holds the token itself. */
  envName?: string;
  env?: NodeJS.ProcessEnv;
  /** What the token protects, for messages ("the Ollama listener"). */
  what: string;
}

/** Least Shannon entropy per character of the token's own characters (a spread, not a count). */
export const MIN_BITS_PER_CHAR = 2.5;

/**
 * The most entropy `token` can carry, in bits: its length times log2 of the smallest usual alphabet
 * its characters fit in (digits 10, hex 16, letters and digits 62, base64 64). 32 random hex
 * characters give exactly 128. An upper bound by design: chance alone never pushes a random token
 * under it, which an estimate from the token's own character counts would (short random tokens
 * repeat characters).
 */
export function estimatedBits(token: string): number {
  const alphabet = /^[0-9]*$/.test(token) ? 10 : /^[0-9a-f]*$/.test(token) || /^[0-9A-F]*$/.test(token) ? 16 : /^[0-9A-Za-z]*$/.test(token) ? 62 : 64;
  return token.length * Math.log2(alphabet);
}

/**
 * The Shannon entropy of the token's character distribution, per character: near 4 for random
 * hex, near 5 for random base64 of 32 characters, 0 for one repeated character. Catches tokens of
 * few distinct characters ("abababab...") that the alphabet bound accepts.
 */
export function bitsPerChar(token: string): number {
  const counts = new Map<string, number>();
  for (const ch of token) counts.set(ch, (counts.get(ch) ?? 0) + 1);
  let perChar = 0;
  for (const n of counts.values()) {
    const p = n / token.length;
    perChar -= p * Math.log2(p);
  }
  return perChar;
}

/**
 * True for tokens made by a rule rather than chance: a shorter string repeated ("0123456789" four
 * times), or at least three quarters steps of -1, 0 or +1 between neighbours ("abcd...",
 * "aabbcc..."). Random hex has such steps about a sixth of the time, so at three quarters chance
 * never refuses one (half, the first rule tried, refused about one 32-character hex token in 50,000).
 */
export function patterned(token: string): boolean {
  for (let p = 1; p <= token.length / 2; p++) {
    if (token.length % p === 0 && token.slice(0, p).repeat(token.length / p) === token) return true;
  }
  let steps = 0;
  for (let i = 1; i < token.length; i++) if (Math.abs(token.charCodeAt(i) - token.charCodeAt(i - 1)) <= 1) steps++;
  return steps * 4 >= (token.length - 1) * 3;
}

/**
 * Refuses a token that is not a b64token, shorter than {@link MIN_TOKEN_LENGTH}, below
 * {@link MIN_TOKEN_BITS} or {@link patterned}. The messages never contain the token.
 * @throws RatlsError ACCESS_TOKEN_INVALID
 */
export function checkAccessToken(token: string, what: string): void {
  if (!B64TOKEN.test(token)) {
    throw new RatlsError(
      'ACCESS_TOKEN_INVALID',
      `The access token of ${what} has characters a Bearer token cannot carry (allowed: letters, digits, - . _ ~ + / and trailing =); ${GENERATE}.`,
    );
  }
  if (token.length < MIN_TOKEN_LENGTH) {
    throw new RatlsError(
      'ACCESS_TOKEN_INVALID',
      `The access token of ${what} has ${token.length} characters; at least ${MIN_TOKEN_LENGTH} are required: ${GENERATE}.`,
    );
  }
  if (estimatedBits(token) < MIN_TOKEN_BITS || bitsPerChar(token) < MIN_BITS_PER_CHAR || patterned(token)) {
    throw new RatlsError(
      'ACCESS_TOKEN_INVALID',
      `The access token of ${what} looks guessable (repeated or patterned characters; at least ${MIN_TOKEN_BITS} bits of entropy are required); ${GENERATE}.`,
    );
  }
}

/**
 * Reads and checks the token from a file or an environment variable (exactly one of them set).
 * @throws RatlsError ACCESS_TOKEN_MISSING (none, both, unreadable, empty) or ACCESS_TOKEN_INVALID
 *   (weak, or a file readable by group or others)
 */
export function loadAccessToken(src: AccessTokenSource): string {
  const fromEnv = src.envName ? src.env?.[src.envName] : undefined;
  if (src.file && fromEnv !== undefined) {
    throw new RatlsError(
      'ACCESS_TOKEN_MISSING',
      `${cap(src.what)} has a token file (${src.file}) and the environment variable ${src.envName}; set only one, so it is clear which token is in force.`,
    );
  }
  let token: string;
  if (src.file) {
    let text: string;
    try {
      text = readFileSync(src.file, 'utf8');
    } catch (err) {
      throw new RatlsError(
        'ACCESS_TOKEN_MISSING',
        `Cannot read the access token file of ${src.what} (${src.file}): ${(err as NodeJS.ErrnoException).code ?? 'error'}.`,
      );
    }
    // a token others could write (or swap) is a token they chose: docs/security.md, "Files ratls trusts"
    const d = distrust(src.file, 'file', { kind: 'config' });
    if (d) throw new RatlsError('PATH_UNTRUSTED', `The access token file of ${src.what} ${src.file} ${d.problem}. ${d.fix}`);
    // a secret others could read may already have leaked: refuse rather than fix the mode
    const mode = statSync(src.file).mode;
    if (process.platform !== 'win32' && (mode & 0o077) !== 0) {
      throw new RatlsError(
        'ACCESS_TOKEN_INVALID',
        `The access token file ${src.file} is readable by group or others (mode ${(mode & 0o777).toString(8)}); chmod 600 it, and replace the token if others may have read it.`,
      );
    }
    token = text.trim();
  } else if (fromEnv !== undefined) {
    token = fromEnv.trim();
  } else {
    throw new RatlsError(
      'ACCESS_TOKEN_MISSING',
      `${cap(src.what)} needs an access token and has none: put one in a file (mode 600) and name it${src.envName ? `, or set ${src.envName}` : ''}; ${GENERATE}.`,
    );
  }
  if (token.length === 0) throw new RatlsError('ACCESS_TOKEN_MISSING', `The access token of ${src.what} is empty; ${GENERATE}.`);
  checkAccessToken(token, src.what);
  return token;
}

/**
 * A constant-time check of `Authorization` header values against one token. Both sides are hashed
 * first, so neither the content nor the length of the token leaks through timing.
 */
export function bearerMatcher(token: string): (authorization: string | undefined) => 'ok' | 'missing' | 'wrong' {
  const sha = (s: string) => new Uint8Array(createHash('sha256').update(s, 'utf8').digest());
  const expected = sha(token);
  return (authorization) => {
    const m = authorization === undefined ? null : /^Bearer[ ]+(\S+)\s*$/i.exec(authorization);
    if (!m) return authorization === undefined ? 'missing' : 'wrong';
    return constantTimeEqual(sha(m[1]!), expected) ? 'ok' : 'wrong';
  };
}

function cap(s: string): string {
  return s.charAt(0).toUpperCase() + s.slice(1);
}
