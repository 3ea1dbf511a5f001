/** The CLI reads the same everywhere: a flag shared by several commands has one description; --version works. */
import { describe, expect, it } from 'vitest';
import type { Command } from 'commander';
import { buildProgram, packageVersion } from '../../src/cli/main.ts';
import { runCli } from '../helpers/cli.ts';

function commands(c: Command, path: string[] = []): Array<{ name: string; cmd: Command }> {
  return c.commands.flatMap((sub) => [{ name: [...path, sub.name()].join(' '), cmd: sub }, ...commands(sub, [...path, sub.name()])]);
}

describe('ratls CLI flags', () => {
  it('gives each flag shared by several commands one wording', () => {
    const program = buildProgram({ out: () => undefined, err: () => undefined, setExitCode: () => undefined, isTty: false });
    const byFlag = new Map<string, Map<string, string[]>>();
    for (const { name, cmd } of commands(program)) {
      for (const o of cmd.options) {
        const hidden = (o as unknown as { hidden?: boolean }).hidden;
        if (hidden || !o.long) continue;
        const m = byFlag.get(o.long) ?? new Map<string, string[]>();
        m.set(o.description, [...(m.get(o.description) ?? []), name]);
        byFlag.set(o.long, m);
      }
    }
    // --upstream names two different things: a route of `serve` and the server `connect` fronts
    const DIFFERENT_MEANINGS = new Set(['--upstream']);
    const differing = [...byFlag]
      .filter(([flag, wordings]) => wordings.size > 1 && !DIFFERENT_MEANINGS.has(flag))
      .map(([flag, wordings]) => ({ flag, wordings: Object.fromEntries(wordings) }));
    expect(differing).toEqual([]);
    // and the shared ones really are shared
    const shared = [...byFlag].filter(([, w]) => [...w.values()].flat().length > 1).map(([f]) => f);
    expect(shared).toEqual(
      expect.arrayContaining(['--root', '--policy', '--json', '--at', '--listen', '--ollama', '--sim-dir', '--simulate', '--host', '--collateral']),
    );
  });

  it('ratls --version prints the package version and exits 0', async () => {
    const r = await runCli('--version');
    expect(r.code).toBe(0);
    expect(r.out).toBe(`ratls-proxy ${packageVersion()}\n`);
    expect(packageVersion()).toMatch(/^\d+\.\d+\.\d+/);
  });
});
