/** The proxy's own version, as a measured event records it. Node-only. */
import { readFileSync } from 'node:fs';

let cached: string | undefined;

/** The package version from package.json (two levels up from src/proxy and from dist/proxy). */
export function proxyVersion(): string {
  if (cached) return cached;
  try {
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version?: unknown };
    cached = typeof pkg.version === 'string' && pkg.version ? pkg.version : 'unknown';
  } catch {
    cached = 'unknown';
  }
  return cached;
}
