/**
 * An undici Agent (dispatcher) whose connector attests every new TLS connection before undici
 * may write to it: the connect callback, which hands the socket to undici, runs only after the
 * verdict.
 */
import { Agent, buildConnector, Client, Pool, fetch as undiciFetch, type Dispatcher } from 'undici';
import type { TLSSocket } from 'node:tls';
import type { Socket } from 'node:net';
import { ConnectionAges } from './connection-age.ts';
import type { ClientPolicy } from '../verify/policy-file.ts';
import { Attestor, type AttestOptions } from './attestor.ts';
import { failedResult } from '../core/checks.ts';
import { AttestationError } from './errors.ts';
import { noRenegotiation } from './tls-options.ts';

/** Options of {@link createAttestedDispatcher}. */
export interface AttestedDispatcherOptions extends AttestOptions {
  /** Passed to undici's Agent (connections, keepAliveTimeout, ...). `connect` is ours. */
  agentOptions?: Omit<Agent.Options, 'connect'>;
  /** Connect timeout in ms (TLS handshake, attestation not included); default 10 s. */
  connectTimeoutMs?: number;
}

/** undici Agent with an attesting connector; `attestor` is exposed for status reporting. */
export interface AttestedDispatcher extends Agent {
  readonly attestor: Attestor;
}

/**
 * Creates an undici dispatcher that verifies every new connection under `policy`.
 * Use with undici's fetch/request, or `fetchOptions: { dispatcher }` in clients built on undici.
 */
export function createAttestedDispatcher(policy: ClientPolicy, opts: AttestedDispatcherOptions = {}): AttestedDispatcher {
  const attestor = new Attestor(policy, opts);
  // maxCachedSessions 0: no TLS session resumption, so no connection skips the check.
  const tlsConnect = buildConnector({
    rejectUnauthorized: false,
    maxCachedSessions: 0,
    timeout: opts.connectTimeoutMs ?? 10_000,
    secureOptions: noRenegotiation(),
  });
  const connect: buildConnector.connector = (options, callback) => {
    if (options.protocol !== 'https:') {
      callback(
        new AttestationError(
          `${options.hostname}:${options.port}`,
          failedResult({ code: 'CONNECTION_FAILED', message: `Refusing ${options.protocol}//${options.hostname}: attested connections need https.` }),
        ),
        null,
      );
      return;
    }
    tlsConnect(options, (err, socket) => {
      if (err || !socket) return callback(err ?? new Error('TLS connection failed'), null);
      const tlsSocket = socket as TLSSocket;
      attestor.attest(tlsSocket, options.servername || options.hostname, options.port || 443).then(
        () => callback(null, socket),
        (e: unknown) => {
          socket.destroy();
          callback(e instanceof Error ? e : new Error(String(e)), null);
        },
      );
    });
  };
  const ages = new ConnectionAges(policy.freshness.maxConnectionAgeSeconds);
  // undici pools one socket per Client: our Client subclass knows its socket and closes it after its
  // current response once maxConnectionAge is reached (src/client/connection-age.ts)
  const factory = (origin: string | URL, options: Agent.Options): Dispatcher =>
    new Pool(origin, { ...(options as Pool.Options), factory: (o: string | URL, co: object) => new AgedClient(o, co as Client.Options, ages) });
  const agent = new Agent({ ...opts.agentOptions, connect, ...(ages.enabled ? { factory } : {}) }) as AttestedDispatcher;
  Object.defineProperty(agent, 'attestor', { value: attestor, enumerable: false });
  return agent;
}

/** How often an expired connection that is still busy is looked at again. */
const EXPIRED_POLL_MS = 200;

/**
 * An undici Client (one connection at a time) that closes its connection after the current
 * response once the connection is maxConnectionAge old: idle at that moment -> closed now; busy ->
 * later requests ask undici to close after them (`reset`), and the socket is closed as soon as
 * nothing is in flight.
 */
class AgedClient extends Client {
  private socket: Socket | undefined;

  constructor(origin: string | URL, options: Client.Options, ages: ConnectionAges) {
    const inner = options.connect as buildConnector.connector;
    super(origin, {
      ...options,
      connect: (o, cb) =>
        inner(o, (err, sock) => {
          if (err || !sock) return cb(err ?? new Error('TLS connection failed'), null);
          this.socket = sock;
          ages.start(sock, () => this.expire(sock));
          cb(null, sock);
        }),
    });
    this.ages = ages;
  }

  private readonly ages: ConnectionAges;

  override dispatch(opts: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler): boolean {
    const s = this.socket;
    return super.dispatch(s && !s.destroyed && this.ages.expired(s) ? { ...opts, reset: true } : opts, handler);
  }

  private expire(socket: Socket): void {
    if (socket.destroyed) return;
    if (this.stats.size === 0) return void socket.destroy();
    const poll = setInterval(() => {
      if (socket.destroyed) clearInterval(poll);
      else if (this.stats.size === 0) {
        clearInterval(poll);
        socket.destroy();
      }
    }, EXPIRED_POLL_MS);
    poll.unref();
  }
}

/** Finds an AttestationError in an error's cause chain (fetch wraps it in "fetch failed"). */
export function findAttestationError(err: unknown): AttestationError | undefined {
  for (let e = err, depth = 0; e && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    if (e instanceof AttestationError) return e;
  }
  return undefined;
}

/** fetch bound to a dispatcher: failures of attestation reject with the AttestationError itself. */
export type AttestedFetch = (input: string | URL | Request, init?: RequestInit) => Promise<Response>;

/**
 * Node's global FormData belongs to the undici bundled with Node, which the npm undici's fetch does
 * not recognise: it would send the text "[object FormData]". Such a body is encoded here, with
 * Node's own multipart encoder (a global Response), into a stream and its content type.
 */
function withPortableBody(init: RequestInit | undefined): RequestInit | undefined {
  const body = init?.body;
  if (typeof globalThis.FormData !== 'function' || !(body instanceof globalThis.FormData)) return init;
  const encoded = new Response(body);
  const headers = new Headers(init?.headers);
  if (!headers.has('content-type')) headers.set('content-type', encoded.headers.get('content-type') ?? 'multipart/form-data');
  return { ...init, headers, body: encoded.body, duplex: 'half' } as RequestInit;
}

/**
 * A fetch that uses `dispatcher` for every request and rethrows AttestationError unwrapped.
 * Pass it as `fetch` to the openai and ollama clients.
 */
export function fetchWithDispatcher(dispatcher: Agent): AttestedFetch {
  return async (input, init) => {
    try {
      // undici's own fetch: Node's built-in fetch bundles a different undici whose dispatcher
      // interface may not match the npm one.
      return (await undiciFetch(input as Parameters<typeof undiciFetch>[0], {
        ...(withPortableBody(init) as Parameters<typeof undiciFetch>[1]),
        dispatcher,
      })) as unknown as Response;
    } catch (err) {
      throw findAttestationError(err) ?? err;
    }
  };
}
