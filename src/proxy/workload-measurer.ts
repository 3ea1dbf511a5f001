/**
 * The measured workload of `ratls serve` (docs/eventlog.md): records, as runtime events, the proxy's
 * own version and configuration digest, the image digests the admin pinned, open-webui's and
 * Ollama's versions and every model Ollama holds; polls for changes (a pull, a delete, an upgrade)
 * and records them too. Each event is appended to the log (and its file, fsync'd) before RTMR3 is
 * extended with its digest; where nothing can extend RTMR3, the log's replay value is bound into the
 * evidence claims as "runtime-log" instead. The log is append-only: a removed model is an event.
 *
 * The log never grows past what verifiers read ({@link MAX_RUNTIME_LOG_BYTES}). A change that would
 * not fit (or cannot be encoded) is recorded not at all, rather than in part; from then on the
 * measurement is incomplete: nothing more is recorded, the runtime log is no longer served and the
 * "runtime-log" claim leaves the evidence, so workload checks fail instead of passing on a log that
 * no longer says what answers. Node-only.
 */
import { open, readFile, mkdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { Logger } from 'pino';
import { RatlsError } from '../core/errors.ts';
import { toHex } from '../core/bytes.ts';
import { MAX_SERVED_LOG_BYTES } from '../eventlog/document.ts';
import {
  RuntimeLogBuilder,
  encodeRuntimeRecord,
  foldWorkload,
  parseRuntimeLog,
  runtimeReplayValues,
  type ModelRecord,
  type RuntimeEvent,
  type WorkloadState,
} from '../eventlog/runtime.ts';
import type { RtmrAccess } from '../tee/rtmr.ts';
import { observeUpstreams, type UpstreamObservation } from './upstream-observer.ts';
import type { PinnedImage } from './measurement-config.ts';

/** RTMR3: the register runtime events go to. */
const RTMR3 = 3;

/** Largest runtime log the server keeps: what verifiers accept from a server (src/eventlog/document.ts). */
export const MAX_RUNTIME_LOG_BYTES = MAX_SERVED_LOG_BYTES;

/** What the measurer needs. */
export interface WorkloadMeasurerOptions {
  /** 'rtmr3': extend through `rtmr`; 'claims': bind the replay value through the evidence claims. */
  binding: 'rtmr3' | 'claims';
  rtmr?: RtmrAccess;
  /** Persist the log here (rtmr3 binding on a real TD: RTMR3 outlives the process, so must the log). */
  logFile?: string;
  proxy: { version: string; configDigest: string };
  images: PinnedImage[];
  upstreams: { openWebui?: string; ollama?: string };
  /** Look at the upstreams (default: HTTP, src/proxy/upstream-observer.ts). */
  observe?: () => Promise<UpstreamObservation>;
  logger?: Logger;
}

/** A change the measurer recorded; the server answers it with new evidence. */
export interface WorkloadChange {
  events: RuntimeEvent[];
  /** Number of events in the log now. */
  length: number;
}

/** Records runtime events and keeps the log; see the module comment. */
export class WorkloadMeasurer {
  readonly binding: 'rtmr3' | 'claims';
  private builder: RuntimeLogBuilder;
  private state: WorkloadState;
  private chain: Promise<unknown> = Promise.resolve();
  private timer: NodeJS.Timeout | undefined;
  private polling = false;
  private readonly listeners: Array<(c: WorkloadChange) => void> = [];
  private readonly opts: WorkloadMeasurerOptions;
  private lastProblems = '';
  private incompleteReason: string | undefined;

  private constructor(opts: WorkloadMeasurerOptions, builder: RuntimeLogBuilder, state: WorkloadState) {
    this.opts = opts;
    this.binding = opts.binding;
    this.builder = builder;
    this.state = state;
  }

  /**
   * Loads or starts the log, records the proxy and pinned images, and looks at the upstreams once.
   * @throws RatlsError RTMR_EXTEND_FAILED when RTMR3 cannot be read or extended in rtmr3 binding.
   */
  static async start(opts: WorkloadMeasurerOptions): Promise<WorkloadMeasurer> {
    if (opts.binding === 'rtmr3' && !opts.rtmr) throw new RatlsError('RTMR_EXTEND_FAILED', 'RTMR3 binding needs RTMR access.');
    const { builder, state } = await resume(opts);
    const m = new WorkloadMeasurer(opts, builder, state);
    await m.record(m.ownEvents());
    await m.poll();
    return m;
  }

  /** Events describing the proxy itself that are not yet (or differently) in the log. */
  private ownEvents(): RuntimeEvent[] {
    const out: RuntimeEvent[] = [];
    const p = this.opts.proxy;
    if (this.state.proxy?.version !== p.version || this.state.proxy?.configDigest !== p.configDigest) out.push({ kind: 'proxy', ...p });
    for (const i of this.opts.images) {
      const had = this.state.images.find((x) => x.role === i.role && x.image === i.image);
      if (had?.digest !== i.digest) out.push({ kind: 'image', role: i.role, image: i.image, digest: i.digest });
    }
    return out;
  }

  /** The events that bring the log's state to what `o` observed (in a fixed order). */
  private diff(o: UpstreamObservation): RuntimeEvent[] {
    const out: RuntimeEvent[] = [];
    if (o.openWebuiVersion && o.openWebuiVersion !== this.state.openWebui?.version) out.push({ kind: 'open-webui', version: o.openWebuiVersion });
    if (o.ollamaVersion && o.ollamaVersion !== this.state.ollama?.version) out.push({ kind: 'ollama', version: o.ollamaVersion });
    if (o.models) {
      const now = new Map(o.models.map((m) => [m.name, m]));
      const held = new Map(this.state.models.map((m) => [m.name, m]));
      // Removals first (a re-pulled tag with new weights is a removal and an addition).
      for (const [name, m] of held) {
        const cur = now.get(name);
        if (!cur || cur.digest !== m.digest) out.push({ kind: 'model-removed', name, digest: m.digest });
      }
      for (const [name, m] of now) {
        if (held.get(name)?.digest !== m.digest) out.push({ kind: 'model-added', ...withoutUndefined(m) });
      }
    }
    return out;
  }

  /** Looks at the upstreams and records what changed; resolves to the change, if any. Never rejects. */
  poll(): Promise<WorkloadChange | undefined> {
    return this.serial(async () => {
      const o = await (this.opts.observe ?? (() => observeUpstreams(this.opts.upstreams)))();
      const problems = o.problems.join('; ');
      if (problems && problems !== this.lastProblems)
        this.opts.logger?.warn({ problems: o.problems }, 'measurement: could not read every upstream; nothing is recorded for what could not be read');
      this.lastProblems = problems;
      return this.append(this.diff(o));
    }).catch((err: unknown) => {
      this.opts.logger?.error({ err: err instanceof Error ? err.message : String(err) }, 'measurement: recording failed');
      return undefined;
    });
  }

  /** Records `events` now (serialised with polls). */
  record(events: RuntimeEvent[]): Promise<WorkloadChange | undefined> {
    return this.serial(() => this.append(events));
  }

  private serial<T>(f: () => Promise<T>): Promise<T> {
    const next = this.chain.then(f, f);
    this.chain = next.catch(() => undefined);
    return next;
  }

  private async append(events: RuntimeEvent[]): Promise<WorkloadChange | undefined> {
    if (events.length === 0 || this.incompleteReason !== undefined) return undefined;
    // A batch is recorded whole or not at all: a part of it in the log (and in RTMR3) with the state
    // left behind would make every later poll record the same events again.
    const refused = await this.refusal(events);
    if (refused) {
      return this.giveUp(
        refused,
        'Hold fewer models (or ones with shorter names), then restart ratls serve; with RTMR3 binding reboot the TD, whose RTMR3 keeps the old log.',
        events,
      );
    }
    try {
      for (const e of events) {
        const { digest, record } = await this.builder.append(e);
        // Log first, then extend: a crash in between leaves one logged event RTMR3 lacks, which the
        // next start completes (resume); the other order would leave a measurement nobody can explain.
        if (this.opts.logFile) await appendDurably(this.opts.logFile, record);
        if (this.binding === 'rtmr3') await this.opts.rtmr!.extend(RTMR3, digest);
      }
    } catch (err) {
      // part of the batch is in the log (and maybe in RTMR3): the log cannot be trusted to go on
      return this.giveUp(
        `writing the log or extending RTMR3 failed part-way (${err instanceof Error ? err.message : String(err)})`,
        'Check the log file and the kernel interface to RTMR3, then restart ratls serve; with RTMR3 binding reboot the TD.',
        events,
      );
    }
    this.state = foldWorkload((await parseRuntimeLog(this.builder.bytes())).events);
    const change = { events, length: this.builder.length };
    this.opts.logger?.info({ events: events.map((e) => e.kind), length: change.length, binding: this.binding }, 'measurement: runtime events recorded');
    for (const l of this.listeners) l(change);
    return change;
  }

  /** Why `events` cannot be recorded (too large for the log, or not encodable), or undefined. */
  private async refusal(events: RuntimeEvent[]): Promise<string | undefined> {
    let size = this.builder.byteLength;
    for (const [i, e] of events.entries()) {
      try {
        size += (await encodeRuntimeRecord(this.builder.length + i + 1, e)).record.length;
      } catch (err) {
        return `a ${e.kind} event cannot be recorded (${err instanceof Error ? err.message : String(err)})`;
      }
    }
    if (size <= MAX_RUNTIME_LOG_BYTES) return undefined;
    return `recording ${events.length} more events would make the runtime log ${size} bytes, over the ${MAX_RUNTIME_LOG_BYTES} verifiers accept`;
  }

  /** Stops measuring for good: the log no longer describes the workload. */
  private giveUp(why: string, fix: string, events: RuntimeEvent[]): WorkloadChange {
    this.incompleteReason =
      `The runtime event log is incomplete: ${why}. The workload changed without being recorded, so the runtime log is no longer ` +
      `served and workload checks fail. ${fix}`;
    this.stop();
    this.opts.logger?.error({ events: events.length, bytes: this.builder.byteLength }, `measurement: ${this.incompleteReason}`);
    const change = { events: [], length: this.builder.length };
    // the evidence must stop carrying the runtime-log claim: listeners issue new evidence
    for (const l of this.listeners) l(change);
    return change;
  }

  /**
   * Why the log stopped describing the workload (a change it could not record), or undefined while
   * it is complete. Once set, nothing more is recorded; the server stops serving the log.
   */
  get incomplete(): string | undefined {
    return this.incompleteReason;
  }

  /** Calls `f` after each recorded change. */
  onChange(f: (c: WorkloadChange) => void): void {
    this.listeners.push(f);
  }

  /** Polls every `intervalMs` (0: never) until {@link stop}. */
  startPolling(intervalMs: number): void {
    if (intervalMs <= 0) return;
    this.polling = true;
    const tick = () => {
      // a poll in flight when stop() was called must not arm the next one
      if (!this.polling) return;
      this.timer = setTimeout(() => void this.poll().finally(tick), intervalMs);
      this.timer.unref();
    };
    tick();
  }

  stop(): void {
    this.polling = false;
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** The whole runtime log (TCG bytes). */
  log(): Uint8Array {
    return this.builder.bytes();
  }

  /** The log's replay value: RTMR3's expected value (rtmr3) or the "runtime-log" claim (claims). */
  replayValue(): Uint8Array {
    return this.builder.replayValue;
  }

  /** The claim to bind into evidence, in claims binding only, and only while the log is complete. */
  runtimeLogClaim(): Uint8Array | undefined {
    return this.binding === 'claims' && this.incompleteReason === undefined ? this.builder.replayValue : undefined;
  }

  /** The models held now (as recorded). */
  models(): ModelRecord[] {
    return this.state.models.map(({ seq: _s, ...m }) => m);
  }
}

function withoutUndefined<T extends object>(o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
}

/** Appends `record` to `file` and waits until it is on disk. */
async function appendDurably(file: string, record: Uint8Array): Promise<void> {
  const fh = await open(file, 'a', 0o600);
  try {
    await fh.write(record);
    await fh.datasync();
  } finally {
    await fh.close();
  }
}

/**
 * Where to start: with a log file from an earlier run in this boot, continue it (completing an
 * extend a crash interrupted); with RTMR3 already extended by other software, begin a new log that
 * states RTMR3's value first; else begin an empty log.
 */
async function resume(opts: WorkloadMeasurerOptions): Promise<{ builder: RuntimeLogBuilder; state: WorkloadState }> {
  const rtmr3 = opts.binding === 'rtmr3' ? toHex(await opts.rtmr!.read(RTMR3)) : undefined;
  const fresh = async (initial?: Uint8Array) => {
    const builder = new RuntimeLogBuilder(initial);
    if (opts.logFile) {
      await mkdir(dirname(opts.logFile), { recursive: true, mode: 0o700 });
      const fh = await open(opts.logFile, 'w', 0o600);
      try {
        await fh.write(builder.bytes());
        await fh.datasync();
      } finally {
        await fh.close();
      }
    }
    return { builder, state: foldWorkload([]) };
  };
  let existing: Uint8Array | undefined;
  if (opts.logFile) {
    try {
      existing = new Uint8Array(await readFile(opts.logFile));
    } catch {
      existing = undefined;
    }
  }
  if (existing && existing.length > 0 && opts.binding === 'rtmr3') {
    try {
      const parsed = await parseRuntimeLog(existing);
      const values = await runtimeReplayValues(parsed.events, parsed.initial);
      const n = parsed.events.length;
      if (values[n] === rtmr3 || values[n - 1] === rtmr3) {
        const builder = await RuntimeLogBuilder.resume(existing);
        if (values[n] !== rtmr3) {
          await opts.rtmr!.extend(RTMR3, Uint8Array.from(Buffer.from(parsed.events[n - 1]!.digest, 'hex')));
          opts.logger?.warn({ seq: n }, 'measurement: completed the RTMR3 extend of the last logged event (the previous run stopped in between)');
        }
        opts.logger?.info({ events: n, file: opts.logFile }, 'measurement: continuing the runtime log of this boot');
        return { builder, state: foldWorkload(parsed.events) };
      }
      opts.logger?.warn(
        { file: opts.logFile },
        'measurement: the saved runtime log does not replay to RTMR3 (another boot, or other software extended RTMR3); starting a new log',
      );
    } catch (err) {
      opts.logger?.warn(
        { file: opts.logFile, err: err instanceof Error ? err.message : String(err) },
        'measurement: the saved runtime log is unreadable; starting a new log',
      );
    }
  }
  const zero = '00'.repeat(48);
  return fresh(rtmr3 !== undefined && rtmr3 !== zero ? Uint8Array.from(Buffer.from(rtmr3, 'hex')) : undefined);
}
