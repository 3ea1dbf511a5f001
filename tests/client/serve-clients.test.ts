/**
 * Verifying clients against `ratls serve` (startRatlsServer, simulated world) in front of the
 * open-webui-shaped demo app, with the default routing: session-bound evidence (the default) and
 * the legacy nonce round trip on the same connection, and the official openai and ollama clients
 * pointed at https://host/api and https://host/ollama with an open-webui API key, as open-webui
 * documents, streaming through it with the default policy.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import https from 'node:https';
import OpenAI from 'openai';
import { Ollama } from 'ollama';
import { startRatlsServer, type RunningRatlsServer } from '../../src/proxy/server.ts';
import { startDemoOllama, type RunningDemoOllama } from '../../src/demo/ollama.ts';
import { startDemoWebui, DEMO_WEBUI_VERSION, type RunningDemoWebui } from '../../src/demo/webui.ts';
import { validateConfig } from '../../src/proxy/config.ts';
import { createAttestedAgent, createAttestedDispatcher, createAttestedFetch, AttestationError, type AttestationEvent } from '../../src/client/index.ts';
import { probe } from '../../src/client/probe.ts';
import { fetchWithDispatcher } from '../../src/client/dispatcher.ts';
import { INTEL_SGX_ROOT_CA_PEM } from '../../src/verify/roots.ts';
import { makeWorld, simPolicy, simulatedSource, type World } from './helpers.ts';

const API_KEY = `sk-${'5e'.repeat(16)}`;

let world: World;
let backend: RunningDemoOllama;
let app: RunningDemoWebui;
let srv: RunningRatlsServer;

beforeAll(async () => {
  world = await makeWorld();
  backend = await startDemoOllama({ tokenDelayMs: 20 });
  app = await startDemoWebui({ ollamaUrl: backend.url, admin: { name: 'Admin', email: 'admin@example.com', password: 'pw', apiKey: API_KEY } });
  srv = await startRatlsServer(validateConfig({ listen: '127.0.0.1:0', log: { level: 'silent' }, upstreams: { openWebui: app.url, ollama: backend.url } }), {
    identitySource: await simulatedSource(world),
    autoRotate: false,
  });
});
afterAll(async () => {
  await srv?.close({ drainTimeoutMs: 500 });
  await app?.close();
  await backend?.close();
});

function get(url: string, agent: https.Agent): Promise<string> {
  return new Promise((resolve, reject) => {
    https
      .get(url, { agent }, (res) => {
        let body = '';
        res.on('data', (c: Buffer) => (body += c.toString()));
        res.on('end', () => resolve(body));
      })
      .on('error', reject);
  });
}

describe('against ratls serve', () => {
  it('agent with the default policy: session-bound evidence on the same connection, then the request', async () => {
    const events: AttestationEvent[] = [];
    const agent = createAttestedAgent(simPolicy(world), { onVerified: (e) => events.push(e) });
    expect(JSON.parse(await get(`${srv.url}api/version`, agent))).toEqual({ version: DEMO_WEBUI_VERSION, deployment_id: '' });
    expect(events).toHaveLength(1);
    expect(events[0]!.binding).toBe('session');
    expect(events[0]!.sessionBound).toBe(true);
    expect(events[0]!.nonceVerified).toBe(true);
    expect(events[0]!.session?.claimNames).toEqual(['pubkey-hash', 'session-root']);
    expect(events[0]!.session?.claims.get('session-root')).toHaveLength(32);
    expect(events[0]!.result.checks.find((c) => c.name === 'session binding')?.detail).toMatch(/RFC 9266 exporter/);
    await get(`${srv.url}health`, agent);
    expect(events).toHaveLength(1);
    agent.destroy();
  });

  it('agent with certificate binding and a nonce round trip on the same connection, then the request', async () => {
    const events: AttestationEvent[] = [];
    const agent = createAttestedAgent(
      simPolicy(world, (p) => {
        p.freshness.binding = 'certificate';
        p.freshness.requireNonce = true;
      }),
      { onVerified: (e) => events.push(e) },
    );
    expect(JSON.parse(await get(`${srv.url}api/version`, agent))).toEqual({ version: DEMO_WEBUI_VERSION, deployment_id: '' });
    expect(events).toHaveLength(1);
    expect(events[0]!.nonceVerified).toBe(true);
    expect(events[0]!.result.checks.some((c) => c.name === 'nonce round trip' && c.ok)).toBe(true);
    expect(events[0]!.sessionBound).toBe(false);
    expect(events[0]!.result.checks.find((c) => c.name === 'binding')?.detail).toMatch(/relayable if the TLS key leaks/);
    // the connection is reused afterwards (keep-alive) without another attestation
    await get(`${srv.url}health`, agent);
    expect(events).toHaveLength(1);
    agent.destroy();
  });

  it('dispatcher with nonce; probe reports the result; a rotated certificate is verified again', async () => {
    const seen = new Set<string>();
    const d = createAttestedDispatcher(
      simPolicy(world, (p) => {
        p.freshness.binding = 'certificate';
        p.freshness.requireNonce = true;
      }),
      { onVerified: (e) => seen.add(e.certSha256!) },
    );
    const f = fetchWithDispatcher(d);
    expect((await f(`${srv.url}api/version`)).status).toBe(200);
    await srv.rotate();
    await d.close();
    const d2 = createAttestedDispatcher(simPolicy(world), { onVerified: (e) => seen.add(e.certSha256!) });
    const f2 = fetchWithDispatcher(d2);
    expect((await f2(`${srv.url}api/version`)).status).toBe(200);
    expect(seen.size).toBe(2);
    await d2.close();
    const ev = await probe(
      srv.url,
      simPolicy(world, (p) => {
        p.freshness.requireNonce = true;
      }),
    );
    expect(ev.result.ok).toBe(true);
    expect(ev.nonceVerified).toBe(true);
    expect(ev.result.nonIntelRoot).toBe(true);
  });

  it('the Intel-only default policy refuses the simulated server', async () => {
    const p = simPolicy(world, (x) => {
      x.trustedRoots = [INTEL_SGX_ROOT_CA_PEM];
    });
    const ev = await probe(srv.url, p);
    expect(ev.result.ok).toBe(false);
    expect(ev.result.errors.map((e) => e.code)).toContain('PCK_CHAIN_UNTRUSTED');
  });
});

describe('official clients through the attested fetch, at https://host/api and https://host/ollama with an API key', () => {
  it('openai v6 lists models and streams chat completions from /api (custom fetch, default policy: session binding)', async () => {
    const events: AttestationEvent[] = [];
    const fetch = createAttestedFetch(simPolicy(world), { onVerified: (e) => events.push(e) });
    const client = new OpenAI({ baseURL: `${srv.url}api`, apiKey: API_KEY, fetch });
    const ids: string[] = [];
    for await (const m of client.models.list()) ids.push(m.id);
    expect(ids).toEqual(['ratls-demo:latest', 'ratls-demo:mini']);
    const stream = await client.chat.completions.create({ model: 'ratls-demo:latest', messages: [{ role: 'user', content: 'hi there' }], stream: true });
    const times: number[] = [];
    let text = '';
    for await (const chunk of stream) {
      times.push(Date.now());
      text += chunk.choices[0]?.delta?.content ?? '';
    }
    expect(text).toContain('You said: "hi there"');
    expect(times.length).toBeGreaterThan(5);
    // streamed, not buffered: chunks arrived spread over time (20 ms between tokens upstream)
    expect(times[times.length - 1]! - times[0]!).toBeGreaterThan(100);
    expect(events.length).toBeGreaterThan(0);
    expect(events.every((e) => e.sessionBound)).toBe(true);
    await fetch.close();
  });

  it('openai v6 refuses a server outside the policy with AttestationError as the cause', async () => {
    const d = createAttestedDispatcher(simPolicy(await makeWorld()));
    const client = new OpenAI({ baseURL: `${srv.url}api`, apiKey: API_KEY, fetch: fetchWithDispatcher(d), maxRetries: 0 });
    const err = await client.models.list().catch((e: unknown) => e);
    // openai wraps network failures in APIConnectionError; the cause is ours
    expect(String((err as Error).constructor.name)).toMatch(/APIConnectionError/);
    expect((err as { cause?: unknown }).cause).toBeInstanceOf(AttestationError);
    await d.close();
  });

  it('openai v6 streams with fetchOptions: { dispatcher } (global fetch + attested undici dispatcher)', async () => {
    let verified = 0;
    const dispatcher = createAttestedDispatcher(simPolicy(world), { onVerified: () => verified++ });
    const client = new OpenAI({
      baseURL: `${srv.url}api`,
      apiKey: API_KEY,
      fetchOptions: { dispatcher } as NonNullable<ConstructorParameters<typeof OpenAI>[0]>['fetchOptions'],
    });
    const stream = await client.chat.completions.create({ model: 'ratls-demo:latest', messages: [{ role: 'user', content: 'via dispatcher' }], stream: true });
    let text = '';
    for await (const chunk of stream) text += chunk.choices[0]?.delta?.content ?? '';
    expect(text).toContain('via dispatcher');
    expect(verified).toBe(1);
    await dispatcher.close();
  });

  it("openai v6 with a wrong API key gets open-webui's 401 as an AuthenticationError", async () => {
    const fetch = createAttestedFetch(simPolicy(world));
    const client = new OpenAI({ baseURL: `${srv.url}api`, apiKey: `sk-${'00'.repeat(16)}`, fetch, maxRetries: 0 });
    const err = await client.models.list().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.AuthenticationError);
    expect((err as InstanceType<typeof OpenAI.AuthenticationError>).status).toBe(401);
    await fetch.close();
  });

  it('ollama lists models and streams chat from /ollama with the API key (custom fetch, default policy: session binding)', async () => {
    const events: AttestationEvent[] = [];
    const fetch = createAttestedFetch(simPolicy(world), { onVerified: (e) => events.push(e) });
    const ollama = new Ollama({ host: `${srv.url}ollama`, fetch, headers: { Authorization: `Bearer ${API_KEY}` } });
    expect((await ollama.list()).models.map((m) => m.name)).toEqual(['ratls-demo:latest', 'ratls-demo:mini']);
    // without the key, open-webui's /ollama/ refuses
    const anonymous = new Ollama({ host: `${srv.url}ollama`, fetch });
    await expect(anonymous.list()).rejects.toMatchObject({ status_code: 401 });
    const stream = await ollama.chat({ model: 'ratls-demo:latest', messages: [{ role: 'user', content: 'hello ollama' }], stream: true });
    let text = '';
    let parts = 0;
    for await (const part of stream) {
      text += part.message.content;
      parts++;
    }
    expect(text).toContain('You said: "hello ollama"');
    expect(parts).toBeGreaterThan(5);
    expect(events.length).toBeGreaterThan(0);
    expect(events.every((e) => e.sessionBound)).toBe(true);
    await fetch.close();
  });
});
