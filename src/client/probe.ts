/**
 * One-off attestation of a URL: open a TLS connection, attest it, close it. Used by
 * `ratls verify`, `ratls policy from` and the status of `ratls connect`.
 */
import tls from 'node:tls';
import { isIP } from 'node:net';
import { RatlsError } from '../core/errors.ts';
import type { ClientPolicy } from '../verify/policy-file.ts';
import { Attestor, type AttestOptions, type AttestationEvent } from './attestor.ts';
import { AttestationError } from './errors.ts';
import { noRenegotiation } from './tls-options.ts';

/** host, port and SNI name of an https URL. */
export function parseHttpsUrl(url: string): { host: string; port: number; servername?: string } {
  let u: URL;
  try {
    u = new URL(url.includes('://') ? url : `https://${url}`);
  } catch {
    throw new RatlsError('CONNECTION_FAILED', `"${url}" is not a URL; expected https://host[:port].`);
  }
  if (u.protocol !== 'https:') throw new RatlsError('CONNECTION_FAILED', `"${url}" is not an https URL; RA-TLS servers speak TLS.`);
  const host = u.hostname.replace(/^\[|\]$/g, '');
  const port = u.port ? Number(u.port) : 443;
  return isIP(host) ? { host, port } : { host, port, servername: host };
}

/** Opens a TLS connection (no session reuse, no WebPKI check: attestation decides). */
export function openTls(target: { host: string; port: number; servername?: string }, timeoutMs: number): Promise<tls.TLSSocket> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({
      host: target.host,
      port: target.port,
      rejectUnauthorized: false,
      ALPNProtocols: ['http/1.1'],
      secureOptions: noRenegotiation(),
      ...(target.servername ? { servername: target.servername } : {}),
    });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new RatlsError('CONNECTION_FAILED', `No TLS handshake with ${target.host}:${target.port} within ${timeoutMs} ms.`));
    }, timeoutMs);
    socket.once('secureConnect', () => {
      clearTimeout(timer);
      socket.removeAllListeners('error');
      socket.on('error', () => {});
      resolve(socket);
    });
    socket.once('error', (err) => {
      clearTimeout(timer);
      reject(new RatlsError('CONNECTION_FAILED', `Cannot connect to ${target.host}:${target.port}: ${err.message}`));
    });
  });
}

/**
 * Attests the server at `url` under `policy`. Resolves with the event whether or not it passed
 * (`event.result.ok`); rejects with RatlsError CONNECTION_FAILED when no TLS connection could be made.
 */
export async function probe(
  url: string,
  policy: ClientPolicy,
  opts: AttestOptions & { timeoutMs?: number; attestor?: Attestor } = {},
): Promise<AttestationEvent> {
  const target = parseHttpsUrl(url);
  const attestor = opts.attestor ?? new Attestor(policy, opts);
  const socket = await openTls(target, opts.timeoutMs ?? 15_000);
  try {
    return await attestor.attest(socket, target.servername ?? target.host, target.port, opts.workload ? { workload: opts.workload } : {});
  } catch (err) {
    if (err instanceof AttestationError) {
      return { peer: err.peer, result: err.result, nonceVerified: false, at: new Date(), ...certOf(socket) };
    }
    throw err;
  } finally {
    socket.destroy();
  }
}

function certOf(socket: tls.TLSSocket): { certDer?: Uint8Array; certSha256?: string } {
  const c = socket.getPeerCertificate(false);
  if (!c?.raw) return {};
  return { certDer: new Uint8Array(c.raw), certSha256: c.fingerprint256?.replace(/:/g, '').toLowerCase() };
}
