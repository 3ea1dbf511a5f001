/**
 * The real Ollama (built from its Go module) behind a `ratls serve` listener of its own (Host
 * rewritten, model-admin routes blocked), reached with the official `ollama` npm client over
 * attested connections: its /api/tags digests, NDJSON streaming and error shapes must arrive as
 * Ollama sends them.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { Ollama } from 'ollama';
import { createAttestedFetch } from '../../src/client/index.ts';
import { peers, peersPolicy } from './context.ts';

const P = peers();
const fetchA = createAttestedFetch(peersPolicy(P.rootPem));
const client = new Ollama({ host: P.ollamaServeUrl, fetch: fetchA });
const messages = [{ role: 'user' as const, content: 'What does the quote say?' }];

afterAll(async () => {
  await fetchA.close();
});

describe('Ollama behind ratls serve', () => {
  it('lists both tiny models with the digests Ollama itself reports', async () => {
    const direct = (await (await fetch(`${P.ollamaUrl}/api/tags`)).json()) as { models: Array<{ name: string; digest: string }> };
    const viaProxy = (await client.list()).models;
    expect(viaProxy.map((m) => [m.name, m.digest]).sort()).toEqual(direct.models.map((m) => [m.name, m.digest]).sort());
    for (const m of P.models) expect(viaProxy.find((x) => x.name === m.name)?.digest).toBe(m.digest);
    expect(P.models[0]!.digest).not.toBe(P.models[1]!.digest);
  });

  it('shows the GGUF file as the model layer (sha256 of the file we wrote)', async () => {
    for (const m of P.models) {
      const shown = await client.show({ model: m.name });
      expect(shown.details.family).toBe('llama');
      expect(shown.modelfile).toContain(`sha256-${m.ggufSha256}`);
    }
  });

  it('streams NDJSON line by line as Ollama generates, the same answer as Ollama gives directly', async () => {
    const model = P.models[1]!.name;
    const options = { num_predict: 1500 };
    const direct = (await (
      await fetch(`${P.ollamaUrl}/api/chat`, { method: 'POST', body: JSON.stringify({ model, messages, stream: false, options }) })
    ).json()) as {
      message: { content: string };
    };
    const res = await fetchA(`${P.ollamaServeUrl}/api/chat`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model, messages, options }),
    });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/x-ndjson');
    const reader = res.body!.getReader();
    const decoder = new TextDecoder();
    let text = '';
    let firstLineAt = 0;
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      text += decoder.decode(value, { stream: true });
      if (!firstLineAt && text.includes('\n')) firstLineAt = performance.now();
    }
    const lastLineAt = performance.now();
    const lines = text
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { message: { content: string }; done: boolean; eval_count?: number; eval_duration?: number; done_reason?: string });
    const last = lines.at(-1)!;
    expect(lines.length).toBe(1501);
    expect(last).toMatchObject({ done: true, done_reason: 'length', eval_count: 1500 });
    expect(lines.map((l) => l.message.content).join('')).toBe(direct.message.content);
    // A proxy that buffered the response would hand over the first line only when generation had
    // finished; streamed, it arrives while Ollama is still generating (eval_duration is Ollama's own).
    const evalMs = last.eval_duration! / 1e6;
    expect(
      lastLineAt - firstLineAt,
      `first line ${(lastLineAt - firstLineAt).toFixed(0)} ms before the end; generation took ${evalMs.toFixed(0)} ms`,
    ).toBeGreaterThan(evalMs / 5);
  });

  it('streams with the ollama client too', async () => {
    const parts = [];
    for await (const p of await client.chat({ model: P.models[0]!.name, messages, stream: true })) parts.push(p);
    expect(parts.length).toBe(13);
    expect(parts.at(-1)).toMatchObject({ done: true, eval_count: 12 });
  });

  it("passes Ollama's own error for an unknown model (status and body)", async () => {
    const body = JSON.stringify({ model: 'no-such-model', messages });
    const direct = await fetch(`${P.ollamaUrl}/api/chat`, { method: 'POST', body });
    const viaProxy = await fetchA(`${P.ollamaServeUrl}/api/chat`, { method: 'POST', body });
    expect(viaProxy.status).toBe(direct.status);
    expect(viaProxy.status).toBe(404);
    expect(await viaProxy.json()).toEqual(await direct.json());
    await expect(client.chat({ model: 'no-such-model', messages })).rejects.toMatchObject({ status_code: 404, error: "model 'no-such-model' not found" });
  });

  it("refuses Ollama's model-admin routes on this listener, and the models stay", async () => {
    for (const [path, body] of [
      ['/api/delete', { model: P.models[0]!.name }],
      ['/api/pull', { model: 'llama3' }],
      ['/api/copy', { source: P.models[0]!.name, destination: 'copied' }],
    ] as const) {
      const res = await fetchA(`${P.ollamaServeUrl}${path}`, { method: path === '/api/delete' ? 'DELETE' : 'POST', body: JSON.stringify(body) });
      expect(res.status, path).toBe(403);
      await res.arrayBuffer();
    }
    expect((await client.list()).models.length).toBe(P.models.length);
  });
});
