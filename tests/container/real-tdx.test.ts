/**
 * deploy/compose.yaml on the real-TDX path, as far as a machine without TDX allows: the proxy runs
 * the configfs-tsm provider with the compose file's settings (uid 0, no capabilities, read-only
 * root, state volume) against a configfs-tsm stand-in mounted at /run/tsm (FUSE, with the kernel
 * interface's files, modes and generation counter; its quotes are signed by a simulated world on
 * the host), and fetches collateral from a PCCS stand-in into its cache on the volume.
 *
 * What this cannot show: that a real TDX kernel, Intel's PCS and AppArmor/SELinux on the host
 * behave like the stand-ins (docs/deploy.md says what to expect there).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { initSimulatedWorld, loadSimulatedProvider } from '../../src/tee/simulated/index.ts';
import { writeCollateralDir } from '../../src/collateral/file.ts';
import { createAttestedFetch, defaultClientPolicy, policyToYaml, type ClientPolicy } from '../../src/client/index.ts';
import { startTsmStandin, type TsmStandin } from './helpers/tsm-standin.ts';
import { docker, ROOT, run, Stack } from './helpers/stack.ts';

let work: string;
let tsm: TsmStandin;
let stack: Stack;
let policyFile: string;
let policy: ClientPolicy;

/** `ratls verify` from the host with the world's root and no collateral but what the certificate staples. */
const verify = () => run(process.execPath, [join(ROOT, 'bin/ratls'), 'verify', stack.url, '--policy', policyFile, '--nonce'], { timeoutMs: 60_000 });

/** `ls -ln`-style facts of the collateral cache, read inside the container (the directory is 0700, root's). */
async function cache(): Promise<{ dir: string; files: string[]; sums: string }> {
  const id = await stack.id('ratls');
  const dir = (await docker('exec', id, 'stat', '-c', '%u:%g %a', '/var/lib/ratls/collateral')).trim();
  const files = (await docker('exec', id, 'find', '/var/lib/ratls/collateral', '-type', 'f', '-printf', '%U:%G %m %f\\n')).trim().split('\n');
  const sums = await docker('exec', id, 'sh', '-c', 'sha256sum /var/lib/ratls/collateral/*');
  return { dir, files, sums };
}

const pccsRequests = async (): Promise<number> => (await stack.logs('pccs')).split('\n').filter((l) => l.includes('pccs request ')).length;

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'ratls-ct-tdx-'));
  await initSimulatedWorld(join(work, 'world'));
  const world = await loadSimulatedProvider(join(work, 'world'));
  await writeCollateralDir(join(work, 'collateral'), await world.collateral(new Date()));
  tsm = await startTsmStandin(process.env.RATLS_TSM_STANDIN!, work, world);

  policy = defaultClientPolicy();
  policy.trustedRoots = [world.rootPem];
  policy.collateral = { offline: true };
  policyFile = join(work, 'policy.yaml');
  await writeFile(policyFile, policyToYaml(policy));

  stack = new Stack({
    overrides: ['tests/container/compose.stand-ins.yaml', 'tests/container/compose.tdx.yaml'],
    env: {
      RATLS_EVIDENCE_PROVIDER: 'configfs-tsm',
      RATLS_PCCS_URL: 'http://pccs:8081',
      // refuse to start without stapled collateral: a start then proves the collateral came from somewhere
      RATLS_COLLATERAL_REQUIRED: 'true',
      CT_TSM: tsm.dir,
      CT_COLLATERAL: join(work, 'collateral'),
    },
  });
  await stack.up();
  await Promise.all(['ratls', 'open-webui', 'ollama', 'pccs'].map((s) => stack.waitHealthy(s)));
});

afterAll(async () => {
  // the containers first: a bind mount of the stand-in must not outlive it
  await stack?.down();
  await tsm?.close();
  if (work) await rm(work, { recursive: true, force: true });
});

describe('deploy/compose.yaml on the configfs-tsm path (stand-in kernel and PCCS)', () => {
  it('quotes through configfs-tsm as uid 0 without capabilities, and cleans up its report entries', async () => {
    const logs = await stack.logs('ratls');
    expect(logs).toMatch(/evidence provider\s+configfs-tsm/);
    expect(tsm.quotes()).toBeGreaterThanOrEqual(1);
    expect(await readdir(join(tsm.dir, 'report'))).toEqual([]);
  });

  it('staples collateral fetched from the PCCS: `ratls verify` passes offline with the world root', async () => {
    const r = await verify();
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(await pccsRequests()).toBeGreaterThan(0);
  });

  it('writes the collateral cache into the state volume, owned by the process and private', async () => {
    const c = await cache();
    expect(c.dir).toBe('0:0 700');
    expect(c.files).toHaveLength(1);
    expect(c.files[0]).toMatch(/^0:0 644 tdx-[0-9a-f]{12}-(platform|processor)\.json$/);
  });

  it('restarts from the same cache with the PCCS gone, and still verifies', async () => {
    const before = await cache();
    const quotes = tsm.quotes();
    await docker('stop', await stack.id('pccs'));
    await docker('restart', await stack.id('ratls'));
    await stack.waitHealthy('ratls');
    // collateral.required: a start without the PCCS means the collateral came from the cache
    expect((await cache()).sums).toBe(before.sums);
    expect(tsm.quotes()).toBeGreaterThan(quotes);
    // the new certificate staples the cached collateral: a client with offline collateral accepts it
    const attested = createAttestedFetch(policy);
    try {
      const page = await attested(`${stack.url}/`);
      expect(page.status).toBe(200);
      await page.arrayBuffer();
    } finally {
      await attested.close();
    }
  });

  it('writes nothing outside the volume and /tmp', async () => {
    expect(await stack.writesOutsideMounts('ratls')).toEqual([]);
  });
});
