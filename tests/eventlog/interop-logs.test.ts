/**
 * Other projects' event logs and evidence files that are not TDX logs, or only partly (fixtures in
 * tests/fixtures/eventlog, PROVENANCE.md there): each is refused with a sentence naming what it is
 * and what to give instead (exit 2: wrong input, not a failed check), or replayed as far as it can
 * be. go-eventlog's duplicate-separator log replays to the registers go-eventlog's own tests list.
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { readEventLogFile } from '../../src/eventlog/detect.ts';
import { parseTcgLog } from '../../src/eventlog/tcg.ts';
import { replayTcgEvents } from '../../src/eventlog/replay.ts';
import { appraiseWorkload } from '../../src/eventlog/appraise.ts';
import { dstackReplayScope } from '../../src/eventlog/dstack.ts';
import { runCli } from '../helpers/cli.ts';
import { eventlogFixture } from '../helpers/eventlog.ts';
import { TESTDATA_DIR } from '../helpers/testdata.ts';

const path = (name: string): string => fileURLToPath(new URL(`../fixtures/eventlog/${name}`, import.meta.url));
const COS_QUOTE = join(TESTDATA_DIR, 'quotes/v4-gcp-cos113-00806f050000-gotdxguest.dat');
const dir = mkdtempSync(join(tmpdir(), 'ratls-el-interop-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const refusal = (name: string): string => {
  try {
    readEventLogFile(eventlogFixture(name));
  } catch (err) {
    expect((err as { code?: string }).code).toBe('EVENTLOG_MALFORMED');
    return (err as Error).message;
  }
  throw new Error(`${name} was accepted`);
};

describe('not TDX event logs: named, with what to give instead', () => {
  it("a TPM log (dstack's GCP vTPM log, SHA-1/256/384 banks, PCR indexes)", () => {
    expect(refusal('dstack-gcp-tpm-eventlog.bin')).toMatch(
      /is a TPM event log, not a TDX one: its records extend PCR 0, 1, .*, 11 .*\/sys\/firmware\/acpi\/tables\/data\/CCEL/,
    );
  });

  it('a TPM 1.2-style SHA-1 log (go-eventlog debian-10) is no longer taken for a dstack attestation', () => {
    expect(refusal('go-eventlog-tpm-debian-10-sha1.bin')).toMatch(/SHA-1 format of TPM 1\.2/);
  });

  it('the 56-byte ACPI CCEL table is not the log', () => {
    expect(refusal('go-eventlog-acpi-ccel-table.bin')).toMatch(/ACPI CCEL table \(56 bytes\).*65536 bytes at 0x7d649000/);
  });

  it('a Hygon CSV log (SM3 only, trustee)', () => {
    expect(refusal('trustee-ccel-hygon-csv-sm3.bin')).toMatch(/only SM3-256 digests \(as Hygon CSV guests write\)/);
  });

  it('Azure TDX vTPM and TPM evidence JSON (trustee)', () => {
    expect(refusal('trustee-az-tdx-vtpm-evidence.json')).toMatch(/Azure TDX vTPM evidence.*"td_quote"/);
    expect(refusal('trustee-tpm-evidence.json')).toMatch(/TPM evidence/);
  });

  it('the same TPM log served as a boot log is named as such by the appraisal too', async () => {
    const a = await appraiseWorkload({
      rtmrs: ['0'.repeat(96), '0'.repeat(96), '0'.repeat(96), '0'.repeat(96)],
      evidence: [],
      bootLog: eventlogFixture('dstack-gcp-tpm-eventlog.bin'),
    });
    expect(a.errors.map((e) => e.code)).toEqual(['EVENTLOG_MALFORMED']);
    expect(a.errors[0]!.message).toMatch(/is a TPM event log/);
    await expect(replayTcgEvents(parseTcgLog(eventlogFixture('dstack-gcp-tpm-eventlog.bin')).events)).rejects.toThrow(/TPM event log/);
  });

  it('ratls eventlog replay exits 2 with the reason', async () => {
    for (const [name, re] of [
      ['dstack-gcp-tpm-eventlog.bin', /TPM event log/],
      ['go-eventlog-acpi-ccel-table.bin', /ACPI CCEL table/],
      ['trustee-az-tdx-vtpm-evidence.json', /Azure TDX vTPM/],
    ] as const) {
      const r = await runCli('eventlog', 'replay', '--quote', COS_QUOTE, '--eventlog', path(name));
      expect(r.code, name).toBe(2);
      expect(r.err).toMatch(re);
    }
  });
});

describe('TDX logs replayed as far as they go', () => {
  it("go-eventlog's duplicate-separator COS log replays to the RTMRs go-eventlog's test lists", async () => {
    const r = await replayTcgEvents(parseTcgLog(eventlogFixture('go-eventlog-cos113-dupe-separator.bin')).events);
    // ccel/cceventlog_test.go, COS113TDXUnpadded
    expect(r.rtmrs.slice(0, 3)).toEqual([
      'a4de2df23e9611299123ba4359c42a5e578b0f8488bf1bba8ef5606d9ea5d81c97c064b482a5eac537d166bd0f0f752d',
      '0ee9366c928a77092f55e9e114c7394181fd264699155f0df77d23577618d5f650568a17d379355a07bd846e552f4e20',
      '4969684dc87381fc3b3134176c8d8806eaf0a901859f5f70cfae8d17714b46c10a8de219048c9fc09f11f381a6fbe7c1',
    ]);
  });

  it("dstack's stripped attestation (tdx-lite): RTMR3 replays, RTMR0-2 are named as not replayable, not as a mismatch", async () => {
    const file = readEventLogFile(eventlogFixture('dstack-tdx-lite-attestation.json'));
    const scope = dstackReplayScope(file.dstack!);
    expect(scope.registers).toEqual([3]);
    expect(scope.stripped).toMatch(/RTMR0-2 are not replayed: dstack stripped/);
    const r = await runCli('eventlog', 'replay', '--eventlog', path('dstack-tdx-lite-attestation.json'), '--json');
    expect(r.code, r.err).toBe(0);
    const out = JSON.parse(r.out) as { files: Array<{ notReplayed?: string }>; workload: { dstack: { replayed: Record<string, string> } } };
    expect(out.workload.dstack.replayed).toEqual({ RTMR0: 'not checked', RTMR1: 'not checked', RTMR2: 'not checked', RTMR3: 'match' });
    expect(out.files[0]!.notReplayed).toMatch(/3 RTMR0 "ACPI DATA" markers/);
    // the full GetQuote log of the same dstack release still replays every register
    expect(dstackReplayScope(readEventLogFile(eventlogFixture('dstack-tdx-lite-getquote.json')).dstack!).registers).toEqual([0, 1, 2, 3]);
  });

  it('a TDX log with a SHA-256 bank beside SHA-384 replays by its SHA-384 digests', async () => {
    const src = parseTcgLog(eventlogFixture('gcp-cos113-ccel-data.bin'));
    const u32 = (v: number) => Uint8Array.of(v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, (v >>> 24) & 0xff);
    const spec = Buffer.concat([
      Buffer.from('Spec ID Event03\0'),
      u32(0),
      Uint8Array.of(0, 2, 0, 2),
      u32(2),
      Uint8Array.of(0x0b, 0, 32, 0, 0x0c, 0, 48, 0),
      Uint8Array.of(0),
    ]);
    const parts: Uint8Array[] = [u32(1), u32(3), new Uint8Array(20), u32(spec.length), spec];
    for (const e of src.events) {
      const sha256 = createHash('sha256').update(e.data).digest();
      parts.push(
        u32(e.mrIndex),
        u32(e.eventType),
        u32(2),
        Uint8Array.of(0x0b, 0),
        sha256,
        Uint8Array.of(0x0c, 0),
        e.digests[0]!.digest,
        u32(e.data.length),
        e.data,
      );
    }
    const f = join(dir, 'two-banks.bin');
    writeFileSync(f, Buffer.concat(parts));
    const r = await runCli('eventlog', 'replay', '--quote', COS_QUOTE, '--eventlog', f);
    expect(r.code, r.out + r.err).toBe(0);
    expect(r.out).toContain('RTMR0 match, RTMR1 match, RTMR2 match');
  });

  it('without a quote, the usage error shows what the log replays to', async () => {
    const r = await runCli('eventlog', 'replay', '--eventlog', path('gcp-cos113-ccel-data.bin'));
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/Give --quote FILE/);
    const b = parseTcgLog(eventlogFixture('gcp-cos113-ccel-data.bin'));
    expect(r.err).toContain(`RTMR0 ${(await replayTcgEvents(b.events)).rtmrs[0]}`);
  });

  it('Azure evidence: its TD quote is read by quote inspect', async () => {
    const r = await runCli('quote', 'inspect', path('trustee-az-tdx-vtpm-evidence.json'), '--json');
    expect(r.code, r.err).toBe(0);
    expect((JSON.parse(r.out) as { quote: { version: number } }).quote.version).toBe(4);
    const f = join(dir, 'x.json');
    writeFileSync(f, JSON.stringify({ report: 'not a quote', note: 'an evidence document without a quote field' }));
    const none = await runCli('quote', 'inspect', f);
    expect(none.code).toBe(1);
    expect(none.err).toMatch(/JSON text, not a quote/);
  });
});

describe('hostile input: the new recognisers only ever throw EVENTLOG_MALFORMED', () => {
  it('truncations and bit flips of the non-TDX samples', () => {
    let seed = 11;
    const rnd = () => (seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32;
    const names = ['dstack-gcp-tpm-eventlog.bin', 'go-eventlog-tpm-debian-10-sha1.bin', 'go-eventlog-acpi-ccel-table.bin', 'trustee-az-tdx-vtpm-evidence.json'];
    for (let i = 0; i < 200; i++) {
      const base = eventlogFixture(names[i % names.length]!);
      const cut = base.slice(0, Math.floor(rnd() * (base.length + 1)));
      const flipped = base.slice();
      flipped[Math.floor(rnd() * flipped.length)]! ^= 1 << Math.floor(rnd() * 8);
      for (const b of [cut, flipped]) {
        try {
          readEventLogFile(b);
        } catch (err) {
          expect((err as { code?: string }).code).toBe('EVENTLOG_MALFORMED');
        }
      }
    }
  });
});
