/**
 * RA-TLS certificate issuance: a fresh key pair in memory, claims binding its public key, a TDX
 * quote over those claims, and a short-lived self-signed certificate carrying the evidence
 * (2.23.133.5.4.9) and, when available, stapled collateral (2.23.133.5.4.2).
 *
 * Uses WebCrypto and @peculiar/x509 only; the clock is a parameter.
 */
import * as x509 from '@peculiar/x509';
import * as asn1js from 'asn1js';
import { RatlsError } from '../core/errors.ts';
import type { Collateral } from '../core/types.ts';
import type { EvidenceProvider } from './evidence-provider.ts';
import { concatBytes, digest, toHex } from '../core/bytes.ts';
import { encodeClaims, reportDataForClaims, type PubkeyHashAlg } from './claims.ts';
import { encodeEndorsements, encodeEvidence, OID_DSTACK_EVENT_LOG, OID_DSTACK_QUOTE, OID_RATLS_ENDORSEMENTS, OID_RATLS_EVIDENCE } from './extension.ts';

/** Options of {@link createRatlsIdentity}. */
export interface CreateRatlsIdentityOptions {
  provider: EvidenceProvider;
  /** DNS names and IP addresses for the subjectAltName; the first also names the subject. */
  hosts?: string[];
  /** Default 'P-256'. */
  keyAlg?: 'P-256' | 'P-384';
  /** Default 86400 (24 h). */
  validitySeconds?: number;
  /** Issuance time (default: now). */
  now?: Date;
  /** Staple collateral in 2.23.133.5.4.2 (default true): `collateral` if given, else the provider's. */
  stapleCollateral?: boolean;
  /** Collateral to staple when the provider has none of its own (configfs-tsm: from PCS/PCCS). */
  collateral?: Collateral;
  /** 'ccc' (default): CCC Interoperable RA-TLS. 'dstack': raw quote, REPORTDATA = SHA-512("ratls-cert:" || SPKI). */
  profile?: 'ccc' | 'dstack';
  /** Hash of the pubkey-hash claim (default SHA-256). */
  pubkeyHashAlg?: PubkeyHashAlg;
  /** The "runtime-log" claim to bind (ccc profile): the runtime log's replay value, 48 bytes. */
  runtimeLog?: Uint8Array;
}

/** A key pair with its RA-TLS certificate. */
export interface RatlsIdentity {
  certPem: string;
  certDer: Uint8Array;
  /**
   * PKCS#8 PEM of the private key, only for tls.createSecureContext. Non-enumerable so that
   * logging or serialising the identity does not leak it; never write it anywhere.
   */
  readonly keyPem: string;
  spkiDer: Uint8Array;
  quote: Uint8Array;
  /** The claims-buffer the quote's REPORTDATA hashes (empty for the dstack profile). */
  claimsBuffer: Uint8Array;
  notBefore: Date;
  notAfter: Date;
  /** Lower-case hex SHA-256 of the certificate DER. */
  fingerprintSha256: string;
  simulated: boolean;
  providerName: string;
  profile: 'ccc' | 'dstack';
  /** The CryptoKey pair, for callers that sign with it directly (non-enumerable). */
  readonly keyPair: CryptoKeyPair;
}

/** Certificates are backdated this much so peers with a slightly slow clock accept them. */
export const CLOCK_SKEW_ALLOWANCE_SECONDS = 60;
const MAX_VALIDITY_SECONDS = 90 * 86400;
const DSTACK_PREFIX = new TextEncoder().encode('ratls-cert:');

/** REPORTDATA of the dstack profile: SHA-512("ratls-cert:" || SPKI DER). */
export async function dstackReportData(spkiDer: Uint8Array): Promise<Uint8Array> {
  return digest('SHA-512', concatBytes(DSTACK_PREFIX, spkiDer));
}

const IPV4 = /^((25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)$/;
const IPV6 = /^[0-9A-Fa-f:.]+$/;
function isIp(host: string): boolean {
  if (IPV4.test(host)) return true;
  if (!host.includes(':') || !IPV6.test(host)) return false;
  // URL parsing is the portable IPv6 syntax check available in browsers and Node alike.
  try {
    return new URL(`http://[${host}]/`).hostname.length > 2;
  } catch {
    return false;
  }
}

function validHost(h: string): boolean {
  if (isIp(h)) return true;
  if (h.includes(':')) return false;
  return /^(\*\.)?[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/.test(h) && h.length <= 253;
}

/** Creates a new key pair and its RA-TLS certificate. The key never leaves memory. */
export async function createRatlsIdentity(opts: CreateRatlsIdentityOptions): Promise<RatlsIdentity> {
  const subtle = globalThis.crypto.subtle;
  const keyAlg = opts.keyAlg ?? 'P-256';
  if (keyAlg !== 'P-256' && keyAlg !== 'P-384') throw new RatlsError('POLICY_INVALID', `Unsupported key algorithm ${String(keyAlg)}; use P-256 or P-384.`);
  const validity = opts.validitySeconds ?? 86400;
  if (!Number.isInteger(validity) || validity < 60 || validity > MAX_VALIDITY_SECONDS) {
    throw new RatlsError('POLICY_INVALID', `Certificate validity must be between 60 seconds and 90 days, got ${validity}.`);
  }
  const hosts = opts.hosts ?? [];
  for (const h of hosts) {
    if (!validHost(h)) throw new RatlsError('POLICY_INVALID', `"${h.slice(0, 80)}" is not a valid DNS name or IP address for the certificate.`);
  }
  const profile = opts.profile ?? 'ccc';
  const now = opts.now ?? new Date();
  const nowSec = Math.floor(now.getTime() / 1000);
  const notBefore = new Date((nowSec - CLOCK_SKEW_ALLOWANCE_SECONDS) * 1000);
  const notAfter = new Date((nowSec + validity) * 1000);

  const sigHash = keyAlg === 'P-384' ? 'SHA-384' : 'SHA-256';
  const keys = (await subtle.generateKey({ name: 'ECDSA', namedCurve: keyAlg }, true, ['sign', 'verify'])) as CryptoKeyPair;
  const spkiDer = new Uint8Array(await subtle.exportKey('spki', keys.publicKey));

  let quote: Uint8Array;
  let claimsBuffer: Uint8Array;
  const exts: x509.Extension[] = [];
  if (profile === 'ccc') {
    claimsBuffer = await encodeClaims({ spkiDer, hashAlg: opts.pubkeyHashAlg ?? 'SHA-256', ...(opts.runtimeLog ? { runtimeLog: opts.runtimeLog } : {}) });
    quote = await opts.provider.getQuote(await reportDataForClaims(claimsBuffer));
    exts.push(new x509.Extension(OID_RATLS_EVIDENCE, false, encodeEvidence(quote, claimsBuffer).slice().buffer));
  } else if (profile === 'dstack') {
    claimsBuffer = new Uint8Array(0);
    quote = await opts.provider.getQuote(await dstackReportData(spkiDer));
    // dstack's ra-tls crate DER-wraps the quote in an OCTET STRING inside extnValue; do the same.
    const wrapped = new asn1js.OctetString({ valueHex: quote.slice().buffer }).toBER(false);
    exts.push(new x509.Extension(OID_DSTACK_QUOTE, false, wrapped));
    // dstack's verifier requires an event log next to the quote and replays RTMR3 from its runtime
    // events (starting at 48 zero bytes). We record none, so the log is "[]": dstack verifiers accept
    // the certificate exactly when nothing extended RTMR3, and refuse it (RTMR3 mismatch) otherwise.
    const eventLog = new asn1js.OctetString({ valueHex: new TextEncoder().encode('[]').buffer }).toBER(false);
    exts.push(new x509.Extension(OID_DSTACK_EVENT_LOG, false, eventLog));
  } else {
    throw new RatlsError('POLICY_INVALID', `Unknown RA-TLS profile ${String(profile)}; use ccc or dstack.`);
  }
  if (opts.stapleCollateral ?? true) {
    const collateral = opts.collateral ?? (opts.provider.collateral ? await opts.provider.collateral(now) : undefined);
    if (collateral) exts.push(new x509.Extension(OID_RATLS_ENDORSEMENTS, false, encodeEndorsements(collateral, now).slice().buffer));
  }

  const simulated = opts.provider.simulated;
  const cn = (hosts[0] ?? 'ratls-proxy') + (simulated ? ' SIMULATED' : '');
  const dnsEsc = (s: string) => s.replace(/[,+"\\<>;=]/g, (c) => `\\${c}`);
  const subject = `CN=${dnsEsc(cn)}, O=${simulated ? 'ratls-proxy SIMULATED TDX (not attested by Intel)' : 'ratls-proxy'}`;
  if (hosts.length > 0) {
    exts.push(
      new x509.SubjectAlternativeNameExtension(
        hosts.map((h) => ({ type: isIp(h) ? ('ip' as const) : ('dns' as const), value: h })),
        false,
      ),
    );
  }
  exts.push(
    new x509.BasicConstraintsExtension(false, undefined, true),
    new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
    new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth], false),
    await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
  );
  const serial = globalThis.crypto.getRandomValues(new Uint8Array(16));
  serial[0] = (serial[0]! & 0x7f) | 0x01;
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: toHex(serial),
    name: subject,
    notBefore,
    notAfter,
    keys,
    signingAlgorithm: { name: 'ECDSA', hash: sigHash },
    extensions: exts,
  });
  const certDer = new Uint8Array(cert.rawData);
  const pkcs8 = await subtle.exportKey('pkcs8', keys.privateKey);
  const identity = {
    certPem: cert.toString('pem') + '\n',
    certDer,
    spkiDer,
    quote,
    claimsBuffer,
    notBefore,
    notAfter,
    fingerprintSha256: toHex(await digest('SHA-256', certDer)),
    simulated,
    providerName: opts.provider.name,
    profile,
  } as RatlsIdentity;
  Object.defineProperty(identity, 'keyPem', { value: x509.PemConverter.encode(pkcs8, 'PRIVATE KEY') + '\n', enumerable: false });
  Object.defineProperty(identity, 'keyPair', { value: keys, enumerable: false });
  return identity;
}
