/** Parsing of human-friendly durations ("30s", "24h") and sizes ("100MiB") used in the config. */

const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };
const SIZE_UNITS: Record<string, number> = {
  b: 1,
  k: 1000,
  kb: 1000,
  kib: 1024,
  m: 1000 ** 2,
  mb: 1000 ** 2,
  mib: 1024 ** 2,
  g: 1000 ** 3,
  gb: 1000 ** 3,
  gib: 1024 ** 3,
};

/**
 * Parses a duration to milliseconds. Plain numbers are milliseconds; strings take a unit
 * (ms, s, m, h, d), e.g. "90s" or "24h". Returns undefined when the value is not a duration.
 */
export function parseDuration(value: unknown): number | undefined {
  if (typeof value === 'number') return Number.isFinite(value) && value >= 0 ? value : undefined;
  if (typeof value !== 'string') return undefined;
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$/i.exec(value);
  if (!m) return undefined;
  const unit = (m[2] ?? 'ms').toLowerCase();
  return Math.round(Number(m[1]) * DURATION_UNITS[unit]!);
}

/**
 * Parses a byte size. Plain numbers are bytes; strings take a unit (B, KB, KiB, MB, MiB, GB, GiB),
 * e.g. "100MiB". Returns undefined when the value is not a size.
 */
export function parseSize(value: unknown): number | undefined {
  if (typeof value === 'number') return Number.isSafeInteger(value) && value >= 0 ? value : undefined;
  if (typeof value !== 'string') return undefined;
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$/i.exec(value);
  if (!m) return undefined;
  const unit = (m[2] || 'b').toLowerCase();
  const mult = SIZE_UNITS[unit];
  if (mult === undefined) return undefined;
  return Math.floor(Number(m[1]) * mult);
}

/** Formats a byte count for messages ("100 MiB"). */
export function formatSize(bytes: number): string {
  if (bytes >= 1024 ** 3 && bytes % 1024 ** 3 === 0) return `${bytes / 1024 ** 3} GiB`;
  if (bytes >= 1024 ** 2 && bytes % 1024 ** 2 === 0) return `${bytes / 1024 ** 2} MiB`;
  if (bytes >= 1024 && bytes % 1024 === 0) return `${bytes / 1024} KiB`;
  return `${bytes} bytes`;
}
