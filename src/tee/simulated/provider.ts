/**
 * The simulated evidence provider: v4 TDX quotes in Intel's exact layout, signed by the simulated
 * attestation key, whose QE report is signed by the simulated PCK key. They pass DCAP verification
 * only for a verifier that is explicitly given the simulated root. Node-only.
 */
import { createHash } from 'node:crypto';
import { RatlsError } from '../../core/errors.ts';
import type { Collateral } from '../../core/types.ts';
import { concatBytes, fromHex } from '../../core/bytes.ts';
import { encodeEnclaveReport, encodeQuote, quoteSignedBytes, type QuoteParts } from '../../quote/encode.ts';
import type { EvidenceProvider } from '../../ratls/evidence-provider.ts';
import { rawPublicKey64, signRaw } from './pki.ts';
import { loadWorld, validateMeasurements, type LoadedWorld, type SimulatedMeasurements } from './world.ts';
import { simulatedCollateral } from './collateral.ts';
import { simulatedBootLog } from './boot-log.ts';
import type { RtmrAccess } from '../rtmr.ts';

/** Per-provider overrides of the world's measurements (hex strings). */
export interface SimulatedProviderOptions {
  mrTd?: string;
  /** Up to four RTMRs, index 0..3. */
  rtmrs?: string[];
  mrSeam?: string;
  tdAttributes?: string;
  /** Sets the DEBUG bit (bit 0) of TDATTRIBUTES, to show that verifiers reject debug TDs. */
  debug?: boolean;
}

/** Fixed QE authentication data (Intel's QE uses 32 bytes 0x00..0x1f too). */
const QE_AUTH_DATA = Uint8Array.from({ length: 32 }, (_, i) => i);

/**
 * The simulated provider; construct with {@link loadSimulatedProvider}. One instance is one booted
 * TD: its RTMRs start at the world's measurements and runtime extends change them
 * ({@link SimulatedProvider.rtmrAccess}), and every later quote carries the current values.
 */
export class SimulatedProvider implements EvidenceProvider {
  readonly name = 'simulated';
  readonly simulated = true;
  readonly measurements: SimulatedMeasurements;
  private readonly qeParts: Promise<Pick<QuoteParts, 'qeReport' | 'qeReportSignature' | 'attestationKey' | 'qeAuthData' | 'pckChainPem'>>;
  /** RTMR0..3 now: the boot values, extended at run time. */
  private readonly rtmrs: Uint8Array[];

  constructor(
    private readonly world: LoadedWorld,
    measurements: SimulatedMeasurements,
  ) {
    this.measurements = measurements;
    this.rtmrs = [measurements.rtmr0, measurements.rtmr1, measurements.rtmr2, measurements.rtmr3].map((h) => fromHex(h)!);
    this.qeParts = this.buildQeParts();
  }

  /** RTMR read and extend on this simulated TD, with the kernel's semantics (RTMR := SHA-384(RTMR || digest)). */
  rtmrAccess(): RtmrAccess {
    const check = (index: number) => {
      if (!Number.isInteger(index) || index < 0 || index > 3)
        throw new RatlsError('RTMR_EXTEND_FAILED', `RTMR index ${index} does not exist; TDX has RTMR0-3.`);
    };
    return {
      kind: 'simulated',
      read: async (index) => {
        check(index);
        return this.rtmrs[index]!.slice();
      },
      extend: async (index, digest) => {
        check(index);
        if (digest.length !== 48) throw new RatlsError('RTMR_EXTEND_FAILED', `An RTMR extend takes 48 bytes, got ${digest.length}.`);
        this.rtmrs[index] = new Uint8Array(createHash('sha384').update(this.rtmrs[index]!).update(digest).digest());
      },
    };
  }

  /** The simulated boot event log (CCEL form); its replay is RTMR0-2 unless measurements were overridden. */
  bootLog(): Uint8Array {
    return simulatedBootLog(this.world.config.seed);
  }

  /** Directory of the simulated world; its root is `${dir}/root.pem`. */
  get worldDir(): string {
    return this.world.dir;
  }

  /** PEM of the simulated root CA a verifier must be given explicitly. */
  get rootPem(): string {
    return this.world.root.toString('pem') + '\n';
  }

  // The QE report only depends on the attestation key, so it is made (and PCK-signed) once.
  private async buildQeParts() {
    const w = this.world;
    const attestationKey = await rawPublicKey64(w.attestationKey.publicKey);
    const qe = w.config.qe;
    const qeReport = encodeEnclaveReport({
      cpuSvn: fromHex(w.config.cpuSvn)!,
      miscSelect: qe.miscSelect,
      attributes: fromHex(qe.attributes)!,
      mrEnclave: fromHex(qe.mrEnclave)!,
      mrSigner: fromHex(qe.mrSigner)!,
      isvProdId: qe.isvProdId,
      isvSvn: qe.isvSvn,
      reportData: concatBytes(createHash('sha256').update(attestationKey).update(QE_AUTH_DATA).digest(), new Uint8Array(32)),
    });
    const pem = (c: { toString(f: 'pem'): string }) => c.toString('pem') + '\n';
    return {
      attestationKey,
      qeReport,
      qeReportSignature: await signRaw(w.pckKey.privateKey, qeReport),
      qeAuthData: QE_AUTH_DATA,
      pckChainPem: pem(w.pck) + pem(w.pckCa) + pem(w.root),
    };
  }

  /** A v4 TDX quote carrying exactly `reportData` (64 bytes). */
  async getQuote(reportData: Uint8Array): Promise<Uint8Array> {
    if (reportData.length !== 64) {
      throw new RatlsError('EVIDENCE_PROVIDER_FAILED', `REPORTDATA must be exactly 64 bytes, got ${reportData.length}.`);
    }
    const m = this.measurements;
    const h = (s: string) => fromHex(s)!;
    const c = this.world.config;
    const header = { qeSvn: c.qe.qeSvn, pceSvn: c.pceSvn };
    const body = {
      teeTcbSvn: h(c.teeTcbSvn),
      mrSeam: h(m.mrSeam),
      mrSignerSeam: new Uint8Array(48),
      seamAttributes: new Uint8Array(8),
      tdAttributes: h(m.tdAttributes),
      xfam: h(m.xfam),
      mrTd: h(m.mrTd),
      mrConfigId: h(m.mrConfigId),
      mrOwner: h(m.mrOwner),
      mrOwnerConfig: h(m.mrOwnerConfig),
      rtmr0: this.rtmrs[0]!.slice(),
      rtmr1: this.rtmrs[1]!.slice(),
      rtmr2: this.rtmrs[2]!.slice(),
      rtmr3: this.rtmrs[3]!.slice(),
      reportData: reportData.slice(),
    };
    const signature = await signRaw(this.world.attestationKey.privateKey, quoteSignedBytes({ header, body }));
    return encodeQuote({ header, body, signature, ...(await this.qeParts) });
  }

  /** Collateral signed now by the simulated TCB signing key, valid for 30 days from `now`. */
  collateral(now: Date): Promise<Collateral> {
    return simulatedCollateral(this.world, now);
  }
}

/**
 * Loads the simulated provider from a world directory made by `initSimulatedWorld` /
 * `ratls sim init`. Measurements: options here, else DIR/measurements.json, else derived from the world.
 */
export async function loadSimulatedProvider(dir: string, opts: SimulatedProviderOptions = {}): Promise<SimulatedProvider> {
  const world = await loadWorld(dir);
  const rt = opts.rtmrs ?? [];
  if (rt.length > 4) throw new RatlsError('EVIDENCE_PROVIDER_FAILED', 'A TD has four RTMRs; at most four values can be given.');
  const overrides = validateMeasurements({
    mrTd: opts.mrTd,
    rtmr0: rt[0],
    rtmr1: rt[1],
    rtmr2: rt[2],
    rtmr3: rt[3],
    mrSeam: opts.mrSeam,
    tdAttributes: opts.tdAttributes,
  });
  const m: SimulatedMeasurements = { ...world.measurements, ...overrides };
  if (opts.debug) {
    const attrs = fromHex(m.tdAttributes)!;
    attrs[0]! |= 1;
    m.tdAttributes = Buffer.from(attrs).toString('hex');
  }
  return new SimulatedProvider(world, m);
}
