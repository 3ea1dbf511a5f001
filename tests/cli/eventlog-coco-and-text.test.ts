/**
 * `ratls eventlog replay` on logs as other projects hand them over: Confidential Containers' TDX
 * evidence JSON (base64 quote + base64 CCEL + AAEL text), and a CCEL log as base64 or hex text.
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.ts';
import { TESTDATA_DIR } from '../helpers/testdata.ts';
import { eventlogFixture } from '../helpers/eventlog.ts';

const COS_QUOTE = join(TESTDATA_DIR, 'quotes/v4-gcp-cos113-00806f050000-gotdxguest.dat');
const dir = mkdtempSync(join(tmpdir(), 'ratls-el-text-'));
const write = (name: string, data: string | Uint8Array): string => {
  const f = join(dir, name);
  writeFileSync(f, data);
  return f;
};
const b64 = (b: Uint8Array): string => Buffer.from(b).toString('base64');

describe('event logs from other projects, as they ship them', () => {
  it('Confidential Containers TDX evidence: the quote comes from the file, the CCEL replays, the AAEL is named as not replayed', async () => {
    const quote = new Uint8Array(readFileSync(COS_QUOTE));
    const log = eventlogFixture('gcp-cos113-ccel-data.bin');
    const aa = 'INIT/sha384 ' + '00'.repeat(48) + '\ngithub.com/confidential-containers PullImage {"image":"alpine","digest":"sha256:aa"}\n';
    const f = write('coco.json', JSON.stringify({ cc_eventlog: b64(log), quote: b64(quote), aa_eventlog: aa }));
    const r = await runCli('eventlog', 'replay', '--eventlog', f);
    expect(r.code).toBe(0);
    expect(r.out).toContain('RTMR0 match, RTMR1 match, RTMR2 match');
    expect(r.out).toMatch(/coco-tdx-evidence\); the attestation agent's event log \(AAEL, 2 lines\) is not replayed/);

    log[65 + 14 + 5]! ^= 1;
    const bad = write('coco-bad.json', JSON.stringify({ cc_eventlog: b64(log), quote: b64(quote) }));
    const rb = await runCli('eventlog', 'replay', '--eventlog', bad, '--json');
    expect(rb.code).toBe(1);
    expect((JSON.parse(rb.out) as { errors: Array<{ code: string }> }).errors[0]!.code).toBe('EVENTLOG_REPLAY_MISMATCH');
  });

  it('a CCEL log as base64 text or hex text replays like the raw bytes', async () => {
    const log = eventlogFixture('gcp-cos113-ccel-data.bin');
    for (const [name, text] of [
      ['ccel.b64', b64(log).replace(/(.{76})/g, '$1\n') + '\n'],
      ['ccel.hex', Buffer.from(log).toString('hex') + '\n'],
    ] as const) {
      const r = await runCli('eventlog', 'replay', '--quote', COS_QUOTE, '--eventlog', write(name, text));
      expect(r.code, r.err).toBe(0);
      expect(r.out).toContain('(tcg-boot)');
    }
  });

  it('refuses malformed CoCo evidence and text that decodes to no log as usage errors', async () => {
    const noQuote = await runCli('eventlog', 'replay', '--eventlog', write('noquote.json', JSON.stringify({ cc_eventlog: 'AAAA', quote: '!!' })));
    expect(noQuote.code).toBe(2);
    expect(noQuote.err).toMatch(/no base64 "quote"/);
    const notCcel = await runCli(
      'eventlog',
      'replay',
      '--eventlog',
      write('notccel.json', JSON.stringify({ cc_eventlog: b64(new Uint8Array(200)), quote: b64(new Uint8Array(600)) })),
    );
    expect(notCcel.code).toBe(2);
    expect(notCcel.err).toMatch(/cc_eventlog.*not a base64 TCG event log/);
    const junk = await runCli('eventlog', 'replay', '--quote', COS_QUOTE, '--eventlog', write('junk.b64', b64(new Uint8Array(300).fill(7))));
    expect(junk.code).toBe(2);
    expect(junk.err).toMatch(/not an event log this tool reads/);
  });
});
