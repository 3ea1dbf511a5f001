/**
 * The demo's model catalogue: entries shaped like Ollama's /api/tags (name, digest, size, details)
 * and the canned answer each model "generates". No weights anywhere; the digest is a SHA-256 of a
 * manifest-like description, so two models (and a pulled one) have distinct, stable digests.
 */
import { createHash } from 'node:crypto';

/** One model as Ollama lists it. */
export interface DemoModel {
  /** Full name with tag, e.g. "ratls-demo:latest". */
  name: string;
  /** Lower-case SHA-256 hex, 64 characters, no "sha256:" prefix (as /api/tags shows it). */
  digest: string;
  size: number;
  modifiedAt: string;
  family: string;
  parameterSize: string;
  quantizationLevel: string;
  format: string;
}

/** Normalises a model name as Ollama does for lookups: a missing tag means ":latest". */
export function modelName(name: string): string {
  const n = name.trim();
  return /:[^/]+$/.test(n) ? n : `${n}:latest`;
}

/** A catalogue entry for `name`; everything else is derived from it, deterministically. */
export function demoModel(name: string, opts: Partial<Omit<DemoModel, 'name' | 'digest'>> = {}): DemoModel {
  const full = modelName(name);
  const family = opts.family ?? 'llama';
  const parameterSize = opts.parameterSize ?? '1.2B';
  const quantizationLevel = opts.quantizationLevel ?? 'Q4_K_M';
  const manifest = JSON.stringify({ schema: 'ratls-demo-model/1', name: full, family, parameterSize, quantizationLevel });
  const digest = createHash('sha256').update(manifest).digest('hex');
  return {
    name: full,
    digest,
    // a plausible GGUF size for the parameter count and quantisation, stable per name
    size: opts.size ?? 700_000_000 + (parseInt(digest.slice(0, 6), 16) % 100_000_000),
    modifiedAt: opts.modifiedAt ?? '2026-01-15T09:30:00.000Z',
    family,
    parameterSize,
    quantizationLevel,
    format: opts.format ?? 'gguf',
  };
}

/** The two models a fresh demo backend holds. */
export function defaultDemoModels(): DemoModel[] {
  return [
    demoModel('ratls-demo:latest', { parameterSize: '3.2B', quantizationLevel: 'Q4_K_M', size: 2_019_393_189 }),
    demoModel('ratls-demo:mini', { parameterSize: '1.2B', quantizationLevel: 'Q8_0', size: 1_321_098_329 }),
  ];
}

/** The /api/tags entry of a model. */
export function tagsEntry(m: DemoModel): Record<string, unknown> {
  return {
    name: m.name,
    model: m.name,
    modified_at: m.modifiedAt,
    size: m.size,
    digest: m.digest,
    details: {
      parent_model: '',
      format: m.format,
      family: m.family,
      families: [m.family],
      parameter_size: m.parameterSize,
      quantization_level: m.quantizationLevel,
    },
  };
}

/** The answer, split into the "tokens" that are streamed one by one. */
export function replyTokens(model: string, prompt: string): string[] {
  const said = prompt.trim().slice(0, 200) || '(nothing)';
  const text = `You said: "${said}". This answer was streamed token by token by the demo model ${model} through the attested TLS proxy.`;
  return text.split(/(?<= )/);
}

/** The last user message of an Ollama/OpenAI chat body, or the prompt of a generate body. */
export function lastUserText(body: Record<string, unknown>): string {
  if (typeof body.prompt === 'string') return body.prompt;
  const msgs = Array.isArray(body.messages) ? (body.messages as unknown[]) : [];
  for (let i = msgs.length - 1; i >= 0; i--) {
    const m = msgs[i] as { role?: unknown; content?: unknown } | null;
    if (!m || m.role !== 'user') continue;
    if (typeof m.content === 'string') return m.content;
    // OpenAI content parts: [{type: 'text', text}]
    if (Array.isArray(m.content)) {
      return (m.content as Array<{ type?: unknown; text?: unknown }>)
        .filter((p) => p && p.type === 'text' && typeof p.text === 'string')
        .map((p) => p.text as string)
        .join(' ');
    }
  }
  return '';
}
