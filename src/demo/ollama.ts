/**
 * An Ollama-shaped model server for the demo and tests: Ollama's routes, JSON shapes and error
 * bodies (`{"error": "..."}`), with canned answers instead of a model. Like Ollama it has no
 * authentication at all, which is why `ratls serve` never publishes it by default.
 *
 * Routes: GET / and /api/version, /api/tags, /api/ps; POST /api/show; POST /api/chat and
 * /api/generate (NDJSON streams unless `"stream": false`); POST /api/pull (adds a model, streams
 * progress); DELETE /api/delete; OpenAI-compatible GET /v1/models and POST /v1/chat/completions.
 */
import * as http from 'node:http';
import { randomBytes } from 'node:crypto';
import { HttpReply, listen, pathOf, readJsonObject, replyError, sendJson, type JsonObject, type RunningDemoServer } from './http.ts';
import { defaultDemoModels, demoModel, lastUserText, modelName, replyTokens, tagsEntry, type DemoModel } from './models.ts';
import { sseEvent, writePaced } from './stream.ts';

export interface DemoOllamaOptions {
  host?: string;
  /** 0 (default) picks a free port. */
  port?: number;
  /** Pause between streamed tokens (default 40 ms). */
  tokenDelayMs?: number;
  /** Models held at start (default: {@link defaultDemoModels}). */
  models?: DemoModel[];
  /** What /api/version answers. */
  version?: string;
}

export interface RunningDemoOllama extends RunningDemoServer {
  /** The models currently held (after pulls and deletes). */
  models(): DemoModel[];
  /** Streams (chat, generate, pull) still being written; a client that leaves ends its stream. */
  activeStreams(): number;
  /** Requests received so far, by "METHOD /path" (tests check what reached Ollama and what did not). */
  requestsSeen(): string[];
}

/** Version string the demo backend reports; says plainly that it is not Ollama. */
export const DEMO_OLLAMA_VERSION = '0.0.0-ratls-demo';

const MAX_BODY = 1024 * 1024;
const err = (message: string) => ({ error: message });

/** Starts the Ollama-shaped backend (loopback by default). */
export async function startDemoOllama(opts: DemoOllamaOptions = {}): Promise<RunningDemoOllama> {
  const delay = opts.tokenDelayMs ?? 40;
  const models = new Map((opts.models ?? defaultDemoModels()).map((m) => [m.name, m]));
  const version = opts.version ?? DEMO_OLLAMA_VERSION;
  let active = 0;
  const seen: string[] = [];
  const paced = async (res: http.ServerResponse, pieces: string[], last: string): Promise<void> => {
    active++;
    try {
      await writePaced(res, pieces, delay, last);
    } finally {
      active--;
    }
  };
  const server = http.createServer((req, res) => {
    if (seen.length < 10_000) seen.push(`${req.method ?? 'GET'} ${pathOf(req)}`);
    handle(req, res).catch((e: unknown) => replyError(res, e, err));
  });

  const find = (body: JsonObject): { name: string; model: DemoModel | undefined } => {
    const raw = typeof body.model === 'string' && body.model ? body.model : typeof body.name === 'string' ? body.name : '';
    if (!raw) throw new HttpReply(400, err('model is required'));
    const name = modelName(raw);
    return { name, model: models.get(name) };
  };

  async function handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const path = pathOf(req);
    const method = req.method ?? 'GET';
    const read = method === 'GET' || method === 'HEAD';
    if (read && path === '/') {
      res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8' });
      return void res.end(method === 'HEAD' ? undefined : 'Ollama is running');
    }
    if (read && path === '/api/version') return sendJson(res, 200, { version });
    if (read && path === '/api/tags') return sendJson(res, 200, { models: [...models.values()].map(tagsEntry) });
    if (read && path === '/api/ps') return sendJson(res, 200, { models: [] });
    if (method === 'GET' && path === '/v1/models') {
      return sendJson(res, 200, {
        object: 'list',
        data: [...models.values()].map((m) => ({ id: m.name, object: 'model', created: Math.floor(Date.parse(m.modifiedAt) / 1000), owned_by: 'library' })),
      });
    }
    if (method === 'POST' && path === '/api/show') {
      const { name, model } = find(await readJsonObject(req, MAX_BODY, err));
      if (!model) throw new HttpReply(404, err(`model '${name}' not found`));
      return sendJson(res, 200, showResponse(model));
    }
    if (method === 'POST' && (path === '/api/chat' || path === '/api/generate')) {
      const body = await readJsonObject(req, MAX_BODY, err);
      const { name, model } = find(body);
      if (!model) {
        throw new HttpReply(404, err(path === '/api/chat' ? `model "${name}" not found, try pulling it first` : `model '${name}' not found`));
      }
      return generate(res, body, model.name, path === '/api/chat');
    }
    if (method === 'POST' && path === '/api/pull') {
      const body = await readJsonObject(req, MAX_BODY, err);
      const { name } = find(body);
      if (!/^[A-Za-z0-9][A-Za-z0-9._/-]{0,127}:[A-Za-z0-9._-]{1,64}$/.test(name)) {
        throw new HttpReply(400, err('invalid model name'));
      }
      return pull(res, name, body.stream !== false);
    }
    if (method === 'DELETE' && path === '/api/delete') {
      const { name, model } = find(await readJsonObject(req, MAX_BODY, err));
      if (!model) throw new HttpReply(404, err(`model '${name}' not found`));
      models.delete(name);
      res.writeHead(200, { 'content-length': 0 });
      return void res.end();
    }
    if (method === 'POST' && path === '/v1/chat/completions') {
      const body = await readJsonObject(req, MAX_BODY, (m) => ({ error: { message: m, type: 'invalid_request_error', param: null, code: null } }));
      const { name, model } = find(body);
      if (!model)
        throw new HttpReply(404, { error: { message: `model "${name}" not found, try pulling it first`, type: 'api_error', param: null, code: null } });
      return openAiChat(res, body, model.name);
    }
    // Ollama (gin) answers unknown routes with a plain-text 404
    res.writeHead(404, { 'content-type': 'text/plain' });
    res.end('404 page not found');
  }

  async function generate(res: http.ServerResponse, body: JsonObject, model: string, chat: boolean): Promise<void> {
    const tokens = replyTokens(model, lastUserText(body));
    const started = process.hrtime.bigint();
    const piece = (text: string) => (chat ? { message: { role: 'assistant', content: text } } : { response: text });
    const final = (text: string) => {
      const total = Number(process.hrtime.bigint() - started);
      return {
        model,
        created_at: new Date().toISOString(),
        ...piece(text),
        done: true,
        done_reason: 'stop',
        total_duration: total,
        load_duration: 0,
        prompt_eval_count: lastUserText(body).split(/\s+/).filter(Boolean).length,
        prompt_eval_duration: 0,
        eval_count: tokens.length,
        eval_duration: total,
      };
    };
    if (body.stream === false) return sendJson(res, 200, final(tokens.join('')));
    res.writeHead(200, { 'content-type': 'application/x-ndjson' });
    const lines = tokens.map((t) => `${JSON.stringify({ model, created_at: new Date().toISOString(), ...piece(t), done: false })}\n`);
    // created_at of each line is when it is written in Ollama; the demo stamps the whole batch up front
    await paced(res, lines, `${JSON.stringify(final(''))}\n`);
  }

  async function openAiChat(res: http.ServerResponse, body: JsonObject, model: string): Promise<void> {
    const tokens = replyTokens(model, lastUserText(body));
    const id = `chatcmpl-${randomBytes(3).readUIntBE(0, 3)}`;
    const created = Math.floor(Date.now() / 1000);
    const chunk = (delta: JsonObject, finish: string | null) =>
      JSON.stringify({
        id,
        object: 'chat.completion.chunk',
        created,
        model,
        system_fingerprint: 'fp_ollama',
        choices: [{ index: 0, delta, finish_reason: finish }],
      });
    if (body.stream !== true) {
      return sendJson(res, 200, {
        id,
        object: 'chat.completion',
        created,
        model,
        system_fingerprint: 'fp_ollama',
        choices: [{ index: 0, message: { role: 'assistant', content: tokens.join('') }, finish_reason: 'stop' }],
        usage: { prompt_tokens: 0, completion_tokens: tokens.length, total_tokens: tokens.length },
      });
    }
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    await paced(
      res,
      tokens.map((t) => sseEvent(chunk({ role: 'assistant', content: t }, null))),
      sseEvent(chunk({ role: 'assistant', content: '' }, 'stop')) + sseEvent('[DONE]'),
    );
  }

  async function pull(res: http.ServerResponse, name: string, stream: boolean): Promise<void> {
    const model = models.get(name) ?? demoModel(name);
    const layer = `sha256:${model.digest}`;
    const steps: JsonObject[] = [{ status: 'pulling manifest' }];
    const parts = 4;
    for (let i = 1; i <= parts; i++) {
      steps.push({ status: `pulling ${model.digest.slice(0, 12)}`, digest: layer, total: model.size, completed: Math.round((model.size * i) / parts) });
    }
    steps.push({ status: 'verifying sha256 digest' }, { status: 'writing manifest' });
    const done = () => models.set(model.name, { ...model, modifiedAt: new Date().toISOString() });
    if (!stream) {
      done();
      return sendJson(res, 200, { status: 'success' });
    }
    res.writeHead(200, { 'content-type': 'application/x-ndjson' });
    res.once('finish', done);
    await paced(
      res,
      steps.map((s) => `${JSON.stringify(s)}\n`),
      `${JSON.stringify({ status: 'success' })}\n`,
    );
  }

  const running = await listen(server, opts.host ?? '127.0.0.1', opts.port ?? 0);
  return { ...running, models: () => [...models.values()], activeStreams: () => active, requestsSeen: () => [...seen] };
}

function showResponse(m: DemoModel): JsonObject {
  return {
    license: 'Demo model of ratls-proxy: no weights, canned answers.',
    modelfile: `# Modelfile generated by the ratls demo backend\nFROM ${m.name}\nPARAMETER temperature 0\n`,
    parameters: 'temperature                    0',
    template: '{{ .Prompt }}',
    details: tagsEntry(m).details,
    model_info: { 'general.architecture': m.family, 'general.parameter_count': Number.parseFloat(m.parameterSize) * 1e9, 'general.file_type': 15 },
    capabilities: ['completion'],
    modified_at: m.modifiedAt,
  };
}
