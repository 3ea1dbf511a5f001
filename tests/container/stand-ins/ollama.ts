/**
 * Ollama-shaped backend of the container test (until `ratls demo ollama` is on main): the routes
 * the test and the open-webui stand-in use, in Ollama's JSON and NDJSON shapes. /api/chat streams
 * `options.num_predict` tokens (default 8), one every TOKEN_DELAY_MS.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';

const [host, port] = (process.env.LISTEN ?? '0.0.0.0:11434').split(':');
const delayMs = Number(process.env.TOKEN_DELAY_MS ?? '50');
const MODEL = 'stand-in:latest';

async function body(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return chunks.length ? JSON.parse(Buffer.concat(chunks).toString('utf8')) : {};
}

interface ChatRequest {
  model?: string;
  messages?: Array<{ role: string; content: string }>;
  stream?: boolean;
  options?: { num_predict?: number };
}

async function chat(req: IncomingMessage, res: ServerResponse): Promise<void> {
  const r = (await body(req)) as ChatRequest;
  const last = r.messages?.at(-1)?.content ?? '';
  const n = Math.min(Math.max(r.options?.num_predict ?? 8, 1), 10_000);
  const tokens = [`You said: "${last}".`, ...Array.from({ length: n - 1 }, (_, i) => ` token${i + 1}`)];
  const part = (content: string, done: boolean) =>
    JSON.stringify({
      model: r.model ?? MODEL,
      created_at: new Date().toISOString(),
      message: { role: 'assistant', content },
      done,
      ...(done ? { done_reason: 'stop', eval_count: n } : {}),
    }) + '\n';
  if (r.stream === false) {
    res.writeHead(200, { 'content-type': 'application/json' }).end(part(tokens.join(''), true));
    return;
  }
  res.writeHead(200, { 'content-type': 'application/x-ndjson' });
  for (const t of tokens) {
    if (res.destroyed) return;
    res.write(part(t, false));
    await new Promise((s) => setTimeout(s, delayMs));
  }
  res.end(part('', true));
}

const server = createServer((req, res) => {
  const path = (req.url ?? '/').split('?')[0];
  if (path === '/' || path === '/api/version') {
    res.writeHead(200, { 'content-type': path === '/' ? 'text/plain' : 'application/json' });
    return void res.end(path === '/' ? 'Ollama is running' : '{"version":"0.0.0-stand-in"}');
  }
  if (path === '/api/tags') {
    return void res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ models: [{ name: MODEL, model: MODEL, size: 1 }] }));
  }
  if (path === '/api/chat' && req.method === 'POST') {
    return void chat(req, res).catch(() => res.destroy());
  }
  res.writeHead(404, { 'content-type': 'application/json' }).end('{"error":"not found"}');
});
server.listen(Number(port), host, () => console.log(`ollama stand-in listening on ${host}:${port}`));
process.on('SIGTERM', () => {
  server.closeAllConnections();
  server.close(() => process.exit(0));
});
