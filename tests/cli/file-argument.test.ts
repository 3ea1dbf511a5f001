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
