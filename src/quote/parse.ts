/**
 * TDX quote v4/v5 parser. Browser-safe; takes hostile input: every length is bounds-checked against
 * the buffer before use and every failure is a RatlsError with a stable code.
 */
import { RatlsError } from '../core/errors.ts';
import { identifyOtherEvidence } from './identify.ts';
import type { EnclaveReportBody, QeReportCertificationData, Quote, QuoteHeader, TdReportBody } from './types.ts';

export const QUOTE_HEADER_SIZE = 48;
export const TD_REPORT_10_SIZE = 584;
export const TD_REPORT_15_SIZE = 648;
export const ENCLAVE_REPORT_SIZE = 384;
export const TEE_TYPE_TDX = 0x81;
export const ATTESTATION_KEY_TYPE_ECDSA_P256 = 2;
export const CERT_DATA_QE_REPORT = 6;
export const CERT_DATA_PCK_CHAIN = 5;
/** Intel's QE vendor ID. */
export const INTEL_QE_VENDOR_ID = '939a7233f79c4ca9940a0db3957f0607';

/** A cursor that refuses to read past the end of its buffer. */
class Reader {
  pos = 0;
  constructor(
    private readonly buf: Uint8Array,
    private readonly view: DataView,
  ) {}

  private need(n: number, what: string): void {
    if (n < 0 || this.pos + n > this.buf.length) {
      throw new RatlsError(
        'QUOTE_TRUNCATED',
        `Quote is truncated: ${what} needs ${n} bytes at offset ${this.pos} but only ${Math.max(0, this.buf.length - this.pos)} remain.`,
      );
    }
  }

  u16(what: string): number {
    this.need(2, what);
    const v = this.view.getUint16(this.pos, true);
    this.pos += 2;
    return v;
  }

  u32(what: string): number {
    this.need(4, what);
    const v = this.view.getUint32(this.pos, true);
    this.pos += 4;
    return v;
  }

  bytes(n: number, what: string): Uint8Array {
    this.need(n, what);
    const v = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return v;
  }
}

function parseHeader(r: Reader): QuoteHeader {
  const version = r.u16('header.version');
  const attestationKeyType = r.u16('header.attestationKeyType');
  const teeType = r.u32('header.teeType');
  const qeSvn = r.u16('header.qeSvn');
  const pceSvn = r.u16('header.pceSvn');
  const qeVendorId = r.bytes(16, 'header.qeVendorId');
  const userData = r.bytes(20, 'header.userData');
  return { version, attestationKeyType, teeType, qeSvn, pceSvn, qeVendorId, userData };
}

function parseTdReport(r: Reader, bodyType: number): TdReportBody {
  const body: TdReportBody = {
    teeTcbSvn: r.bytes(16, 'body.teeTcbSvn'),
    mrSeam: r.bytes(48, 'body.mrSeam'),
    mrSignerSeam: r.bytes(48, 'body.mrSignerSeam'),
    seamAttributes: r.bytes(8, 'body.seamAttributes'),
    tdAttributes: r.bytes(8, 'body.tdAttributes'),
    xfam: r.bytes(8, 'body.xfam'),
    mrTd: r.bytes(48, 'body.mrTd'),
    mrConfigId: r.bytes(48, 'body.mrConfigId'),
    mrOwner: r.bytes(48, 'body.mrOwner'),
    mrOwnerConfig: r.bytes(48, 'body.mrOwnerConfig'),
    rtmr0: r.bytes(48, 'body.rtmr0'),
    rtmr1: r.bytes(48, 'body.rtmr1'),
    rtmr2: r.bytes(48, 'body.rtmr2'),
    rtmr3: r.bytes(48, 'body.rtmr3'),
    reportData: r.bytes(64, 'body.reportData'),
  };
  if (bodyType === 3) {
    body.teeTcbSvn2 = r.bytes(16, 'body.teeTcbSvn2');
    body.mrServiceTd = r.bytes(48, 'body.mrServiceTd');
  }
  return body;
}

/** Parses the 384-byte SGX report body of the quoting enclave. */
export function parseEnclaveReport(raw: Uint8Array): EnclaveReportBody {
  if (raw.length !== ENCLAVE_REPORT_SIZE) {
    throw new RatlsError('QUOTE_MALFORMED', `QE report must be ${ENCLAVE_REPORT_SIZE} bytes, got ${raw.length}.`);
  }
  const v = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  return {
    cpuSvn: raw.subarray(0, 16),
    miscSelect: v.getUint32(16, true),
    attributes: raw.subarray(48, 64),
    mrEnclave: raw.subarray(64, 96),
    mrSigner: raw.subarray(128, 160),
    isvProdId: v.getUint16(256, true),
    isvSvn: v.getUint16(258, true),
    reportData: raw.subarray(320, 384),
    raw,
  };
}

const PEM_BEGIN = '-----BEGIN CERTIFICATE-----';
const PEM_END = '-----END CERTIFICATE-----';

/**
 * Splits PEM text into its certificate blocks, in order (leaf first, as Intel orders the PCK chain).
 * Linear time even on hostile text (a lazy regex would be quadratic on many unterminated BEGINs).
 */
export function splitPemCertificates(text: string): string[] {
  const out: string[] = [];
  let from = 0;
  for (;;) {
    const begin = text.indexOf(PEM_BEGIN, from);
    if (begin < 0) break;
    const end = text.indexOf(PEM_END, begin + PEM_BEGIN.length);
    if (end < 0) break;
    // a BEGIN inside the block means the earlier one was never closed: start from the last BEGIN
    const last = text.lastIndexOf(PEM_BEGIN, end);
    from = end + PEM_END.length;
    out.push(text.slice(last, from));
  }
  return out;
}

// PEM is ASCII; latin1 maps every byte to a character, so hostile bytes never throw.
const latin1 = new TextDecoder('latin1');

function decodeLatin1(bytes: Uint8Array): string {
  return latin1.decode(bytes);
}

function parseCertificationData(r: Reader): QeReportCertificationData {
  const outerType = r.u16('certification data type');
  const outerSize = r.u32('certification data size');
  if (outerType !== CERT_DATA_QE_REPORT) {
    throw new RatlsError(
      'QUOTE_UNSUPPORTED_CERT_DATA',
      `Certification data type ${outerType} is not supported; TDX quotes must carry type 6 (QE report certification data).`,
    );
  }
  const outer = r.bytes(outerSize, 'certification data');
  const ov = new DataView(outer.buffer, outer.byteOffset, outer.byteLength);
  const inner = new Reader(outer, ov);
  const qeReportRaw = inner.bytes(ENCLAVE_REPORT_SIZE, 'QE report');
  const qeReportSignature = inner.bytes(64, 'QE report signature');
  const authLen = inner.u16('QE auth data size');
  const qeAuthData = inner.bytes(authLen, 'QE auth data');
  const certDataType = inner.u16('PCK certification data type');
  const certSize = inner.u32('PCK certification data size');
  if (certDataType !== CERT_DATA_PCK_CHAIN) {
    throw new RatlsError(
      'QUOTE_UNSUPPORTED_CERT_DATA',
      `Inner certification data type ${certDataType} is not supported; expected type 5 (PEM PCK certificate chain).`,
    );
  }
  const certData = inner.bytes(certSize, 'PCK certificate chain');
  if (inner.pos !== outer.length) {
    throw new RatlsError('QUOTE_MALFORMED', `Certification data declares ${outer.length} bytes but its contents use ${inner.pos}; the quote is malformed.`);
  }
  const pckChainPem = splitPemCertificates(decodeLatin1(certData));
  if (pckChainPem.length === 0) {
    throw new RatlsError('PCK_CHAIN_MALFORMED', 'The quote carries no PEM certificate in its PCK certificate chain.');
  }
  return {
    qeReport: parseEnclaveReport(qeReportRaw),
    qeReportSignature,
    qeAuthData,
    certDataType,
    certData,
    pckChainPem,
  };
}

/**
 * Parses a TDX quote (v4 or v5, body type 2 or 3, ECDSA P-256 attestation key, certification data
 * type 6 wrapping type 5). Bytes after the declared end are ignored as padding.
 *
 * @throws RatlsError with QUOTE_TRUNCATED, QUOTE_MALFORMED, QUOTE_UNSUPPORTED_* or PCK_CHAIN_MALFORMED.
 */
export function parseQuote(bytes: Uint8Array): Quote {
  if (!(bytes instanceof Uint8Array)) {
    throw new RatlsError('QUOTE_MALFORMED', 'Quote must be given as bytes.');
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const r = new Reader(bytes, view);
  const header = parseHeader(r);
  if ((header.version !== 4 && header.version !== 5) || header.teeType !== TEE_TYPE_TDX) {
    const other = identifyOtherEvidence(bytes);
    if (other) throw new RatlsError(other.sgxQuote ? 'QUOTE_UNSUPPORTED_TEE' : 'QUOTE_UNSUPPORTED_VERSION', other.message);
  }
  if (header.version !== 4 && header.version !== 5) {
    throw new RatlsError(
      'QUOTE_UNSUPPORTED_VERSION',
      `Quote version ${header.version} is not supported; only TDX quote versions 4 and 5 are (check that the input is a raw TDX quote at all).`,
    );
  }
  if (header.teeType !== TEE_TYPE_TDX) {
    throw new RatlsError('QUOTE_UNSUPPORTED_TEE', `TEE type 0x${header.teeType.toString(16)} is not TDX (0x81); only TDX quotes are verified here.`);
  }
  if (header.attestationKeyType !== ATTESTATION_KEY_TYPE_ECDSA_P256) {
    throw new RatlsError('QUOTE_UNSUPPORTED_KEY_TYPE', `Attestation key type ${header.attestationKeyType} is not supported; only 2 (ECDSA-256 with P-256) is.`);
  }

  let bodyType = 2;
  if (header.version === 5) {
    bodyType = r.u16('body descriptor type');
    const bodySize = r.u32('body descriptor size');
    const expected = bodyType === 2 ? TD_REPORT_10_SIZE : bodyType === 3 ? TD_REPORT_15_SIZE : -1;
    if (expected < 0) {
      throw new RatlsError('QUOTE_UNSUPPORTED_BODY', `Quote body type ${bodyType} is not supported; expected 2 (TDX 1.0) or 3 (TDX 1.5).`);
    }
    if (bodySize !== expected) {
      throw new RatlsError('QUOTE_MALFORMED', `Quote body type ${bodyType} must be ${expected} bytes but the descriptor says ${bodySize}.`);
    }
  }
  const body = parseTdReport(r, bodyType);
  const signedBytes = bytes.subarray(0, r.pos);

  const sigDataLen = r.u32('signature data size');
  const sigData = r.bytes(sigDataLen, 'signature data');
  const end = r.pos;
  const sr = new Reader(sigData, new DataView(sigData.buffer, sigData.byteOffset, sigData.byteLength));
  const signature = sr.bytes(64, 'quote signature');
  const attestationKey = sr.bytes(64, 'attestation key');
  const certification = parseCertificationData(sr);
  if (sr.pos !== sigData.length) {
    throw new RatlsError('QUOTE_MALFORMED', `Signature data declares ${sigData.length} bytes but its contents use ${sr.pos}; the quote is malformed.`);
  }
  return { header, bodyType, body, signature, attestationKey, certification, signedBytes, length: end };
}
