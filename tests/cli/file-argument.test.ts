// `ratls quote inspect q.dat`, `ratls quote verify q.dat --collateral d`, `ratls cert verify c.pem`:
// the file may be the command's argument as well as its flag, with the same results.
import { describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { runCli } from '../helpers/cli.ts';
import { collateralDirFor, loadManifest, TESTDATA_DIR } from '../helpers/testdata.ts';

const q = loadManifest().quotes.find((x) => x.collateral && x.verification_time)!;
const quoteFile = join(TESTDATA_DIR, q.file);

describe('input file as the argument', () => {
  it('quote inspect and quote verify give the same output either way', async () => {
    const byFlag = await runCli('quote', 'inspect', '--quote', quoteFile, '--json');
    const byArg = await runCli('quote', 'inspect', quoteFile, '--json');
    expect(byFlag.code).toBe(0);
    expect(byArg).toEqual(byFlag);
    const verify = ['--collateral', collateralDirFor(q.collateral!.set), '--at', q.verification_time!.iso, '--json'];
    const vFlag = await runCli('quote', 'verify', '--quote', quoteFile, ...verify);
    const vArg = await runCli('quote', 'verify', quoteFile, ...verify);
    expect(JSON.parse(vFlag.out).tcbStatus).toBe(q.expected?.tcb_status ?? 'UpToDate');
    expect(JSON.parse(vArg.out).tcbStatus).toBe(JSON.parse(vFlag.out).tcbStatus);
    expect(vArg.code).toBe(vFlag.code);
  });

  it('refuses two different files, and no file at all, as usage errors', async () => {
    const both = await runCli('quote', 'inspect', '--quote', quoteFile, '/nonexistent/other.dat');
    expect(both.code).toBe(2);
    expect(both.err).toMatch(/name different files/);
    const none = await runCli('cert', 'verify');
    expect(none.code).toBe(2);
    expect(none.err).toMatch(/--cert <file>/);
  });
});

describe('quote files as text', () => {
  it('base64 and hex text of a quote read as the raw bytes; other text stays a parse error', async () => {
    const { mkdtempSync, readFileSync, writeFileSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const dir = mkdtempSync(join(tmpdir(), 'ratls-qtext-'));
    const raw = readFileSync(quoteFile);
    const byRaw = await runCli('quote', 'inspect', quoteFile, '--json');
    for (const [name, text] of [
      ['q.b64', raw.toString('base64').replace(/(.{64})/g, '$1\n')],
      ['q.hex', raw.toString('hex') + '\n'],
      ['q0x.hex', '0x' + raw.toString('hex')],
    ] as const) {
      writeFileSync(join(dir, name), text);
      expect(await runCli('quote', 'inspect', join(dir, name), '--json')).toEqual(byRaw);
    }
    writeFileSync(join(dir, 'junk.txt'), 'hello world, not a quote at all\n'.repeat(4));
    const junk = await runCli('quote', 'inspect', join(dir, 'junk.txt'));
    expect(junk.code).toBe(1);
    expect(junk.err).toMatch(/QUOTE_/);
  });
});
