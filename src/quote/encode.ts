/**
 * Serialises TDX quotes (version 4, TD report body type 2, attestation key type 2, certification
 * data type 6 wrapping type 5) in Intel's wire layout, the inverse of parseQuote. Used by the
 * simulated evidence provider and by tests that need well-formed or deliberately altered quotes.
 *
 * Browser-safe: no Node APIs.
 */
import { RatlsError } from '../core/errors.ts';
import type { EnclaveReportBody, TdReportBody } from './types.ts';

/** Intel's QE vendor id (939a7233-f79c-4ca9-940a-0db3957f0607). */
export const INTEL_QE_VENDOR_ID_BYTES = new Uint8Array([0x93, 0x9a, 0x72, 0x33, 0xf7, 0x9c, 0x4c, 0xa9, 0x94, 0x0a, 0x0d, 0xb3, 0x95, 0x7f, 0x06, 0x07]);

/** Header fields of a v4 TDX quote. */
export interface QuoteHeaderParts {
  /** Only 4 is produced. */
  version?: 4;
  /** Default 2 (ECDSA-256 with P-256). */
  attestationKeyType?: number;
  /** Default 0x81 (TDX). */
  teeType?: number;
  qeSvn: number;
  pceSvn: number;
  /** 16 bytes; default Intel's QE vendor id. */
  qeVendorId?: Uint8Array;
  /** 20 bytes; default zeros. */
  userData?: Uint8Array;
}

/** SGX report body fields of the QE report (384 bytes when encoded). */
export type EnclaveReportParts = Omit<EnclaveReportBody, 'raw'>;

/** Everything a v4 TDX quote holds. */
export interface QuoteParts {
  header: QuoteHeaderParts;
  body: Omit<TdReportBody, 'teeTcbSvn2' | 'mrServiceTd'>;
  /** Quote signature r||s (64 bytes) over header || body. */
  signature: Uint8Array;
  /** Attestation public key x||y (64 bytes). */
  attestationKey: Uint8Array;
  /** The 384-byte QE report as signed by the PCK key. */
  qeReport: Uint8Array;
  /** PCK signature r||s (64 bytes) over qeReport. */
  qeReportSignature: Uint8Array;
  qeAuthData: Uint8Array;
  /** PEM certificates, leaf first, concatenated (certification data type 5). */
  pckChainPem: string;
}

export const QUOTE_HEADER_BYTES = 48;
export const TD_REPORT_BODY_BYTES = 584;
export const ENCLAVE_REPORT_BYTES = 384;

function need(cond: boolean, what: string): void {
  if (!cond) throw new RatlsError('QUOTE_MALFORMED', `Cannot encode quote: ${what}.`);
}

function put(out: Uint8Array, off: number, bytes: Uint8Array, len: number, name: string): void {
  need(bytes.length === len, `${name} must be ${len} bytes, got ${bytes.length}`);
  out.set(bytes, off);
}

function u16(view: DataView, off: number, v: number, name: string): void {
  need(Number.isInteger(v) && v >= 0 && v <= 0xffff, `${name} must fit in 16 bits`);
  view.setUint16(off, v, true);
}

function u32(view: DataView, off: number, v: number, name: string): void {
  need(Number.isInteger(v) && v >= 0 && v <= 0xffffffff, `${name} must fit in 32 bits`);
  view.setUint32(off, v, true);
}

/** The 48-byte quote header. */
export function encodeQuoteHeader(h: QuoteHeaderParts): Uint8Array {
  const out = new Uint8Array(QUOTE_HEADER_BYTES);
  const v = new DataView(out.buffer);
  u16(v, 0, h.version ?? 4, 'version');
  u16(v, 2, h.attestationKeyType ?? 2, 'attestation key type');
  u32(v, 4, h.teeType ?? 0x81, 'TEE type');
  u16(v, 8, h.qeSvn, 'QE SVN');
  u16(v, 10, h.pceSvn, 'PCE SVN');
  put(out, 12, h.qeVendorId ?? INTEL_QE_VENDOR_ID_BYTES, 16, 'QE vendor id');
  put(out, 28, h.userData ?? new Uint8Array(20), 20, 'user data');
  return out;
}

/** The 584-byte TD report body (TDX 1.0 layout). */
export function encodeTdReportBody(b: QuoteParts['body']): Uint8Array {
  const out = new Uint8Array(TD_REPORT_BODY_BYTES);
  put(out, 0, b.teeTcbSvn, 16, 'TEE_TCB_SVN');
  put(out, 16, b.mrSeam, 48, 'MRSEAM');
  put(out, 64, b.mrSignerSeam, 48, 'MRSIGNERSEAM');
  put(out, 112, b.seamAttributes, 8, 'SEAMATTRIBUTES');
  put(out, 120, b.tdAttributes, 8, 'TDATTRIBUTES');
  put(out, 128, b.xfam, 8, 'XFAM');
  put(out, 136, b.mrTd, 48, 'MRTD');
  put(out, 184, b.mrConfigId, 48, 'MRCONFIGID');
  put(out, 232, b.mrOwner, 48, 'MROWNER');
  put(out, 280, b.mrOwnerConfig, 48, 'MROWNERCONFIG');
  put(out, 328, b.rtmr0, 48, 'RTMR0');
  put(out, 376, b.rtmr1, 48, 'RTMR1');
  put(out, 424, b.rtmr2, 48, 'RTMR2');
  put(out, 472, b.rtmr3, 48, 'RTMR3');
  put(out, 520, b.reportData, 64, 'REPORTDATA');
  return out;
}

/** The 384-byte SGX report body used for the QE report. Reserved fields are zero. */
export function encodeEnclaveReport(r: EnclaveReportParts): Uint8Array {
  const out = new Uint8Array(ENCLAVE_REPORT_BYTES);
  const v = new DataView(out.buffer);
  put(out, 0, r.cpuSvn, 16, 'CPUSVN');
  u32(v, 16, r.miscSelect, 'MISCSELECT');
  put(out, 48, r.attributes, 16, 'ATTRIBUTES');
  put(out, 64, r.mrEnclave, 32, 'MRENCLAVE');
  put(out, 128, r.mrSigner, 32, 'MRSIGNER');
  u16(v, 256, r.isvProdId, 'ISVPRODID');
  u16(v, 258, r.isvSvn, 'ISVSVN');
  put(out, 320, r.reportData, 64, 'QE REPORTDATA');
  return out;
}

/** header || body: the bytes the attestation key signs. */
export function quoteSignedBytes(parts: Pick<QuoteParts, 'header' | 'body'>): Uint8Array {
  const out = new Uint8Array(QUOTE_HEADER_BYTES + TD_REPORT_BODY_BYTES);
  out.set(encodeQuoteHeader(parts.header), 0);
  out.set(encodeTdReportBody(parts.body), QUOTE_HEADER_BYTES);
  return out;
}

/** Encodes a complete v4 TDX quote. Throws RatlsError QUOTE_MALFORMED on wrong field sizes. */
export function encodeQuote(parts: QuoteParts): Uint8Array {
  need(parts.qeAuthData.length <= 0xffff, 'QE auth data must be shorter than 64 KiB');
  const chain = new TextEncoder().encode(parts.pckChainPem);
  // Certification data type 6: QE report, its signature, auth data, then nested type 5 (PCK chain).
  const cert6Len = ENCLAVE_REPORT_BYTES + 64 + 2 + parts.qeAuthData.length + 2 + 4 + chain.length;
  const sigDataLen = 64 + 64 + 2 + 4 + cert6Len;
  const total = QUOTE_HEADER_BYTES + TD_REPORT_BODY_BYTES + 4 + sigDataLen;
  const out = new Uint8Array(total);
  const v = new DataView(out.buffer);
  out.set(quoteSignedBytes(parts), 0);
  let off = QUOTE_HEADER_BYTES + TD_REPORT_BODY_BYTES;
  u32(v, off, sigDataLen, 'signature data length');
  off += 4;
  put(out, off, parts.signature, 64, 'quote signature');
  off += 64;
  put(out, off, parts.attestationKey, 64, 'attestation key');
  off += 64;
  u16(v, off, 6, 'certification data type');
  u32(v, off + 2, cert6Len, 'certification data size');
  off += 6;
  put(out, off, parts.qeReport, ENCLAVE_REPORT_BYTES, 'QE report');
  off += ENCLAVE_REPORT_BYTES;
  put(out, off, parts.qeReportSignature, 64, 'QE report signature');
  off += 64;
  u16(v, off, parts.qeAuthData.length, 'QE auth data size');
  off += 2;
  out.set(parts.qeAuthData, off);
  off += parts.qeAuthData.length;
  u16(v, off, 5, 'PCK certification data type');
  u32(v, off + 2, chain.length, 'PCK chain size');
  off += 6;
  out.set(chain, off);
  return out;
}
