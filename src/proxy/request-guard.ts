/**
 * Requests the proxy refuses before routing, for plain requests and WebSocket upgrades alike: those
 * whose meaning the proxy and an upstream could disagree on. Every refusal is the client's fault
 * (400, counted in `ratls_rejected_requests_total`), never an upstream error.
 */
import type { IncomingMessage } from 'node:http';

/** Why a request is refused: the metric's reason label and a sentence for the client. */
export interface RequestRefusal {
  reason: 'bad_request_target' | 'duplicate_host';
  message: string;
}

/**
 * The refusal for `req`, or undefined when it may be routed.
 *
 * - A `#` in the request-target: HTTP never sends a fragment (RFC 9112 3.2), and components
 *   disagree about it (some drop it, Go keeps it in the path), so a path check could see another
 *   path than the upstream's router.
 * - More than one Host header: RFC 9112 3.2 requires 400. Node keeps the first, the upstream client
 *   may refuse the request or send both, and the upstream may pick either.
 */
export function refuseBeforeRouting(req: Pick<IncomingMessage, 'url' | 'rawHeaders'>): RequestRefusal | undefined {
  if (req.url !== undefined && req.url.includes('#')) {
    return {
      reason: 'bad_request_target',
      message:
        'The request-target contains a fragment ("#..."), which HTTP requests never carry (RFC 9112); percent-encode "#" as %23 when it is part of a path.',
    };
  }
  const raw = req.rawHeaders ?? [];
  let hosts = 0;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    if (name.length === 4 && name.toLowerCase() === 'host' && ++hosts > 1) {
      return { reason: 'duplicate_host', message: 'The request carries more than one Host header (RFC 9112 requires exactly one).' };
    }
  }
  return undefined;
}
