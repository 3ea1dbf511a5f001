import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { fetch as undiciFetch, request } from 'undici';
import { Ollama } from 'ollama';
import OpenAI from 'openai';
import type { ServingIdentity } from '../../src/proxy/identity-source.ts';
import { startRatlsServer, type RunningRatlsServer } from '../../src/proxy/server.ts';
import { startDemoOllama, type RunningDemoOllama } from '../../src/demo/ollama.ts';
import { ENGINES, selfSignedSource, testConfig, trustingAgent } from './helpers.ts';

/** Upstream that sends one line every 50 ms until the client goes away, and reports the close. */
async function endlessUpstream() {
  const closes: number[] = [];
  const server = http.createServer((req, res) => {
    res.writeHead(200, { 'content-type': 'application/x-ndjson' });
    const t = setInterval(() => res.write('{"tick":true}\n'), 50);
    res.on('close', () => {
      clearInterval(t);
      closes.push(Date.now());
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    closes,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

describe.each(ENGINES)('ratls serve (%s): streaming with real clients', (engine) => {
  let demo: RunningDemoOllama;
  let endless: Awaited<ReturnType<typeof endlessUpstream>>;
  let srv: RunningRatlsServer<ServingIdentity>;
  let agent: ReturnType<typeof trustingAgent>;
  let tlsFetch: typeof fetch;

  beforeAll(async () => {
    demo = await startDemoOllama({ tokenDelayMs: 40 });
    endless = await endlessUpstream();
    srv = await startRatlsServer(
      testConfig({
        engine,
        routes: [
          { prefix: '/ollama/', target: demo.url, stripPrefix: true, rewriteHost: true },
          { prefix: '/endless/', target: endless.url, stripPrefix: true },
          { prefix: '/', target: demo.url },
        ],
      }),
      { identitySource: selfSignedSource() },
    );
    agent = trustingAgent(srv.identity().certPem);
    tlsFetch = ((input: string | URL | Request, init?: RequestInit) =>
      undiciFetch(input as string, { ...(init as object), dispatcher: agent } as Parameters<typeof undiciFetch>[1])) as unknown as typeof fetch;
  });
  afterAll(async () => {
    await srv?.close({ drainTimeoutMs: 1000 });
    await agent?.close();
    await demo?.close();
    await endless?.close();
  });

  it('the official ollama client streams a chat through the proxy', async () => {
    const ollama = new Ollama({ host: `${srv.url}ollama`, fetch: tlsFetch });
    const tags = await ollama.list();
    expect(tags.models[0]?.name).toBe('ratls-demo:latest');
    const stream = await ollama.chat({ model: 'ratls-demo:latest', messages: [{ role: 'user', content: 'hi there' }], stream: true });
    const parts: string[] = [];
    let done = false;
    for await (const part of stream) {
      parts.push(part.message.content);
      done ||= part.done;
    }
    expect(done).toBe(true);
    expect(parts.length).toBeGreaterThan(10);
    expect(parts.join('')).toMatch(/^You said: "hi there"\. This answer was streamed/);
  });

  it('the official openai client streams an SSE chat completion through the proxy', async () => {
    const client = new OpenAI({ baseURL: `${srv.url}ollama/v1`, apiKey: 'unused', fetch: tlsFetch });
    const stream = await client.chat.completions.create({ model: 'ratls-demo:latest', messages: [{ role: 'user', content: 'sse please' }], stream: true });
    const deltas: string[] = [];
    let finish: string | null | undefined;
    for await (const chunk of stream) {
      deltas.push(chunk.choices[0]?.delta.content ?? '');
      finish = chunk.choices[0]?.finish_reason ?? finish;
    }
    expect(finish).toBe('stop');
    expect(deltas.join('')).toMatch(/^You said: "sse please"/);
    expect(deltas.length).toBeGreaterThan(10);
  });

  it('tokens arrive chunk by chunk, not at the end', async () => {
    const r = await request(`${srv.url}ollama/api/generate`, {
      method: 'POST',
      body: JSON.stringify({ model: 'ratls-demo:latest', prompt: 'timing' }),
      dispatcher: agent,
    });
    expect(r.headers['content-encoding']).toBeUndefined();
    const arrivals: number[] = [];
    for await (const chunk of r.body) {
      const lines = (chunk as Buffer).toString().split('\n').filter(Boolean).length;
      for (let i = 0; i < lines; i++) arrivals.push(performance.now());
    }
    expect(arrivals.length).toBeGreaterThan(15);
    // The upstream pauses 40 ms between tokens; if the proxy buffered, all would arrive together.
    const gaps = arrivals.slice(1).map((t, i) => t - arrivals[i]!);
    const spaced = gaps.filter((g) => g >= 25).length;
    expect(spaced).toBeGreaterThanOrEqual(arrivals.length - 3);
    expect(arrivals.at(-1)! - arrivals[0]!).toBeGreaterThan(40 * (arrivals.length - 3));
  });

  it('a client aborting mid-stream frees the upstream request', async () => {
    const before = endless.closes.length;
    const ac = new AbortController();
    const r = await request(`${srv.url}endless/stream`, { dispatcher: agent, signal: ac.signal });
    let got = 0;
    await expect(
      (async () => {
        for await (const _ of r.body) {
          if (++got === 3) ac.abort();
        }
      })(),
    ).rejects.toThrow();
    const t0 = Date.now();
    while (endless.closes.length === before && Date.now() - t0 < 3000) await new Promise((res) => setTimeout(res, 20));
    expect(endless.closes.length).toBe(before + 1);
    expect(endless.closes.at(-1)! - t0).toBeLessThan(1000);
    const m = await (await request(`${srv.url}metrics`, { dispatcher: agent })).body.text();
    expect(m).toMatch(/ratls_active_streams 0/);
  });
});
