/**
 * TDX TCB evaluation as Intel's Quote Verification Library does it (TcbLevelCheck.cpp,
 * TdxModuleCheck.cpp, TDRelaunchCheck.cpp, EnclaveReportVerifier.cpp), as pure functions of the
 * already signature-checked collateral, the PCK certificate's TCB and the quote.
 */
import type { EnclaveReportBody, Quote } from '../quote/types.ts';
import { constantTimeEqual, toHex } from '../core/bytes.ts';
import type { ModuleTcbLevel, TcbInfo, TdxModuleIdentity, TdxTcbLevel } from './tcb-info.ts';
import type { QeIdentity } from './qe-identity.ts';
import type { VerifyError } from '../core/errors.ts';
import type { PckExtensions } from './pck.ts';
import type { QvlStatus, TcbStatus } from '../core/types.ts';

/** QE identity outcome, in Intel's terms. */
export interface QeEvaluation {
  /** UpToDate, OutOfDate or Revoked from the matched level; NotSupported when no level matches. */
  status: 'UpToDate' | 'OutOfDate' | 'Revoked' | 'NotSupported';
  level?: ModuleTcbLevel;
}

/**
 * Checks the QE report against the QE identity (MISCSELECT and ATTRIBUTES under their masks,
 * MRSIGNER, ISVPRODID) and grades its ISVSVN. Returns an error when the identity does not match.
 */
export function evaluateQeIdentity(qe: QeIdentity, report: EnclaveReportBody): QeEvaluation | VerifyError {
  if ((report.miscSelect & qe.miscselectMask) >>> 0 !== qe.miscselect) {
    return {
      code: 'QE_IDENTITY_MISMATCH',
      message: "The QE report MISCSELECT does not match the QE identity; the quote was not made by Intel's TD quoting enclave.",
    };
  }
  for (let i = 0; i < 16; i++) {
    if ((report.attributes[i]! & qe.attributesMask[i]!) !== qe.attributes[i]) {
      return { code: 'QE_IDENTITY_MISMATCH', message: 'The QE report ATTRIBUTES do not match the QE identity (e.g. a debug quoting enclave).' };
    }
  }
  if (!constantTimeEqual(report.mrSigner, qe.mrSigner)) {
    return {
      code: 'QE_IDENTITY_MISMATCH',
      message: `The QE report MRSIGNER ${toHex(report.mrSigner)} is not the QE identity's signer; the quoting enclave is not Intel's.`,
    };
  }
  if (report.isvProdId !== qe.isvProdId) {
    return { code: 'QE_IDENTITY_MISMATCH', message: `The QE report ISVPRODID ${report.isvProdId} is not the QE identity's ${qe.isvProdId}.` };
  }
  const level = qe.tcbLevels.find((l) => report.isvSvn >= l.isvSvn);
  if (!level) return { status: 'NotSupported' };
  const status = level.status === 'UpToDate' ? 'UpToDate' : level.status === 'Revoked' ? 'Revoked' : 'OutOfDate';
  return { status, level };
}

/** The TDX module identity check (QVL 4.1.2.4.11): MRSIGNERSEAM and SEAMATTRIBUTES. */
export function checkTdxModuleIdentity(info: TcbInfo, quote: Quote): { identity?: TdxModuleIdentity } | VerifyError {
  const version = quote.body.teeTcbSvn[1]!;
  let mrSigner = info.tdxModule?.mrSigner;
  let attributes = info.tdxModule?.attributes;
  let identity: TdxModuleIdentity | undefined;
  if (quote.header.version > 3 && version > 0) {
    if (!info.tdxModuleIdentities) {
      return {
        code: 'COLLATERAL_MISMATCH',
        message: `The quote's TDX module version is ${version} but the TCB info has no tdxModuleIdentities; fetch current TDX TCB info.`,
      };
    }
    identity = findModuleIdentity(info.tdxModuleIdentities, version);
    if (!identity) {
      return { code: 'TDX_MODULE_MISMATCH', message: `The TCB info has no identity TDX_${hex2(version)} for the quote's TDX module version ${version}.` };
    }
    mrSigner = identity.mrSigner;
    attributes = identity.attributes;
  }
  if (!mrSigner || !attributes) {
    return { code: 'COLLATERAL_MALFORMED', message: 'The TDX TCB info has no tdxModule; it cannot be used to verify a TDX quote.' };
  }
  if (!constantTimeEqual(mrSigner, quote.body.mrSignerSeam)) {
    return {
      code: 'TDX_MODULE_MISMATCH',
      message: `MRSIGNERSEAM ${toHex(quote.body.mrSignerSeam)} is not the TDX module signer the TCB info expects; the TDX module is not Intel's.`,
    };
  }
  // Intel's QVL requires SEAMATTRIBUTES to be zero and equal to the identity's, mask not applied.
  for (let i = 0; i < 8; i++) {
    if (quote.body.seamAttributes[i] !== 0 || attributes[i] !== 0) {
      return {
        code: 'TDX_MODULE_MISMATCH',
        message: `SEAMATTRIBUTES ${toHex(quote.body.seamAttributes)} are not the zero attributes of a production TDX module.`,
      };
    }
  }
  return identity ? { identity } : {};
}

function hex2(n: number): string {
  return n.toString(16).toUpperCase().padStart(2, '0');
}

function findModuleIdentity(ids: TdxModuleIdentity[], version: number): TdxModuleIdentity | undefined {
  const want = `TDX_${hex2(version)}`;
  return ids.find((m) => m.id.toUpperCase() === want);
}

type ModuleStatus =
  { kind: 'ok'; status: TcbStatus; level?: ModuleTcbLevel } | { kind: 'notSupported' } | { kind: 'mismatch' } | { kind: 'badStatus'; status: TcbStatus };

/** Intel's VALID_MODULE_TCB_STATUSES: any other status on the matched module level is an error. */
const MODULE_STATUSES: readonly TcbStatus[] = ['UpToDate', 'OutOfDate', 'Revoked'];

function moduleTcbStatus(info: TcbInfo, quote: Quote): ModuleStatus {
  const version = quote.body.teeTcbSvn[1]!;
  const isvSvn = quote.body.teeTcbSvn[0]!;
  if (quote.header.version > 3 && version === 0) return { kind: 'ok', status: 'UpToDate' };
  const identity = findModuleIdentity(info.tdxModuleIdentities ?? [], version);
  if (!identity) return { kind: 'mismatch' };
  const level = identity.tcbLevels.find((l) => isvSvn >= l.isvSvn);
  if (!level) return { kind: 'notSupported' };
  if (!MODULE_STATUSES.includes(level.status)) return { kind: 'badStatus', status: level.status };
  return { kind: 'ok', status: level.status, level };
}

function sgxHigherOrEqual(pck: PckExtensions, level: TdxTcbLevel): boolean {
  for (let i = 0; i < 16; i++) if (pck.tcbComponents[i]! < level.sgxComponents[i]!) return false;
  return true;
}

/** Intel's rule: with a module version in TEE_TCB_SVN[1], bytes 0 and 1 are graded by the module identity instead. */
function tdxHigherOrEqual(teeTcbSvn: Uint8Array, level: TdxTcbLevel): boolean {
  for (let i = teeTcbSvn[1]! > 0 ? 2 : 0; i < 16; i++) if (teeTcbSvn[i]! < level.tdxComponents[i]!) return false;
  return true;
}

function convergeWithModule(level: TcbStatus, module: TcbStatus): TcbStatus {
  if (module === 'OutOfDate') {
    if (level === 'UpToDate' || level === 'SWHardeningNeeded') return 'OutOfDate';
    if (level === 'ConfigurationNeeded' || level === 'ConfigurationAndSWHardeningNeeded') return 'OutOfDateConfigurationNeeded';
  }
  if (module === 'Revoked') return 'Revoked';
  return level;
}

function isConfigurationNeeded(s: TcbStatus): boolean {
  return s === 'ConfigurationNeeded' || s === 'OutOfDateConfigurationNeeded' || s === 'ConfigurationAndSWHardeningNeeded';
}

/** Advisory IDs of each matched level, reported apart (Intel's QVL 1.21 reports the platform's). */
export interface Advisories {
  /** The matched platform (TDX) TCB level's. */
  platform: string[];
  /** The matched TDX module TCB level's (none for module version 0). */
  tdxModule: string[];
  /** The matched QE identity TCB level's. */
  qe: string[];
}

/** Intel's TD relaunch results (TDRelaunchCheck.cpp): the platform is patched, the TD predates it. */
export type Relaunch = 'advised' | 'advisedConfigurationNeeded';

/** Everything the TCB evaluation found, for reports. */
export interface TcbEvaluation {
  status: TcbStatus | null;
  /** Intel's result for the same inputs: `status` by its sgx_ql_qv_result_t name, or a relaunch result. */
  qvlStatus: QvlStatus | null;
  advisories: Advisories;
  error?: VerifyError;
  sgxLevel?: TdxTcbLevel;
  tdxLevel?: TdxTcbLevel;
  moduleStatus?: TcbStatus;
  moduleLevel?: ModuleTcbLevel;
  qe?: QeEvaluation;
  /**
   * Set when Intel returns TD_RELAUNCH_ADVISED(_CONFIGURATION_NEEDED); `status` then keeps the
   * underlying OutOfDate / OutOfDateConfigurationNeeded.
   */
  relaunch?: Relaunch;
}

const QVL_STATUS: Record<TcbStatus, QvlStatus> = {
  UpToDate: 'SGX_QL_QV_RESULT_OK',
  SWHardeningNeeded: 'SGX_QL_QV_RESULT_SW_HARDENING_NEEDED',
  ConfigurationNeeded: 'SGX_QL_QV_RESULT_CONFIG_NEEDED',
  ConfigurationAndSWHardeningNeeded: 'SGX_QL_QV_RESULT_CONFIG_AND_SW_HARDENING_NEEDED',
  OutOfDate: 'SGX_QL_QV_RESULT_OUT_OF_DATE',
  OutOfDateConfigurationNeeded: 'SGX_QL_QV_RESULT_OUT_OF_DATE_CONFIG_NEEDED',
  Revoked: 'SGX_QL_QV_RESULT_REVOKED',
};

/** Intel's sgx_ql_qv_result_t name of a status (the QvE's status_error_to_ql_qve_result). */
export function qvlStatusOf(status: TcbStatus, relaunch?: Relaunch): QvlStatus {
  if (relaunch === 'advised') return 'SGX_QL_QV_RESULT_TD_RELAUNCH_ADVISED';
  if (relaunch === 'advisedConfigurationNeeded') return 'SGX_QL_QV_RESULT_TD_RELAUNCH_ADVISED_CONFIG_NEEDED';
  return QVL_STATUS[status];
}

const NO_ADVISORIES: Advisories = { platform: [], tdxModule: [], qe: [] };

function notSupported(message: string, partial: Partial<TcbEvaluation> = {}): TcbEvaluation {
  return { ...partial, status: null, qvlStatus: null, advisories: NO_ADVISORIES, error: { code: 'TCB_NOT_SUPPORTED', message } };
}

/**
 * TD relaunch rule for TD 1.5 reports (QVL TDRelaunchCheck.cpp, `checkForRelaunch`). 'mismatch' when
 * TEE_TCB_SVN_2 names a module version the TCB info has no identity for: Intel's QVL then fails with
 * TDX_MODULE_MISMATCH. `tdx` is the platform level's status converged with the module's.
 */
function relaunchAdvised(info: TcbInfo, quote: Quote, sgx: TcbStatus, tdx: TcbStatus, module: TcbStatus, qe: QeEvaluation): Relaunch | undefined | 'mismatch' {
  const svn2 = quote.body.teeTcbSvn2;
  if (!svn2 || qe.status !== 'UpToDate') return undefined;
  if (!(sgx === 'UpToDate' || sgx === 'SWHardeningNeeded' || sgx === 'ConfigurationNeeded' || sgx === 'ConfigurationAndSWHardeningNeeded')) return undefined;
  if (!(tdx === 'OutOfDate' || tdx === 'OutOfDateConfigurationNeeded') || module !== 'OutOfDate') return undefined;
  const latest = info.tcbLevels[0];
  if (!latest) return undefined;
  let current: boolean;
  if (svn2[1] === 0) current = svn2[0]! >= latest.tdxComponents[0]! && svn2[2]! >= latest.tdxComponents[2]!;
  else {
    const id2 = findModuleIdentity(info.tdxModuleIdentities ?? [], svn2[1]!);
    if (!id2) return 'mismatch';
    const latestModule = id2.tcbLevels[0];
    current = latestModule !== undefined && svn2[0]! >= latestModule.isvSvn && svn2[2]! >= latest.tdxComponents[2]!;
  }
  if (!current) return undefined;
  // Intel keeps "configuration needed" from either the SGX-only level or the converged TDX status.
  return isConfigurationNeeded(sgx) || isConfigurationNeeded(tdx) ? 'advisedConfigurationNeeded' : 'advised';
}

/**
 * Intel's TDX TCB status: the first TCB level whose SGX components and PCESVN are <= the PCK
 * certificate's and whose TDX components are <= TEE_TCB_SVN, converged with the TDX module status
 * and the QE identity status. Advisory IDs are reported per matched level.
 */
export function evaluateTcb(info: TcbInfo, pck: PckExtensions, quote: Quote, qe: QeEvaluation): TcbEvaluation {
  let sgxLevel: TdxTcbLevel | undefined;
  let tdxLevel: TdxTcbLevel | undefined;
  for (const level of info.tcbLevels) {
    if (!sgxHigherOrEqual(pck, level) || pck.pceSvn < level.pceSvn) continue;
    sgxLevel ??= level;
    if (tdxHigherOrEqual(quote.body.teeTcbSvn, level)) {
      tdxLevel = level;
      break;
    }
  }
  if (!sgxLevel) {
    return notSupported(
      "No TCB level in the TCB info matches the PCK certificate's SGX components and PCESVN; the platform's TCB is not supported by this collateral.",
    );
  }
  if (!tdxLevel) {
    return notSupported(
      `No TCB level in the TCB info matches the quote's TEE_TCB_SVN ${toHex(quote.body.teeTcbSvn)}; the TDX TCB is not supported by this collateral.`,
      { sgxLevel },
    );
  }
  const mod = moduleTcbStatus(info, quote);
  if (mod.kind === 'notSupported') {
    return notSupported(`No TDX module TCB level matches module SVN ${quote.body.teeTcbSvn[0]}; the TDX module is not supported.`, { sgxLevel, tdxLevel });
  }
  if (mod.kind === 'mismatch') {
    return {
      status: null,
      qvlStatus: null,
      advisories: NO_ADVISORIES,
      sgxLevel,
      tdxLevel,
      error: { code: 'TDX_MODULE_MISMATCH', message: `The TCB info has no identity for TDX module version ${quote.body.teeTcbSvn[1]}.` },
    };
  }
  if (mod.kind === 'badStatus') {
    return {
      status: null,
      qvlStatus: null,
      advisories: NO_ADVISORIES,
      sgxLevel,
      tdxLevel,
      error: {
        code: 'COLLATERAL_MALFORMED',
        message: `The TDX module TCB level for module SVN ${quote.body.teeTcbSvn[0]} has status "${mod.status}", which Intel does not define for a module; the TCB info is malformed.`,
      },
    };
  }
  const partial = { sgxLevel, tdxLevel, moduleStatus: mod.status, qe, ...(mod.level ? { moduleLevel: mod.level } : {}) };
  let status = convergeWithModule(tdxLevel.status, mod.status);
  let relaunch: Relaunch | undefined;
  if (status !== 'Revoked') {
    const r = quote.bodyType === 3 ? relaunchAdvised(info, quote, sgxLevel.status, status, mod.status, qe) : undefined;
    if (r === 'mismatch') {
      return {
        ...partial,
        status: null,
        qvlStatus: null,
        advisories: NO_ADVISORIES,
        error: {
          code: 'TDX_MODULE_MISMATCH',
          message: `TEE_TCB_SVN_2 names TDX module version ${quote.body.teeTcbSvn2![1]}, for which the TCB info has no identity TDX_${hex2(quote.body.teeTcbSvn2![1]!)}.`,
        },
      };
    }
    relaunch = r;
    if (qe.status === 'OutOfDate') {
      if (status === 'UpToDate' || status === 'SWHardeningNeeded') status = 'OutOfDate';
      else if (isConfigurationNeeded(status) && status !== 'OutOfDateConfigurationNeeded') status = 'OutOfDateConfigurationNeeded';
    } else if (qe.status === 'Revoked') {
      status = 'Revoked';
    } else if (qe.status === 'NotSupported') {
      return notSupported("The QE's ISVSVN matches no level of the QE identity; the quoting enclave is not supported.", partial);
    }
  }
  const advisories: Advisories = {
    platform: [...tdxLevel.advisoryIds],
    tdxModule: [...(mod.level?.advisoryIds ?? [])],
    qe: [...(qe.level?.advisoryIds ?? [])],
  };
  return { ...partial, status, qvlStatus: qvlStatusOf(status, relaunch), advisories, ...(relaunch ? { relaunch } : {}) };
}
