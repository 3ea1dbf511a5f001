/**
 * Intel's TDX TCB info, version 3: the platform TCB levels for one FMSPC, the TDX module's signer
 * and the TDX module identities with their own levels (the signed "tcbInfo" object; its signature
 * is checked by the verifier, signed-json.ts cuts it out).
 */
import { RatlsError } from '../core/errors.ts';
import type { TcbStatus } from '../core/types.ts';
import { advisories, arr, date, dateText, hex, int, malformed, obj, status, str } from './signed-json.ts';

export interface TdxTcbLevel {
  sgxComponents: number[];
  pceSvn: number;
  tdxComponents: number[];
  tcbDate: string;
  status: TcbStatus;
  advisoryIds: string[];
}

export interface ModuleTcbLevel {
  isvSvn: number;
  tcbDate: string;
  status: TcbStatus;
  advisoryIds: string[];
}

export interface TdxModuleIdentity {
  id: string;
  mrSigner: Uint8Array;
  attributes: Uint8Array;
  attributesMask: Uint8Array;
  tcbLevels: ModuleTcbLevel[];
}

export interface TcbInfo {
  id: string;
  version: number;
  issueDate: Date;
  nextUpdate: Date;
  fmspc: string;
  pceId: string;
  tcbEvaluationDataNumber: number;
  tdxModule?: { mrSigner: Uint8Array; attributes: Uint8Array; attributesMask: Uint8Array };
  tdxModuleIdentities?: TdxModuleIdentity[];
  tcbLevels: TdxTcbLevel[];
}

function components(v: unknown, what: string, field: string): number[] {
  const a = arr(v, what, field);
  if (a.length !== 16) malformed(what, `${field} does not have 16 entries`);
  return a.map((c, i) => int(obj(c, what, `${field}[${i}]`).svn, what, `${field}[${i}].svn`, 255));
}

/** Highest ISVSVN first, as Intel's QVL keeps them (it never relies on wire order). */
function byIsvSvnDesc(levels: ModuleTcbLevel[]): ModuleTcbLevel[] {
  return levels.sort((a, b) => b.isvSvn - a.isvSvn);
}

function compareSvns(a: number[], b: number[]): number {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
  return 0;
}

/**
 * Intel's canonical TCB level order, highest first: SGX components, then PCESVN, then TDX
 * components (QVL keeps levels in a set ordered this way; the wire order is not trusted).
 */
export function canonicalTcbLevelOrder(a: TdxTcbLevel, b: TdxTcbLevel): number {
  return compareSvns(b.sgxComponents, a.sgxComponents) || b.pceSvn - a.pceSvn || compareSvns(b.tdxComponents, a.tdxComponents);
}

/**
 * Levels graded by ISVSVN. `sorted` (TDX module identities) keeps them highest first and rejects two
 * levels with one ISVSVN, as Intel's ordered set does; QE identity levels keep the wire order, which
 * Intel's QVL walks as served. Either way an empty list is malformed (Intel rejects it).
 */
export function moduleLevels(v: unknown, what: string, field: string, sorted = true): ModuleTcbLevel[] {
  const a = arr(v, what, field);
  if (a.length === 0) malformed(what, `${field} is empty`);
  const levels = a.map((l, i) => {
    const o = obj(l, what, `${field}[${i}]`);
    return {
      isvSvn: int(obj(o.tcb, what, `${field}[${i}].tcb`).isvsvn, what, `${field}[${i}].tcb.isvsvn`),
      tcbDate: dateText(o.tcbDate, what, `${field}[${i}].tcbDate`),
      status: status(o.tcbStatus, what, `${field}[${i}].tcbStatus`),
      advisoryIds: advisories(o.advisoryIDs, what, `${field}[${i}].advisoryIDs`),
    };
  });
  if (!sorted) return levels;
  const out = byIsvSvnDesc(levels);
  for (let i = 1; i < out.length; i++) {
    if (out[i]!.isvSvn === out[i - 1]!.isvSvn) malformed(what, `${field} has two levels for ISVSVN ${out[i]!.isvSvn}`);
  }
  return out;
}

/** Reads a TCB info body (the signed "tcbInfo" object). Only TDX v3 documents are accepted. */
export function parseTcbInfo(body: Record<string, unknown>): TcbInfo {
  const what = 'TCB info';
  const id = str(body.id, what, 'id');
  const version = int(body.version, what, 'version');
  if (id !== 'TDX' || version !== 3) {
    throw new RatlsError(
      'COLLATERAL_MISMATCH',
      `TCB info is "${id}" version ${version}; TDX quotes need TDX TCB info version 3 (fetch it from /tdx/certification/v4/tcb).`,
    );
  }
  const info: TcbInfo = {
    id,
    version,
    issueDate: date(body.issueDate, what, 'issueDate'),
    nextUpdate: date(body.nextUpdate, what, 'nextUpdate'),
    fmspc: str(body.fmspc, what, 'fmspc').toLowerCase(),
    pceId: str(body.pceId, what, 'pceId').toLowerCase(),
    tcbEvaluationDataNumber: int(body.tcbEvaluationDataNumber, what, 'tcbEvaluationDataNumber', 0xffffffff),
    tcbLevels: arr(body.tcbLevels, what, 'tcbLevels')
      .map((l, i) => {
        const o = obj(l, what, `tcbLevels[${i}]`);
        const tcb = obj(o.tcb, what, `tcbLevels[${i}].tcb`);
        return {
          sgxComponents: components(tcb.sgxtcbcomponents, what, `tcbLevels[${i}].tcb.sgxtcbcomponents`),
          pceSvn: int(tcb.pcesvn, what, `tcbLevels[${i}].tcb.pcesvn`),
          tdxComponents: components(tcb.tdxtcbcomponents, what, `tcbLevels[${i}].tcb.tdxtcbcomponents`),
          tcbDate: dateText(o.tcbDate, what, `tcbLevels[${i}].tcbDate`),
          status: status(o.tcbStatus, what, `tcbLevels[${i}].tcbStatus`),
          advisoryIds: advisories(o.advisoryIDs, what, `tcbLevels[${i}].advisoryIDs`),
        };
      })
      .sort(canonicalTcbLevelOrder),
  };
  // Intel's QVL (TcbInfo.cpp) requires tcbType 0, a non-empty tcbLevels without two equal levels,
  // and a tdxModule in every TDX TCB info; it refuses the document otherwise.
  if (int(body.tcbType, what, 'tcbType') !== 0) malformed(what, `tcbType ${String(body.tcbType)} is not supported (only 0 is)`);
  if (info.tcbLevels.length === 0) malformed(what, 'tcbLevels is empty');
  for (let i = 1; i < info.tcbLevels.length; i++) {
    if (canonicalTcbLevelOrder(info.tcbLevels[i - 1]!, info.tcbLevels[i]!) === 0) malformed(what, 'tcbLevels holds the same TCB level twice');
  }
  if (body.tdxModule === undefined) malformed(what, 'a TDX TCB info must have a tdxModule');
  if (!/^[0-9a-f]{12}$/.test(info.fmspc)) malformed(what, 'fmspc is not 6 bytes of hex');
  if (!/^[0-9a-f]{4}$/.test(info.pceId)) malformed(what, 'pceId is not 2 bytes of hex');
  if (body.tdxModule !== undefined) {
    const m = obj(body.tdxModule, what, 'tdxModule');
    info.tdxModule = {
      mrSigner: hex(m.mrsigner, what, 'tdxModule.mrsigner', 48),
      attributes: hex(m.attributes, what, 'tdxModule.attributes', 8),
      attributesMask: hex(m.attributesMask, what, 'tdxModule.attributesMask', 8),
    };
  }
  if (body.tdxModuleIdentities !== undefined) {
    const ids = arr(body.tdxModuleIdentities, what, 'tdxModuleIdentities');
    if (ids.length === 0) malformed(what, 'tdxModuleIdentities is empty');
    info.tdxModuleIdentities = ids.map((x, i) => {
      const m = obj(x, what, `tdxModuleIdentities[${i}]`);
      const f = `tdxModuleIdentities[${i}]`;
      return {
        id: str(m.id, what, `${f}.id`),
        mrSigner: hex(m.mrsigner, what, `${f}.mrsigner`, 48),
        attributes: hex(m.attributes, what, `${f}.attributes`, 8),
        attributesMask: hex(m.attributesMask, what, `${f}.attributesMask`, 8),
        tcbLevels: moduleLevels(m.tcbLevels, what, `${f}.tcbLevels`),
      };
    });
  }
  return info;
}
