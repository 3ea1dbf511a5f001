/**
 * deploy/compose.yaml and the Dockerfile as the deploy tests read them: compose interpolation with
 * deploy/.env.example, and the Dockerfile's user, environment, state directory and entry point.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';

export const ROOT = join(import.meta.dirname, '../..');
export const read = (p: string): string => readFileSync(join(ROOT, p), 'utf8');

/** The variables of deploy/.env.example, plus a secret key (the example leaves it empty). */
export function exampleEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const line of read('deploy/.env.example').split('\n')) {
    const m = /^([A-Z_]+)=(.*)$/.exec(line.trim());
    if (m) env[m[1]!] = m[2]!;
  }
  env.WEBUI_SECRET_KEY = 'test-secret';
  return env;
}

/** Compose interpolation: ${VAR}, ${VAR:-default}, ${VAR:?error}. */
export function interpolate(text: string, env: Record<string, string>): string {
  return text.replace(/\$\{([A-Z_]+)(?::([-?])([^}]*))?\}/g, (_m, name: string, op?: string, arg?: string) => {
    const v = env[name];
    if (v !== undefined && v !== '') return v;
    if (op === '?') throw new Error(`${name}: ${arg}`);
    return op === '-' ? (arg ?? '') : '';
  });
}

export interface Service {
  environment?: Record<string, string>;
  ports?: string[];
  volumes?: string[];
  user?: string;
  read_only?: boolean;
  cap_drop?: string[];
  security_opt?: string[];
  tmpfs?: string[];
  healthcheck?: unknown;
}

export function compose(env: Record<string, string>): { services: Record<string, Service> } {
  return parseYaml(interpolate(read('deploy/compose.yaml'), env)) as { services: Record<string, Service> };
}

/** What the final stage of the Dockerfile sets up for the proxy. */
export interface ImageFacts {
  /** USER of the final stage. */
  user: string;
  /** ENV of the final stage. */
  env: Record<string, string>;
  /** The state directory the image creates: path, owner, group and mode from its RUN line. */
  stateDir: { path: string; owner: string; group: string; mode: number };
  entrypoint: string[];
  /** The HEALTHCHECK's CMD (exec form). */
  healthcheck: string[];
}

export function imageFacts(): ImageFacts {
  const df = read('Dockerfile').replace(/\\\n/g, ' ');
  const final = df.slice(df.lastIndexOf('\nFROM '));
  const env: Record<string, string> = {};
  for (const line of final.matchAll(/^ENV (.+)$/gm)) for (const kv of line[1]!.matchAll(/([A-Z_]+)=(\S+)/g)) env[kv[1]!] = kv[2]!;
  const run = /^RUN mkdir -p (\S+) && chown (\w+):(\w+) \1 && chmod ([0-7]{3,4}) \1$/m.exec(final);
  if (!run) throw new Error('Dockerfile: no "RUN mkdir -p DIR && chown U:G DIR && chmod MODE DIR" line for the state directory');
  return {
    user: /^USER (\S+)$/m.exec(final)![1]!,
    env,
    stateDir: { path: run[1]!, owner: run[2]!, group: run[3]!, mode: parseInt(run[4]!, 8) },
    entrypoint: JSON.parse(/^ENTRYPOINT (\[.*\])$/m.exec(final)![1]!) as string[],
    healthcheck: JSON.parse(/^HEALTHCHECK .*? CMD (\[.*\])$/m.exec(final)![1]!) as string[],
  };
}
