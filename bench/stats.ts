/** What every bench shares: reading its flags, medians and percentiles, and /proc readings. */
import { readFileSync } from 'node:fs';

/** The value after `name` in `args`, or undefined. */
export function flag(args: string[], name: string): string | undefined {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
}

/** The number after `name`, or `dflt`. */
export function numFlag(args: string[], name: string, dflt: number): number {
  const v = flag(args, name);
  return v === undefined ? dflt : Number(v);
}

/** The text after `name`, or `dflt`. */
export function strFlag(args: string[], name: string, dflt: string): string {
  return flag(args, name) ?? dflt;
}

/** Median; NaN for no samples. */
export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length === 0 ? NaN : s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** The p-th percentile of already sorted samples (nearest rank); NaN for no samples. */
export function percentile(sorted: number[], p: number): number {
  if (!sorted.length) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

/** CPU time (user + system) a process has used, in ms (from /proc, 100 Hz ticks). */
export function cpuMs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) * 10;
}
