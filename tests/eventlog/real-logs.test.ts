/**
 * Real TDX event logs replay to the RTMRs of their quotes (GCP COS 113 with go-tdx-guest's quote,
 * dstack's attestation and GetQuote fixtures) and to the values trustee's own tests list; the boot
 * events a person cares about are named.
 */
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { parseTcgLog } from '../../src/eventlog/tcg.ts';
import { replayTcgEvents } from '../../src/eventlog/replay.ts';
import { describeBootEvent, loadOptionsDigests } from '../../src/eventlog/boot-events.ts';
import { appraiseWorkload } from '../../src/eventlog/appraise.ts';
import { decodeDstackAttestation, parseDstackEventLogJson, replayDstackEvents } from '../../src/eventlog/dstack.ts';
import { parseQuote } from '../../src/quote/parse.ts';
import { toHex } from '../../src/core/bytes.ts';
import { readTestFile } from '../helpers/testdata.ts';
import { eventlogFixture, eventlogFixtureText, TRUSTEE_RTMRS } from '../helpers/eventlog.ts';

const COS_QUOTE = 'quotes/v4-gcp-cos113-00806f050000-gotdxguest.dat';

function rtmrsOf(quote: Uint8Array): [string, string, string, string] {
  const b = parseQuote(quote).body;
  return [toHex(b.rtmr0), toHex(b.rtmr1), toHex(b.rtmr2), toHex(b.rtmr3)];
}

describe('GCP COS 113 CCEL with its quote (go-tdx-guest)', () => {
  const log = eventlogFixture('gcp-cos113-ccel-data.bin');
  const quote = readTestFile(COS_QUOTE);

  it('uses the quote go-tdx-guest pairs with this log (byte-identical shared copy)', () => {
    expect(createHash('sha256').update(quote).digest('hex')).toBe('54334c81b4e03634ab3a269ad397c9cea3b5c9ee96c57505b684470b964fd15e');
  });

  it('parses 43 events and the 0xFF fill after them', () => {
    const parsed = parseTcgLog(log);
    expect(parsed.events).toHaveLength(43);
    expect(parsed.usedBytes).toBe(18101);
    expect(parsed.fill).toBe('ff');
    expect(parsed.specId.algorithms).toEqual([{ algId: 0x000c, digestSize: 48 }]);
  });

  it('replays RTMR0-2 exactly to the quote, RTMR3 stays zero', async () => {
    const r = await replayTcgEvents(parseTcgLog(log).events);
    expect(r.rtmrs).toEqual(rtmrsOf(quote));
    expect(r.rtmrs[3]).toBe('0'.repeat(96));
  });

  it('names the bootloaders, GRUB kernel and command line, and recomputes every checkable digest', async () => {
    const events = await Promise.all(parseTcgLog(log).events.map((e) => describeBootEvent(e)));
    const byKind = (k: string) => events.filter((e) => e.kind === k);
    expect(byKind('bootloader').map((e) => e.label)).toEqual([
      'PciRoot(0x0)/Pci(0x4,0x0)/NVMe(0x1)/HD(12,GPT,58ec8b8f-8e5b-ed42-83a4-0691abb8f3c7)/\\EFI\\BOOT\\BOOTX64.EFI',
      '\\EFI\\BOOT\\grub-lakitu.efi',
    ]);
    expect(byKind('kernel').map((e) => e.label)).toEqual(['/syslinux/vmlinuz.A']);
    const cmd = byKind('kernel-cmdline');
    expect(cmd).toHaveLength(1);
    expect(cmd[0]!.register).toBe('RTMR2');
    expect(cmd[0]!.text).toMatch(/^\/syslinux\/vmlinuz\.A init=\/usr\/lib\/systemd\/systemd rootwait ro/);
    expect(byKind('secure-boot-variable').map((e) => e.label)).toEqual(['SecureBoot = disabled', 'PK', 'KEK', 'db', 'dbx']);
    expect(byKind('firmware')[0]!.label).toContain('base 0xffe00000 length 0x20000');
    // separators, actions, variables and GRUB commands are checked from their data
    expect(events.filter((e) => e.digestCheck === 'data').length).toBeGreaterThanOrEqual(25);
  });

  it('passes the workload appraisal against the quote, and a kernel command line pin', async () => {
    const parsed = parseTcgLog(log);
    const cmd = (await Promise.all(parsed.events.map((e) => describeBootEvent(e)))).find((e) => e.kind === 'kernel-cmdline')!;
    const rtmrs = rtmrsOf(quote);
    const ok = await appraiseWorkload({ rtmrs, evidence: [{ source: 'certificate', rtmr3: rtmrs[3] }], bootLog: log, policy: { kernelCmdlines: [cmd.text!] } });
    expect(ok.errors).toEqual([]);
    expect(ok.report.boot!.replayed).toEqual({ RTMR0: 'match', RTMR1: 'match', RTMR2: 'match' });
    // the same line without GRUB's leading kernel path is accepted too
    const bare = cmd.text!.replace(/^\S+\s+/, '');
    expect((await appraiseWorkload({ rtmrs, evidence: [], bootLog: log, policy: { kernelCmdlines: [bare] } })).errors).toEqual([]);
    const bad = await appraiseWorkload({ rtmrs, evidence: [], bootLog: log, policy: { kernelCmdlines: ['console=ttyS0'] } });
    expect(bad.errors.map((e) => e.code)).toEqual(['WORKLOAD_MISMATCH']);
    expect(bad.errors[0]!.message).toContain('RTMR2 event #41');
  });

  it('fails against another quote, naming the registers', async () => {
    const other = rtmrsOf(readTestFile('quotes/v4-b0c06f000000-dcapqvl.dat'));
    const r = await appraiseWorkload({ rtmrs: other, evidence: [], bootLog: log });
    expect(r.errors.map((e) => e.code)).toEqual(['EVENTLOG_REPLAY_MISMATCH', 'EVENTLOG_REPLAY_MISMATCH', 'EVENTLOG_REPLAY_MISMATCH']);
    expect(r.errors.map((e) => e.message.slice(0, 6))).toEqual(['RTMR0:', 'RTMR1:', 'RTMR2:']);
  });
});

describe('trustee CCEL samples replay to the values trustee lists', () => {
  for (const [file, expected] of Object.entries(TRUSTEE_RTMRS)) {
    it(file, async () => {
      const r = await replayTcgEvents(parseTcgLog(eventlogFixture(file)).events);
      expect(r.rtmrs).toEqual(expected);
    });
  }

  it('td-shim: zero fill, MR index 0 in the Spec ID record', () => {
    const l = parseTcgLog(eventlogFixture('trustee-ccel-td-shim.bin'));
    expect(l.fill).toBe('00');
    expect(l.events).toHaveLength(5);
    expect(new TextDecoder().decode(l.specId.vendorInfo)).toBe('td-shim');
  });

  it('GKE: EV_NO_ACTION records with MR index 0 are skipped, UKI sections named', async () => {
    const l = parseTcgLog(eventlogFixture('trustee-ccel-grub-gke.bin'));
    expect(l.events.slice(0, 2).map((e) => [e.mrIndex, e.eventType])).toEqual([
      [0, 3],
      [0, 3],
    ]);
    const kinds = (await Promise.all(l.events.map((e) => describeBootEvent(e)))).map((e) => `${e.kind}:${e.label}`);
    expect(kinds).toContain('kernel:UKI section .linux');
    expect(kinds).toContain('kernel-cmdline:UKI section .cmdline');
    expect(kinds).toContain('initrd:UKI section .initrd');
  });

  it('OVMF direct boot: kernel from QEMU, LoadOptions and initrd events', async () => {
    const events = await Promise.all(parseTcgLog(eventlogFixture('trustee-ccel-ovmf-direct-boot.bin')).events.map((e) => describeBootEvent(e)));
    expect(events.find((e) => e.kind === 'kernel')!.label).toBe('VenMedia(1428f772-b64a-441e-b8c3-9ebdd7f893c7)/kernel');
    expect(events.filter((e) => e.kind === 'kernel-cmdline').map((e) => [e.register, e.label])).toEqual([['RTMR2', 'LOADED_IMAGE::LoadOptions']]);
    expect(events.filter((e) => e.kind === 'initrd').map((e) => e.register)).toEqual(['RTMR2']);
  });

  it("Alibaba Cloud: RHEL GRUB quirks check from data, CoCo's AAEL events replay into RTMR3", async () => {
    const l = parseTcgLog(eventlogFixture('trustee-ccel-aael-alibabacloud.bin'));
    const events = await Promise.all(l.events.map((e) => describeBootEvent(e)));
    const cmdline = events.find((e) => e.kind === 'kernel-cmdline')!;
    expect(cmdline.digestCheck).toBe('data');
    expect(cmdline.text).toMatch(/^root=UUID=33b46ac5/);
    expect(events.filter((e) => e.kind === 'runtime').map((e) => [e.register, e.digestCheck])).toEqual([
      ['RTMR3', 'data'],
      ['RTMR3', 'data'],
    ]);
    const r = await replayTcgEvents(l.events);
    expect(r.rtmrs[3].slice(0, 8)).toBe('5e4ecd49');
  });

  it('Hygon CSV (SM3 only) is not a TDX log: no SHA-384 bank', async () => {
    // built here: a Spec ID header declaring only SM3, then one SM3 record
    const spec = Uint8Array.from([...new TextEncoder().encode('Spec ID Event03\0'), 0, 0, 0, 0, 0, 2, 0, 2, 1, 0, 0, 0, 0x12, 0, 32, 0, 0]);
    const head = new Uint8Array(32 + spec.length);
    const dv = new DataView(head.buffer);
    dv.setUint32(4, 3, true);
    dv.setUint32(28, spec.length, true);
    head.set(spec, 32);
    const rec = new Uint8Array(4 + 4 + 4 + 2 + 32 + 4);
    const rv = new DataView(rec.buffer);
    rv.setUint32(0, 1, true);
    rv.setUint32(4, 4, true);
    rv.setUint32(8, 1, true);
    rv.setUint16(12, 0x12, true);
    const log = new Uint8Array([...head, ...rec]);
    await expect(replayTcgEvents(parseTcgLog(log).events)).rejects.toMatchObject({ code: 'EVENTLOG_MALFORMED' });
  });
});

describe("dstack's event logs replay to their quotes", () => {
  it('attestation.bin (V0 SCALE): RTMR0-3 exact, runtime events named', async () => {
    const a = decodeDstackAttestation(eventlogFixture('dstack-attestation.bin'));
    expect(a.quote.length).toBe(5010);
    expect(a.events).toHaveLength(33);
    const r = await replayDstackEvents(a.events);
    expect(r.rtmrs).toEqual(rtmrsOf(a.quote));
    expect(r.events.filter((e) => e.register === 'RTMR3').map((e) => e.name)).toEqual([
      'system-preparing',
      'app-id',
      'compose-hash',
      'instance-id',
      'boot-mr-done',
      'os-image-hash',
      'key-provider',
      'storage-fs',
      'system-ready',
    ]);
    expect(r.events.find((e) => e.name === 'compose-hash')!.value).toBe('c143116fef3940e7f776bfc0919c256232ae5338a6e948c96b711e0b2383483a');
    expect(r.events.find((e) => e.name === 'storage-fs')!.value).toBe('zfs');
    expect(JSON.parse(a.config)).toHaveProperty('kms_urls');
  });

  it('GetQuote JSON event log with stripped runtime digests: RTMR0-3 exact', async () => {
    const j = JSON.parse(eventlogFixtureText('dstack-tdx-lite-getquote.json')) as { quote: string; event_log: string };
    const events = parseDstackEventLogJson(j.event_log);
    expect(events.filter((e) => e.imr === 3).every((e) => e.digest === '')).toBe(true);
    const r = await replayDstackEvents(events);
    expect(r.rtmrs).toEqual(rtmrsOf(Uint8Array.from(Buffer.from(j.quote, 'hex'))));
  });

  it('a kernel command line pin checks the LoadOptions digest in both OVMF forms', async () => {
    const a = decodeDstackAttestation(eventlogFixture('dstack-attestation.bin'));
    const loadOptions = a.events.find((e) => e.imr === 2 && e.payload.length >= 8 && e.payload[0] === 0xed)!;
    // the forms differ, so a text can match at most one of them
    const forms = await loadOptionsDigests('console=ttyS0');
    expect(new Set(forms).size).toBe(3);
    expect(forms).not.toContain(loadOptions.digest);
  });
});
