/**
 * Intel SGX PCK certificate extensions (OID 1.2.840.113741.1.13.1) and what a verifier or
 * collateral source needs to know about a quote's PCK chain before verifying it.
 */
import { toHex } from '../core/bytes.ts';
import type { Quote } from '../quote/types.ts';
import { DerReader, TAG, derRoot, intValue, oidToString } from './der.ts';
import { RatlsError } from '../core/errors.ts';
import { OID, parseCertificate, type Certificate } from './x509.ts';
import { orderChain } from './chain.ts';
import { pem } from './content-cache.ts';

/** Decoded SGX extensions of a PCK certificate. */
export interface PckExtensions {
  ppid: string;
  /** SGX TCB components 1..16 (CPUSVN components). */
  tcbComponents: number[];
  pceSvn: number;
  cpuSvn: string;
  /** 2-byte PCE ID, lower-case hex. */
  pceId: string;
  /** 6-byte FMSPC, lower-case hex. */
  fmspc: string;
  /** 0 = Standard, 1 = Scalable, 2 = Scalable with integrity. */
  sgxType: number;
  platformInstanceId?: string;
  configuration?: { dynamicPlatform?: boolean; cachedKeys?: boolean; smtEnabled?: boolean };
}

const SGX = OID.sgxExtensions;

function fail(detail: string): never {
  throw new RatlsError('PCK_CERT_EXTENSION_INVALID', `The PCK certificate's SGX extension is invalid: ${detail}.`);
}

function parseTcb(value: Uint8Array, out: { comps: number[]; pceSvn?: number; cpuSvn?: string }): void {
  const r = new DerReader(value, 'PCK_CERT_EXTENSION_INVALID', 'PCK TCB extension');
  const seen = new Set<string>();
  while (!r.done) {
    const e = r.enter(TAG.SEQUENCE);
    const oid = oidToString(e.next(TAG.OID).value);
    const v = e.next();
    if (!e.done) fail(`TCB entry ${oid} has more than an OID and a value`);
    if (seen.has(oid)) fail(`TCB entry ${oid} appears twice`);
    seen.add(oid);
    const sub = oid.startsWith(`${SGX}.2.`) ? Number(oid.slice(SGX.length + 3)) : NaN;
    if (sub >= 1 && sub <= 16) {
      const n = v.tag === TAG.INTEGER ? intValue(v.value) : undefined;
      if (n === undefined || n > 255) fail(`TCB component ${sub} is not a small integer`);
      out.comps[sub - 1] = n;
    } else if (sub === 17) {
      const n = v.tag === TAG.INTEGER ? intValue(v.value) : undefined;
      if (n === undefined || n > 0xffff) fail('PCESVN is not a 16-bit integer');
      out.pceSvn = n;
    } else if (sub === 18) {
      if (v.tag !== TAG.OCTET_STRING || v.value.length !== 16) fail('CPUSVN is not 16 bytes');
      out.cpuSvn = toHex(v.value);
    }
  }
  // Intel's parser (Tcb.cpp) requires exactly the 16 components, PCESVN and CPUSVN.
  if (seen.size !== 18) fail(`TCB has ${seen.size} entries; Intel's PCK certificates have 18`);
}

/**
 * Decodes the SGX extensions of a PCK certificate (DER, or an already parsed certificate).
 * @throws RatlsError PCK_CERT_EXTENSION_INVALID when the extension is absent or malformed.
 */
export function parsePckExtensions(cert: Uint8Array | Certificate): PckExtensions {
  const c = cert instanceof Uint8Array ? parseCertificate(cert, 'PCK_CHAIN_MALFORMED', 'PCK certificate') : cert;
  const ext = c.extensions.get(SGX);
  if (!ext) fail('the certificate has no SGX extension (1.2.840.113741.1.13.1)');
  const { reader } = derRoot(ext, TAG.SEQUENCE, 'PCK_CERT_EXTENSION_INVALID', 'PCK SGX extension');
  const tcb: { comps: number[]; pceSvn?: number; cpuSvn?: string } = { comps: [] };
  let ppid: string | undefined;
  let pceId: string | undefined;
  let fmspc: string | undefined;
  let sgxType: number | undefined;
  let platformInstanceId: string | undefined;
  let configuration: PckExtensions['configuration'];
  const seen = new Set<string>();
  while (!reader.done) {
    const e = reader.enter(TAG.SEQUENCE);
    const oid = oidToString(e.next(TAG.OID).value);
    const v = e.next();
    if (!e.done) fail(`entry ${oid} has more than an OID and a value`);
    if (seen.has(oid)) fail(`entry ${oid} appears twice`);
    seen.add(oid);
    switch (oid) {
      case `${SGX}.1`:
        if (v.tag !== TAG.OCTET_STRING || v.value.length !== 16) fail('PPID is not 16 bytes');
        ppid = toHex(v.value);
        break;
      case `${SGX}.2`:
        if (v.tag !== TAG.SEQUENCE) fail('TCB is not a SEQUENCE');
        parseTcb(v.value, tcb);
        break;
      case `${SGX}.3`:
        if (v.tag !== TAG.OCTET_STRING || v.value.length !== 2) fail('PCE-ID is not 2 bytes');
        pceId = toHex(v.value);
        break;
      case `${SGX}.4`:
        if (v.tag !== TAG.OCTET_STRING || v.value.length !== 6) fail('FMSPC is not 6 bytes');
        fmspc = toHex(v.value);
        break;
      case `${SGX}.5`: {
        const n = v.tag === TAG.ENUMERATED ? intValue(v.value) : undefined;
        if (n === undefined) fail('SGX type is not an ENUMERATED');
        sgxType = n;
        break;
      }
      case `${SGX}.6`:
        if (v.tag === TAG.OCTET_STRING) platformInstanceId = toHex(v.value);
        break;
      case `${SGX}.7`: {
        configuration = {};
        const r = new DerReader(v.value, 'PCK_CERT_EXTENSION_INVALID', 'PCK configuration');
        while (!r.done) {
          const c2 = r.enter(TAG.SEQUENCE);
          const o = oidToString(c2.next(TAG.OID).value);
          const b = c2.next(TAG.BOOLEAN).value[0] !== 0;
          if (o === `${SGX}.7.1`) configuration.dynamicPlatform = b;
          else if (o === `${SGX}.7.2`) configuration.cachedKeys = b;
          else if (o === `${SGX}.7.3`) configuration.smtEnabled = b;
        }
        break;
      }
      default:
        break; // unknown sub-extensions are ignored, as Intel's parser does
    }
  }
  // Intel's parser (PckCertificate.cpp) accepts exactly 5 entries (Processor CA) or 7 (Platform CA),
  // PPID, TCB, PCE-ID, FMSPC and SGX type among them.
  if (seen.size !== 5 && seen.size !== 7) fail(`it has ${seen.size} entries; Intel's PCK certificates have 5 or 7`);
  if (ppid === undefined) fail('PPID is missing');
  if (tcb.comps.length !== 16 || tcb.comps.some((x) => x === undefined)) fail('TCB does not hold all 16 components');
  if (tcb.cpuSvn === undefined) fail('CPUSVN is missing');
  if (tcb.pceSvn === undefined) fail('PCESVN is missing');
  if (!pceId) fail('PCE-ID is missing');
  if (!fmspc) fail('FMSPC is missing');
  if (sgxType === undefined) fail('SGX type is missing');
  const out: PckExtensions = {
    ppid,
    tcbComponents: tcb.comps,
    pceSvn: tcb.pceSvn,
    cpuSvn: tcb.cpuSvn,
    pceId,
    fmspc,
    sgxType,
  };
  if (platformInstanceId !== undefined) out.platformInstanceId = platformInstanceId;
  if (configuration !== undefined) out.configuration = configuration;
  return out;
}

/** Which Intel PCK CA issued a PCK certificate, from the issuer's common name. */
export function pckCaType(issuerCn: string): 'processor' | 'platform' | undefined {
  if (/\bPlatform CA\b/i.test(issuerCn)) return 'platform';
  if (/\bProcessor CA\b/i.test(issuerCn)) return 'processor';
  return undefined;
}

/** What collateral sources and reports need from a quote's PCK chain. */
export interface PckInfo extends PckExtensions {
  pckCa: 'processor' | 'platform';
  /** The leaf certificate, parsed. */
  leaf: Certificate;
}

/**
 * Reads the PCK leaf of a parsed quote: FMSPC, PCE ID, TCB and the issuing CA type.
 * Nothing is verified here. @throws RatlsError PCK_CHAIN_MALFORMED / PCK_CERT_EXTENSION_INVALID.
 */
export function pckInfoFromQuote(quote: Quote): PckInfo {
  const certs = quote.certification.pckChainPem.flatMap((p) => pem(p, 'PCK_CHAIN_MALFORMED', 'PCK certificate chain'));
  if (certs.length === 0) throw new RatlsError('PCK_CHAIN_MALFORMED', 'The quote has no PCK leaf certificate.');
  // The chain may come in any order; its end certificate is the leaf.
  const leaf = orderChain(certs, 'PCK certificate chain', 'PCK_CHAIN_MALFORMED')[0]!;
  const ext = parsePckExtensions(leaf);
  const pckCa = pckCaType(leaf.issuerCn);
  if (!pckCa) {
    throw new RatlsError('PCK_CHAIN_MALFORMED', `The PCK certificate's issuer "${leaf.issuerCn}" is neither a PCK Platform CA nor a PCK Processor CA.`);
  }
  return { ...ext, pckCa, leaf };
}
