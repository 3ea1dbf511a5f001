/**
 * Simulated TD 1.5 (v5, body type 3) quotes and re-signed TCB info / QE identity variants, so the
 * TCB rules can be tested end to end through verifyQuote with collateral Intel never issued.
 */
import { COLLATERAL_VALIDITY_MS, qeIdentityBody, tcbInfoBody, simulatedCollateral } from '../../src/tee/simulated/collateral.ts';
import { signRaw } from '../../src/tee/simulated/pki.ts';
import type { LoadedWorld, SimulatedProvider } from '../../src/tee/simulated/index.ts';
import type { Collateral } from '../../src/core/types.ts';
import { concatBytes, fromHex, toHex } from '../../src/core/bytes.ts';

export type Json = Record<string, any>;

const HEADER = 48;
const BODY_10 = 584;

/**
 * A v5 quote with a TD 1.5 body (TEE_TCB_SVN, TEE_TCB_SVN_2 as hex) from the simulated world:
 * the provider's v4 quote with the header version set to 5, the body descriptor (type 3, 648
 * bytes) inserted, TEE_TCB_SVN_2 and a zero MRSERVICETD appended, and signed again by the world's
 * attestation key. The certification data (QE report, PCK chain) is the v4 quote's.
 */
export async function simulatedV5Quote(world: LoadedWorld, provider: SimulatedProvider, teeTcbSvn: string, teeTcbSvn2: string): Promise<Uint8Array> {
  const v4 = await provider.getQuote(new Uint8Array(64).fill(0x15));
  const header = v4.slice(0, HEADER);
  new DataView(header.buffer).setUint16(0, 5, true);
  const descriptor = new Uint8Array(6);
  new DataView(descriptor.buffer).setUint16(0, 3, true);
  new DataView(descriptor.buffer).setUint32(2, 648, true);
  const body = v4.slice(HEADER, HEADER + BODY_10);
  body.set(fromHex(teeTcbSvn)!, 0);
  const signed = concatBytes(header, descriptor, body, fromHex(teeTcbSvn2)!, new Uint8Array(48));
  const sigData = v4.slice(HEADER + BODY_10); // u32 length, signature, attestation key, certification data
  sigData.set(await signRaw(world.attestationKey.privateKey, signed), 4);
  return concatBytes(signed, sigData);
}

async function signDoc(world: LoadedWorld, name: string, inner: unknown): Promise<string> {
  const text = JSON.stringify(inner);
  return `{"${name}":${text},"signature":"${toHex(await signRaw(world.tcbSigningKey.privateKey, new TextEncoder().encode(text)))}"}`;
}

/** The world's collateral at `now`, with the TCB info and QE identity edited and signed again. */
export async function editedCollateral(
  world: LoadedWorld,
  now: Date,
  edit: { tcbInfo?: (b: Json) => void; qeIdentity?: (b: Json) => void },
): Promise<Collateral> {
  const base = await simulatedCollateral(world, now);
  const issue = new Date(Math.floor(now.getTime() / 1000) * 1000);
  const next = new Date(issue.getTime() + COLLATERAL_VALIDITY_MS);
  const tcb = tcbInfoBody(world, issue, next) as Json;
  const qe = qeIdentityBody(world, issue, next) as Json;
  edit.tcbInfo?.(tcb);
  edit.qeIdentity?.(qe);
  return { ...base, tcbInfoJson: await signDoc(world, 'tcbInfo', tcb), qeIdentityJson: await signDoc(world, 'enclaveIdentity', qe) };
}
