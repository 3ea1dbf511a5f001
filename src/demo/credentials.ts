/**
 * The demo admin's credentials: made at random on first start and kept in a state directory
 * (`api-key`, `admin-password`, mode 0600), so shell commands can read them
 * (`KEY=$(cat .ratls/demo/api-key)`) and they survive restarts. Nothing is fixed in the code: a
 * demo reachable from elsewhere does not come with a published password.
 */
import { mkdir, readFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { writeSecretFile } from '../core/secret-file.ts';
import { newApiKey } from './auth.ts';

/** The demo's admin account. */
export interface DemoCredentials {
  name: string;
  email: string;
  password: string;
  /** open-webui API key (sk-...) of the admin. */
  apiKey: string;
}

/** Where the credentials came from, for the banner. */
export interface LoadedCredentials {
  credentials: DemoCredentials;
  /** Files holding them, or undefined when they could not be written (kept in memory only). */
  files?: { apiKey: string; password: string };
  created: boolean;
  /** Why they are not persisted, when they are not. */
  warning?: string;
}

export const DEMO_ADMIN_EMAIL = 'admin@example.com';
export const DEMO_ADMIN_NAME = 'Demo Admin';

async function readIf(path: string): Promise<string | undefined> {
  try {
    return (await readFile(path, 'utf8')).trim();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

/**
 * Reads the credentials from `dir`, or makes new ones and writes them there. When `dir` is
 * undefined or cannot be written, the new credentials live in memory only (and `warning` says why).
 */
export async function loadOrCreateDemoCredentials(dir: string | undefined): Promise<LoadedCredentials> {
  const fresh = (): DemoCredentials => ({
    name: DEMO_ADMIN_NAME,
    email: DEMO_ADMIN_EMAIL,
    password: randomBytes(12).toString('base64url'),
    apiKey: newApiKey(),
  });
  if (!dir) return { credentials: fresh(), created: true, warning: 'no state directory given' };
  const files = { apiKey: join(dir, 'api-key'), password: join(dir, 'admin-password') };
  const [apiKey, password] = await Promise.all([readIf(files.apiKey), readIf(files.password)]);
  if (apiKey !== undefined && password !== undefined) {
    if (!/^sk-[0-9a-f]{32}$/.test(apiKey)) throw new Error(`${files.apiKey} does not hold an API key (sk- and 32 hex digits); delete it to make a new one.`);
    if (password.length === 0 || password.length > 1024) throw new Error(`${files.password} does not hold a password; delete it to make a new one.`);
    return { credentials: { name: DEMO_ADMIN_NAME, email: DEMO_ADMIN_EMAIL, password, apiKey }, files, created: false };
  }
  const credentials = fresh();
  try {
    await mkdir(dir, { recursive: true, mode: 0o700 });
    await writeSecretFile(files.password, `${credentials.password}\n`);
    await writeSecretFile(files.apiKey, `${credentials.apiKey}\n`);
  } catch (err) {
    return { credentials, created: true, warning: `cannot write ${dir} (${(err as NodeJS.ErrnoException).code ?? String(err)})` };
  }
  return { credentials, files, created: true };
}
