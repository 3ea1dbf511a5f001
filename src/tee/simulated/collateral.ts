/**
 * Simulated DCAP collateral in Intel's formats: TCB info v3 (id TDX) and QE identity v2 (id
 * TD_QE) signed by the simulated TCB signing key over the exact inner JSON text, the PCK CRL
 * (issued by the PCK Platform CA) and the root CA CRL, with their issuer chains. Dated from the
 * `now` the caller passes, so every certificate issuance staples fresh collateral. Node-only.
 */
import type { Collateral } from '../../core/types.ts';
import { toHex } from '../../core/bytes.ts';
import { issueCrl, signRaw } from './pki.ts';
import type { LoadedWorld } from './world.ts';

/** How long simulated collateral stays valid (Intel's is 30 days too). */
export const COLLATERAL_VALIDITY_MS = 30 * 86_400_000;
const TCB_EVALUATION_DATA_NUMBER = 17;
const TCB_DATE = '2024-03-13T00:00:00Z';
const OLD_TCB_DATE = '2023-08-09T00:00:00Z';

/** Intel's date format: second precision, Z suffix. */
export function intelDate(d: Date): string {
  return d.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

const enc = new TextEncoder();

/** Wraps `inner` as Intel does: {"<name>":<inner text>,"signature":"<hex r||s>"}. */
async function signJson(world: LoadedWorld, name: string, inner: unknown): Promise<string> {
  const text = JSON.stringify(inner);
  const sig = await signRaw(world.tcbSigningKey.privateKey, enc.encode(text));
  return `{"${name}":${text},"signature":"${toHex(sig)}"}`;
}

const svns = (xs: number[]) => xs.map((svn) => ({ svn }));

/** The TCB info document for the world's FMSPC. */
export function tcbInfoBody(world: LoadedWorld, issue: Date, next: Date): unknown {
  const c = world.config;
  const tee = Array.from(Buffer.from(c.teeTcbSvn, 'hex'));
  const moduleSvn = tee[0]!;
  const moduleMajor = tee[1]!;
  const zeros48 = '00'.repeat(48).toUpperCase();
  // TDX components compared against TEE_TCB_SVN; bytes 0-1 are graded via tdxModuleIdentities.
  const tdxComps = [moduleSvn, 0, ...tee.slice(2)];
  const older = (xs: number[]) => xs.map((x) => Math.max(0, x - 1));
  return {
    id: 'TDX',
    version: 3,
    issueDate: intelDate(issue),
    nextUpdate: intelDate(next),
    fmspc: c.fmspc.toUpperCase(),
    pceId: c.pceId.toUpperCase(),
    tcbType: 0,
    tcbEvaluationDataNumber: TCB_EVALUATION_DATA_NUMBER,
    tdxModule: { mrsigner: zeros48, attributes: '0000000000000000', attributesMask: 'FFFFFFFFFFFFFFFF' },
    tdxModuleIdentities: [
      {
        id: `TDX_${moduleMajor.toString(16).padStart(2, '0').toUpperCase()}`,
        mrsigner: zeros48,
        attributes: '0000000000000000',
        attributesMask: 'FFFFFFFFFFFFFFFF',
        tcbLevels: [
          { tcb: { isvsvn: moduleSvn }, tcbDate: TCB_DATE, tcbStatus: 'UpToDate' },
          { tcb: { isvsvn: Math.max(0, moduleSvn - 2) }, tcbDate: OLD_TCB_DATE, tcbStatus: 'OutOfDate' },
        ],
      },
    ],
    tcbLevels: [
      {
        tcb: { sgxtcbcomponents: svns(c.sgxTcbComponents), pcesvn: c.pceSvn, tdxtcbcomponents: svns(tdxComps) },
        tcbDate: TCB_DATE,
        tcbStatus: c.platformTcbStatus,
        ...(c.platformTcbStatus === 'UpToDate' ? {} : { advisoryIDs: ['SIMULATED-SA-00001'] }),
      },
      {
        tcb: { sgxtcbcomponents: svns(older(c.sgxTcbComponents)), pcesvn: Math.max(0, c.pceSvn - 2), tdxtcbcomponents: svns(older(tdxComps)) },
        tcbDate: OLD_TCB_DATE,
        tcbStatus: 'OutOfDate',
        advisoryIDs: ['SIMULATED-SA-00001', 'SIMULATED-SA-00002'],
      },
    ],
  };
}

/** The QE identity document for the simulated TD QE. */
export function qeIdentityBody(world: LoadedWorld, issue: Date, next: Date): unknown {
  const qe = world.config.qe;
  return {
    id: 'TD_QE',
    version: 2,
    issueDate: intelDate(issue),
    nextUpdate: intelDate(next),
    tcbEvaluationDataNumber: TCB_EVALUATION_DATA_NUMBER,
    miscselect: '00000000',
    miscselectMask: 'FFFFFFFF',
    attributes: '11000000000000000000000000000000',
    attributesMask: 'FBFFFFFFFFFFFFFF0000000000000000',
    mrsigner: qe.mrSigner.toUpperCase(),
    isvprodid: qe.isvProdId,
    tcbLevels: [{ tcb: { isvsvn: qe.isvSvn }, tcbDate: TCB_DATE, tcbStatus: 'UpToDate' }],
  };
}

/** Fresh, signed collateral valid from `now` for 30 days. */
export async function simulatedCollateral(world: LoadedWorld, now: Date): Promise<Collateral> {
  const issue = new Date(Math.floor(now.getTime() / 1000) * 1000);
  const next = new Date(issue.getTime() + COLLATERAL_VALIDITY_MS);
  const pem = (c: { toString(f: 'pem'): string }) => c.toString('pem') + '\n';
  const rootPem = pem(world.root);
  return {
    tcbInfoJson: await signJson(world, 'tcbInfo', tcbInfoBody(world, issue, next)),
    tcbInfoIssuerChain: pem(world.tcbSigning) + rootPem,
    qeIdentityJson: await signJson(world, 'enclaveIdentity', qeIdentityBody(world, issue, next)),
    qeIdentityIssuerChain: pem(world.tcbSigning) + rootPem,
    pckCrl: await issueCrl({
      issuer: world.pckCa,
      key: world.pckCaKey.privateKey,
      thisUpdate: issue,
      nextUpdate: next,
      revokedSerials: world.config.revokedSerials,
    }),
    pckCrlIssuerChain: pem(world.pckCa) + rootPem,
    rootCaCrl: await issueCrl({ issuer: world.root, key: world.rootKey.privateKey, thisUpdate: issue, nextUpdate: next }),
  };
}
