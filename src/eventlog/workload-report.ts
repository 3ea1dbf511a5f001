/** The replayed workload a verification reports (built by appraise.ts, read by policies and reports). Browser-safe. */
import type { DescribedEvent } from './boot-events.ts';
import type { DescribedDstackEvent } from './dstack.ts';
import type { ModelRecord, WorkloadState } from './runtime.ts';

/** A model in the report. */
export type ReportedModel = ModelRecord & {
  /** Sequence number of the event that added it. */
  seq: number;
  /** True when the event is not yet covered by the evidence (recorded after it was made). */
  pending: boolean;
};

/** The replayed workload, as `ratls verify` and `/.ratls/status` show it. */
export interface WorkloadReport {
  /** How the runtime log is bound: extended into RTMR3, bound by the "runtime-log" claim, or not at all. */
  binding: 'rtmr3' | 'claims' | 'none';
  boot: {
    /** Whether the boot log replayed to the quote: per register RTMR0-2 (and RTMR3 when the CCEL extends it). */
    replayed: Record<string, 'match' | 'mismatch' | 'no events'>;
    /** The events a person cares about: firmware, variables, bootloaders, kernel, initrd, command line. */
    events: DescribedEvent[];
    /** Number of records in the log. */
    eventCount: number;
  } | null;
  runtime: {
    /** Which evidence covers the log, and up to which event. */
    coveredBy: string | null;
    covered: number;
    pending: number;
    proxy?: WorkloadState['proxy'];
    openWebui?: WorkloadState['openWebui'];
    ollama?: WorkloadState['ollama'];
    images: WorkloadState['images'];
    models: ReportedModel[];
    removed: WorkloadState['removed'];
    events: Array<{ seq: number; kind: string; summary: string; digest: string; pending: boolean }>;
  } | null;
  dstack: { replayed: Record<string, 'match' | 'mismatch' | 'no events' | 'not checked'>; events: DescribedDstackEvent[] } | null;
  /** Why no log was available, when none was. */
  unavailable?: string;
}
