/**
 * A Node https.Agent that attests every new TLS connection before handing it to the request.
 * Node's http Agent accepts an asynchronous createConnection (return nothing, call back later), and
 * a request writes nothing until it has its socket, so no request byte precedes the verdict.
 */
import https from 'node:https';
import tls from 'node:tls';
import type { Duplex } from 'node:stream';
import type { ClientPolicy } from '../verify/policy-file.ts';
import { Attestor, type AttestOptions } from './attestor.ts';
import { failedResult } from '../core/checks.ts';
import type { VerifyError } from '../core/errors.ts';
import { AttestationError } from './errors.ts';
import { noRenegotiation } from './tls-options.ts';
import { ConnectionAges } from './connection-age.ts';

const CLOSED_DURING_ATTESTATION: VerifyError = { code: 'CONNECTION_FAILED', message: 'The connection closed during attestation.' };

/** Options of {@link createAttestedAgent}. */
export interface AttestedAgentOptions extends AttestOptions {
  /** Passed to https.Agent (keepAlive, maxSockets, timeout...). Session caching is always off. */
  agentOptions?: Omit<https.AgentOptions, 'maxCachedSessions' | 'rejectUnauthorized'>;
}

type ConnectCallback = (err: Error | null, stream: Duplex) => void;

/** https.Agent whose sockets are all attested. */
export class AttestedAgent extends https.Agent {
  readonly attestor: Attestor;
  /** When each attested socket reaches policy.freshness.maxConnectionAge. */
  readonly ages: ConnectionAges;

  constructor(policy: ClientPolicy, opts: AttestedAgentOptions = {}) {
    super({ keepAlive: true, ...opts.agentOptions, maxCachedSessions: 0 });
    this.attestor = new Attestor(policy, opts);
    this.ages = new ConnectionAges(policy.freshness.maxConnectionAgeSeconds);
  }

  /** An attested connection past maxConnectionAge goes no further than its current response. */
  override keepSocketAlive(socket: Duplex): boolean {
    if (this.ages.expired(socket as tls.TLSSocket)) return false;
    // typed void, but Node's Agent returns whether it kept the socket
    const kept: unknown = super.keepSocketAlive(socket);
    return kept !== false;
  }

  /** At maxConnectionAge an idle pooled socket is closed now; a busy one by keepSocketAlive after its response. */
  private expire(socket: tls.TLSSocket): void {
    const idle = Object.values(this.freeSockets).some((list) => list?.includes(socket));
    if (idle) socket.destroy();
  }

  /** Returns nothing and calls back once the peer is attested (Node's asynchronous form). */
  override createConnection(reqOptions: https.RequestOptions, callback?: ConnectCallback): Duplex | null | undefined {
    const options = reqOptions as tls.ConnectionOptions & { host?: string; port?: number };
    const cb = callback ?? (() => {});
    let done = false;
    const once = (err: Error | null, s?: Duplex) => {
      if (done) return;
      done = true;
      cb(err, s as Duplex);
    };
    // The RA-TLS certificate is self-issued: attestation, not the WebPKI, authenticates the peer.
    // No session is offered, so every connection does a full handshake and is attested.
    const socket = tls.connect({ ...options, rejectUnauthorized: false, session: undefined, secureOptions: noRenegotiation(options.secureOptions) });
    const onError = (err: Error) => {
      socket.destroy();
      once(err);
    };
    socket.once('error', onError);
    socket.once('secureConnect', () => {
      const host = options.servername || options.host || 'localhost';
      this.attestor.attest(socket, host, options.port ?? 443).then(
        () => {
          socket.removeListener('error', onError);
          if (socket.destroyed)
            return once(
              new AttestationError(`${host}:${options.port ?? 443}`, failedResult(CLOSED_DURING_ATTESTATION, { check: CLOSED_DURING_ATTESTATION.code })),
            );
          this.ages.start(socket, () => this.expire(socket));
          once(null, socket);
        },
        (err: unknown) => {
          socket.destroy();
          once(err instanceof Error ? err : new Error(String(err)));
        },
      );
    });
    return undefined;
  }
}

/**
 * Creates an https.Agent that verifies every new connection under `policy` before any request
 * byte is written. A refused connection fails the request with {@link AttestationError}.
 *
 * @example
 * const agent = createAttestedAgent(loadPolicyFile('policy.yaml'));
 * https.get('https://vm.example/', { agent }, (res) => res.pipe(process.stdout));
 */
export function createAttestedAgent(policy: ClientPolicy, opts?: AttestedAgentOptions): AttestedAgent {
  return new AttestedAgent(policy, opts);
}
