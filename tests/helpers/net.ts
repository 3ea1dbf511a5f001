/** Loopback fixtures shared by the end-to-end tests. */
import { connect } from 'node:tls';

/** The DER certificate a TLS server on 127.0.0.1:port presents (no verification: tests inspect it). */
export async function servedCertificate(port: number): Promise<Uint8Array> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: '127.0.0.1', port, servername: 'localhost', rejectUnauthorized: false }, () => {
      const der = new Uint8Array(s.getPeerCertificate().raw);
      s.end();
      resolve(der);
    });
    s.on('error', reject);
  });
}
