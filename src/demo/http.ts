/**
 * Small HTTP helpers shared by the demo servers: bounded body reading, JSON replies, listening and
 * closing. The demo apps are written on node:http directly so they stay dependency-free apart from
 * socket.io.
 */
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';

/** An HTTP answer a handler wants to give instead of continuing; `body` is sent as JSON. */
export class HttpReply extends Error {
  constructor(
    readonly status: number,
    readonly body: unknown,
  ) {
    super(typeof body === 'object' && body !== null && 'detail' in body ? String((body as { detail: unknown }).detail) : `HTTP ${status}`);
    this.name = 'HttpReply';
  }
}

export type JsonObject = Record<string, unknown>;

/** Reads the whole request body, refusing more than `limit` bytes with 413. */
export async function readBody(req: http.IncomingMessage, limit: number): Promise<Buffer> {
  const declared = Number(req.headers['content-length'] ?? NaN);
  if (declared > limit) throw new HttpReply(413, { detail: `Request body larger than ${limit} bytes.` });
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of req as AsyncIterable<Buffer>) {
    size += c.length;
    if (size > limit) throw new HttpReply(413, { detail: `Request body larger than ${limit} bytes.` });
    chunks.push(c);
  }
  return Buffer.concat(chunks);
}

/**
 * Parses a JSON object body. `missing` is the error body for an empty or non-object body, so each
 * demo answers in its own peer's words (open-webui: `{detail}`, Ollama: `{error}`).
 */
export async function readJsonObject(req: http.IncomingMessage, limit: number, errorBody: (message: string) => unknown): Promise<JsonObject> {
  const raw = await readBody(req, limit);
  if (raw.length === 0) throw new HttpReply(400, errorBody('missing request body'));
  let v: unknown;
  try {
    v = JSON.parse(raw.toString('utf8'));
  } catch {
    throw new HttpReply(400, errorBody('request body is not valid JSON'));
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new HttpReply(400, errorBody('request body must be a JSON object'));
  return v as JsonObject;
}

/** Sends `value` as JSON with `status`. */
export function sendJson(res: http.ServerResponse, status: number, value: unknown, headers: http.OutgoingHttpHeaders = {}): void {
  const body = JSON.stringify(value);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), ...headers });
  res.end(body);
}

/** The path of a request without its query string. */
export function pathOf(req: http.IncomingMessage): string {
  const url = req.url ?? '/';
  const q = url.indexOf('?');
  return q < 0 ? url : url.slice(0, q);
}

/** A running demo server. */
export interface RunningDemoServer {
  /** Base URL, e.g. http://127.0.0.1:11434 (no trailing slash). */
  url: string;
  port: number;
  close(): Promise<void>;
}

/** Listens on host:port (0 = any free port) and returns the URL and a closer that cuts open connections. */
export async function listen(server: http.Server, host: string, port: number, beforeClose?: () => Promise<void> | void): Promise<RunningDemoServer> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const actual = (server.address() as AddressInfo).port;
  const shown = host.includes(':') ? `[${host}]` : host;
  return {
    url: `http://${shown}:${actual}`,
    port: actual,
    close: async () => {
      await beforeClose?.();
      await new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      });
    },
  };
}

/** Sends an {@link HttpReply} or, for anything else, a 500 (or cuts a response already started). */
export function replyError(res: http.ServerResponse, err: unknown, internal: (message: string) => unknown): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  if (err instanceof HttpReply) sendJson(res, err.status, err.body);
  else sendJson(res, 500, internal(err instanceof Error ? err.message : String(err)));
}
