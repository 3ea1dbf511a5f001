/**
 * Where a running TD's boot log and RTMR access come from, for the provider in use: the simulated
 * TD's own, or the kernel's (CCEL ACPI table, Linux 6.16+ measurement files). Node-only.
 */
import type { EvidenceProvider } from '../ratls/evidence-provider.ts';
import { DEFAULT_ACPI_TABLES, readCcel } from './ccel.ts';
import { DEFAULT_TDX_MEASUREMENTS, SysfsRtmr, sysfsRtmrAvailable, type RtmrAccess } from './rtmr.ts';
import { SimulatedProvider } from './simulated/provider.ts';

/** Paths of the kernel interfaces (tests point them at prepared directories). */
export interface MeasurementPaths {
  acpiTables?: string;
  measurementsDir?: string;
}

/**
 * RTMR access for `provider`: the simulated TD's registers, or the kernel's measurement files when
 * RTMR3 is writable; undefined when nothing can extend (older kernel, not root), so callers fall
 * back to binding their log through evidence claims.
 */
export async function rtmrAccessFor(provider: EvidenceProvider, paths: MeasurementPaths = {}): Promise<RtmrAccess | undefined> {
  if (provider instanceof SimulatedProvider) return provider.rtmrAccess();
  if (provider.simulated) return undefined;
  const dir = paths.measurementsDir ?? DEFAULT_TDX_MEASUREMENTS;
  return (await sysfsRtmrAvailable(dir)) ? new SysfsRtmr(dir) : undefined;
}

/** The TD's boot event log. @throws RatlsError EVENTLOG_MISSING or EVENTLOG_MALFORMED. */
export async function bootLogFor(provider: EvidenceProvider, paths: MeasurementPaths = {}): Promise<{ source: 'ccel' | 'simulated'; log: Uint8Array }> {
  if (provider instanceof SimulatedProvider) return { source: 'simulated', log: provider.bootLog() };
  const c = await readCcel(paths.acpiTables ?? DEFAULT_ACPI_TABLES);
  return { source: 'ccel', log: c.log };
}
