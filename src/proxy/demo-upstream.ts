/**
 * A tiny built-in upstream for `npm start` and tests: it answers like Ollama (/api/version,
 * /api/tags, streaming NDJSON /api/chat and /api/generate), like OpenAI's streaming chat
 * completions (/v1/chat/completions, SSE), and serves a small HTML page at /. It holds no model;
 * the "tokens" are the words of a fixed sentence, sent one by one with a delay.
 */
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface DemoUpstreamOptions {
  host?: string;
  /** 0 (default) picks a free port. */
  port?: number;
  /** Pause between tokens (default 40 ms). */
  tokenDelayMs?: number;
}

export interface RunningDemoUpstream {
  url: string;
  port: number;
  close(): Promise<void>;
}

const MODEL = 'ratls-demo:latest';
const MAX_BODY = 1024 * 1024;

function replyTokens(prompt: string): string[] {
  const said = prompt.trim().slice(0, 200) || '(nothing)';
  const text = `You said: "${said}". This answer was streamed token by token from the ratls demo upstream through the attested TLS proxy.`;
  return text.split(/(?<= )/);
}

async function readJson(req: http.IncomingMessage): Promise<Record<string, unknown>> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of req as AsyncIterable<Buffer>) {
    size += c.length;
    if (size > MAX_BODY) throw new Error('body too large');
    chunks.push(c);
  }
  if (size === 0) return {};
  const v: unknown = JSON.parse(Buffer.concat(chunks).toString('utf8'));
  return typeof v === 'object' && v !== null ? (v as Record<string, unknown>) : {};
}

function lastUserMessage(body: Record<string, unknown>): string {
  if (typeof body.prompt === 'string') return body.prompt;
  const msgs = Array.isArray(body.messages) ? (body.messages as Array<{ role?: unknown; content?: unknown }>) : [];
  for (let i = msgs.length - 1; i >= 0; i--) {
    const m = msgs[i]!;
    if (m.role === 'user' && typeof m.content === 'string') return m.content;
  }
  return '';
}

const PAGE = `<!doctype html>
<html><head><meta charset="utf-8"><title>ratls demo upstream</title></head>
<body style="font-family: system-ui, sans-serif; max-width: 40em; margin: 3em auto">
<h1>ratls demo upstream</h1>
<p>You reached this page through the attested TLS proxy. In a real deployment open-webui would be here.</p>
<p>Try <code>/ollama/api/tags</code> or <code>/.well-known/ratls/certificate</code>.</p>
<form id="f"><input id="q" value="Hello" size="40"> <button>Ask the demo model</button></form>
<pre id="out"></pre>
<script>
document.getElementById('f').onsubmit = async (e) => {
  e.preventDefault();
  const out = document.getElementById('out'); out.textContent = '';
  const r = await fetch('/ollama/api/chat', { method: 'POST', body: JSON.stringify({ model: '${MODEL}', messages: [{ role: 'user', content: document.getElementById('q').value }] }) });
  const reader = r.body.pipeThrough(new TextDecoderStream()).getReader(); let buf = '';
  for (;;) { const { value, done } = await reader.read(); if (done) break; buf += value;
    let i; while ((i = buf.indexOf('\\n')) >= 0) { const line = buf.slice(0, i); buf = buf.slice(i + 1);
      if (line) out.textContent += JSON.parse(line).message?.content ?? ''; } }
};
</script></body></html>
`;

/** Starts the demo upstream on loopback. */
export async function startDemoUpstream(opts: DemoUpstreamOptions = {}): Promise<RunningDemoUpstream> {
  const delay = opts.tokenDelayMs ?? 40;
  const server = http.createServer((req, res) => {
    handle(req, res, delay).catch(() => {
      if (!res.headersSent) {
        res.writeHead(400, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ error: 'bad request' }));
      } else res.destroy();
    });
  });
  await new Promise<void>((resolve) => server.listen(opts.port ?? 0, opts.host ?? '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://${opts.host ?? '127.0.0.1'}:${port}`,
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

async function streamTokens(res: http.ServerResponse, tokens: string[], delay: number, line: (tok: string, i: number) => string, last: string): Promise<void> {
  let closed = false;
  res.once('close', () => (closed = true));
  for (let i = 0; i < tokens.length && !closed; i++) {
    res.write(line(tokens[i]!, i));
    await new Promise((r) => setTimeout(r, delay));
  }
  if (!closed) res.end(last);
}

async function handle(req: http.IncomingMessage, res: http.ServerResponse, delay: number): Promise<void> {
  const path = (req.url ?? '/').split('?')[0];
  const json = (status: number, v: unknown): void => {
    res.writeHead(status, { 'content-type': 'application/json; charset=utf-8' });
    res.end(JSON.stringify(v));
  };
  const created = () => new Date().toISOString();
  if (req.method === 'GET' && path === '/') {
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    res.end(PAGE);
    return;
  }
  if (req.method === 'GET' && path === '/api/version') return json(200, { version: '0.0.0-ratls-demo' });
  if (req.method === 'GET' && path === '/api/tags') {
    return json(200, {
      models: [
        {
          name: MODEL,
          model: MODEL,
          modified_at: '2025-01-01T00:00:00Z',
          size: 0,
          digest: '0'.repeat(64),
          details: { format: 'demo', family: 'demo', parameter_size: '0', quantization_level: 'none' },
        },
      ],
    });
  }
  if (req.method === 'GET' && path === '/v1/models')
    return json(200, { object: 'list', data: [{ id: MODEL, object: 'model', created: 0, owned_by: 'ratls' }] });
  if (req.method === 'POST' && (path === '/api/chat' || path === '/api/generate')) {
    const body = await readJson(req);
    const model = typeof body.model === 'string' ? body.model : MODEL;
    const tokens = replyTokens(lastUserMessage(body));
    const isChat = path === '/api/chat';
    const piece = (tok: string) => (isChat ? { message: { role: 'assistant', content: tok } } : { response: tok });
    const final = { model, created_at: created(), ...piece(''), done: true, done_reason: 'stop', total_duration: 0, eval_count: tokens.length };
    if (body.stream === false) return json(200, { ...final, ...piece(tokens.join('')) });
    res.writeHead(200, { 'content-type': 'application/x-ndjson' });
    await streamTokens(
      res,
      tokens,
      delay,
      (tok) => `${JSON.stringify({ model, created_at: created(), ...piece(tok), done: false })}\n`,
      `${JSON.stringify(final)}\n`,
    );
    return;
  }
  if (req.method === 'POST' && path === '/v1/chat/completions') {
    const body = await readJson(req);
    const model = typeof body.model === 'string' ? body.model : MODEL;
    const tokens = replyTokens(lastUserMessage(body));
    const id = `chatcmpl-demo${Date.now()}`;
    const chunk = (delta: Record<string, unknown>, finish: string | null) =>
      JSON.stringify({
        id,
        object: 'chat.completion.chunk',
        created: Math.floor(Date.now() / 1000),
        model,
        choices: [{ index: 0, delta, finish_reason: finish }],
      });
    if (body.stream !== true) {
      return json(200, {
        id,
        object: 'chat.completion',
        created: Math.floor(Date.now() / 1000),
        model,
        choices: [{ index: 0, message: { role: 'assistant', content: tokens.join('') }, finish_reason: 'stop' }],
      });
    }
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
    await streamTokens(
      res,
      tokens,
      delay,
      (tok, i) => `data: ${chunk(i === 0 ? { role: 'assistant', content: tok } : { content: tok }, null)}\n\n`,
      `data: ${chunk({}, 'stop')}\n\ndata: [DONE]\n\n`,
    );
    return;
  }
  json(404, { error: `demo upstream has no route ${req.method} ${path}` });
}
