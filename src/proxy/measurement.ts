/**
 * Everything `ratls serve` measures and serves about what answers (docs/eventlog.md): the TD's boot
 * log (checked against the TD's own quote before it is served) and the runtime log of the AI stack,
 * bound to RTMR3 or to the "runtime-log" claim. The document served at
 * /.well-known/ratls/eventlog is built here. Node-only.
 */
import type { Logger } from 'pino';
import { RatlsError } from '../core/errors.ts';
import { toBase64, toHex } from '../core/bytes.ts';
import type { EvidenceProvider } from '../ratls/evidence-provider.ts';
import { appraiseWorkload, runtimeEventSummary } from '../eventlog/appraise.ts';
import { describeBootEvent, type DescribedEvent } from '../eventlog/boot-events.ts';
import { EVENTLOG_DOCUMENT_FORMAT, EVENTLOG_DOCUMENT_VERSION, type EventLogDocument } from '../eventlog/document.ts';
import { parseRuntimeLog } from '../eventlog/runtime.ts';
import { parseTcgLog } from '../eventlog/tcg.ts';
import { parseQuote } from '../quote/parse.ts';
import { bootLogFor, rtmrAccessFor } from '../tee/measurement-sources.ts';
import type { ServeConfig } from './config.ts';
import { configDigest } from './config-digest.ts';
import { proxyVersion } from './version.ts';
import { WorkloadMeasurer, type WorkloadChange } from './workload-measurer.ts';

/** Default place of the runtime log when it extends a real TD's RTMR3 (tmpfs: lives as long as the boot). */
export const DEFAULT_RUNTIME_LOG_FILE = '/run/ratls/runtime-events.bin';

/** The running measurement. */
export interface Measurement {
  /** 'off' when the config turned the runtime log off. */
  binding: 'rtmr3' | 'claims' | 'off';
  measurer: WorkloadMeasurer | undefined;
  /** The claim to put into evidence now (claims binding), else undefined. */
  runtimeLogClaim(): Uint8Array | undefined;
  /** Checks the boot log against the TD's quote; a log that does not replay is not served. */
  checkBootLog(quote: Uint8Array): Promise<void>;
  /** The document of /.well-known/ratls/eventlog; `decoded: false` leaves out the server's decoding. */
  document(opts?: { decoded?: boolean }): Promise<EventLogDocument>;
  /** Raw logs, for ?format=boot / ?format=runtime. */
  raw(which: 'boot' | 'runtime'): Uint8Array | undefined;
  onChange(f: (c: WorkloadChange) => void): void;
  stop(): void;
}

/**
 * Starts measuring for `provider` as `config.measurement` says.
 * @throws RatlsError RTMR_EXTEND_FAILED when mode rtmr3 is asked for and RTMR3 cannot be extended,
 *   POLICY_INVALID when mode claims is asked for with the dstack profile (it has no claims).
 */
export async function startMeasurement(config: ServeConfig, provider: EvidenceProvider, logger?: Logger): Promise<Measurement> {
  const mc = config.measurement;
  const paths = { acpiTables: mc.acpiTables, measurementsDir: mc.measurementsDir };

  let boot: { source: 'ccel' | 'simulated'; log: Uint8Array } | undefined;
  let bootUnavailable: string | undefined;
  if (mc.bootLog) {
    try {
      boot = await bootLogFor(provider, paths);
    } catch (err) {
      bootUnavailable = err instanceof Error ? err.message : String(err);
      logger?.warn({ err: bootUnavailable }, 'measurement: the boot event log (CCEL) cannot be read, so it is not served');
    }
  } else bootUnavailable = 'The server does not serve its boot event log (measurement.bootLog: false).';

  let binding: Measurement['binding'] = 'off';
  let measurer: WorkloadMeasurer | undefined;
  // dstack's verifiers replay RTMR3 from dstack-format events only, so extending RTMR3 with ours
  // would make them refuse the certificate: with the dstack profile only an explicit mode measures.
  const mode = mc.mode === 'auto' && config.tls.profile === 'dstack' ? 'off' : mc.mode;
  if (mode !== mc.mode)
    logger?.info(
      'measurement: off by default with the dstack profile (dstack verifiers replay RTMR3 from their own events); set measurement.mode to measure anyway',
    );
  if (mode !== 'off') {
    const rtmr = mode === 'claims' ? undefined : await rtmrAccessFor(provider, paths);
    if (mode === 'rtmr3' && !rtmr) {
      throw new RatlsError(
        'RTMR_EXTEND_FAILED',
        `measurement.mode is rtmr3, but RTMR3 cannot be extended here (${mc.measurementsDir}/rtmr3:sha384 missing or not writable: Linux 6.16+ and root are needed). Use mode auto or claims.`,
      );
    }
    binding = rtmr ? 'rtmr3' : 'claims';
    if (binding === 'claims' && config.tls.profile === 'dstack') {
      if (mode === 'claims')
        throw new RatlsError('POLICY_INVALID', 'measurement.mode claims needs the ccc certificate profile; the dstack profile carries no claims.');
      logger?.warn('measurement: RTMR3 cannot be extended and the dstack profile has no claims, so the runtime log is off');
      binding = 'off';
    }
    if (binding !== 'off') {
      const logFile = mc.logFile ?? (rtmr?.kind === 'sysfs' ? DEFAULT_RUNTIME_LOG_FILE : undefined);
      try {
        measurer = await WorkloadMeasurer.start({
          binding,
          ...(rtmr ? { rtmr } : {}),
          ...(logFile ? { logFile } : {}),
          proxy: { version: proxyVersion(), configDigest: configDigest(config) },
          images: mc.images,
          upstreams: { openWebui: config.upstreams.openWebui, ollama: config.upstreams.ollama },
          ...(logger ? { logger } : {}),
        });
      } catch (err) {
        if (err instanceof RatlsError) throw err;
        throw new RatlsError(
          'RTMR_EXTEND_FAILED',
          `The runtime measurement could not start (${err instanceof Error ? err.message : String(err)}); fix it, or set measurement.mode to off to serve without measuring.`,
        );
      }
      measurer.startPolling(mc.pollIntervalMs);
      logger?.info({ binding, models: measurer.models().length, logFile: logFile ?? null }, 'measurement: runtime event log started');
    }
  }

  let described: DescribedEvent[] | undefined;
  const bootEvents = async (): Promise<DescribedEvent[]> => {
    if (!boot) return [];
    if (!described) {
      const all = await Promise.all(parseTcgLog(boot.log, 'The boot event log').events.map((e) => describeBootEvent(e).catch(() => undefined)));
      described = all.filter((x): x is DescribedEvent => x !== undefined);
    }
    return described;
  };

  // The decoded runtime events, for as long as the log keeps its length (it only grows): decoding
  // a long log costs tens of milliseconds, which every unauthenticated request would otherwise pay.
  let decodedRuntime: { length: number; events: Promise<unknown[]> } | undefined;
  const runtimeEvents = (m: WorkloadMeasurer): Promise<unknown[]> => {
    const log = m.log();
    if (decodedRuntime?.length !== log.length) {
      const events = parseRuntimeLog(log).then((l) =>
        l.events.map((e) => ({ seq: e.seq, kind: e.event.kind, summary: runtimeEventSummary(e.event), digest: e.digest })),
      );
      decodedRuntime = { length: log.length, events };
      events.catch(() => (decodedRuntime = undefined));
    }
    return decodedRuntime.events;
  };
  // a measurer that could not record a change no longer describes the workload: its log is not served
  const servedMeasurer = (): WorkloadMeasurer | undefined => (measurer && binding !== 'off' && measurer.incomplete === undefined ? measurer : undefined);

  return {
    binding,
    measurer,
    runtimeLogClaim: () => measurer?.runtimeLogClaim(),
    async checkBootLog(quote) {
      if (!boot) return;
      const b = parseQuote(quote).body;
      const rtmrs: [string, string, string, string] = [toHex(b.rtmr0), toHex(b.rtmr1), toHex(b.rtmr2), toHex(b.rtmr3)];
      const r = await appraiseWorkload({ rtmrs, evidence: [], bootLog: boot.log });
      if (r.errors.length > 0) {
        bootUnavailable = `The boot event log does not replay to this TD's registers, so it is not served: ${r.errors.map((e) => e.message).join(' ')}`;
        logger?.warn({ errors: r.errors.map((e) => `${e.code}: ${e.message}`) }, 'measurement: the boot event log does not replay to this TD; not serving it');
        boot = undefined;
      }
    },
    async document(opts = {}) {
      const decoded = opts.decoded ?? true;
      const served = servedMeasurer();
      const rt = served && decoded ? await runtimeEvents(served) : undefined;
      return {
        format: EVENTLOG_DOCUMENT_FORMAT,
        version: EVENTLOG_DOCUMENT_VERSION,
        boot: boot ? { source: boot.source, log: toBase64(boot.log), ...(decoded ? { events: await bootEvents() } : {}) } : null,
        ...(boot ? {} : { bootUnavailable: bootUnavailable ?? 'No boot event log.' }),
        runtime:
          served && binding !== 'off' ? { binding, log: toBase64(served.log()), replay: toHex(served.replayValue()), ...(rt ? { events: rt } : {}) } : null,
        ...(measurer?.incomplete !== undefined ? { runtimeUnavailable: measurer.incomplete } : {}),
      };
    },
    raw: (which) => (which === 'boot' ? boot?.log : servedMeasurer()?.log()),
    onChange: (f) => measurer?.onChange(f),
    stop: () => measurer?.stop(),
  };
}
