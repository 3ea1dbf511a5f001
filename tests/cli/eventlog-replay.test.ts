/**
 * `ratls eventlog replay`: real logs against their quotes (exit 0), a tampered log (exit 1, the code
 * names register and event), unreadable input (exit 2), --json, and every supported file kind.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.ts';
import { TESTDATA_DIR } from '../helpers/testdata.ts';
import { eventlogFixture } from '../helpers/eventlog.ts';
import { fileURLToPath } from 'node:url';

const fixture = (n: string) => fileURLToPath(new URL(`../fixtures/eventlog/${n}`, import.meta.url));
const COS_QUOTE = join(TESTDATA_DIR, 'quotes/v4-gcp-cos113-00806f050000-gotdxguest.dat');

describe('ratls eventlog replay', () => {
  it('a real CCEL log against its quote: exit 0, registers and named events shown', async () => {
    const r = await runCli('eventlog', 'replay', '--quote', COS_QUOTE, '--eventlog', fixture('gcp-cos113-ccel-data.bin'));
    expect(r.code).toBe(0);
    expect(r.out).toContain("PASS: every log replays to the quote's registers");
    expect(r.out).toContain('RTMR0 match, RTMR1 match, RTMR2 match');
    expect(r.out).toMatch(/kernel-cmdline\s+RTMR2 #41 \/syslinux\/vmlinuz\.A init=/);
  });

  it('a tampered log: exit 1, the reason names register and event', async () => {
    const log = eventlogFixture('gcp-cos113-ccel-data.bin');
    log[65 + 14 + 5]! ^= 1; // first event's digest
    const f = join(mkdtempSync(join(tmpdir(), 'ratls-el-')), 'ccel.bin');
    writeFileSync(f, log);
    const r = await runCli('eventlog', 'replay', '--quote', COS_QUOTE, '--eventlog', f, '--json');
    expect(r.code).toBe(1);
    const j = JSON.parse(r.out) as { ok: boolean; errors: Array<{ code: string; message: string }> };
    expect(j.ok).toBe(false);
    expect(j.errors[0]!.code).toBe('EVENTLOG_REPLAY_MISMATCH');
    expect(j.errors[0]!.message).toMatch(/^RTMR0: .*#1 EV_EFI_HANDOFF_TABLES2/);
  });

  it("dstack's attestation.bin and GetQuote JSON carry their quotes", async () => {
    for (const f of ['dstack-attestation.bin', 'dstack-tdx-lite-getquote.json']) {
      const r = await runCli('eventlog', 'replay', '--eventlog', fixture(f), '--json');
      expect(r.code).toBe(0);
      const j = JSON.parse(r.out) as { workload: { dstack: { replayed: Record<string, string>; events: Array<{ name: string }> } } };
      expect(j.workload.dstack.replayed).toEqual({ RTMR0: 'match', RTMR1: 'match', RTMR2: 'match', RTMR3: 'match' });
      expect(j.workload.dstack.events.map((e) => e.name)).toContain('compose-hash');
    }
  });

  it('a dstack pin in --policy is checked offline', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ratls-el-'));
    const p = join(dir, 'p.yaml');
    writeFileSync(p, 'workload:\n  dstack:\n    compose-hash: ["00"]\n');
    const r = await runCli('eventlog', 'replay', '--eventlog', fixture('dstack-attestation.bin'), '--policy', p);
    expect(r.code).toBe(1);
    expect(r.out).toContain('WORKLOAD_MISMATCH: RTMR3 event #27 (dstack compose-hash)');
  });

  it('usage errors and unreadable input: exit 2', async () => {
    expect((await runCli('eventlog', 'replay', '--quote', COS_QUOTE)).code).toBe(2);
    expect((await runCli('eventlog', 'replay', '--eventlog', fixture('gcp-cos113-ccel-data.bin'))).code).toBe(2);
    expect((await runCli('eventlog', 'replay', '--quote', COS_QUOTE, '--eventlog', '/nonexistent/log')).code).toBe(2);
    expect((await runCli('eventlog', 'replay', '--quote', COS_QUOTE, '--eventlog', fixture('PROVENANCE.md'))).code).toBe(2);
  });
});
