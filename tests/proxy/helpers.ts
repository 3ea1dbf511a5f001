/** Test helpers for the proxy: a self-signed identity source and a loopback config. */
import { createHash, webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';
import { Agent } from 'undici';
import { validateConfig, type RawConfig, type ServeConfig } from '../../src/proxy/config.ts';
import type { IdentitySource, ServingIdentity } from '../../src/proxy/identity-source.ts';

x509.cryptoProvider.set(webcrypto as unknown as Crypto);

function pem(label: string, der: ArrayBuffer): string {
  const b64 = Buffer.from(der)
    .toString('base64')
    .replace(/(.{64})/g, '$1\n');
  return `-----BEGIN ${label}-----\n${b64}${b64.length % 65 === 0 ? '' : '\n'}-----END ${label}-----\n`;
}

/** Issues self-signed P-256 certificates for localhost/127.0.0.1; evidence is a fake marker. */
export function selfSignedSource(opts: { validityMs?: number; backdateMs?: number } = {}): IdentitySource & { issued: ServingIdentity[] } {
  const issued: ServingIdentity[] = [];
  return {
    issued,
    async issue(now: Date): Promise<ServingIdentity> {
      const alg = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' };
      const keys = (await webcrypto.subtle.generateKey(alg, true, ['sign', 'verify'])) as CryptoKeyPair;
      const notBefore = new Date(now.getTime() - (opts.backdateMs ?? 60_000));
      const notAfter = new Date(now.getTime() + (opts.validityMs ?? 3_600_000));
      const cert = await x509.X509CertificateGenerator.createSelfSigned({
        serialNumber: Buffer.from(webcrypto.getRandomValues(new Uint8Array(8)))
          .toString('hex')
          .replace(/^[89a-f]/, '1'),
        name: 'CN=ratls-test',
        notBefore,
        notAfter,
        signingAlgorithm: alg,
        keys,
        extensions: [
          new x509.SubjectAlternativeNameExtension([
            { type: 'dns', value: 'localhost' },
            { type: 'ip', value: '127.0.0.1' },
          ]),
        ],
      });
      const pkcs8 = await webcrypto.subtle.exportKey('pkcs8', keys.privateKey);
      const certDer = new Uint8Array(cert.rawData);
      const id: ServingIdentity = {
        certPem: cert.toString('pem'),
        certDer,
        keyPem: pem('PRIVATE KEY', pkcs8),
        notBefore,
        notAfter,
        fingerprintSha256: createHash('sha256').update(certDer).digest('hex'),
        simulated: true,
        providerName: 'self-signed-test',
      };
      issued.push(id);
      return id;
    },
    async evidence(identity: ServingIdentity, nonce: Uint8Array): Promise<Uint8Array> {
      return new Uint8Array(Buffer.concat([Buffer.from(identity.fingerprintSha256, 'hex'), Buffer.from(nonce)]));
    },
  };
}

/** A validated config listening on an ephemeral loopback port. */
export function testConfig(raw: RawConfig): ServeConfig {
  return validateConfig({ listen: '127.0.0.1:0', log: { level: 'silent' }, ...raw });
}

/** An undici Agent that trusts exactly this certificate. */
export function trustingAgent(certPem: string, opts: { keepAlive?: boolean } = {}): Agent {
  return new Agent({ connect: { ca: certPem, servername: 'localhost' }, ...(opts.keepAlive === false ? { pipelining: 0 } : {}) });
}

/**
 * Upstream engines every proxying test runs against: undici is the only HTTP engine since
 * http-proxy-3 was dropped from the HTTP path (docs/serve.md, Engines); WebSocket upgrades, which
 * still go through http-proxy-3, run in every one of them.
 */
export const ENGINES = ['undici'] as const;

/**
 * Every value the `engine` key accepts. The security tests run on each, so a setting kept for
 * compatibility can never bring back a weaker path.
 */
export const ENGINE_SETTINGS = ['undici', 'http-proxy-3'] as const;
