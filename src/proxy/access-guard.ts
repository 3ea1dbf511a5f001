/**
 * A Bearer-token gate in front of a listener's dispatch (the Ollama listener's): requests without
 * the token, or with another one, get 401 and nothing is forwarded; the control routes stay open,
 * since clients attest the listener before they send the token. The token leaves this module
 * only as a digest: it is never logged, and it is removed from the request before forwarding
 * (the upstream has no use for it).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import { bearerMatcher } from '../core/access-token.ts';
import { isControlPath } from './control.ts';
import type { Dispatch } from './dispatch.ts';
import type { ProxyMetrics } from './metrics.ts';

/** Options of {@link guardWithToken}. */
export interface AccessGuardOptions {
  token: string;
  /** Names the protected resource in WWW-Authenticate (RFC 6750 realm). */
  realm: string;
  /** The route label of refused requests in metrics and logs. */
  route: string;
  metrics: Pick<ProxyMetrics, 'rejected' | 'requests'>;
  log: Logger;
}

function pathOf(url: string | undefined): string {
  const u = url ?? '/';
  const q = u.indexOf('?');
  return q < 0 ? u : u.slice(0, q);
}

/** Drops every Authorization header, from the parsed headers and from the raw list undici forwards. */
function dropAuthorization(req: IncomingMessage): void {
  if (req.headers.authorization !== undefined) delete req.headers.authorization;
  const raw = req.rawHeaders;
  for (let i = raw.length - 2; i >= 0; i -= 2) if (raw[i]!.toLowerCase() === 'authorization') raw.splice(i, 2);
}

/** Wraps `inner` so that only requests carrying `Authorization: Bearer <token>` reach it. */
export function guardWithToken(inner: Dispatch, o: AccessGuardOptions): Dispatch {
  const matches = bearerMatcher(o.token);
  const challenge = (outcome: 'missing' | 'wrong') =>
    outcome === 'missing' ? `Bearer realm="${o.realm}"` : `Bearer realm="${o.realm}", error="invalid_token"`;
  const message = (outcome: 'missing' | 'wrong') =>
    outcome === 'missing'
      ? `This listener needs "Authorization: Bearer <access token>" (the token ratls serve was given for ${o.realm}).\n`
      : 'The access token is not the one this listener was given.\n';

  const refuse = (req: IncomingMessage, res: ServerResponse, path: string, outcome: 'missing' | 'wrong'): void => {
    o.metrics.rejected.inc({ reason: 'unauthorized' });
    res.once('close', () => {
      o.metrics.requests.inc({ route: o.route, method: req.method ?? '', status: '401' });
      o.log.info({ method: req.method, path, status: 401, upstream: o.route, rejected: outcome === 'missing' ? 'no_token' : 'wrong_token' }, 'request');
    });
    const body = message(outcome);
    res.writeHead(401, {
      'www-authenticate': challenge(outcome),
      'content-type': 'text/plain; charset=utf-8',
      'content-length': Buffer.byteLength(body),
      'cache-control': 'no-store',
      // the body (an upload, a prompt) is not read: close rather than drain it
      connection: 'close',
    });
    res.end(body);
    res.once('finish', () => req.socket.destroySoon());
  };

  return {
    request(req, res) {
      const path = pathOf(req.url);
      if (isControlPath(path)) {
        inner.request(req, res);
        return;
      }
      const outcome = matches(req.headers.authorization);
      if (outcome !== 'ok') {
        refuse(req, res, path, outcome);
        return;
      }
      dropAuthorization(req);
      inner.request(req, res);
    },
    upgrade(req: IncomingMessage, socket: Duplex, head: Buffer) {
      const outcome = isControlPath(pathOf(req.url)) ? 'ok' : matches(req.headers.authorization);
      if (outcome !== 'ok') {
        o.metrics.rejected.inc({ reason: 'unauthorized' });
        socket.end(`HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: ${challenge(outcome)}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
        return;
      }
      dropAuthorization(req);
      inner.upgrade(req, socket, head);
    },
  };
}
