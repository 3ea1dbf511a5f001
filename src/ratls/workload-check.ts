/**
 * Adds the workload to an RA-TLS verification result: the event logs replayed against the verified
 * quote and bound to the evidence (RTMR3, or the "runtime-log" claim), the workload report, and the
 * policy's workload pins. Runs only on results whose quote was read; never throws. Browser-safe.
 */
import { appraiseWorkload, type EvidencePoint } from '../eventlog/appraise.ts';
import type { DstackEvent } from '../eventlog/dstack.ts';
import type { ServedLogs } from '../eventlog/document.ts';
import type { WorkloadPolicy } from '../core/types.ts';
import type { VerificationResult } from '../core/types.ts';
import type { WorkloadReport } from '../eventlog/workload-report.ts';

/** The parts of an RA-TLS result the workload check reads and adds (verify-cert's result has them). */
type WithRatls = VerificationResult & { ratls?: { runtimeLog?: string } | null; workload?: WorkloadReport };

/** What the workload check reads besides the certificate's result. */
export interface WorkloadCheckInputs {
  /** Logs the server served (GET /.well-known/ratls/eventlog). */
  logs?: ServedLogs;
  /** A dstack event log carried in the certificate itself. */
  dstack?: { events: DstackEvent[]; registers: number[] };
  /** Fresher evidence verified on the same connection (nonce or session evidence). */
  moreEvidence?: Array<{ source: string; result: WithRatls }>;
  policy?: WorkloadPolicy;
  /** Why the logs could not be fetched, when they could not. */
  unavailable?: string;
}

function point(source: string, r: WithRatls): EvidencePoint | undefined {
  if (!r.quote) return undefined;
  return { source, rtmr3: r.quote.rtmr3, ...(r.ratls?.runtimeLog ? { runtimeLog: r.ratls.runtimeLog } : {}) };
}

/** Why the server left a log out, in its own words, for the report. */
function servedGaps(logs: ServedLogs | undefined): { unavailable?: string } {
  const gaps = [
    ...(logs?.bootUnavailable && !logs.bootLog ? [logs.bootUnavailable] : []),
    ...(logs?.runtimeUnavailable && !logs.runtimeLog ? [logs.runtimeUnavailable] : []),
  ];
  return gaps.length > 0 ? { unavailable: gaps.join(' ') } : {};
}

/** `result` with the workload report, the replay checks and the policy's workload verdict. */
export async function withWorkload<R extends WithRatls>(result: R, inputs: WorkloadCheckInputs): Promise<R> {
  const q = result.quote;
  if (!q) return result;
  const evidence = [point('certificate', result), ...(inputs.moreEvidence ?? []).map((m) => point(m.source, m.result))].filter(
    (p): p is EvidencePoint => p !== undefined,
  );
  const a = await appraiseWorkload({
    rtmrs: [q.rtmr0, q.rtmr1, q.rtmr2, q.rtmr3],
    evidence,
    ...(inputs.logs?.bootLog ? { bootLog: inputs.logs.bootLog } : {}),
    ...(inputs.logs?.runtimeLog ? { runtimeLog: inputs.logs.runtimeLog } : {}),
    ...(inputs.dstack ? { dstack: inputs.dstack } : {}),
    ...(inputs.policy ? { policy: inputs.policy } : {}),
    ...(inputs.unavailable ? { unavailable: inputs.unavailable } : servedGaps(inputs.logs)),
  });
  return {
    ...result,
    ok: result.ok && a.errors.length === 0,
    errors: [...result.errors, ...a.errors],
    checks: [...result.checks, ...a.checks],
    workload: a.report,
  };
}
