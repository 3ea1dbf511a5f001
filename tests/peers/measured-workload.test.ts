/**
 * The measured workload against the real programs: `ratls serve` in front of the real open-webui,
 * reading the real Ollama's models. `ratls verify` must list both tiny models with the digests Ollama
 * reports (each the SHA-256 of the model's manifest file, which lists the GGUF layer) and the versions
 * open-webui and Ollama report themselves, all replayed from the runtime log into RTMR3.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.ts';
import { peers } from './context.ts';

const P = peers();

interface VerifyJson {
  ok: boolean;
  errors: Array<{ code: string; message: string }>;
  workload?: {
    binding: string;
    runtime: {
      covered: number;
      pending: number;
      openWebui?: { version: string };
      ollama?: { version: string };
      models: Array<{ name: string; digest: string; family?: string }>;
    };
  };
}

/** `ratls verify --json` until the runtime log holds what `done` wants (the server polls every second). */
async function verifyUntil(done: (j: VerifyJson) => boolean): Promise<VerifyJson> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const r = await runCli('verify', P.serveUrl, '--root', P.rootFile, '--json');
    const j = JSON.parse(r.out) as VerifyJson;
    if (done(j) || Date.now() > deadline) return j;
    await new Promise((res) => setTimeout(res, 1000));
  }
}

describe('the measured workload of the real stack', () => {
  it('ratls verify lists the real models with the digests Ollama reports, and the real versions', async () => {
    const j = await verifyUntil((x) => (x.workload?.runtime.models.length ?? 0) >= P.models.length && x.workload?.runtime.openWebui !== undefined);
    expect(j.errors).toEqual([]);
    expect(j.ok).toBe(true);
    expect(j.workload!.binding).toBe('rtmr3');
    const rt = j.workload!.runtime;
    expect(rt.models.map((m) => [m.name, m.digest]).sort()).toEqual(P.models.map((m) => [m.name, m.digest]).sort());
    expect(rt.models.every((m) => m.family === 'llama')).toBe(true);
    expect(rt.openWebui!.version).toBe(P.openWebuiVersion);
    expect(rt.ollama!.version).toBe(P.ollamaVersion);
  });

  it("Ollama's digest is the SHA-256 of the manifest file, which names the GGUF weights", () => {
    for (const m of P.models) {
      const [name, tag] = m.name.split(':') as [string, string];
      const manifest = readFileSync(join(P.ollamaModelsDir, 'manifests', 'registry.ollama.ai', 'library', name, tag));
      expect(createHash('sha256').update(manifest).digest('hex')).toBe(m.digest);
      expect(manifest.toString('utf8')).toContain(`sha256:${m.ggufSha256}`);
    }
  });

  it('a policy pinning one of the models refuses the server, naming the other', async () => {
    const first = P.models[0]!;
    const { mkdtempSync, writeFileSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const f = join(mkdtempSync(join(tmpdir(), 'ratls-peers-policy-')), 'policy.yaml');
    writeFileSync(
      f,
      `trustedRoots: [${JSON.stringify(P.rootFile)}]\ncollateral: { offline: true }\nworkload:\n  models:\n    allowed: ["${first.name}@${first.digest}"]\n`,
    );
    const r = await runCli('verify', P.serveUrl, '--policy', f, '--json');
    expect(r.code).toBe(1);
    const j = JSON.parse(r.out) as VerifyJson;
    expect(j.errors.map((e) => e.code)).toEqual(['WORKLOAD_MODEL_NOT_ALLOWED']);
    expect(j.errors[0]!.message).toContain(P.models[1]!.name);
  });
});
