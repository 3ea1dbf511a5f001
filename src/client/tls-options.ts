/** TLS settings every attesting client connection shares. */
import { constants } from 'node:crypto';

/**
 * `secureOptions` with renegotiation refused. Attestation checks the certificate of the first
 * handshake; a TLS 1.2 server could otherwise start a second handshake on the same, already
 * trusted connection later. TLS 1.3 has no renegotiation, so this costs nothing there.
 */
export function noRenegotiation(secureOptions = 0): number {
  return secureOptions | constants.SSL_OP_NO_RENEGOTIATION;
}
