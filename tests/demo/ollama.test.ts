/**
 * The Ollama-shaped demo backend answers Ollama's routes with Ollama's shapes, checked with the
 * official `ollama` npm client (which parses them) and with raw requests for the error bodies.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Ollama } from 'ollama';
import { startDemoOllama, DEMO_OLLAMA_VERSION, type RunningDemoOllama } from '../../src/demo/ollama.ts';

let backend: RunningDemoOllama;
let ollama: Ollama;

beforeAll(async () => {
  backend = await startDemoOllama({ tokenDelayMs: 5 });
  ollama = new Ollama({ host: backend.url });
});
afterAll(() => backend?.close());

const post = (path: string, body: unknown, method = 'POST') =>
  fetch(`${backend.url}${path}`, { method, headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });

describe('demo Ollama backend', () => {
  it('lists two models with distinct SHA-256 digests and realistic details', async () => {
    const { models } = await ollama.list();
    expect(models.map((m) => m.name)).toEqual(['ratls-demo:latest', 'ratls-demo:mini']);
    for (const m of models) {
      expect(m.digest).toMatch(/^[0-9a-f]{64}$/);
      expect(m.size).toBeGreaterThan(100_000_000);
      expect(m.details).toMatchObject({ format: 'gguf', family: 'llama', families: ['llama'] });
      expect(m.details.parameter_size).toMatch(/^\d+(\.\d+)?B$/);
      expect(m.details.quantization_level).toMatch(/^Q\d/);
      expect(Number.isNaN(new Date(m.modified_at).getTime())).toBe(false);
    }
    expect(models[0]!.digest).not.toBe(models[1]!.digest);
    expect(await ollama.version()).toEqual({ version: DEMO_OLLAMA_VERSION });
    expect(await (await fetch(backend.url)).text()).toBe('Ollama is running');
  });

  it('streams chat and generate as NDJSON, token by token, ending with done and the counts', async () => {
    const parts: string[] = [];
    let last: Awaited<ReturnType<typeof ollama.chat>> | undefined;
    for await (const p of await ollama.chat({ model: 'ratls-demo:mini', messages: [{ role: 'user', content: 'hello there' }], stream: true })) {
      parts.push(p.message.content);
      last = p;
    }
    expect(parts.join('')).toContain('You said: "hello there"');
    expect(parts.length).toBeGreaterThan(10);
    expect(last).toMatchObject({ done: true, done_reason: 'stop', model: 'ratls-demo:mini' });
    expect(last!.eval_count).toBe(parts.filter(Boolean).length);
    const gen = await ollama.generate({ model: 'ratls-demo', prompt: 'a tag defaults to latest', stream: false });
    expect(gen.model).toBe('ratls-demo:latest');
    expect(gen.response).toContain('a tag defaults to latest');
    const r = await post('/api/generate', { model: 'ratls-demo:latest', prompt: 'x' });
    expect(r.headers.get('content-type')).toBe('application/x-ndjson');
  });

  it('answers unknown models and bad bodies with Ollama\'s {"error"} bodies', async () => {
    const chat = await post('/api/chat', { model: 'nope', messages: [{ role: 'user', content: 'x' }] });
    expect(chat.status).toBe(404);
    expect(await chat.json()).toEqual({ error: 'model "nope:latest" not found, try pulling it first' });
    const show = await post('/api/show', { model: 'nope' });
    expect(show.status).toBe(404);
    expect(await show.json()).toEqual({ error: "model 'nope:latest' not found" });
    const noModel = await post('/api/generate', { prompt: 'x' });
    expect(noModel.status).toBe(400);
    expect(await noModel.json()).toEqual({ error: 'model is required' });
    const notJson = await fetch(`${backend.url}/api/chat`, { method: 'POST', body: '{"model": ' });
    expect(notJson.status).toBe(400);
    expect(((await notJson.json()) as { error: string }).error).toMatch(/JSON/);
    const missing = await fetch(`${backend.url}/api/nothing`);
    expect(missing.status).toBe(404);
    expect(await missing.text()).toBe('404 page not found');
  });

  it('pull streams progress like Ollama and adds the model; delete removes it', async () => {
    const statuses: string[] = [];
    for await (const p of await ollama.pull({ model: 'llama3.2:1b', stream: true })) statuses.push(p.status);
    expect(statuses[0]).toBe('pulling manifest');
    expect(statuses.some((s) => /^pulling [0-9a-f]{12}$/.test(s))).toBe(true);
    expect(statuses.slice(-3)).toEqual(['verifying sha256 digest', 'writing manifest', 'success']);
    const pulled = (await ollama.list()).models.find((m) => m.name === 'llama3.2:1b');
    expect(pulled?.digest).toMatch(/^[0-9a-f]{64}$/);
    const show = await ollama.show({ model: 'llama3.2:1b' });
    expect(show.details.family).toBe('llama');
    expect(show.capabilities).toContain('completion');
    await ollama.delete({ model: 'llama3.2:1b' });
    expect((await ollama.list()).models.map((m) => m.name)).not.toContain('llama3.2:1b');
    const again = await post('/api/delete', { model: 'llama3.2:1b' }, 'DELETE');
    expect(again.status).toBe(404);
    const bad = await post('/api/pull', { model: '../../etc:x' });
    expect(bad.status).toBe(400);
  });

  it('stops streaming when the client leaves', async () => {
    const slow = await startDemoOllama({ tokenDelayMs: 200 });
    try {
      const ac = new AbortController();
      const r = await fetch(`${slow.url}/api/chat`, {
        method: 'POST',
        body: JSON.stringify({ model: 'ratls-demo:latest', messages: [{ role: 'user', content: 'long' }] }),
        signal: ac.signal,
      });
      const reader = r.body!.getReader();
      await reader.read();
      expect(slow.activeStreams()).toBe(1);
      ac.abort();
      // 25 tokens at 200 ms would take 5 s; leaving ends the stream at the next token
      const t0 = Date.now();
      while (slow.activeStreams() > 0 && Date.now() - t0 < 3000) await new Promise((res) => setTimeout(res, 20));
      expect(slow.activeStreams()).toBe(0);
      expect(Date.now() - t0).toBeLessThan(2000);
      expect((await fetch(`${slow.url}/api/version`)).status).toBe(200);
    } finally {
      await slow.close();
    }
  });

  it('speaks the OpenAI-compatible /v1 routes as Ollama does', async () => {
    const models = (await (await fetch(`${backend.url}/v1/models`)).json()) as { object: string; data: Array<{ id: string }> };
    expect(models.object).toBe('list');
    expect(models.data.map((m) => m.id)).toContain('ratls-demo:latest');
    const r = await post('/v1/chat/completions', { model: 'ratls-demo:latest', messages: [{ role: 'user', content: 'sse' }], stream: true });
    expect(r.headers.get('content-type')).toBe('text/event-stream');
    const text = await r.text();
    expect(text.trim().endsWith('data: [DONE]')).toBe(true);
  });
});
