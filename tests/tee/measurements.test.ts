/**
 * The TD side of event logs: the CCEL ACPI table and log area as Linux exposes them, RTMR extension
 * through the 6.16+ measurement files (against a kernel-like fake), and the simulated TD whose
 * boot log replays to its quote and whose RTMR3 follows extends.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseCcelTable, readCcel } from '../../src/tee/ccel.ts';
import { SysfsRtmr, sysfsRtmrAvailable, type MeasurementFs } from '../../src/tee/rtmr.ts';
import { bootLogFor, rtmrAccessFor } from '../../src/tee/measurement-sources.ts';
import { initSimulatedWorld, loadSimulatedProvider } from '../../src/tee/simulated/index.ts';
import { SIMULATED_KERNEL_CMDLINE } from '../../src/tee/simulated/boot-log.ts';
import { parseQuote } from '../../src/quote/parse.ts';
import { appraiseWorkload } from '../../src/eventlog/appraise.ts';
import { toHex } from '../../src/core/bytes.ts';
import { eventlogFixture } from '../helpers/eventlog.ts';

function acpiDir(table: Uint8Array, data: Uint8Array): string {
  const dir = mkdtempSync(join(tmpdir(), 'ratls-acpi-'));
  mkdirSync(join(dir, 'data'));
  writeFileSync(join(dir, 'CCEL'), table);
  writeFileSync(join(dir, 'data', 'CCEL'), data);
  return dir;
}

describe('CCEL from ACPI (GCP COS 113 table and log area)', () => {
  const table = eventlogFixture('gcp-cos113-ccel-table.bin');
  const data = eventlogFixture('gcp-cos113-ccel-data.bin');

  it('reads the table and the log, trimmed to its last event', async () => {
    const c = await readCcel(acpiDir(table, data));
    expect(c.table).toMatchObject({ revision: 1, ccType: 2, ccSubtype: 0, oemId: 'INTEL', laml: 0x40000, lasa: 0xbedbf000n });
    expect(c.areaBytes).toBe(262144);
    expect(c.log.length).toBe(18101);
  });

  it('refuses a bad checksum, another signature, a non-TDX type and a short area', async () => {
    const sum = table.slice();
    sum[9]! ^= 1;
    expect(() => parseCcelTable(sum)).toThrow(/checksum/);
    const sig = table.slice();
    sig[0] = 0x58;
    sig[9] = (sig[9]! - (0x58 - 0x43)) & 0xff;
    expect(() => parseCcelTable(sig)).toThrow(/signature/);
    const sev = table.slice();
    sev[36] = 1;
    sev[9] = (sev[9]! + 1) & 0xff;
    await expect(readCcel(acpiDir(sev, data))).rejects.toThrow(/not TDX/);
    await expect(readCcel(acpiDir(table, data.subarray(0, 65536)))).rejects.toMatchObject({ code: 'EVENTLOG_MALFORMED' });
  });

  it('says what is missing when the kernel does not expose it', async () => {
    await expect(readCcel(mkdtempSync(join(tmpdir(), 'ratls-noacpi-')))).rejects.toMatchObject({ code: 'EVENTLOG_MISSING' });
  });
});

/** What the kernel does with rtmr<N>:sha384 (tsm-mr.c): 48-byte writes extend, reads return the value. */
function kernelLikeFs(): { fs: MeasurementFs; regs: Uint8Array[] } {
  const regs = [0, 1, 2, 3].map(() => new Uint8Array(48));
  const idx = (p: string) => Number(/rtmr(\d):sha384$/.exec(p)![1]);
  return {
    regs,
    fs: {
      readFile: async (p) => regs[idx(p)]!.slice(),
      writeFile: async (p, d) => {
        if (d.length !== 48) throw Object.assign(new Error('invalid'), { code: 'EINVAL' });
        regs[idx(p)] = new Uint8Array(createHash('sha384').update(regs[idx(p)]!).update(d).digest());
      },
      canWrite: async () => undefined,
    },
  };
}

describe('RTMR extension through the measurement files', () => {
  it('extends and reads RTMR3 with the kernel semantics', async () => {
    const { fs, regs } = kernelLikeFs();
    const r = new SysfsRtmr('/sys/devices/virtual/misc/tdx_guest/measurements', fs);
    const d = new Uint8Array(48).fill(7);
    await r.extend(3, d);
    expect(toHex(await r.read(3))).toBe(createHash('sha384').update(new Uint8Array(48)).update(d).digest('hex'));
    expect(toHex(regs[0]!)).toBe('00'.repeat(48));
    await expect(r.extend(3, new Uint8Array(47))).rejects.toMatchObject({ code: 'RTMR_EXTEND_FAILED' });
    await expect(r.extend(4, d)).rejects.toMatchObject({ code: 'RTMR_EXTEND_FAILED' });
  });

  it('is unavailable where the file is missing (older kernel)', async () => {
    expect(await sysfsRtmrAvailable(mkdtempSync(join(tmpdir(), 'ratls-nomr-')))).toBe(false);
  });

  it('a real-file write that is refused becomes RTMR_EXTEND_FAILED', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ratls-mr-'));
    await expect(new SysfsRtmr(dir).extend(3, new Uint8Array(48))).rejects.toMatchObject({ code: 'RTMR_EXTEND_FAILED' });
  });
});

describe('the simulated TD', () => {
  it('serves a boot log that replays to its quote, and RTMR3 follows extends', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ratls-sim-'));
    await initSimulatedWorld(dir);
    const p = await loadSimulatedProvider(dir);
    const { source, log } = await bootLogFor(p);
    expect(source).toBe('simulated');
    const q1 = parseQuote(await p.getQuote(new Uint8Array(64))).body;
    const rtmrs = (q: typeof q1): [string, string, string, string] => [toHex(q.rtmr0), toHex(q.rtmr1), toHex(q.rtmr2), toHex(q.rtmr3)];
    const ok = await appraiseWorkload({ rtmrs: rtmrs(q1), evidence: [], bootLog: log, policy: { kernelCmdlines: [SIMULATED_KERNEL_CMDLINE] } });
    expect(ok.errors).toEqual([]);
    expect(ok.report.boot!.events.map((e) => e.kind)).toEqual(
      expect.arrayContaining(['firmware', 'kernel', 'kernel-cmdline', 'initrd', 'secure-boot-variable']),
    );

    const access = (await rtmrAccessFor(p))!;
    expect(access.kind).toBe('simulated');
    const d = new Uint8Array(48).fill(9);
    await access.extend(3, d);
    const q2 = parseQuote(await p.getQuote(new Uint8Array(64))).body;
    expect(toHex(q2.rtmr3)).toBe(createHash('sha384').update(new Uint8Array(48)).update(d).digest('hex'));
    expect(toHex(q2.rtmr0)).toBe(toHex(q1.rtmr0));
    // a second TD booted from the same world starts again from zero
    const fresh = await loadSimulatedProvider(dir);
    expect(toHex(parseQuote(await fresh.getQuote(new Uint8Array(64))).body.rtmr3)).toBe('00'.repeat(48));
  });
});
