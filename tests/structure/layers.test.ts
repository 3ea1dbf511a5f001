/**
 * The source folders form a staircase: a module may import from its own folder or from a lower
 * floor, never from a higher one or from a sibling on the same floor, and no chain of imports
 * comes back to where it started. docs/architecture.md explains each floor.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const SRC = fileURLToPath(new URL('../../src/', import.meta.url));

/** Folder (or top-level file) -> floor. Higher floors may use lower ones. */
export const FLOORS: Record<string, number> = {
  core: 0,
  quote: 1,
  verify: 2,
  // Event-log parsing, replay and the workload report: browser-safe like verify, and needed by the
  // RA-TLS check (floor 4) and the clients; it uses only core, so it sits beside verify, not in it.
  eventlog: 2,
  collateral: 3,
  ratls: 4,
  tee: 5,
  policy: 6,
  token: 6,
  // the demo apps (open-webui- and Ollama-shaped) stand beside the product: only core/ and node:
  demo: 6,
  client: 7,
  proxy: 7,
  service: 7,
  cli: 8,
  api: 8,
  'index.ts': 9,
};

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) return sourceFiles(p);
    return p.endsWith('.ts') ? [p] : [];
  });
}

/** Relative specifiers of static imports, re-exports and dynamic imports. */
export function importsOf(text: string): string[] {
  const out: string[] = [];
  const re = /(?:\bfrom\s*|\bimport\s*\(\s*|^\s*import\s+)['"](\.{1,2}\/[^'"]+)['"]/gm;
  for (const m of text.matchAll(re)) out.push(m[1]!);
  return out;
}

function room(file: string): string {
  return relative(SRC, file).split('/')[0]!;
}

const files = sourceFiles(SRC);
const edges = new Map<string, string[]>(files.map((f) => [f, importsOf(readFileSync(f, 'utf8')).map((spec) => resolve(dirname(f), spec))]));

describe('source layering', () => {
  it('gives every source folder a floor', () => {
    const rooms = [...new Set(files.map(room))].sort();
    expect(rooms.filter((r) => FLOORS[r] === undefined)).toEqual([]);
  });

  it('has no import that climbs a floor or crosses to a sibling on the same floor', () => {
    const bad: string[] = [];
    for (const [from, targets] of edges) {
      const a = room(from);
      for (const to of targets) {
        const b = room(to);
        if (a === b) continue;
        if (FLOORS[b]! >= FLOORS[a]!) bad.push(`${relative(SRC, from)} -> ${relative(SRC, to)} (floor ${FLOORS[a]} -> ${FLOORS[b]})`);
      }
    }
    expect(bad).toEqual([]);
  });

  it('has no import cycle between files', () => {
    const cycles: string[] = [];
    const state = new Map<string, 'open' | 'done'>();
    const stack: string[] = [];
    const visit = (f: string): void => {
      state.set(f, 'open');
      stack.push(f);
      for (const t of edges.get(f) ?? []) {
        if (!edges.has(t)) continue;
        if (state.get(t) === 'open')
          cycles.push(
            stack
              .slice(stack.indexOf(t))
              .concat(t)
              .map((x) => relative(SRC, x))
              .join(' -> '),
          );
        else if (!state.has(t)) visit(t);
      }
      stack.pop();
      state.set(f, 'done');
    };
    for (const f of edges.keys()) if (!state.has(f)) visit(f);
    expect(cycles).toEqual([]);
  });

  it('reads imports the way the checks above need', () => {
    const text = "import { a } from '../core/x.ts';\nexport { b } from './y.ts';\nconst m = await import('../tee/z.ts');\nimport './side.ts';";
    expect(importsOf(text)).toEqual(['../core/x.ts', './y.ts', '../tee/z.ts', './side.ts']);
  });
});
