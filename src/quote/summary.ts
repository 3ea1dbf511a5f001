/** Hex summary of a parsed quote, as reported in results and by `ratls quote inspect`. */
import { toHex } from '../core/bytes.ts';
import type { QuoteSummary } from '../core/types.ts';
import { TEE_TYPE_TDX } from './parse.ts';
import type { Quote } from './types.ts';

/** Platform identifiers taken from the PCK certificate, when known. */
export interface PckIds {
  fmspc: string;
  pceId: string;
  ppid?: string;
}

/** True when TD_ATTRIBUTES bit 0 (DEBUG) is set. */
export function isDebugTd(tdAttributes: Uint8Array): boolean {
  return ((tdAttributes[0] ?? 0) & 1) === 1;
}

/** Lower-case hex view of every quote field; `pck` adds FMSPC, PCE ID and PPID from the PCK leaf. */
export function summarizeQuote(q: Quote, pck?: PckIds): QuoteSummary {
  const b = q.body;
  const s: QuoteSummary = {
    version: q.header.version,
    attestationKeyType: q.header.attestationKeyType,
    teeType: q.header.teeType === TEE_TYPE_TDX ? 'TDX' : `0x${q.header.teeType.toString(16)}`,
    qeSvn: q.header.qeSvn,
    pceSvn: q.header.pceSvn,
    qeVendorId: toHex(q.header.qeVendorId),
    userData: toHex(q.header.userData),
    bodyType: q.bodyType,
    teeTcbSvn: toHex(b.teeTcbSvn),
    mrSeam: toHex(b.mrSeam),
    mrSignerSeam: toHex(b.mrSignerSeam),
    seamAttributes: toHex(b.seamAttributes),
    tdAttributes: toHex(b.tdAttributes),
    xfam: toHex(b.xfam),
    mrTd: toHex(b.mrTd),
    mrConfigId: toHex(b.mrConfigId),
    mrOwner: toHex(b.mrOwner),
    mrOwnerConfig: toHex(b.mrOwnerConfig),
    rtmr0: toHex(b.rtmr0),
    rtmr1: toHex(b.rtmr1),
    rtmr2: toHex(b.rtmr2),
    rtmr3: toHex(b.rtmr3),
    reportData: toHex(b.reportData),
    debug: isDebugTd(b.tdAttributes),
  };
  if (b.teeTcbSvn2) s.teeTcbSvn2 = toHex(b.teeTcbSvn2);
  if (b.mrServiceTd) s.mrServiceTd = toHex(b.mrServiceTd);
  if (pck) {
    s.fmspc = pck.fmspc;
    s.pceId = pck.pceId;
    if (pck.ppid !== undefined) s.ppid = pck.ppid;
  }
  return s;
}
