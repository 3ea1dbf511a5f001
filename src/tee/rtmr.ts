/**
 * Runtime extension of the TDX RTMRs. On real TDX: the kernel's TSM measurement files (Linux 6.16+,
 * Documentation/ABI/testing/sysfs-devices-virtual-misc-tdx_guest):
 *
 *   /sys/devices/virtual/misc/tdx_guest/measurements/rtmr<N>:sha384
 *     read  -> the register's current 48 bytes (binary)
 *     write -> one write of exactly 48 bytes extends it: RTMR := SHA-384(RTMR || bytes)
 *
 * The kernel keeps no log of these extends; whoever extends keeps its own (src/proxy). Node-only.
 */
import * as fsp from 'node:fs/promises';
import { constants } from 'node:fs';
import { join } from 'node:path';
import { RatlsError } from '../core/errors.ts';

/** Reads and extends RTMRs. */
export interface RtmrAccess {
  /** 'sysfs' (the kernel) or 'simulated'. */
  readonly kind: 'sysfs' | 'simulated';
  /** Current value of RTMR `index` (0..3). */
  read(index: number): Promise<Uint8Array>;
  /** RTMR `index` := SHA-384(RTMR || digest); `digest` is 48 bytes. */
  extend(index: number, digest: Uint8Array): Promise<void>;
}

/** Where the kernel puts the TDX measurement files. */
export const DEFAULT_TDX_MEASUREMENTS = '/sys/devices/virtual/misc/tdx_guest/measurements';

/** The file operations the measurement interface needs (tests substitute a kernel-like fake). */
export interface MeasurementFs {
  readFile(path: string): Promise<Uint8Array>;
  /** One write at offset 0 (the kernel refuses anything else). */
  writeFile(path: string, data: Uint8Array): Promise<void>;
  /** Resolves when `path` exists and can be written. */
  canWrite(path: string): Promise<void>;
}

const nodeFs: MeasurementFs = {
  readFile: async (p) => new Uint8Array(await fsp.readFile(p)),
  writeFile: async (p, d) => {
    // Not fs.writeFile: no O_TRUNC/O_CREAT games on a sysfs attribute, exactly one write call.
    const fh = await fsp.open(p, constants.O_WRONLY);
    try {
      const { bytesWritten } = await fh.write(d, 0, d.length, 0);
      if (bytesWritten !== d.length) throw new Error(`short write (${bytesWritten} of ${d.length} bytes)`);
    } finally {
      await fh.close();
    }
  },
  canWrite: (p) => fsp.access(p, constants.W_OK),
};

function checkIndex(index: number): void {
  if (!Number.isInteger(index) || index < 0 || index > 3) throw new RatlsError('RTMR_EXTEND_FAILED', `RTMR index ${index} does not exist; TDX has RTMR0-3.`);
}

/** RTMRs through the Linux 6.16+ measurement files. */
export class SysfsRtmr implements RtmrAccess {
  readonly kind = 'sysfs' as const;
  private readonly fs: MeasurementFs;

  constructor(
    readonly dir: string = DEFAULT_TDX_MEASUREMENTS,
    fs?: MeasurementFs,
  ) {
    this.fs = fs ?? nodeFs;
  }

  private file(index: number): string {
    return join(this.dir, `rtmr${index}:sha384`);
  }

  async read(index: number): Promise<Uint8Array> {
    checkIndex(index);
    let v: Uint8Array;
    try {
      v = await this.fs.readFile(this.file(index));
    } catch (err) {
      throw new RatlsError('RTMR_EXTEND_FAILED', `Cannot read ${this.file(index)} (${(err as NodeJS.ErrnoException).code ?? String(err)}).`);
    }
    if (v.length !== 48) throw new RatlsError('RTMR_EXTEND_FAILED', `${this.file(index)} holds ${v.length} bytes; an RTMR is 48.`);
    return v;
  }

  async extend(index: number, digest: Uint8Array): Promise<void> {
    checkIndex(index);
    if (digest.length !== 48) throw new RatlsError('RTMR_EXTEND_FAILED', `An RTMR extend takes 48 bytes, got ${digest.length}.`);
    try {
      await this.fs.writeFile(this.file(index), digest);
    } catch (err) {
      throw new RatlsError(
        'RTMR_EXTEND_FAILED',
        `The kernel refused to extend RTMR${index} through ${this.file(index)} (${(err as NodeJS.ErrnoException).code ?? String(err)}).`,
      );
    }
  }
}

/** True when RTMR `index` can be extended through `dir` (file present and writable by this process). */
export async function sysfsRtmrAvailable(dir: string = DEFAULT_TDX_MEASUREMENTS, index = 3, fs: MeasurementFs = nodeFs): Promise<boolean> {
  try {
    await fs.canWrite(join(dir, `rtmr${index}:sha384`));
    return true;
  } catch {
    return false;
  }
}
