/**
 * The `measurement:` section of the `ratls serve` config: whether and how the proxy measures what it
 * fronts (docs/eventlog.md), how often it polls Ollama and open-webui, the image digests the admin
 * pins, and where the kernel interfaces are. Node-only (validation only; no I/O).
 */
import { parseDuration } from './units.ts';

/** How the runtime log is bound to the evidence. */
export type MeasurementMode = 'auto' | 'rtmr3' | 'claims' | 'off';

/** An image digest the admin pins, recorded as a measured event. */
export interface PinnedImage {
  /** What it runs: "open-webui", "ollama", or any name a policy can refer to. */
  role: string;
  /** Image reference without digest, e.g. "ghcr.io/open-webui/open-webui". */
  image: string;
  /** "sha256:<64 hex>". */
  digest: string;
}

export interface MeasurementConfig {
  /**
   * auto (default): extend RTMR3 where the kernel allows it (Linux 6.16+ measurement files; always
   * in simulation), else bind the log's replay value into the evidence claims ("runtime-log").
   * rtmr3: refuse to start unless RTMR3 can be extended. claims: never extend. off: no runtime log.
   */
  mode: MeasurementMode;
  /** How often Ollama's models and both versions are read again (default 30 s; 0: only at start). */
  pollIntervalMs: number;
  /**
   * Where the runtime log is kept across restarts of the proxy within one boot of the TD (RTMR3 keeps
   * its value, so the log must too). Default: /run/ratls/runtime-events.bin when extending real RTMR3;
   * memory only otherwise.
   */
  logFile?: string;
  images: PinnedImage[];
  /** Serve the TD's boot event log (CCEL) too (default true). */
  bootLog: boolean;
  /** Linux's ACPI table directory (tests point it elsewhere). */
  acpiTables: string;
  /** Linux's TDX measurement files (tests point it elsewhere). */
  measurementsDir: string;
}

export function defaultMeasurementConfig(): MeasurementConfig {
  return {
    mode: 'auto',
    pollIntervalMs: 30_000,
    images: [],
    bootLog: true,
    acpiTables: '/sys/firmware/acpi/tables',
    measurementsDir: '/sys/devices/virtual/misc/tdx_guest/measurements',
  };
}

export const MEASUREMENT_KEYS = ['mode', 'pollInterval', 'logFile', 'images', 'bootLog', 'acpiTables', 'measurementsDir'] as const;

/** Validates the raw section; `fail` throws the config's error type with the message. */
export function validateMeasurementConfig(m: Record<string, unknown>, fail: (message: string) => never): MeasurementConfig {
  const d = defaultMeasurementConfig();
  const out: MeasurementConfig = { ...d };
  if (m.mode !== undefined) {
    if (m.mode !== 'auto' && m.mode !== 'rtmr3' && m.mode !== 'claims' && m.mode !== 'off') {
      fail(`Config key "measurement.mode" must be one of auto, rtmr3, claims, off, got ${JSON.stringify(m.mode)}.`);
    }
    out.mode = m.mode;
  }
  if (m.pollInterval !== undefined) {
    const ms = parseDuration(m.pollInterval);
    if (ms === undefined || (ms !== 0 && ms < 1000))
      fail(`Config key "measurement.pollInterval" must be 0 (only at start) or a duration of at least 1s, got ${JSON.stringify(m.pollInterval)}.`);
    out.pollIntervalMs = ms;
  }
  const path = (k: 'logFile' | 'acpiTables' | 'measurementsDir') => {
    const v = m[k];
    if (v === undefined) return;
    if (typeof v !== 'string' || v.length === 0) fail(`Config key "measurement.${k}" must be a path.`);
    out[k] = v;
  };
  path('logFile');
  path('acpiTables');
  path('measurementsDir');
  if (m.bootLog !== undefined) {
    if (typeof m.bootLog !== 'boolean' && m.bootLog !== 'true' && m.bootLog !== 'false') fail('Config key "measurement.bootLog" must be true or false.');
    out.bootLog = m.bootLog === true || m.bootLog === 'true';
  }
  if (m.images !== undefined) {
    if (!Array.isArray(m.images)) fail('Config key "measurement.images" must be a list of {role, image, digest}.');
    out.images = m.images.map((x: unknown, i: number) => {
      const where = `measurement.images[${i}]`;
      if (typeof x !== 'object' || x === null || Array.isArray(x)) fail(`${where} must be a mapping with role, image and digest.`);
      const o = x as Record<string, unknown>;
      for (const k of Object.keys(o)) if (!['role', 'image', 'digest'].includes(k)) fail(`Unknown config key "${where}.${k}" (known: role, image, digest).`);
      const { role, image, digest } = o;
      if (typeof role !== 'string' || !/^[a-z0-9][a-z0-9._-]{0,63}$/.test(role))
        fail(`${where}.role must be a short lower-case name such as open-webui or ollama.`);
      if (typeof image !== 'string' || image.length === 0 || image.length > 512 || image.includes('@'))
        fail(`${where}.image must be an image reference without digest, e.g. ghcr.io/open-webui/open-webui.`);
      if (typeof digest !== 'string' || !/^sha256:[0-9a-f]{64}$/.test(digest)) fail(`${where}.digest must be "sha256:" followed by 64 lower-case hex digits.`);
      return { role, image, digest };
    });
  }
  return out;
}
