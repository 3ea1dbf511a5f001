/**
 * The path an admin on a real TDX VM takes: `ratls serve` with the configfs-tsm provider (which
 * has no collateral of its own) staples collateral fetched from a PCCS. The "kernel" is a fake over
 * a prepared configfs-tsm tree whose outblob is a simulated-world quote for the REPORTDATA written
 * to inblob; the PCCS is a fake on loopback serving that world's collateral. A client that trusts
 * only the simulated root and may not fetch any collateral (offline) must accept the certificate.
 *
 * What this cannot prove: that a real kernel and Intel's PCS behave like the fakes.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { pino } from 'pino';
import { Writable } from 'node:stream';
import { ConfigfsTsmProvider, type TsmFs } from '../../src/tee/configfs-tsm.ts';
import { initSimulatedWorld, loadSimulatedProvider, type SimulatedProvider } from '../../src/tee/simulated/index.ts';
import { writeCollateralDir } from '../../src/collateral/file.ts';
import { createRatlsIdentitySource } from '../../src/proxy/ratls-source.ts';
import { rotationDelay, startRatlsServer, type RunningRatlsServer } from '../../src/proxy/server.ts';
import { validateConfig, envToRaw, ConfigError, type RawConfig, type ServeConfig } from '../../src/proxy/config.ts';
import { verifyRatlsCertificate } from '../../src/ratls/verify-cert.ts';
import { OID_RATLS_ENDORSEMENTS, encodeEndorsements, decodeEndorsements } from '../../src/ratls/extension.ts';
import { createAttestedFetch, defaultClientPolicy, findAttestationError } from '../../src/client/index.ts';
import { startFakePcs, type FakePcs } from '../collateral/fake-pcs.ts';
import { collateralDirFor, loadManifest, readTestFile } from '../helpers/testdata.ts';
import * as x509 from '@peculiar/x509';
import { servedCertificate } from '../helpers/net.ts';

let dir: string;
let sim: SimulatedProvider;
let collateralDir: string;
let upstream: Server;
let upstreamUrl: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ratls-realtdx-'));
  await initSimulatedWorld(join(dir, 'world'));
  sim = await loadSimulatedProvider(join(dir, 'world'));
  collateralDir = join(dir, 'pccs-data');
  await writeCollateralDir(collateralDir, await sim.collateral(new Date()));
  upstream = createServer((req, res) => res.end(`upstream saw ${req.url}`));
  await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
  upstreamUrl = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`;
});
afterAll(async () => {
  await new Promise<void>((r) => upstream.close(() => r()));
  await rm(dir, { recursive: true, force: true });
});

const open: Array<{ close(): Promise<void> }> = [];
afterEach(async () => {
  while (open.length) await open.pop()!.close();
});

/**
 * A configfs-tsm tree plus a fake kernel: mkdir populates provider/generation; a write to inblob
 * bumps generation and makes outblob the simulated quote over exactly those 64 bytes.
 */
async function fakeTdxGuest(world: SimulatedProvider = sim): Promise<{ root: string; fs: TsmFs; quotes: number }> {
  const root = await mkdtemp(join(dir, 'tsm-'));
  await mkdir(join(root, 'report'));
  const guest = {
    root,
    quotes: 0,
    fs: {
      async mkdir(p: string) {
        await mkdir(p);
        await writeFile(join(p, 'provider'), 'tdx_guest\n');
        await writeFile(join(p, 'generation'), '0\n');
      },
      readFile: async (p: string) => new Uint8Array(await readFile(p)),
      async writeFile(p: string, d: Uint8Array) {
        const entry = dirname(p);
        const gen = Number((await readFile(join(entry, 'generation'), 'utf8')).trim());
        await writeFile(p, d);
        await writeFile(join(entry, 'outblob'), await world.getQuote(new Uint8Array(d)));
        guest.quotes++;
        await writeFile(join(entry, 'generation'), `${gen + 1}\n`);
      },
      rmdir: (p: string) => rm(p, { recursive: true }),
    } satisfies TsmFs,
  };
  return guest;
}

/** A port nothing listens on: stands for an unreachable Intel PCS (no test touches the internet). */
async function deadUrl(): Promise<string> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const { port } = s.address() as AddressInfo;
  await new Promise<void>((r) => s.close(() => r()));
  return `http://127.0.0.1:${port}`;
}

/** A PCCS front that answers 503 while `down`, else relays to `target`. */
async function flakyProxy(target: string): Promise<{ url: string; down: boolean; close(): Promise<void> }> {
  const state = { down: true };
  const s = createServer((req, res) => {
    if (state.down) return void res.writeHead(503).end();
    void fetch(target + (req.url ?? '/')).then(async (r) => {
      const headers: Record<string, string> = {};
      r.headers.forEach((v, k) => (headers[k] = v));
      delete headers['content-encoding'];
      delete headers['content-length'];
      delete headers['transfer-encoding'];
      res.writeHead(r.status, headers).end(Buffer.from(await r.arrayBuffer()));
    });
  });
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  return Object.assign(state, {
    url: `http://127.0.0.1:${(s.address() as AddressInfo).port}`,
    close: () =>
      new Promise<void>((r) => {
        s.closeAllConnections();
        s.close(() => r());
      }),
  });
}

function captureLog(): { logger: pino.Logger; lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const l of chunk.toString('utf8').split('\n')) if (l) lines.push(JSON.parse(l) as Record<string, unknown>);
      cb();
    },
  });
  return { logger: pino({ level: 'info' }, sink), lines };
}

async function serve(
  raw: RawConfig,
  guest: { root: string; fs: TsmFs },
  roots: string[] = [sim.rootPem],
): Promise<{ srv: RunningRatlsServer; config: ServeConfig; lines: Array<Record<string, unknown>> }> {
  const config = validateConfig({
    listen: '127.0.0.1:0',
    log: { level: 'silent' },
    tls: { hosts: ['localhost', '127.0.0.1'] },
    evidence: { provider: 'configfs-tsm', configfsRoot: guest.root },
    routes: [{ prefix: '/', target: upstreamUrl }],
    ...raw,
  });
  const source = await createRatlsIdentitySource(config, new ConfigfsTsmProvider({ root: guest.root, fs: guest.fs }), { selfCheckRoots: roots });
  const { logger, lines } = captureLog();
  const srv = await startRatlsServer(config, { identitySource: source, logger, autoRotate: false });
  open.push(srv);
  return { srv, config, lines };
}

/** The certificate a TLS client actually receives. */

async function metric(srv: RunningRatlsServer, name: string): Promise<number | undefined> {
  const m = (await srv.metrics.registry.getMetricsAsJSON()).find((x) => x.name === name);
  return m?.values[0]?.value;
}

const hasEndorsements = (der: Uint8Array): boolean => new x509.X509Certificate(new Uint8Array(der)).getExtension(OID_RATLS_ENDORSEMENTS) !== null;

/** A client trusting only the simulated root that may not fetch collateral anywhere. */
function offlineClientPolicy() {
  return { ...defaultClientPolicy(), trustedRoots: [sim.rootPem], collateral: { offline: true } };
}

describe('ratls serve on configfs-tsm with collateral from a PCCS', () => {
  it('staples the PCCS collateral; an offline client with only the root verifies and gets through', async () => {
    const pccs: FakePcs = await startFakePcs(collateralDir, 'pccs');
    open.push(pccs);
    const guest = await fakeTdxGuest();
    const { srv, lines } = await serve({ collateral: { pccsUrl: pccs.url, pcsUrl: await deadUrl() } }, guest);

    const der = await servedCertificate(srv.port);
    expect(hasEndorsements(der)).toBe(true);
    expect(lines.find((l) => l.msg === 'collateral fetched for stapling')).toMatchObject({ source: `pccs:${pccs.url}`, pckCa: 'platform' });
    expect(pccs.requests.some((p) => p.startsWith('/tdx/certification/v4/tcb?fmspc='))).toBe(true);
    // No collateral option, no sources: the stapled collateral is all the verifier has.
    const r = await verifyRatlsCertificate(der, { now: new Date(), trustedRoots: [sim.rootPem] });
    expect(r.errors).toEqual([]);
    expect(r.ok).toBe(true);
    expect(r.checks.find((c) => c.name === 'collateral')?.detail).toBe('stapled');
    expect(srv.identity().providerName).toBe('configfs-tsm');
    expect(await metric(srv, 'ratls_collateral_stapled')).toBe(1);
    expect(await metric(srv, 'ratls_self_check_ok')).toBe(1);

    const client = createAttestedFetch(offlineClientPolicy());
    open.push(client);
    const res = await client(`https://localhost:${srv.port}/hello`);
    expect(res.status).toBe(200);
    expect(await res.text()).toBe('upstream saw /hello');

    // /.well-known/ratls/collateral hands out what was stapled without asking the PCCS again.
    const before = pccs.requests.length;
    const col = await client(`https://localhost:${srv.port}/.well-known/ratls/collateral`);
    expect(col.status).toBe(200);
    expect(((await col.json()) as { tcbInfoJson: string }).tcbInfoJson).toContain('"fmspc"');
    expect(pccs.requests.length).toBe(before);

    // Every rotation fetches collateral again (new TCB info reaches new certificates).
    await srv.rotate();
    expect(pccs.requests.length).toBeGreaterThan(before);
    const der2 = await servedCertificate(srv.port);
    expect(der2).not.toEqual(der);
    expect(hasEndorsements(der2)).toBe(true);
  });

  it('PCCS down, required: false: serves unstapled with a warning and metric 0; a later rotation staples', async () => {
    const guest = await fakeTdxGuest();
    const pccs = await startFakePcs(collateralDir, 'pccs');
    open.push(pccs);
    const flaky = await flakyProxy(pccs.url);
    open.push(flaky);
    const { srv, lines } = await serve({ collateral: { pccsUrl: flaky.url, pcsUrl: await deadUrl() } }, guest);
    const der = await servedCertificate(srv.port);
    expect(hasEndorsements(der)).toBe(false);
    expect(await metric(srv, 'ratls_collateral_stapled')).toBe(0);
    expect(await metric(srv, 'ratls_collateral_fetch_failures_total')).toBe(1);
    expect(lines.some((l) => l.level === 40 && /WITHOUT stapled collateral/.test(String(l.msg)))).toBe(true);
    // Short-lived, so the server's own rotation retries stapling in about 10 minutes, not 16 hours.
    const unstapled = srv.identity();
    expect((unstapled.notAfter.getTime() - unstapled.notBefore.getTime()) / 1000).toBe(15 * 60 + 60);
    const retryMs = rotationDelay(unstapled, 2 / 3, new Date());
    expect(retryMs).toBeGreaterThan(8 * 60_000);
    expect(retryMs).toBeLessThan(10 * 60_000);

    // The offline client refuses: there is no collateral anywhere it may look.
    const r = await verifyRatlsCertificate(der, { now: new Date(), trustedRoots: [sim.rootPem] });
    expect(r.ok).toBe(false);
    expect(r.errors.map((e) => e.code)).toContain('COLLATERAL_MISSING');
    const client = createAttestedFetch(offlineClientPolicy());
    open.push(client);
    const err = await client(`https://localhost:${srv.port}/`).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(findAttestationError(err)?.code).toBe('COLLATERAL_MISSING');

    // The PCCS comes back: the next rotation staples again and the metric says so.
    flaky.down = false;
    await srv.rotate();
    expect(hasEndorsements(await servedCertificate(srv.port))).toBe(true);
    expect(srv.identity().notAfter.getTime() - srv.identity().notBefore.getTime()).toBe((24 * 3600 + 60) * 1000);
    expect(await metric(srv, 'ratls_collateral_stapled')).toBe(1);
  });

  it('a client that may fetch collateral still verifies an unstapled certificate', async () => {
    const guest = await fakeTdxGuest();
    const pccs = await startFakePcs(collateralDir, 'pccs');
    open.push(pccs);
    const dead = await deadUrl();
    const { srv } = await serve({ collateral: { pccsUrl: dead, pcsUrl: dead } }, guest);
    const client = createAttestedFetch({ ...defaultClientPolicy(), trustedRoots: [sim.rootPem], collateral: { pccsUrl: pccs.url, pcsUrl: dead } });
    open.push(client);
    const res = await client(`https://localhost:${srv.port}/x`);
    expect(await res.text()).toBe('upstream saw /x');
  });

  it('required: true refuses to start without collateral, naming the key to change', async () => {
    const guest = await fakeTdxGuest();
    const dead = await deadUrl();
    const err = (await serve({ collateral: { pccsUrl: dead, pcsUrl: dead, required: true } }, guest).then(
      () => undefined,
      (e: unknown) => e,
    )) as { code?: string; message?: string };
    expect(err?.code).toBe('COLLATERAL_MISSING');
    expect(err.message).toMatch(/collateral\.required/);
  });

  it('required: true with a reachable PCCS starts, and a failed refresh keeps the old certificate', async () => {
    const guest = await fakeTdxGuest();
    const pccs = await startFakePcs(collateralDir, 'pccs');
    const { srv } = await serve({ collateral: { pccsUrl: pccs.url, pcsUrl: await deadUrl(), required: true } }, guest);
    const fp = srv.identity().fingerprintSha256;
    await pccs.close();
    await expect(srv.rotate()).rejects.toMatchObject({ code: 'COLLATERAL_MISSING' });
    expect(srv.identity().fingerprintSha256).toBe(fp);
    // The certificate still served is stapled; the failure shows in the counter.
    expect(await metric(srv, 'ratls_collateral_stapled')).toBe(1);
    expect(await metric(srv, 'ratls_collateral_fetch_failures_total')).toBe(1);
  });

  it('a failing quote is reported as such, not as missing collateral', async () => {
    const guest = await fakeTdxGuest();
    const broken: TsmFs = {
      ...guest.fs,
      writeFile: async () => {
        throw Object.assign(new Error('EIO'), { code: 'EIO' });
      },
    };
    const dead = await deadUrl();
    const config = validateConfig({
      listen: '127.0.0.1:0',
      evidence: { provider: 'configfs-tsm', configfsRoot: guest.root },
      collateral: { pccsUrl: dead, pcsUrl: dead },
    });
    const source = await createRatlsIdentitySource(config, new ConfigfsTsmProvider({ root: guest.root, fs: broken }));
    const { logger, lines } = captureLog();
    const err = (await startRatlsServer(config, { identitySource: source, logger, autoRotate: false }).then(
      (srv) => (open.push(srv), undefined),
      (e: unknown) => e,
    )) as { code?: string };
    expect(err?.code).toBe('EVIDENCE_PROVIDER_FAILED');
    expect(lines.filter((l) => /collateral/.test(String(l.msg)))).toEqual([]);
  });

  it('warns at issuance when default clients would refuse the certificate (platform TCB OutOfDate)', async () => {
    await initSimulatedWorld(join(dir, 'old-world'), { platformTcbStatus: 'OutOfDate' });
    const old = await loadSimulatedProvider(join(dir, 'old-world'));
    const oldCollateral = join(dir, 'old-pccs');
    await writeCollateralDir(oldCollateral, await old.collateral(new Date()));
    const pccs = await startFakePcs(oldCollateral, 'pccs');
    open.push(pccs);
    const { srv, lines } = await serve({ collateral: { pccsUrl: pccs.url, pcsUrl: await deadUrl() } }, await fakeTdxGuest(old), [old.rootPem]);
    expect(await metric(srv, 'ratls_collateral_stapled')).toBe(1);
    expect(await metric(srv, 'ratls_self_check_ok')).toBe(0);
    const warn = lines.find((l) => /does NOT verify under the default client policy/.test(String(l.msg)));
    expect(warn?.tcbStatus).toBe('OutOfDate');
    expect(String(warn?.errors)).toMatch(/TCB_STATUS_NOT_ALLOWED/);
    // Still served: a client whose policy accepts OutOfDate gets through.
    const r = await verifyRatlsCertificate(await servedCertificate(srv.port), {
      now: new Date(),
      trustedRoots: [old.rootPem],
      policy: { allowedTcbStatuses: ['UpToDate', 'OutOfDate'] },
    });
    expect(r.ok).toBe(true);
  });

  it('collateral directories work without any network (offline: true)', async () => {
    const guest = await fakeTdxGuest();
    const dead = await deadUrl();
    // Directory layout: one subdirectory per FMSPC.
    const fmspc = (JSON.parse(await readFile(join(collateralDir, 'tcb_info.json'), 'utf8')) as { tcbInfo: { fmspc: string } }).tcbInfo.fmspc;
    const root = join(dir, 'collateral-dirs');
    await writeCollateralDir(join(root, fmspc.toLowerCase()), await sim.collateral(new Date()));
    const { srv } = await serve({ collateral: { directories: [root], offline: true, pcsUrl: dead } }, guest);
    const r = await verifyRatlsCertificate(await servedCertificate(srv.port), { now: new Date(), trustedRoots: [sim.rootPem] });
    expect(r.errors).toEqual([]);
  });
});

describe('collateral and profile config keys', () => {
  it('defaults to Intel PCS, optional, and maps RATLS_* variables', () => {
    const d = validateConfig({});
    expect(d.collateral).toEqual({ pcsUrl: 'https://api.trustedservices.intel.com', directories: [], offline: false, required: false });
    expect(d.tls.profile).toBe('ccc');
    const c = validateConfig(
      envToRaw({
        RATLS_PCCS_URL: 'https://pccs.internal:8081/',
        RATLS_COLLATERAL_CACHE_DIR: '/var/lib/ratls/collateral',
        RATLS_COLLATERAL_DIRS: '/a, /b',
        RATLS_COLLATERAL_REQUIRED: 'true',
        RATLS_PROFILE: 'dstack',
      }),
    );
    expect(c.collateral).toEqual({
      pccsUrl: 'https://pccs.internal:8081',
      pcsUrl: 'https://api.trustedservices.intel.com',
      cacheDir: '/var/lib/ratls/collateral',
      directories: ['/a', '/b'],
      offline: false,
      required: true,
    });
    expect(c.tls.profile).toBe('dstack');
  });

  it('rejects bad values with the key name', () => {
    expect(() => validateConfig({ collateral: { pccsUrl: 'ftp://x' } })).toThrow(/collateral\.pccsUrl/);
    expect(() => validateConfig({ collateral: { pcsUrl: 'not a url' } })).toThrow(ConfigError);
    expect(() => validateConfig({ collateral: { directories: 'x' } })).toThrow(/collateral\.directories/);
    expect(() => validateConfig({ collateral: { required: 'yes' } })).toThrow(/collateral\.required/);
    expect(() => validateConfig({ collateral: { pccs: 'x' } })).toThrow(/Unknown config key "collateral\.pccs"/);
    expect(() => validateConfig({ tls: { profile: 'sgx' } })).toThrow(/tls\.profile/);
  });
});

describe('with a real Intel TDX quote and Intel collateral (shared test data)', () => {
  it('identifies the platform from the real PCK chain and staples the Intel collateral the PCCS serves for it', async () => {
    // The fake kernel hands out a real quote, so REPORTDATA cannot match our key: everything else
    // (PCK chain to the pinned Intel root, collateral signatures, QE identity, TCB) must pass.
    const q = loadManifest().quotes.find((x) => x.id === 'v4-b0c06f000000-dcapqvl.dat')!;
    const realQuote = readTestFile(q.file);
    const at = new Date(q.verification_time!.iso);
    const pccs = await startFakePcs(collateralDirFor(q.collateral!.set), 'pccs');
    open.push(pccs);
    const root = await mkdtemp(join(dir, 'tsm-real-'));
    await mkdir(join(root, 'report'));
    const fs: TsmFs = {
      async mkdir(p) {
        await mkdir(p);
        await writeFile(join(p, 'provider'), 'tdx_guest\n');
        await writeFile(join(p, 'generation'), '0\n');
      },
      readFile: async (p) => new Uint8Array(await readFile(p)),
      async writeFile(p, d) {
        await writeFile(p, d);
        await writeFile(join(dirname(p), 'outblob'), realQuote);
        await writeFile(join(dirname(p), 'generation'), '1\n');
      },
      rmdir: (p) => rm(p, { recursive: true }),
    };
    const config = validateConfig({
      listen: '127.0.0.1:0',
      evidence: { provider: 'configfs-tsm', configfsRoot: root },
      routes: [{ prefix: '/', target: upstreamUrl }],
      collateral: { pccsUrl: pccs.url, pcsUrl: await deadUrl() },
    });
    // Default self-check roots: the pinned Intel root, as a default client.
    const source = await createRatlsIdentitySource(config, new ConfigfsTsmProvider({ root, fs }));
    const { logger, lines } = captureLog();
    const srv = await startRatlsServer(config, { identitySource: source, logger, autoRotate: false, now: () => at });
    open.push(srv);

    expect(pccs.requests).toContain(`/tdx/certification/v4/tcb?fmspc=${q.pck.fmspc}`);
    expect(pccs.requests.some((r) => r.startsWith('/sgx/certification/v4/pckcrl?ca='))).toBe(true);
    const der = await servedCertificate(srv.port);
    expect(hasEndorsements(der)).toBe(true);
    const r = await verifyRatlsCertificate(der, { now: at });
    expect(r.errors.map((e) => e.code)).toEqual(['REPORTDATA_MISMATCH']);
    expect(r.tcbStatus).toBe('UpToDate');
    expect(r.checks.find((c) => c.name === 'collateral')?.detail).toBe('stapled');
    // The self-check saw the same thing and said so.
    expect(await metric(srv, 'ratls_self_check_ok')).toBe(0);
    expect(String(lines.find((l) => /does NOT verify/.test(String(l.msg)))?.errors)).toMatch(/REPORTDATA_MISMATCH/);
  });
});

describe('stapled CRLs survive the round trip byte for byte', () => {
  it('keeps a DER CRL whose last octet is zero, and drops only zeros past the DER length', async () => {
    // An ECDSA signature ends in 0x00 once in 256 CRLs; stripping "trailing NULs" cut such CRLs
    // short, so stapled verification failed at random ("element runs past the end").
    const c = await sim.collateral(new Date());
    const endsInZero = c.pckCrl.slice();
    endsInZero[endsInZero.length - 1] = 0;
    const back = decodeEndorsements(encodeEndorsements({ ...c, pckCrl: endsInZero, rootCaCrl: endsInZero })).collateral;
    expect(back.pckCrl).toEqual(endsInZero);
    expect(back.rootCaCrl).toEqual(endsInZero);
    // A C-style terminator after the DER (other implementations write one) is still tolerated.
    const terminated = new Uint8Array([...c.rootCaCrl, 0, 0]);
    expect(decodeEndorsements(encodeEndorsements({ ...c, rootCaCrl: terminated })).collateral.rootCaCrl).toEqual(c.rootCaCrl);
  });
});
