/**
 * Reads what the proxy fronts, for measurement: open-webui's version (GET /api/version, no login),
 * Ollama's version (GET /api/version) and the models it holds (GET /api/tags: name, manifest digest,
 * size, format, family, parameter size, quantisation). Answers are bounded in size and time, and
 * every field is checked before it can become a measured event. Node-only.
 */
import type { ModelRecord } from '../eventlog/runtime.ts';

/** Largest answer read from an upstream (a /api/tags listing of a thousand models is ~500 KB). */
const MAX_ANSWER_BYTES = 4 * 1024 * 1024;
const MAX_MODELS = 4096;

/** What one look at the upstreams found; undefined fields could not be read this time. */
export interface UpstreamObservation {
  openWebuiVersion?: string;
  ollamaVersion?: string;
  /** Models Ollama lists now, sorted by name; undefined when /api/tags did not answer. */
  models?: ModelRecord[];
  /** Why something could not be read (for logs). */
  problems: string[];
}

async function getJson(url: string, timeoutMs: number): Promise<unknown> {
  const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs), headers: { accept: 'application/json' }, redirect: 'error' });
  if (!res.ok) {
    await res.body?.cancel();
    throw new Error(`HTTP ${res.status}`);
  }
  const len = Number(res.headers.get('content-length') ?? '0');
  if (len > MAX_ANSWER_BYTES) {
    await res.body?.cancel();
    throw new Error(`answer of ${len} bytes is too large`);
  }
  const reader = res.body?.getReader();
  if (!reader) return JSON.parse('null');
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    size += value.length;
    if (size > MAX_ANSWER_BYTES) {
      await reader.cancel();
      throw new Error('answer is too large');
    }
    chunks.push(value);
  }
  return JSON.parse(Buffer.concat(chunks).toString('utf8'));
}

const text = (v: unknown, max: number): string | undefined =>
  typeof v === 'string' && v.length > 0 && v.length <= max && !/[\u0000-\u001f\u007f]/.test(v) ? v : undefined;

function version(v: unknown): string | undefined {
  return v && typeof v === 'object' ? text((v as Record<string, unknown>).version, 128) : undefined;
}

/** One /api/tags entry as a measured model; undefined (skipped, reported) when it is not well-formed. */
export function modelFromTags(v: unknown): ModelRecord | undefined {
  if (!v || typeof v !== 'object') return undefined;
  const o = v as Record<string, unknown>;
  const name = text(o.name, 512) ?? text(o.model, 512);
  const rawDigest = typeof o.digest === 'string' ? o.digest.toLowerCase().replace(/^sha256:/, '') : '';
  const size = o.size;
  if (!name || !/^[0-9a-f]{64}$/.test(rawDigest) || typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0) return undefined;
  const m: ModelRecord = { name, digest: rawDigest, size };
  const d = o.details && typeof o.details === 'object' ? (o.details as Record<string, unknown>) : {};
  const format = text(d.format, 128);
  const family = text(d.family, 128);
  const parameterSize = text(d.parameter_size, 128);
  const quantization = text(d.quantization_level, 128);
  if (format) m.format = format;
  if (family) m.family = family;
  if (Array.isArray(d.families)) {
    const fams = d.families.map((f) => text(f, 128)).filter((f): f is string => f !== undefined);
    if (fams.length > 0 && fams.length <= 32) m.families = fams;
  }
  if (parameterSize) m.parameterSize = parameterSize;
  if (quantization) m.quantization = quantization;
  return m;
}

/** Looks at open-webui and Ollama once. Never throws; what failed is in `problems`. */
export async function observeUpstreams(urls: { openWebui?: string; ollama?: string }, timeoutMs = 5000): Promise<UpstreamObservation> {
  const out: UpstreamObservation = { problems: [] };
  const why = (what: string, err: unknown): void => void out.problems.push(`${what}: ${err instanceof Error ? err.message : String(err)}`);
  const tasks: Array<Promise<void>> = [];
  if (urls.openWebui) {
    tasks.push(
      getJson(`${urls.openWebui}/api/version`, timeoutMs).then(
        (v): void => {
          out.openWebuiVersion = version(v);
          if (!out.openWebuiVersion) out.problems.push('open-webui /api/version: no version in the answer');
        },
        (e) => why('open-webui /api/version', e),
      ),
    );
  }
  if (urls.ollama) {
    tasks.push(
      getJson(`${urls.ollama}/api/version`, timeoutMs).then(
        (v): void => {
          out.ollamaVersion = version(v);
          if (!out.ollamaVersion) out.problems.push('Ollama /api/version: no version in the answer');
        },
        (e) => why('Ollama /api/version', e),
      ),
    );
    tasks.push(
      getJson(`${urls.ollama}/api/tags`, timeoutMs).then(
        (v): void => {
          const list = v && typeof v === 'object' ? (v as Record<string, unknown>).models : undefined;
          if (!Array.isArray(list)) return void out.problems.push('Ollama /api/tags: no "models" list in the answer');
          if (list.length > MAX_MODELS) return void out.problems.push(`Ollama /api/tags: ${list.length} models, more than ${MAX_MODELS}`);
          const byName = new Map<string, ModelRecord>();
          for (const entry of list) {
            const m = modelFromTags(entry);
            if (m) byName.set(m.name, m);
            else out.problems.push('Ollama /api/tags: an entry without a valid name, digest and size was skipped');
          }
          out.models = [...byName.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
        },
        (e) => why('Ollama /api/tags', e),
      ),
    );
  }
  await Promise.all(tasks);
  return out;
}
