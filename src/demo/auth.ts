/**
 * Users and authentication of the open-webui-shaped demo, following open-webui's rules: a login
 * returns an HS256 JWT (also set as the `token` cookie); API keys are `sk-` followed by 32 hex
 * digits; a request is authenticated by `Authorization: Bearer <jwt|sk-key>` or the `token` cookie;
 * failures are 401/403 with open-webui's `{"detail": ...}` sentences.
 */
import { createHash, createHmac, randomBytes, randomUUID, scryptSync, timingSafeEqual } from 'node:crypto';
import type * as http from 'node:http';
import { HttpReply } from './http.ts';

export type DemoRole = 'admin' | 'user' | 'pending';

/** A user as the API shows it (no secrets). */
export interface DemoUser {
  id: string;
  name: string;
  email: string;
  role: DemoRole;
  createdAt: number;
}

interface StoredUser extends DemoUser {
  salt: Buffer;
  passwordHash: Buffer;
  apiKey?: string;
}

/** open-webui's own sentences, so clients written against it read the same errors. */
export const MESSAGES = {
  notAuthenticated: 'Not authenticated',
  unauthorized: '401 Unauthorized',
  invalidToken: 'Your session has expired or the token is invalid. Please sign in again.',
  invalidCredentials: 'The email or password provided is incorrect. Please check for typos and try logging in again.',
  accessProhibited: 'You do not have permission to access this resource. Please contact your administrator for assistance.',
  emailTaken: 'Uh-oh! This email is already registered. Sign in with your existing account or choose another email to start anew.',
  invalidEmail: "The email format you entered is invalid. Please double-check and make sure you're using a valid email address (e.g., yourname@example.com).",
  apiKeyNotAllowed: 'Use of API key is not enabled in the environment.',
  apiKeyNotFound: "Oops! It looks like there's a hiccup. The API key is missing. Please make sure to provide a valid API key to access this feature.",
} as const;

const TOKEN_LIFETIME_S = 4 * 7 * 24 * 3600; // open-webui's default JWT_EXPIRES_IN: 4w
const MAX_TOKEN_CHARS = 4096;
const EMAIL_RE = /^[^\s@]{1,64}@[^\s@]{1,255}\.[^\s@]{1,63}$/;
const API_KEY_RE = /^sk-[0-9a-f]{32}$/;

const b64url = (b: Buffer | string) => Buffer.from(b).toString('base64url');

function hashPassword(password: string, salt: Buffer): Buffer {
  return scryptSync(password, salt, 32);
}

/** A new API key in open-webui's format. */
export function newApiKey(): string {
  return `sk-${randomBytes(16).toString('hex')}`;
}

/** The in-memory user store and token signer of one demo instance. */
export class DemoAuth {
  private readonly users = new Map<string, StoredUser>();
  private readonly byApiKeyHash = new Map<string, string>();
  private readonly revoked = new Set<string>();
  private readonly secret = randomBytes(32);

  constructor(private readonly opts: { defaultRole: DemoRole; enableSignup: boolean; enableApiKeys: boolean }) {}

  /** Creates a user; the first one is the admin, as in open-webui. */
  addUser(input: { name: string; email: string; password: string; role?: DemoRole; apiKey?: string }): DemoUser {
    const email = input.email.trim().toLowerCase();
    if (!EMAIL_RE.test(email)) throw new HttpReply(400, { detail: MESSAGES.invalidEmail });
    if ([...this.users.values()].some((u) => u.email === email)) throw new HttpReply(400, { detail: MESSAGES.emailTaken });
    if (input.password.length === 0 || input.password.length > 1024) throw new HttpReply(400, { detail: 'Password must be 1 to 1024 characters.' });
    const salt = randomBytes(16);
    const user: StoredUser = {
      id: randomUUID(),
      name: input.name.trim() || email,
      email,
      role: input.role ?? (this.users.size === 0 ? 'admin' : this.opts.defaultRole),
      createdAt: Math.floor(Date.now() / 1000),
      salt,
      passwordHash: hashPassword(input.password, salt),
    };
    this.users.set(user.id, user);
    if (input.apiKey) this.setApiKey(user.id, input.apiKey);
    return publicUser(user);
  }

  /** open-webui's signup: open while there are no users, afterwards only when signup is enabled. */
  signup(input: { name: string; email: string; password: string }): DemoUser {
    if (this.users.size > 0 && !this.opts.enableSignup) throw new HttpReply(403, { detail: MESSAGES.accessProhibited });
    return this.addUser(input);
  }

  /** Checks email and password; wrong ones get open-webui's 400. */
  signin(email: string, password: string): DemoUser {
    const wanted = email.trim().toLowerCase();
    const user = [...this.users.values()].find((u) => u.email === wanted);
    // hash even for unknown emails so timing does not tell which emails exist
    const salt = user?.salt ?? randomBytes(16);
    const got = hashPassword(password, salt);
    if (!user || !timingSafeEqual(got, user.passwordHash)) throw new HttpReply(400, { detail: MESSAGES.invalidCredentials });
    return publicUser(user);
  }

  /** A signed session token (HS256 JWT) for `user`. */
  issueToken(user: DemoUser): { token: string; expiresAt: number } {
    const iat = Math.floor(Date.now() / 1000);
    const exp = iat + TOKEN_LIFETIME_S;
    const head = b64url(JSON.stringify({ alg: 'HS256', typ: 'JWT' }));
    const body = b64url(JSON.stringify({ id: user.id, typ: 'session', exp, jti: randomUUID(), iat }));
    const sig = b64url(createHmac('sha256', this.secret).update(`${head}.${body}`).digest());
    return { token: `${head}.${body}.${sig}`, expiresAt: exp };
  }

  /** Revokes a session token (signout). */
  revoke(token: string): void {
    const claims = this.decode(token);
    if (claims) this.revoked.add(claims.jti);
  }

  /** Replaces the user's API key (open-webui keeps one per user). */
  setApiKey(userId: string, apiKey: string = newApiKey()): string {
    if (!API_KEY_RE.test(apiKey)) throw new HttpReply(400, { detail: 'API keys look like sk- followed by 32 hex digits.' });
    const user = this.users.get(userId);
    if (!user) throw new HttpReply(401, { detail: MESSAGES.invalidToken });
    if (user.apiKey) this.byApiKeyHash.delete(keyHash(user.apiKey));
    user.apiKey = apiKey;
    this.byApiKeyHash.set(keyHash(apiKey), userId);
    return apiKey;
  }

  apiKeyOf(userId: string): string | undefined {
    return this.users.get(userId)?.apiKey;
  }

  deleteApiKey(userId: string): boolean {
    const user = this.users.get(userId);
    if (!user?.apiKey) return false;
    this.byApiKeyHash.delete(keyHash(user.apiKey));
    delete user.apiKey;
    return true;
  }

  get apiKeysEnabled(): boolean {
    return this.opts.enableApiKeys;
  }

  get signupEnabled(): boolean {
    return this.opts.enableSignup;
  }

  /** The user behind a raw credential (JWT or sk- key), or the open-webui error for it. */
  userForCredential(token: string, allowApiKey = true): DemoUser {
    if (token.startsWith('sk-')) {
      // Looked up by its SHA-256, so no comparison of the secret itself depends on its bytes.
      const id = this.byApiKeyHash.get(keyHash(token));
      const user = id ? this.users.get(id) : undefined;
      if (!user || !allowApiKey) throw new HttpReply(401, { detail: MESSAGES.invalidToken });
      if (!this.opts.enableApiKeys) throw new HttpReply(403, { detail: MESSAGES.apiKeyNotAllowed });
      return publicUser(user);
    }
    const claims = this.decode(token);
    if (!claims || this.revoked.has(claims.jti)) throw new HttpReply(401, { detail: MESSAGES.unauthorized });
    const user = this.users.get(claims.id);
    if (!user) throw new HttpReply(401, { detail: MESSAGES.invalidToken });
    return publicUser(user);
  }

  /** Authenticates a request (Bearer header, else the `token` cookie); throws open-webui's 401s. */
  authenticate(req: http.IncomingMessage): DemoUser {
    const token = credentialOf(req);
    if (!token) throw new HttpReply(401, { detail: MESSAGES.notAuthenticated });
    return this.userForCredential(token);
  }

  /** A user with role user or admin (open-webui's get_verified_user). */
  verified(req: http.IncomingMessage): DemoUser {
    const u = this.authenticate(req);
    if (u.role !== 'user' && u.role !== 'admin') throw new HttpReply(401, { detail: MESSAGES.accessProhibited });
    return u;
  }

  /** An admin (open-webui's get_admin_user): others get 401 with the "no permission" sentence. */
  admin(req: http.IncomingMessage): DemoUser {
    const u = this.authenticate(req);
    if (u.role !== 'admin') throw new HttpReply(401, { detail: MESSAGES.accessProhibited });
    return u;
  }

  private decode(token: string): { id: string; jti: string } | undefined {
    if (token.length > MAX_TOKEN_CHARS) return undefined;
    const parts = token.split('.');
    if (parts.length !== 3 || !parts.every((p) => /^[A-Za-z0-9_-]+$/.test(p))) return undefined;
    const [head, body, sig] = parts as [string, string, string];
    const want = createHmac('sha256', this.secret).update(`${head}.${body}`).digest();
    const got = Buffer.from(sig, 'base64url');
    if (got.length !== want.length || !timingSafeEqual(got, want)) return undefined;
    let claims: unknown;
    try {
      const header = JSON.parse(Buffer.from(head, 'base64url').toString('utf8')) as { alg?: unknown };
      if (header.alg !== 'HS256') return undefined;
      claims = JSON.parse(Buffer.from(body, 'base64url').toString('utf8'));
    } catch {
      return undefined;
    }
    const c = claims as { id?: unknown; jti?: unknown; exp?: unknown };
    if (typeof c.id !== 'string' || typeof c.jti !== 'string' || typeof c.exp !== 'number') return undefined;
    if (c.exp * 1000 < Date.now()) return undefined;
    return { id: c.id, jti: c.jti };
  }
}

function keyHash(key: string): string {
  return createHash('sha256').update(key).digest('hex');
}

function publicUser(u: StoredUser): DemoUser {
  return { id: u.id, name: u.name, email: u.email, role: u.role, createdAt: u.createdAt };
}

/** The credential a request carries: `Authorization: Bearer X`, else the `token` cookie. */
export function credentialOf(req: http.IncomingMessage): string | undefined {
  const auth = req.headers.authorization;
  if (auth) {
    const m = /^bearer\s+(\S+)$/i.exec(auth.trim());
    if (m) return m[1];
  }
  const cookie = req.headers.cookie;
  if (cookie) {
    for (const part of cookie.split(';')) {
      const eq = part.indexOf('=');
      if (eq <= 0 || part.slice(0, eq).trim() !== 'token') continue;
      try {
        return decodeURIComponent(part.slice(eq + 1).trim()) || undefined;
      } catch {
        return undefined;
      }
    }
  }
  return undefined;
}
