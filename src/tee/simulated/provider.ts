/**
 * The simulated evidence provider: v4 TDX quotes in Intel's exact layout, signed by the simulated
 * attestation key, whose QE report is signed by the simulated PCK key. They pass DCAP verification
 * only for a verifier that is explicitly given the simulated root. Node-only.
 */
import { createHash, randomBytes } from 'node:crypto';
import * as x509 from '@peculiar/x509';
import { RatlsError } from '../../core/errors.ts';
import type { Collateral } from '../../core/types.ts';
import { concatBytes, fromHex } from '../../core/bytes.ts';
import { encodeEnclaveReport, encodeQuote, quoteSignedBytes, type QuoteParts } from '../../quote/encode.ts';
import type { EvidenceProvider } from '../../ratls/evidence-provider.ts';
import { generateP256, issueCert, rawPublicKey64, SIM_NAMES, signRaw } from './pki.ts';
import { encodeSgxExtensions, OID_SGX_EXTENSIONS } from './sgx-extension.ts';
import { loadWorld, validateMeasurements, type LoadedWorld, type SimulatedMeasurements } from './world.ts';
import { simulatedCollateral } from './collateral.ts';

/** Per-provider overrides of the world's measurements (hex strings). */
export interface SimulatedProviderOptions {
  mrTd?: string;
  /** Up to four RTMRs, index 0..3. */
  rtmrs?: string[];
  mrSeam?: string;
  tdAttributes?: string;
  /** Sets the DEBUG bit (bit 0) of TDATTRIBUTES, to show that verifiers reject debug TDs. */
  debug?: boolean;
  /**
   * Time each quote takes, in ms, modelling real TDX (about 40 ms). Quotes are always made one at
   * a time, as the TDX quoting path does; this adds the wait. Default 0.
   */
  quoteLatencyMs?: number;
  /**
   * Quote as another physical platform of the same FMSPC: a PCK certificate with this PPID
   * (16 bytes hex) and its own PCK and attestation keys, issued in memory by the world's PCK CA.
   * Same measurements, same collateral: only the platform identity differs.
   */
  ppid?: string;
}

/** Fixed QE authentication data (Intel's QE uses 32 bytes 0x00..0x1f too). */
const QE_AUTH_DATA = Uint8Array.from({ length: 32 }, (_, i) => i);

/** The simulated provider; construct with {@link loadSimulatedProvider}. */
export class SimulatedProvider implements EvidenceProvider {
  readonly name = 'simulated';
  readonly simulated = true;
  readonly measurements: SimulatedMeasurements;
  private readonly qeParts: Promise<Pick<QuoteParts, 'qeReport' | 'qeReportSignature' | 'attestationKey' | 'qeAuthData' | 'pckChainPem'>>;
  private readonly latencyMs: number;
  /** The previous quote; the next one starts after it (one at a time, like the hardware). */
  private last: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly world: LoadedWorld,
    measurements: SimulatedMeasurements,
    opts: { quoteLatencyMs?: number } = {},
  ) {
    this.measurements = measurements;
    this.latencyMs = opts.quoteLatencyMs ?? 0;
    this.qeParts = this.buildQeParts();
  }

  /** PPID of the platform this provider quotes as (16 bytes hex). */
  get ppid(): string {
    return this.world.config.ppid;
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

  /** A v4 TDX quote carrying exactly `reportData` (64 bytes); one at a time, each taking quoteLatencyMs. */
  getQuote(reportData: Uint8Array): Promise<Uint8Array> {
    if (reportData.length !== 64) {
      return Promise.reject(new RatlsError('EVIDENCE_PROVIDER_FAILED', `REPORTDATA must be exactly 64 bytes, got ${reportData.length}.`));
    }
    const rd = reportData.slice();
    const next = this.last.then(async () => {
      if (this.latencyMs > 0) await new Promise((r) => setTimeout(r, this.latencyMs));
      return this.makeQuote(rd);
    });
    this.last = next.catch(() => undefined);
    return next;
  }

  private async makeQuote(reportData: Uint8Array): Promise<Uint8Array> {
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
      rtmr0: h(m.rtmr0),
      rtmr1: h(m.rtmr1),
      rtmr2: h(m.rtmr2),
      rtmr3: h(m.rtmr3),
      reportData,
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
  const latency = opts.quoteLatencyMs ?? 0;
  if (!Number.isFinite(latency) || latency < 0 || latency > 60_000) {
    throw new RatlsError('EVIDENCE_PROVIDER_FAILED', `The simulated quote latency must be 0 to 60000 ms, got ${latency}.`);
  }
  const w = opts.ppid === undefined ? world : await otherPlatform(world, opts.ppid);
  return new SimulatedProvider(w, m, { quoteLatencyMs: latency });
}

/** The world as seen from another machine of the same FMSPC: new PCK and attestation keys, another PPID. */
async function otherPlatform(world: LoadedWorld, ppidHex: string): Promise<LoadedWorld> {
  const ppid = fromHex(ppidHex.toLowerCase());
  if (!ppid || ppid.length !== 16) throw new RatlsError('EVIDENCE_PROVIDER_FAILED', `A PPID is 16 bytes of hex, got "${ppidHex.slice(0, 40)}".`);
  const c = world.config;
  const pckKey = await generateP256();
  const sgxExt = encodeSgxExtensions({
    ppid,
    sgxTcbComponents: c.sgxTcbComponents,
    pceSvn: c.pceSvn,
    cpuSvn: fromHex(c.cpuSvn)!,
    pceId: fromHex(c.pceId)!,
    fmspc: fromHex(c.fmspc)!,
    sgxType: 1,
    platformInstanceId: new Uint8Array(randomBytes(16)),
  });
  const pck = await issueCert({
    subject: SIM_NAMES.pck,
    publicKey: pckKey.publicKey,
    issuer: { name: SIM_NAMES.pckCa, key: world.pckCaKey.privateKey, cert: world.pckCa },
    notBefore: world.pck.notBefore,
    notAfter: world.pck.notAfter,
    ca: false,
    crlUrl: 'https://simulated.invalid/sgx/certification/v4/pckcrl?ca=platform&encoding=der',
    extra: [new x509.Extension(OID_SGX_EXTENSIONS, false, sgxExt.slice().buffer)],
  });
  return { ...world, config: { ...c, ppid: toHexLower(ppid) }, pck, pckKey, attestationKey: await generateP256() };
}

function toHexLower(b: Uint8Array): string {
  return Buffer.from(b).toString('hex');
}
