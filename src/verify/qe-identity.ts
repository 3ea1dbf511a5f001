/**
 * Intel's QE identity for TDX (TD_QE, version 2): the quoting enclave's expected MISCSELECT,
 * ATTRIBUTES, MRSIGNER and ISVPRODID, and its TCB levels by ISVSVN (the signed "enclaveIdentity"
 * object; its signature is checked by the verifier, signed-json.ts cuts it out).
 */
import { RatlsError } from '../core/errors.ts';
import type { TcbStatus } from '../core/types.ts';
import { hex, int, malformed, str, date } from './signed-json.ts';
import { moduleLevels, type ModuleTcbLevel } from './tcb-info.ts';

export interface QeIdentity {
  id: string;
  version: number;
  issueDate: Date;
  nextUpdate: Date;
  tcbEvaluationDataNumber: number;
  miscselect: number;
  miscselectMask: number;
  attributes: Uint8Array;
  attributesMask: Uint8Array;
  mrSigner: Uint8Array;
  isvProdId: number;
  tcbLevels: ModuleTcbLevel[];
}

/**
 * Intel's QVL reads the 4 hex bytes and byte-swaps them, i.e. the hex is the report's
 * in-memory (little-endian) byte order; read it the same way as the report's MISCSELECT.
 */
function u32MemoryOrderHex(v: unknown, what: string, field: string): number {
  const b = hex(v, what, field, 4);
  return (b[0]! | (b[1]! << 8) | (b[2]! << 16) | (b[3]! << 24)) >>> 0;
}

/** Reads a QE identity body (the signed "enclaveIdentity" object). Only TD_QE v2 is accepted. */
export function parseQeIdentity(body: Record<string, unknown>): QeIdentity {
  const what = 'QE identity';
  const id = str(body.id, what, 'id');
  const version = int(body.version, what, 'version');
  if (id !== 'TD_QE' || version !== 2) {
    throw new RatlsError(
      'COLLATERAL_MISMATCH',
      `QE identity is "${id}" version ${version}; TDX quotes need the TD_QE identity version 2 (/tdx/certification/v4/qe/identity).`,
    );
  }
  return {
    id,
    version,
    issueDate: date(body.issueDate, what, 'issueDate'),
    nextUpdate: date(body.nextUpdate, what, 'nextUpdate'),
    tcbEvaluationDataNumber: int(body.tcbEvaluationDataNumber, what, 'tcbEvaluationDataNumber', 0xffffffff),
    miscselect: u32MemoryOrderHex(body.miscselect, what, 'miscselect'),
    miscselectMask: u32MemoryOrderHex(body.miscselectMask, what, 'miscselectMask'),
    attributes: hex(body.attributes, what, 'attributes', 16),
    attributesMask: hex(body.attributesMask, what, 'attributesMask', 16),
    mrSigner: hex(body.mrsigner, what, 'mrsigner', 32),
    isvProdId: int(body.isvprodid, what, 'isvprodid'),
    tcbLevels: qeLevels(body.tcbLevels, what),
  };
}

/** Statuses Intel's QVL accepts in a QE identity level (EnclaveIdentityV2 / TcbStatus.h). */
const QE_LEVEL_STATUSES: readonly TcbStatus[] = ['UpToDate', 'ConfigurationNeeded', 'OutOfDate', 'OutOfDateConfigurationNeeded', 'Revoked'];

function qeLevels(v: unknown, what: string): ModuleTcbLevel[] {
  const levels = moduleLevels(v, what, 'tcbLevels', false);
  levels.forEach((l, i) => {
    if (!QE_LEVEL_STATUSES.includes(l.status)) malformed(what, `tcbLevels[${i}].tcbStatus "${l.status}" is not a QE identity status`);
  });
  return levels;
}
