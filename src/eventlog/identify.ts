/**
 * Names event logs and evidence files that are not TDX event logs, so that a refusal says what the
 * input is (a TPM log, the ACPI CCEL table, Azure vTPM evidence, ...) and what to give instead.
 * Nothing here is trusted: it reads register indexes, digest banks, magic bytes and JSON keys only.
 * Browser-safe.
 */
import { DIGEST_ALGORITHMS, EV, ALG_SHA384 } from './tcg-types.ts';
import type { SpecIdEvent, TcgEvent } from './tcg.ts';

const CCEL_LOG_PATH = '/sys/firmware/acpi/tables/data/CCEL';
const GIVE_CCEL = `Give the TDX guest's own event log (${CCEL_LOG_PATH}) instead.`;

/**
 * When records of `events` extend registers TDX does not have (indexes above 4, beside PCR 0), a
 * sentence saying this is a TPM log (PCR indexes); undefined otherwise. EV_NO_ACTION records
 * extend nothing and are ignored (TDX firmware writes some with index 0).
 */
export function pcrIndexedLogReason(events: readonly TcgEvent[], what = 'The event log'): string | undefined {
  const indexes = new Set<number>();
  for (const e of events) if (e.eventType !== EV.NO_ACTION) indexes.add(e.mrIndex);
  // An index above 4 is the tell: a lone index-0 record in a TDX log is tampering, not a TPM log.
  if (![...indexes].some((i) => i > 4)) return undefined;
  const all = [...indexes].sort((a, b) => a - b);
  const first = events.find((e) => e.eventType !== EV.NO_ACTION && (e.mrIndex === 0 || e.mrIndex > 4))!;
  return (
    `${what} is a TPM event log, not a TDX one: its records extend PCR ${all.join(', ')} (record #${first.index} extends PCR ${first.mrIndex}), ` +
    'while a TDX event log (CCEL) numbers its registers 1-4 for RTMR0-3, and TPM PCRs are not part of a TDX quote. ' +
    `${GIVE_CCEL} Check a TPM log against a TPM quote with a TPM verifier.`
  );
}

/** Names of the digest banks a log declares ("SHA-1, SHA-256"). */
function bankNames(specId: SpecIdEvent): string {
  return specId.algorithms.map((a) => DIGEST_ALGORITHMS.get(a.algId)?.name ?? `algorithm 0x${a.algId.toString(16)}`).join(', ');
}

/** When the log has no SHA-384 bank, a sentence naming the banks it has and whose logs look so. */
export function missingSha384Reason(specId: SpecIdEvent, what = 'The event log'): string | undefined {
  if (specId.algorithms.some((a) => a.algId === ALG_SHA384)) return undefined;
  const sm3 = specId.algorithms.some((a) => a.algId === 0x0012);
  const whose = sm3 ? 'as Hygon CSV guests write' : 'as TPM logs have';
  return `${what} has only ${bankNames(specId)} digests (${whose}) and no SHA-384 bank, so it cannot be replayed into TDX registers, which extend SHA-384. ${GIVE_CCEL}`;
}

const u32 = (b: Uint8Array, o: number): number => (b[o]! | (b[o + 1]! << 8) | (b[o + 2]! << 16) | (b[o + 3]! << 24)) >>> 0;
const ascii = (b: Uint8Array, o: number, s: string): boolean => b.length >= o + s.length && [...s].every((c, i) => b[o + i] === c.charCodeAt(0));

/**
 * A TPM 1.2-style TCG log (SHA-1 records TCG_PCR_EVENT, no crypto-agile Spec ID header): its first
 * record names a PCR (0-23), a known event type and an event size that fits.
 */
export function legacySha1LogReason(b: Uint8Array): string | undefined {
  if (b.length < 32) return undefined;
  const pcr = u32(b, 0);
  const type = u32(b, 4);
  const size = u32(b, 28);
  const knownType = type <= 0x12 || (type >= 0x80000001 && type <= 0x800000e2);
  if (pcr > 23 || !knownType || size > b.length - 32) return undefined;
  return (
    'This is a TCG event log in the SHA-1 format of TPM 1.2 (no crypto-agile "Spec ID Event03" header), written by firmware for a TPM: ' +
    `it has no SHA-384 digests and measures into TPM PCRs, not TDX RTMRs. ${GIVE_CCEL}`
  );
}

/** The ACPI CCEL table (signature "CCEL"): where the log lies in guest memory, not the log itself. */
export function acpiCcelTableReason(b: Uint8Array): string | undefined {
  if (!ascii(b, 0, 'CCEL') || b.length < 56) return undefined;
  const laml = u32(b, 40) + u32(b, 44) * 0x1_0000_0000;
  const lasa = u32(b, 48) + u32(b, 52) * 0x1_0000_0000;
  return (
    `This is the ACPI CCEL table (${b.length} bytes), which only says where the event log lies in guest memory ` +
    `(${laml} bytes at 0x${lasa.toString(16)}), not the log itself. ${GIVE_CCEL}`
  );
}

/**
 * Evidence JSON of other TEEs as Confidential Containers (trustee, guest-components) writes it, by
 * its keys: a sentence saying what it is, or undefined.
 */
export function foreignEvidenceJsonReason(o: Record<string, unknown>): string | undefined {
  if ('hcl_report' in o && 'td_quote' in o) {
    return (
      'This is Azure TDX vTPM evidence (Confidential Containers az-tdx-vtpm): its boot measurements are in the vTPM\'s PCRs ("tpm_quote"), ' +
      'not in RTMRs, and it carries no TDX event log to replay. Its TD quote ("td_quote", base64url) can be checked with `ratls quote inspect` or `ratls quote verify` on this file.'
    );
  }
  if ('hcl_report' in o) return 'This is Azure vTPM evidence (an HCL report and a TPM quote), not a TDX event log.';
  if ('tpm_quote' in o || 'ak_public' in o) return 'This is TPM evidence (a TPM quote over PCRs), not a TDX event log; check it with a TPM verifier.';
  const report = o.attestation_report;
  if (report && typeof report === 'object') {
    const r = report as Record<string, unknown>;
    if ('magic' in r || 'data' in r) return 'This is Hygon CSV evidence (an attestation report and its SM3 event log), not TDX; check it with a CSV verifier.';
    return 'This is AMD SEV-SNP evidence (an attestation report and its certificate chain), not TDX; check it with an SEV-SNP verifier.';
  }
  return undefined;
}
