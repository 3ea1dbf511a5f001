/** Paced writing of token streams (NDJSON and SSE) that stops as soon as the client leaves. */
import type * as http from 'node:http';

/**
 * Writes `pieces` one by one with `delayMs` between them, then `last` and ends the response.
 * Stops (without writing the rest) when the client closes the connection, so an abandoned
 * generation costs nothing, as with a real model server.
 */
export async function writePaced(res: http.ServerResponse, pieces: string[], delayMs: number, last: string): Promise<void> {
  let closed = false;
  res.once('close', () => (closed = true));
  for (let i = 0; i < pieces.length && !closed; i++) {
    res.write(pieces[i]!);
    if (delayMs > 0) await new Promise((r) => setTimeout(r, delayMs));
  }
  if (!closed) res.end(last);
}

/** One server-sent event carrying `data`. */
export function sseEvent(data: string): string {
  return `data: ${data}\n\n`;
}
