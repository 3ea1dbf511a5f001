/**
 * TDX quote structures (v4 and v5), named after Intel's DCAP headers. All byte fields are views
 * into (or copies of) the original quote; multi-byte integers are little-endian in the wire format.
 */

/** 48-byte quote header. */
export interface QuoteHeader {
  version: number; // 4 or 5
  attestationKeyType: number; // 2 = ECDSA-256-with-P-256
  teeType: number; // 0x81 = TDX
  qeSvn: number; // offset 8 (Intel QVL naming)
  pceSvn: number; // offset 10
  qeVendorId: Uint8Array; // 16
  userData: Uint8Array; // 20
}

/** TD report body (TDREPORT 1.0 = 584 bytes; 1.5 adds teeTcbSvn2 and mrServiceTd = 648 bytes). */
export interface TdReportBody {
  teeTcbSvn: Uint8Array; // 16
  mrSeam: Uint8Array; // 48
  mrSignerSeam: Uint8Array; // 48
  seamAttributes: Uint8Array; // 8
  tdAttributes: Uint8Array; // 8
  xfam: Uint8Array; // 8
  mrTd: Uint8Array; // 48
  mrConfigId: Uint8Array; // 48
  mrOwner: Uint8Array; // 48
  mrOwnerConfig: Uint8Array; // 48
  rtmr0: Uint8Array; // 48
  rtmr1: Uint8Array; // 48
  rtmr2: Uint8Array; // 48
  rtmr3: Uint8Array; // 48
  reportData: Uint8Array; // 64
  teeTcbSvn2?: Uint8Array; // 16, body type 3 only
  mrServiceTd?: Uint8Array; // 48, body type 3 only
}

/** 384-byte SGX enclave report body (the QE report). */
export interface EnclaveReportBody {
  cpuSvn: Uint8Array; // 16
  miscSelect: number; // u32
  attributes: Uint8Array; // 16
  mrEnclave: Uint8Array; // 32
  mrSigner: Uint8Array; // 32
  isvProdId: number; // u16
  isvSvn: number; // u16
  reportData: Uint8Array; // 64
  /** The exact 384 bytes, as signed by the PCK key. */
  raw: Uint8Array;
}

/** Certification data type 6 (QE report certification data) wrapping type 5 (PCK chain). */
export interface QeReportCertificationData {
  qeReport: EnclaveReportBody;
  qeReportSignature: Uint8Array; // 64, r||s
  qeAuthData: Uint8Array;
  /** Inner certification data type; 5 = PEM PCK certificate chain. */
  certDataType: number;
  /** The inner certification data bytes as declared (may end with a NUL). */
  certData: Uint8Array;
  /** PEM certificates parsed out of certData, leaf first. */
  pckChainPem: string[];
}

export interface Quote {
  header: QuoteHeader;
  /** v5 body descriptor type (2 = TDX 1.0, 3 = TDX 1.5); 2 for v4 quotes. */
  bodyType: number;
  body: TdReportBody;
  /** Quote signature, 64 bytes r||s (P-256). */
  signature: Uint8Array;
  /** Attestation public key, 64 bytes x||y without the 0x04 prefix. */
  attestationKey: Uint8Array;
  certification: QeReportCertificationData;
  /** header || (v5 descriptor) || body: the bytes the quote signature covers. */
  signedBytes: Uint8Array;
  /** Number of bytes the quote structure occupies; input beyond this is trailing padding. */
  length: number;
}
