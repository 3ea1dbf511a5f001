/**
 * What answers: replays the boot log (CCEL) into RTMR0-2, the runtime log into RTMR3 or the
 * "runtime-log" claim, a dstack event log into RTMR0-3, compares them with the evidence, and builds
 * the workload report (models, versions, configuration digest, named boot events) that policies
 * pin. Every failure names the register and the event. Never throws. Browser-safe.
 */
import { CheckRecorder } from '../core/checks.ts';
import { RatlsError, toVerifyError, type VerifyError } from '../core/errors.ts';
import type { CheckRecord, WorkloadPolicy } from '../core/types.ts';
import { toHex } from '../core/bytes.ts';
import { NAMED_KINDS, describeBootEvent, type DescribedEvent } from './boot-events.ts';
import { replayDstackEvents, type DstackEvent } from './dstack.ts';
import { replayDigests, replayTcgEvents } from './replay.ts';
import { foldWorkload, parseRuntimeLog, runtimeReplayValues, type RuntimeLogEvent } from './runtime.ts';
import { RTMR_NAMES } from './tcg-types.ts';
import { parseTcgLog, sha384Of, type TcgEvent } from './tcg.ts';
import { applyWorkloadPolicy } from './workload-policy.ts';
import { missingSha384Reason, pcrIndexedLogReason } from './identify.ts';
import type { WorkloadReport } from './workload-report.ts';

export type { ReportedModel, WorkloadReport } from './workload-report.ts';

/** One piece of verified evidence the runtime log can be bound to. */
export interface EvidencePoint {
  /** "certificate", "nonce evidence", "session evidence". */
  source: string;
  /** RTMR3 of that evidence's quote (hex). */
  rtmr3: string;
  /** The "runtime-log" claim of that evidence (hex), when the server binds the log through claims. */
  runtimeLog?: string;
}

/** What {@link appraiseWorkload} reads. */
export interface WorkloadInputs {
  /** RTMR0..3 of the verified quote (hex). */
  rtmrs: [string, string, string, string];
  /** The evidence the runtime log may be bound to; the certificate's first. */
  evidence: EvidencePoint[];
  /** The TDX boot log (CCEL, TCG crypto-agile bytes). */
  bootLog?: Uint8Array;
  /** ratls-proxy's runtime log. */
  runtimeLog?: Uint8Array;
  /** A dstack event log (from a dstack certificate or GetQuote). */
  dstack?: { events: DstackEvent[]; /** Registers the log is complete for; certificates strip RTMR0-2. */ registers: number[] };
  policy?: WorkloadPolicy;
  /** Why no event log could be had (reported; an error only when the policy needs one). */
  unavailable?: string;
}

/** Result of the appraisal. */
export interface WorkloadAppraisal {
  report: WorkloadReport;
  checks: CheckRecord[];
  errors: VerifyError[];
}

/** Summarises one runtime event for people. */
export function runtimeEventSummary(e: RuntimeLogEvent['event']): string {
  const x = e as Record<string, unknown>;
  switch (e.kind) {
    case 'proxy':
      return `ratls-proxy ${String(x.version)}, config ${String(x.configDigest).slice(0, 16)}…`;
    case 'image':
      return `${String(x.role)} image ${String(x.image)}@${String(x.digest)}`;
    case 'open-webui':
      return `open-webui ${String(x.version)}`;
    case 'ollama':
      return `Ollama ${String(x.version)}`;
    case 'model-added':
      return `model ${String(x.name)} added (digest ${String(x.digest).slice(0, 12)}…, ${[x.family, x.parameterSize, x.quantization].filter(Boolean).join(' ')})`;
    case 'model-removed':
      return `model ${String(x.name)} removed (digest ${String(x.digest).slice(0, 12)}…)`;
    default:
      return `${e.kind} (unknown kind, shown only)`;
  }
}

/** A boot event a person cares about; of GRUB's many commands only those that load a kernel or initrd. */
function named(d: DescribedEvent): boolean {
  return NAMED_KINDS.has(d.kind) && (d.kind !== 'grub-command' || /^(linux|linuxefi|initrd|initrdefi)\b/.test(d.label));
}

/**
 * When two neighbouring events of a register were swapped, finds them: replays the register with
 * each adjacent pair exchanged. Quadratic, so only for registers of up to 256 events.
 */
async function adjacentSwap(events: TcgEvent[], expected: string): Promise<[number, number] | undefined> {
  if (events.length < 2 || events.length > 256) return undefined;
  const digests = events.map((e) => sha384Of(e)!);
  for (let j = 0; j + 1 < digests.length; j++) {
    const trial = digests.slice();
    [trial[j], trial[j + 1]] = [trial[j + 1]!, trial[j]!];
    if (toHex(await replayDigests(trial)) === expected) return [events[j]!.index, events[j + 1]!.index];
  }
  return undefined;
}

function listEvents(events: DescribedEvent[], limit = 24): string {
  const shown = events.slice(0, limit).map((e) => `#${e.index} ${e.type} ${e.label.split('\n')[0]!.slice(0, 60)}`);
  return shown.join('; ') + (events.length > limit ? `; and ${events.length - limit} more` : '');
}

async function appraiseBoot(
  rec: CheckRecorder,
  inputs: WorkloadInputs,
  bootLog: Uint8Array,
): Promise<{ report: NonNullable<WorkloadReport['boot']>; rtmr3: string | null }> {
  const log = parseTcgLog(bootLog, 'The boot event log');
  const notTdx = pcrIndexedLogReason(log.events, 'The boot event log') ?? missingSha384Reason(log.specId, 'The boot event log');
  if (notTdx) throw new RatlsError('EVENTLOG_MALFORMED', notTdx);
  const described: DescribedEvent[] = [];
  for (const e of log.events) {
    try {
      described.push(await describeBootEvent(e));
    } catch (err) {
      rec.failWith('boot event log: event digests', err, 'EVENTLOG_MALFORMED');
    }
  }
  const replay = await replayTcgEvents(log.events, 'The boot event log');
  const replayed: Record<string, 'match' | 'mismatch' | 'no events'> = {};
  for (let i = 0; i < 3; i++) {
    const name = RTMR_NAMES[i]!;
    const ids = new Set(replay.eventsByRegister[i]);
    if (replay.rtmrs[i] === inputs.rtmrs[i]) {
      replayed[name] = ids.size === 0 ? 'no events' : 'match';
      if (ids.size > 0) rec.pass(`boot event log: ${name}`, `${ids.size} events replay to the quote's ${name}`);
      continue;
    }
    replayed[name] = 'mismatch';
    const mine = described.filter((d) => ids.has(d.index));
    const unchecked = mine.filter((d) => d.digestCheck === 'external');
    const swapped = await adjacentSwap(
      log.events.filter((e) => ids.has(e.index)),
      inputs.rtmrs[i]!,
    );
    const suspects = swapped
      ? `Events #${swapped[0]} and #${swapped[1]} are in the wrong order: swapped back, the register replays to the quote.`
      : unchecked.length > 0
        ? `One of its events was altered, reordered, added or removed; events whose digests cannot be recomputed from the log: ${listEvents(unchecked)}.`
        : `Every event's data matches its digest, so events were reordered, added or removed (${ids.size} events, #${[...ids][0] ?? '-'} to #${[...ids].at(-1) ?? '-'}).`;
    rec.fail(`boot event log: ${name}`, {
      code: 'EVENTLOG_REPLAY_MISMATCH',
      message: `${name}: the boot event log's ${ids.size} events replay to ${replay.rtmrs[i]!.slice(0, 16)}…, but the quote holds ${inputs.rtmrs[i]!.slice(0, 16)}…. ${suspects}`,
    });
  }
  const rtmr3Events = replay.eventsByRegister[3].length;
  if (rtmr3Events > 0) replayed.RTMR3 = replay.rtmrs[3] === inputs.rtmrs[3] ? 'match' : 'mismatch';
  return {
    report: { replayed, events: described.filter(named), eventCount: log.events.length },
    rtmr3: rtmr3Events > 0 ? replay.rtmrs[3] : null,
  };
}

async function appraiseRuntime(
  rec: CheckRecorder,
  inputs: WorkloadInputs,
  runtimeLog: Uint8Array,
  bootRtmr3: string | null,
): Promise<{ report: NonNullable<WorkloadReport['runtime']>; binding: WorkloadReport['binding'] }> {
  const log = await parseRuntimeLog(runtimeLog);
  const claims = inputs.evidence.some((p) => p.runtimeLog !== undefined);
  const binding: WorkloadReport['binding'] = claims ? 'claims' : 'rtmr3';
  // Claims bind the log's own replay from zero; RTMR3 also holds whatever was extended before it.
  const initial = claims ? undefined : (log.initial ?? bootRtmr3 ?? undefined);
  const values = await runtimeReplayValues(log.events, initial);
  let best: { k: number; source: string } | null = null;
  for (const p of inputs.evidence) {
    const target = claims ? p.runtimeLog : p.rtmr3;
    if (target === undefined) continue;
    const k = values.lastIndexOf(target);
    // on a tie the later point wins: fresher evidence (nonce, session) is listed after the certificate's
    if (k >= 0 && (!best || k >= best.k)) best = { k, source: p.source };
  }
  const n = log.events.length;
  if (!best) {
    const where = claims ? 'the "runtime-log" claim' : 'RTMR3';
    const have = claims ? inputs.evidence[0]?.runtimeLog : inputs.evidence[0]?.rtmr3;
    rec.fail('runtime event log', {
      code: 'EVENTLOG_REPLAY_MISMATCH',
      message:
        `RTMR3: no prefix of the runtime log's ${n} events replays to ${where} of the evidence (${(have ?? '').slice(0, 16)}…); ` +
        `the log (events #1 to #${n}) does not belong to this TD, or events were removed, added or reordered before the last covered one.`,
    });
  } else {
    rec.pass(
      'runtime event log',
      `${best.k} of ${n} events replay to ${claims ? 'the runtime-log claim' : 'RTMR3'} of the ${best.source}${best.k < n ? `; ${n - best.k} later event(s) are not yet covered by evidence` : ''}`,
    );
  }
  const covered = best?.k ?? 0;
  const state = foldWorkload(log.events);
  const pendingFrom = covered + 1;
  return {
    binding,
    report: {
      coveredBy: best?.source ?? null,
      covered,
      pending: n - covered,
      ...(state.proxy ? { proxy: state.proxy } : {}),
      ...(state.openWebui ? { openWebui: state.openWebui } : {}),
      ...(state.ollama ? { ollama: state.ollama } : {}),
      images: state.images,
      models: state.models.map((m) => ({ ...m, pending: m.seq >= pendingFrom })),
      removed: state.removed,
      events: log.events.map((e) => ({
        seq: e.seq,
        kind: e.event.kind,
        summary: runtimeEventSummary(e.event),
        digest: e.digest,
        pending: e.seq >= pendingFrom,
      })),
    },
  };
}

async function appraiseDstack(
  rec: CheckRecorder,
  inputs: WorkloadInputs,
  d: NonNullable<WorkloadInputs['dstack']>,
): Promise<NonNullable<WorkloadReport['dstack']>> {
  const r = await replayDstackEvents(d.events);
  const replayed: Record<string, 'match' | 'mismatch' | 'no events' | 'not checked'> = {};
  for (let i = 0; i < 4; i++) {
    const name = RTMR_NAMES[i]!;
    if (!d.registers.includes(i)) {
      replayed[name] = 'not checked';
      continue;
    }
    if (r.rtmrs[i] === inputs.rtmrs[i]) {
      replayed[name] = r.counts[i] === 0 ? 'no events' : 'match';
      rec.pass(`dstack event log: ${name}`, `${r.counts[i]} events replay to the quote's ${name}`);
    } else {
      replayed[name] = 'mismatch';
      const mine = r.events.filter((e) => e.register === name);
      rec.fail(`dstack event log: ${name}`, {
        code: 'EVENTLOG_REPLAY_MISMATCH',
        message: `${name}: dstack's ${mine.length} events (${mine
          .slice(0, 40)
          .map((e) => `#${e.index} ${e.name}`)
          .join(
            ', ',
          )}) replay to ${r.rtmrs[i]!.slice(0, 16)}…, but the quote holds ${inputs.rtmrs[i]!.slice(0, 16)}…: an event was altered, reordered, added or removed.`,
      });
    }
  }
  return { replayed, events: r.events };
}

/** Replays every log given and applies the workload policy. Never throws. */
export async function appraiseWorkload(inputs: WorkloadInputs): Promise<WorkloadAppraisal> {
  const rec = new CheckRecorder();
  const report: WorkloadReport = {
    binding: 'none',
    boot: null,
    runtime: null,
    dstack: null,
    ...(inputs.unavailable ? { unavailable: inputs.unavailable } : {}),
  };
  let bootRtmr3: string | null = null;
  if (inputs.bootLog) {
    try {
      const b = await appraiseBoot(rec, inputs, inputs.bootLog);
      report.boot = b.report;
      bootRtmr3 = b.rtmr3;
    } catch (err) {
      rec.failWith('boot event log', err, 'EVENTLOG_MALFORMED');
    }
  }
  if (inputs.runtimeLog) {
    try {
      const r = await appraiseRuntime(rec, inputs, inputs.runtimeLog, bootRtmr3);
      report.runtime = r.report;
      report.binding = r.binding;
    } catch (err) {
      rec.failWith('runtime event log', err, 'EVENTLOG_MALFORMED');
    }
  }
  if (inputs.dstack) {
    try {
      report.dstack = await appraiseDstack(rec, inputs, inputs.dstack);
    } catch (err) {
      rec.failWith('dstack event log', err, 'EVENTLOG_MALFORMED');
    }
  }
  if (inputs.policy) {
    try {
      const errs = await applyWorkloadPolicy(report, inputs.policy);
      if (errs.length === 0) rec.pass('workload policy');
      for (const e of errs) rec.fail('workload policy', e);
    } catch (err) {
      rec.fail('workload policy', err instanceof RatlsError ? err.toJSON() : toVerifyError(err));
    }
  }
  return { report, checks: rec.checks, errors: rec.errors };
}

/** True when the policy pins anything of the workload (so an event log is needed). */
export function policyNeedsEventLog(p: WorkloadPolicy | undefined): boolean {
  if (!p) return false;
  return Object.entries(p).some(([k, v]) => (k === 'requireEventLog' ? v === true : v !== undefined));
}
