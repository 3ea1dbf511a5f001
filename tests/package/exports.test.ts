/**
 * The published entry points: `npm run build` compiles src/ to dist/ and plain Node (no tsx) can
 * import `ratls-proxy`, `ratls-proxy/verify` and `ratls-proxy/client` by name and verify a real quote.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { loadManifest, collateralDirFor, TESTDATA_DIR } from '../helpers/testdata.ts';
import path from 'node:path';

const run = promisify(execFile);
const repo = fileURLToPath(new URL('../..', import.meta.url));

describe('package entry points', () => {
  it('build to dist/ and verify a real quote from plain Node', async () => {
    await run(process.execPath, [path.join(repo, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.build.json'], { cwd: repo });
    const q = loadManifest().quotes.find((x) => x.expected?.tcb_status && x.collateral && x.verification_time);
    expect(q).toBeDefined();
    if (!q) return;
    const script = `
      import { readFile } from 'node:fs/promises';
      import * as root from 'ratls-proxy';
      import * as verify from 'ratls-proxy/verify';
      import * as client from 'ratls-proxy/client';
      const quote = new Uint8Array(await readFile(process.argv[1]));
      const collateral = await root.loadCollateralDir(process.argv[2]);
      const r = await verify.verifyQuote(quote, { collateral, now: new Date(process.argv[3]), policy: { allowedTcbStatuses: [...verify.TCB_STATUSES], allowDebug: true } });
      console.log(JSON.stringify({ status: r.tcbStatus, fetch: typeof client.createAttestedFetch, serve: typeof root.startRatlsServer, token: typeof root.verifyAttestationToken, attest: typeof client.attestViaService }));
    `;
    const { stdout } = await run(
      process.execPath,
      ['--input-type=module', '-e', script, path.join(TESTDATA_DIR, q.file), collateralDirFor(q.collateral!.set), q.verification_time!.iso],
      { cwd: repo },
    );
    const out = JSON.parse(stdout) as Record<string, string>;
    expect(out).toEqual({ status: q.expected!.tcb_status, fetch: 'function', serve: 'function', token: 'function', attest: 'function' });
  });
});
