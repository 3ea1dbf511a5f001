/**
 * Names attestation blobs that are not TDX quotes, so that a refusal says what the input is ("an SGX
 * ECDSA quote", "a TDREPORT", "a TPM 2.0 quote") instead of only "quote version 129 is not
 * supported". Nothing here is verified: it reads magic numbers and fixed offsets only. Also reads
 * the REPORTDATA of SGX quotes, which sit at a fixed offset in every SGX quote version, so that
 * RA-TLS certificates of SGX enclaves can be checked for their key binding before they are refused.
 * Browser-safe.
 */

/** What a non-TDX input was recognised as. */
export interface OtherEvidence {
  /** True when it is an SGX quote: a quote of the wrong TEE rather than something else entirely. */
  sgxQuote: boolean;
  /** A sentence for people: what it is and what to do instead. */
  message: string;
}

const SGX_REPORT_BODY_OFFSET = 48;
const SGX_REPORT_DATA_OFFSET = SGX_REPORT_BODY_OFFSET + 320;
/** The TDREPORT_STRUCT a TD gets from TDG.MR.REPORT, before the quoting enclave signs it. */
const TDREPORT_SIZE = 1024;
const SNP_REPORT_SIZE = 1184;

const u16 = (b: Uint8Array, o: number): number => b[o]! | (b[o + 1]! << 8);
const u32 = (b: Uint8Array, o: number): number => (b[o]! | (b[o + 1]! << 8) | (b[o + 2]! << 16) | (b[o + 3]! << 24)) >>> 0;
const ascii = (b: Uint8Array, o: number, s: string): boolean => b.length >= o + s.length && [...s].every((c, i) => b[o + i] === c.charCodeAt(0));

const NOT_TDX = 'ratls verifies Intel TDX quotes (versions 4 and 5, TEE type 0x81) only';

/** The SGX quote version of `b` (1-2 EPID, 3-4 ECDSA), or undefined when `b` is not an SGX quote. */
function sgxQuoteVersion(b: Uint8Array): number | undefined {
  if (b.length < SGX_REPORT_DATA_OFFSET + 64) return undefined;
  const version = u16(b, 0);
  // EPID quotes: sign type 0 (unlinkable) or 1 (linkable); length = 436 + signature length.
  if (version === 1 || version === 2) {
    const signType = u16(b, 2);
    const sigLen = b.length >= 436 ? u32(b, 432) : -1;
    return (signType === 0 || signType === 1) && b.length === 436 + sigLen ? version : undefined;
  }
  // ECDSA quotes: attestation key type 2 (P-256) or 3 (P-384); version 3 has no TEE type, 4 says SGX (0).
  const keyType = u16(b, 2);
  if (keyType !== 2 && keyType !== 3) return undefined;
  if (version === 3 && u32(b, 4) === 0) return 3;
  if (version === 4 && u32(b, 4) === 0) return 4;
  return undefined;
}

/**
 * The 64-byte REPORTDATA of an SGX quote (EPID or ECDSA, versions 1-4), or undefined when `b` is
 * not one. The quote itself is not verified.
 */
export function sgxQuoteReportData(b: Uint8Array): Uint8Array | undefined {
  return sgxQuoteVersion(b) === undefined ? undefined : b.subarray(SGX_REPORT_DATA_OFFSET, SGX_REPORT_DATA_OFFSET + 64);
}

/**
 * Recognises inputs that are not TDX quotes but are often mistaken for one. Returns undefined when
 * `b` is none of them (then the caller's own message stands).
 * @example
 *   identifyOtherEvidence(tdreport)?.message // "This is a TDREPORT ..."
 */
export function identifyOtherEvidence(b: Uint8Array): OtherEvidence | undefined {
  const sgx = sgxQuoteVersion(b);
  if (sgx !== undefined) {
    const kind = sgx <= 2 ? 'EPID' : 'ECDSA';
    return {
      sgxQuote: true,
      message:
        `This is an SGX ${kind} quote (version ${sgx}) from an SGX enclave, not a TDX quote; ${NOT_TDX}. ` +
        "Check SGX enclaves with an SGX verifier (Intel's SGX DCAP Quote Verification Library, or the verifier of the project that made it).",
    };
  }
  if (b.length === TDREPORT_SIZE && b[0] === 0x81 && b[1] === 0 && b[2]! <= 1) {
    return {
      sgxQuote: false,
      message:
        'This is a TDREPORT (the 1024-byte local report of a TD, MAC-protected for this CPU only), not a quote: ' +
        'only a quote signed by the quoting enclave can be verified remotely. Get one through configfs-tsm (/sys/kernel/config/tsm/report) or the platform quote service.',
    };
  }
  if (b.length >= 4 && b[0] === 0xff && ascii(b, 1, 'TCG')) {
    return {
      sgxQuote: false,
      message: `This is a TPM 2.0 attestation structure (TPMS_ATTEST, magic 0xff544347), such as a vTPM quote, not a TDX quote; ${NOT_TDX}.`,
    };
  }
  if (ascii(b, 0, 'HCLA')) {
    return {
      sgxQuote: false,
      message:
        'This is an Azure confidential VM HCL report (the vTPM attestation report, with a TD or SNP report inside), not a quote: ' +
        'on Azure TDX VMs the TD quote is fetched separately (Confidential Containers evidence carries it as "td_quote").',
    };
  }
  if (ascii(b, 0, 'CCEL') && b.length >= 36) {
    return { sgxQuote: false, message: 'This is the ACPI CCEL table (where the TDX event log lies in guest memory), not a quote.' };
  }
  if (b.length >= 48 && u32(b, 4) === 3 && ascii(b, 32, 'Spec ID Event03')) {
    return {
      sgxQuote: false,
      message: 'This is a TCG event log, not a quote; replay it against its quote with `ratls eventlog replay --eventlog FILE --quote QUOTE`.',
    };
  }
  if (b.length === SNP_REPORT_SIZE && u32(b, 0) >= 2 && u32(b, 0) <= 5) {
    return { sgxQuote: false, message: `This looks like an AMD SEV-SNP attestation report (${SNP_REPORT_SIZE} bytes), not a TDX quote; ${NOT_TDX}.` };
  }
  if (b.length >= 2 && b[0] === 0x30 && (b[1] === 0x82 || b[1] === 0x83)) {
    return { sgxQuote: false, message: 'This is DER-encoded ASN.1 (a certificate?), not a quote; check RA-TLS certificates with `ratls cert verify FILE`.' };
  }
  const first = b.find((c) => c !== 0x20 && c !== 0x0a && c !== 0x0d && c !== 0x09);
  if (first === 0x7b || first === 0x5b) {
    return { sgxQuote: false, message: 'This is JSON text, not a quote, and none of its fields holds one this tool recognises ("quote", "td_quote").' };
  }
  return undefined;
}
