/**
 * One HTTP/1.1 request written by hand on an already-open TLS socket: the nonce round trip to
 * /.well-known/ratls/evidence happens on the very connection that will carry the user's requests,
 * before the socket is handed to the HTTP client. Reads with 'readable' so the socket goes back
 * to its initial (non-flowing) state for the next reader, and never loses a byte.
 */
import type { Socket } from 'node:net';
import { RatlsError } from '../core/errors.ts';

const MAX_HEADER_BYTES = 16 * 1024;
/** Largest body read by default: evidence is a few KiB, session evidence at most 160 KiB. */
const MAX_BODY_BYTES = 1024 * 1024;

export interface RawResponse {
  status: number;
  headers: Record<string, string>;
  body: Uint8Array;
}

function parseHead(head: string): { status: number; headers: Record<string, string> } {
  const lines = head.split('\r\n');
  const m = /^HTTP\/1\.[01] (\d{3})/.exec(lines[0] ?? '');
  if (!m) throw new RatlsError('EVIDENCE_MALFORMED', 'The server did not answer the evidence request with HTTP/1.1.');
  const headers: Record<string, string> = {};
  for (const line of lines.slice(1)) {
    const i = line.indexOf(':');
    if (i > 0) headers[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim();
  }
  return { status: Number(m[1]), headers };
}

/** Decodes a complete chunked body; undefined when more bytes are needed. */
function dechunk(buf: Buffer): { body: Buffer; used: number } | undefined {
  const parts: Buffer[] = [];
  let off = 0;
  for (;;) {
    const eol = buf.indexOf('\r\n', off);
    if (eol < 0) return undefined;
    const size = parseInt(buf.subarray(off, eol).toString('latin1').split(';')[0]!, 16);
    if (!Number.isFinite(size) || size < 0) throw new RatlsError('EVIDENCE_MALFORMED', 'The evidence response has a malformed chunk.');
    off = eol + 2;
    if (size === 0) {
      const end = buf.indexOf('\r\n', off); // no trailers expected; skip any
      if (end < 0) return undefined;
      return { body: Buffer.concat(parts), used: end + 2 };
    }
    if (buf.length < off + size + 2) return undefined;
    parts.push(buf.subarray(off, off + size));
    off += size + 2;
  }
}

/**
 * Sends `GET path` on `socket` and resolves with the response. Rejects (EVIDENCE_MALFORMED or
 * CONNECTION_FAILED) on a malformed, oversized (over `maxBodyBytes`, default 1 MiB), closing or
 * late response.
 */
export function rawGet(socket: Socket, host: string, path: string, timeoutMs: number, maxBodyBytes = MAX_BODY_BYTES): Promise<RawResponse> {
  return new Promise<RawResponse>((resolve, reject) => {
    let buf = Buffer.alloc(0);
    // bytes received since `buf` was last joined: a body of known length is joined once, when complete
    const pending: Buffer[] = [];
    let received = 0;
    let head: { status: number; headers: Record<string, string>; bodyStart: number } | undefined;
    const finish = (err: Error | undefined, res?: RawResponse, leftover?: Buffer) => {
      clearTimeout(timer);
      socket.removeListener('readable', onReadable);
      socket.removeListener('error', onError);
      socket.removeListener('close', onClose);
      if (leftover && leftover.length > 0) socket.unshift(leftover);
      if (err) reject(err);
      else resolve(res!);
    };
    const onError = (err: Error) => finish(new RatlsError('CONNECTION_FAILED', `The connection failed during the nonce round trip: ${err.message}`));
    const onClose = () => finish(new RatlsError('CONNECTION_FAILED', 'The server closed the connection during the nonce round trip.'));
    const timer = setTimeout(
      () => finish(new RatlsError('CONNECTION_FAILED', `The server did not answer the nonce evidence request within ${timeoutMs} ms.`)),
      timeoutMs,
    );
    const onReadable = () => {
      try {
        let chunk: Buffer | null;
        while ((chunk = socket.read() as Buffer | null) !== null) {
          pending.push(chunk);
          received += chunk.length;
        }
        const join = () => {
          if (pending.length === 0) return;
          buf = Buffer.concat([buf, ...pending]);
          pending.length = 0;
        };
        const known = head ? Number(head.headers['content-length']) : NaN;
        // waiting for the rest of a declared body: nothing to parse yet
        if (head && Number.isInteger(known) && known <= maxBodyBytes && received - head.bodyStart < known) return;
        join();
        if (!head) {
          const end = buf.indexOf('\r\n\r\n');
          if (end < 0) {
            if (buf.length > MAX_HEADER_BYTES) throw new RatlsError('EVIDENCE_MALFORMED', 'The evidence response headers are too large.');
            return;
          }
          head = { ...parseHead(buf.subarray(0, end).toString('latin1')), bodyStart: end + 4 };
        }
        const rest = buf.subarray(head.bodyStart);
        if (rest.length > maxBodyBytes + 64 * 1024) throw new RatlsError('EVIDENCE_MALFORMED', 'The evidence response is too large.');
        let body: Buffer;
        let used: number;
        if ((head.headers['transfer-encoding'] ?? '').toLowerCase().includes('chunked')) {
          const d = dechunk(rest);
          if (!d) return;
          body = d.body;
          used = d.used;
        } else {
          const len = Number(head.headers['content-length']);
          if (!Number.isInteger(len) || len < 0)
            throw new RatlsError('EVIDENCE_MALFORMED', 'The evidence response has neither Content-Length nor chunked encoding.');
          if (len > maxBodyBytes) throw new RatlsError('EVIDENCE_MALFORMED', 'The evidence response is too large.');
          if (rest.length < len) return;
          body = rest.subarray(0, len);
          used = len;
        }
        if ((head.headers.connection ?? '').toLowerCase() === 'close') {
          throw new RatlsError('CONNECTION_FAILED', 'The server closes the connection after the evidence response, so the nonce cannot vouch for it.');
        }
        finish(undefined, { status: head.status, headers: head.headers, body: new Uint8Array(body) }, rest.subarray(used));
      } catch (err) {
        finish(err instanceof Error ? err : new Error(String(err)));
      }
    };
    socket.on('readable', onReadable);
    socket.on('error', onError);
    socket.on('close', onClose);
    socket.write(`GET ${path} HTTP/1.1\r\nHost: ${host}\r\nAccept: application/cbor\r\nConnection: keep-alive\r\nUser-Agent: ratls-client\r\n\r\n`);
  });
}

/** Longest wait between two tries, whatever Retry-After says. */
const MAX_RETRY_WAIT_MS = 5000;

/**
 * `rawGet` that waits and retries, on the same connection, while the server answers 503 or 429
 * (its evidence queue is full, or this connection already has a request waiting): the wait is the
 * server's Retry-After, else an exponential backoff from 100 ms, with jitter, and never past
 * `timeoutMs` from the start. Gives up with EVIDENCE_BUSY, never with a nonce error.
 */
export async function getEvidence(socket: Socket, host: string, path: string, timeoutMs: number): Promise<RawResponse> {
  const deadline = performance.now() + timeoutMs;
  for (let attempt = 0; ; attempt++) {
    const left = deadline - performance.now();
    if (left <= 0) break;
    const res = await rawGet(socket, host, path, left);
    if (res.status !== 503 && res.status !== 429) return res;
    const retryAfter = Number(res.headers['retry-after']);
    const base = Number.isFinite(retryAfter) && retryAfter >= 0 ? retryAfter * 1000 : 100 * 2 ** Math.min(attempt, 6);
    const wait = Math.min(MAX_RETRY_WAIT_MS, base) * (0.75 + Math.random() * 0.5);
    if (performance.now() + wait >= deadline) break;
    await new Promise((r) => setTimeout(r, wait));
  }
  throw new RatlsError(
    'EVIDENCE_BUSY',
    `The server stayed busy making evidence for ${Math.round(timeoutMs / 1000)} s (HTTP 503, retried with backoff); it is overloaded or flooded. Try again later.`,
  );
}
