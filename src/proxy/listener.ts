/**
 * One HTTPS listener of the proxy: a Node server that serves the current RA-TLS identity, takes
 * each new one at rotation without dropping connections, and hands requests to a dispatch.
 * Several listeners (another port, other upstreams) can serve the same identity rotation.
 */
import * as https from 'node:https';
import type { IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import type { ServeConfig } from './config.ts';
import type { Dispatch } from './dispatch.ts';
import type { ServingIdentity } from './identity-source.ts';
import type { ApplyIdentity } from './identity-rotation.ts';

/** What a listener needs from the identity rotation. */
export interface ServedIdentity<I extends ServingIdentity> {
  current(): I;
  serveWith(apply: ApplyIdentity<I>): () => void;
}

/** Options of {@link listenRatls}. */
export interface RatlsListenerOptions<I extends ServingIdentity> {
  listen: { host: string; port: number };
  tls: Pick<ServeConfig['tls'], 'minVersion'>;
  limits: Pick<ServeConfig['limits'], 'headersTimeoutMs' | 'requestTimeoutMs' | 'keepAliveTimeoutMs'>;
  identity: ServedIdentity<I>;
  dispatch: Dispatch;
  log: Logger;
}

/** A listening HTTPS server. */
export interface RatlsListener {
  /** https://HOST:PORT/ (IPv6 hosts in brackets; a wildcard address as localhost). */
  url: string;
  port: number;
  host: string;
  server: https.Server;
  /**
   * Stops accepting, closes idle keep-alive connections and stops following rotations; resolves
   * when the last connection is gone (`server.closeAllConnections()` cuts the rest).
   */
  stopAccepting(): Promise<void>;
}

/** Key, certificate and TLS settings for one identity. */
function secureContextOptions(id: ServingIdentity, minVersion: RatlsListenerOptions<ServingIdentity>['tls']['minVersion']): https.ServerOptions {
  return { key: id.keyPem, cert: id.certPem, minVersion, ALPNProtocols: ['http/1.1'] };
}

/** Starts an HTTPS listener with the current identity; resolves once it is listening. */
export async function listenRatls<I extends ServingIdentity>(o: RatlsListenerOptions<I>): Promise<RatlsListener> {
  const { dispatch, log } = o;
  const server = https.createServer(
    {
      ...secureContextOptions(o.identity.current(), o.tls.minVersion),
      // Nagle would hold back small token chunks.
      noDelay: true,
      headersTimeout: o.limits.headersTimeoutMs,
      requestTimeout: o.limits.requestTimeoutMs,
      keepAliveTimeout: o.limits.keepAliveTimeoutMs,
    },
    dispatch.request,
  );
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => dispatch.upgrade(req, socket, head));
  // TLS handshake failures from scanners are routine; log at debug, never crash.
  server.on('tlsClientError', (err) => log.debug({ code: (err as NodeJS.ErrnoException).code }, 'TLS handshake failed'));
  server.on('clientError', (err, socket) => {
    log.debug({ code: (err as NodeJS.ErrnoException).code }, 'client error');
    if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n');
    else socket.destroy();
  });
  // Old connections keep the certificate they were served; new ones get the new one.
  const unfollow = o.identity.serveWith((id) => server.setSecureContext(secureContextOptions(id, o.tls.minVersion)));

  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(o.listen.port, o.listen.host, () => {
        server.off('error', reject);
        resolve();
      });
    });
  } catch (err) {
    unfollow();
    throw err;
  }
  server.on('error', (err) => log.error({ err }, 'server error'));
  const addr = server.address() as AddressInfo;
  const hostForUrl = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
  const urlHost = addr.address === '0.0.0.0' || addr.address === '::' ? 'localhost' : hostForUrl;

  return {
    url: `https://${urlHost}:${addr.port}/`,
    port: addr.port,
    host: addr.address,
    server,
    stopAccepting() {
      unfollow();
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      return closed;
    },
  };
}
