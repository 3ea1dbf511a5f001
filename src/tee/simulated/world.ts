/**
 * The simulated DCAP world on disk: a SIMULATED root CA, PCK Platform CA, PCK leaf (with Intel's
 * SGX extensions), TCB signing certificate, QE attestation key and the platform's TCB values.
 * Generated once per install into a directory the user chooses; the CA and attestation private
 * keys live there with mode 0600 and must never be committed. Node-only.
 */
import { access, open, stat, unlink } from 'node:fs/promises';
import { createHash, randomBytes } from 'node:crypto';
import { join } from 'node:path';
import * as x509 from '@peculiar/x509';
import { RatlsError } from '../../core/errors.ts';
import type { TcbStatus } from '../../core/types.ts';
import { fromHex, toHex } from '../../core/bytes.ts';
import { writeFileAtomic, writeSecretFile } from '../../core/secret-file.ts';
import { ensureTrustedDirectory, checkTrustedDirectory, readTrustedFile } from '../../core/trusted-path.ts';
import { encodeSgxExtensions, OID_SGX_EXTENSIONS } from './sgx-extension.ts';
import { SIM_NAMES, generateP256, importKeyPair, issueCert, privateKeyPem } from './pki.ts';

/** File names inside a world directory. */
export const WORLD_FILES = {
  root: 'root.pem',
  rootKey: 'root.key',
  pckCa: 'pck-platform-ca.pem',
  pckCaKey: 'pck-platform-ca.key',
  pck: 'pck.pem',
  pckKey: 'pck.key',
  tcbSigning: 'tcb-signing.pem',
  tcbSigningKey: 'tcb-signing.key',
  attestationKey: 'attestation.key',
  world: 'world.json',
  measurements: 'measurements.json',
  readme: 'README.txt',
} as const;

/** TD measurements the simulated provider puts in quotes; all lower-case hex. */
export interface SimulatedMeasurements {
  mrTd: string; // 48 bytes
  rtmr0: string;
  rtmr1: string;
  rtmr2: string;
  rtmr3: string;
  mrSeam: string; // 48 bytes
  tdAttributes: string; // 8 bytes
  xfam: string; // 8 bytes
  mrConfigId: string;
  mrOwner: string;
  mrOwnerConfig: string;
}

/** Platform values fixed at init (world.json). */
export interface WorldConfig {
  format: 'ratls-simulated-world';
  version: 1;
  createdAt: string;
  /** Random per-install value measurements are derived from. */
  seed: string;
  fmspc: string;
  pceId: string;
  ppid: string;
  platformInstanceId: string;
  sgxTcbComponents: number[];
  pceSvn: number;
  cpuSvn: string;
  teeTcbSvn: string;
  /** Status Intel-format TCB info gives the platform's current level. */
  platformTcbStatus: TcbStatus;
  qe: { mrEnclave: string; mrSigner: string; isvProdId: number; isvSvn: number; attributes: string; miscSelect: number; qeSvn: number };
  /** PCK leaf serials the PCK CRL lists (decoys; the world's own leaf is never listed). */
  revokedSerials: string[];
}

/** Options of {@link initSimulatedWorld}. */
export interface InitSimulatedWorldOptions {
  /** Time the hierarchy is dated from (default: now). CA certs are valid from a year before to 20 years after. */
  now?: Date;
  /** Measurements written to measurements.json (missing ones keep the derived defaults). */
  measurements?: Partial<SimulatedMeasurements>;
  /** TCB status of the platform's level in the simulated TCB info (default UpToDate). */
  platformTcbStatus?: TcbStatus;
}

/** What `initSimulatedWorld` made or found. */
export interface SimulatedWorldInfo {
  dir: string;
  /** Path of the simulated root certificate, the only thing a verifier needs to trust it. */
  rootPath: string;
  rootPem: string;
  /** False when DIR already held a world (it is kept, never overwritten). */
  created: boolean;
  fmspc: string;
}

/** In-memory world: certificates, keys and config. */
export interface LoadedWorld {
  dir: string;
  config: WorldConfig;
  root: x509.X509Certificate;
  rootKey: CryptoKeyPair;
  pckCa: x509.X509Certificate;
  pckCaKey: CryptoKeyPair;
  pck: x509.X509Certificate;
  pckKey: CryptoKeyPair;
  tcbSigning: x509.X509Certificate;
  tcbSigningKey: CryptoKeyPair;
  attestationKey: CryptoKeyPair;
  measurements: SimulatedMeasurements;
}

const DAY = 86_400_000;
const HEX48 = /^[0-9a-f]{96}$/;
const HEX8 = /^[0-9a-f]{16}$/;

function sha384Hex(label: string, seed: string): string {
  return createHash('sha384').update(`ratls-simulated:${label}:`).update(seed).digest('hex');
}

/** Measurements derived from the world seed, so one install always yields the same values. */
export function defaultMeasurements(config: WorldConfig): SimulatedMeasurements {
  return {
    mrTd: sha384Hex('mrtd', config.seed),
    rtmr0: sha384Hex('rtmr0', config.seed),
    rtmr1: sha384Hex('rtmr1', config.seed),
    rtmr2: sha384Hex('rtmr2', config.seed),
    rtmr3: '00'.repeat(48),
    mrSeam: sha384Hex('mrseam', config.seed),
    // SEPT_VE_DISABLE (bit 28) set, DEBUG clear: what a production TD looks like.
    tdAttributes: '0000001000000000',
    xfam: 'e702060000000000',
    mrConfigId: '00'.repeat(48),
    mrOwner: '00'.repeat(48),
    mrOwnerConfig: '00'.repeat(48),
  };
}

/** Checks user-supplied measurements; throws RatlsError EVIDENCE_PROVIDER_FAILED on bad hex. */
export function validateMeasurements(m: Partial<SimulatedMeasurements>): Partial<SimulatedMeasurements> {
  const out: Partial<SimulatedMeasurements> = {};
  for (const [k, v] of Object.entries(m) as Array<[keyof SimulatedMeasurements, string | undefined]>) {
    if (v === undefined) continue;
    const hex = v.toLowerCase();
    const re = k === 'tdAttributes' || k === 'xfam' ? HEX8 : HEX48;
    if (!re.test(hex)) {
      throw new RatlsError(
        'EVIDENCE_PROVIDER_FAILED',
        `Simulated measurement ${k} must be ${k === 'tdAttributes' || k === 'xfam' ? 8 : 48} bytes of hex, got "${v.slice(0, 20)}".`,
      );
    }
    out[k] = hex;
  }
  return out;
}

async function exists(p: string): Promise<boolean> {
  try {
    await access(p);
    return true;
  } catch {
    return false;
  }
}

async function writeSecret(path: string, text: string): Promise<void> {
  await writeSecretFile(path, text);
}

/** Public files of the world (certificates, world.json, README): atomic, never through a planted link. */
function writeFile(path: string, text: string): Promise<void> {
  return writeFileAtomic(path, text, 0o644);
}

/** The world directory holds CA and attestation keys: only its own user's directory will do. */
const WORLD_DIR = { what: 'simulated TDX world directory', kind: 'state' } as const;

/** Reads a file of a world whose directory was checked; a symbolic link planted in it is refused. */
function readWorldFile(path: string): string {
  return readTrustedFile(path, { what: 'simulated TDX world file', kind: 'state' }).toString('utf8');
}

/**
 * Creates the simulated world in `dir` unless one is already there (then it is kept as is, apart
 * from `opts.measurements`, which are merged into measurements.json). Safe against concurrent
 * callers (several test workers or processes sharing one DIR): one generates, the others wait.
 */
export async function initSimulatedWorld(dir: string, opts: InitSimulatedWorldOptions = {}): Promise<SimulatedWorldInfo> {
  // Validate before touching the disk so bad input never leaves a half-made world behind.
  if (opts.measurements) validateMeasurements(opts.measurements);
  // A directory another user made (or a link they planted) would let them read the keys or
  // point the files written below at their own targets.
  ensureTrustedDirectory(dir, WORLD_DIR);
  const worldPath = join(dir, WORLD_FILES.world);
  for (;;) {
    if (await exists(worldPath)) return existingWorld(dir, opts);
    const release = await tryLock(join(dir, LOCK_FILE));
    if (release) {
      try {
        if (await exists(worldPath)) return await existingWorld(dir, opts);
        return await generateWorld(dir, opts);
      } finally {
        await release();
      }
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

const LOCK_FILE = '.init.lock';
/** A lock older than this belongs to a generator that died; generation takes well under a second. */
const STALE_LOCK_MS = 30_000;

/** Takes an exclusive lock file; resolves to its release function, or undefined when held elsewhere. */
async function tryLock(path: string): Promise<(() => Promise<void>) | undefined> {
  try {
    const fh = await open(path, 'wx', 0o600);
    await fh.close();
    return () => unlink(path).catch(() => undefined);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    try {
      if (Date.now() - (await stat(path)).mtimeMs > STALE_LOCK_MS) await unlink(path);
    } catch {
      // raced with the holder releasing it: just try again
    }
    return undefined;
  }
}

async function existingWorld(dir: string, opts: InitSimulatedWorldOptions): Promise<SimulatedWorldInfo> {
  if (opts.measurements) await writeMeasurements(dir, opts.measurements);
  const config = JSON.parse(readWorldFile(join(dir, WORLD_FILES.world))) as WorldConfig;
  return { dir, rootPath: join(dir, WORLD_FILES.root), rootPem: readWorldFile(join(dir, WORLD_FILES.root)), created: false, fmspc: config.fmspc };
}

async function generateWorld(dir: string, opts: InitSimulatedWorldOptions): Promise<SimulatedWorldInfo> {
  const worldPath = join(dir, WORLD_FILES.world);
  const now = opts.now ?? new Date();
  const notBefore = new Date(Math.floor((now.getTime() - 365 * DAY) / 1000) * 1000);
  const notAfter = new Date(Math.floor((now.getTime() + 20 * 365 * DAY) / 1000) * 1000);

  const sgxTcbComponents = [3, 3, 2, 2, 4, 1, 0, 5, 0, 0, 0, 0, 0, 0, 0, 0];
  const config: WorldConfig = {
    format: 'ratls-simulated-world',
    version: 1,
    createdAt: now.toISOString(),
    seed: randomBytes(32).toString('hex'),
    // 0xFF first byte: no real FMSPC family uses it, so simulated collateral never matches a real platform.
    fmspc: 'ff' + randomBytes(5).toString('hex'),
    pceId: '0000',
    ppid: randomBytes(16).toString('hex'),
    platformInstanceId: randomBytes(16).toString('hex'),
    sgxTcbComponents,
    pceSvn: 13,
    cpuSvn: toHex(new Uint8Array(sgxTcbComponents)),
    // byte 0: TDX module SVN, byte 1: module major version (1 -> identity TDX_01), byte 2: late microcode.
    teeTcbSvn: '05010200000000000000000000000000',
    platformTcbStatus: opts.platformTcbStatus ?? 'UpToDate',
    qe: {
      mrEnclave: createHash('sha256').update('ratls-simulated:qe-mrenclave').digest('hex'),
      mrSigner: createHash('sha256').update('ratls-simulated:qe-mrsigner').digest('hex'),
      isvProdId: 2,
      isvSvn: 4,
      attributes: '1500000000000000e700000000000000',
      miscSelect: 0,
      qeSvn: 4,
    },
    revokedSerials: [1, 2].map(() => '1' + randomBytes(19).toString('hex').slice(1)),
  };

  const rootKey = await generateP256();
  const root = await issueCert({
    subject: SIM_NAMES.root,
    publicKey: rootKey.publicKey,
    issuer: { name: SIM_NAMES.root, key: rootKey.privateKey },
    notBefore,
    notAfter,
    ca: true,
    pathLength: 1,
  });
  const rootIssuer = { name: SIM_NAMES.root, key: rootKey.privateKey, cert: root };
  const rootCrlUrl = 'https://simulated.invalid/sgx/IntelSGXRootCA.der';
  const pckCaKey = await generateP256();
  const pckCa = await issueCert({
    subject: SIM_NAMES.pckCa,
    publicKey: pckCaKey.publicKey,
    issuer: rootIssuer,
    notBefore,
    notAfter,
    ca: true,
    pathLength: 0,
    crlUrl: rootCrlUrl,
  });
  const tcbSigningKey = await generateP256();
  const tcbSigning = await issueCert({
    subject: SIM_NAMES.tcbSigning,
    publicKey: tcbSigningKey.publicKey,
    issuer: rootIssuer,
    notBefore,
    notAfter,
    ca: false,
    crlUrl: rootCrlUrl,
  });
  const pckKey = await generateP256();
  const sgxExt = encodeSgxExtensions({
    ppid: fromHex(config.ppid)!,
    sgxTcbComponents,
    pceSvn: config.pceSvn,
    cpuSvn: fromHex(config.cpuSvn)!,
    pceId: fromHex(config.pceId)!,
    fmspc: fromHex(config.fmspc)!,
    sgxType: 1,
    platformInstanceId: fromHex(config.platformInstanceId)!,
  });
  const pck = await issueCert({
    subject: SIM_NAMES.pck,
    publicKey: pckKey.publicKey,
    issuer: { name: SIM_NAMES.pckCa, key: pckCaKey.privateKey, cert: pckCa },
    notBefore,
    notAfter,
    ca: false,
    crlUrl: 'https://simulated.invalid/sgx/certification/v4/pckcrl?ca=platform&encoding=der',
    extra: [new x509.Extension(OID_SGX_EXTENSIONS, false, sgxExt.slice().buffer)],
  });
  const attestationKey = await generateP256();

  const pem = (c: x509.X509Certificate) => c.toString('pem') + '\n';
  await writeFile(join(dir, WORLD_FILES.root), pem(root));
  await writeFile(join(dir, WORLD_FILES.pckCa), pem(pckCa));
  await writeFile(join(dir, WORLD_FILES.pck), pem(pck));
  await writeFile(join(dir, WORLD_FILES.tcbSigning), pem(tcbSigning));
  await writeSecret(join(dir, WORLD_FILES.rootKey), await privateKeyPem(rootKey.privateKey));
  await writeSecret(join(dir, WORLD_FILES.pckCaKey), await privateKeyPem(pckCaKey.privateKey));
  await writeSecret(join(dir, WORLD_FILES.pckKey), await privateKeyPem(pckKey.privateKey));
  await writeSecret(join(dir, WORLD_FILES.tcbSigningKey), await privateKeyPem(tcbSigningKey.privateKey));
  await writeSecret(join(dir, WORLD_FILES.attestationKey), await privateKeyPem(attestationKey.privateKey));
  await writeFile(
    join(dir, WORLD_FILES.readme),
    'SIMULATED TDX/DCAP world generated by `ratls sim init`. NOT Intel. Never trust root.pem in production.\n' +
      'The *.key files are the simulated CA and attestation private keys: keep them private and never commit this directory.\n',
  );
  // If DIR sits inside a git checkout, git ignores the whole world, private keys included.
  await writeFile(join(dir, '.gitignore'), '# SIMULATED TDX world: private keys, never commit\n*\n');
  if (opts.measurements) await writeMeasurements(dir, opts.measurements);
  // world.json last: its presence marks a complete world.
  await writeFile(worldPath, JSON.stringify(config, null, 2) + '\n');
  return { dir, rootPath: join(dir, WORLD_FILES.root), rootPem: pem(root), created: true, fmspc: config.fmspc };
}

async function writeMeasurements(dir: string, m: Partial<SimulatedMeasurements>): Promise<void> {
  const path = join(dir, WORLD_FILES.measurements);
  const current = (await exists(path)) ? (JSON.parse(readWorldFile(path)) as Partial<SimulatedMeasurements>) : {};
  await writeFile(path, JSON.stringify({ ...current, ...validateMeasurements(m) }, null, 2) + '\n');
}

/** Loads a world created by {@link initSimulatedWorld}. */
export async function loadWorld(dir: string): Promise<LoadedWorld> {
  const f = (n: string) => join(dir, n);
  if (!(await exists(f(WORLD_FILES.world)))) {
    throw new RatlsError('EVIDENCE_PROVIDER_UNAVAILABLE', `No simulated TDX world in ${dir}; create one with \`ratls sim init --dir ${dir}\`.`);
  }
  checkTrustedDirectory(dir, WORLD_DIR);
  try {
    const config = JSON.parse(readWorldFile(f(WORLD_FILES.world))) as WorldConfig;
    if (config.format !== 'ratls-simulated-world' || config.version !== 1) throw new Error('unknown world.json format');
    const cert = async (n: string) => new x509.X509Certificate(readWorldFile(f(n)));
    const key = async (n: string) => importKeyPair(readWorldFile(f(n)));
    let measurements = defaultMeasurements(config);
    if (await exists(f(WORLD_FILES.measurements))) {
      const user = JSON.parse(readWorldFile(f(WORLD_FILES.measurements))) as Partial<SimulatedMeasurements>;
      measurements = { ...measurements, ...validateMeasurements(user) };
    }
    return {
      dir,
      config,
      root: await cert(WORLD_FILES.root),
      rootKey: await key(WORLD_FILES.rootKey),
      pckCa: await cert(WORLD_FILES.pckCa),
      pckCaKey: await key(WORLD_FILES.pckCaKey),
      pck: await cert(WORLD_FILES.pck),
      pckKey: await key(WORLD_FILES.pckKey),
      tcbSigning: await cert(WORLD_FILES.tcbSigning),
      tcbSigningKey: await key(WORLD_FILES.tcbSigningKey),
      attestationKey: await key(WORLD_FILES.attestationKey),
      measurements,
    };
  } catch (err) {
    if (err instanceof RatlsError) throw err;
    throw new RatlsError(
      'EVIDENCE_PROVIDER_FAILED',
      `The simulated TDX world in ${dir} is incomplete or corrupt (${err instanceof Error ? err.message : String(err)}); delete it and run \`ratls sim init\` again.`,
    );
  }
}
