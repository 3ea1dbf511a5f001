/**
 * `ratls attest-service`: runs the attestation service (POST /v1/attest -> signed JWT) until
 * SIGINT/SIGTERM. Config: YAML file < flags. See docs/attest-service.md.
 */
import { dirname, resolve } from 'node:path';
import type { Command } from 'commander';
import { pino } from 'pino';
import { type CliIo, UsageError } from '../io.ts';
import { readServiceConfigFile, resolveServiceConfig, ServiceConfigError, type AttestServiceFile } from '../../service/config.ts';
import { startAttestService } from '../../service/server.ts';
import type { SigningAlg } from '../../service/keys.ts';
import { simulatedWorldSupport } from '../../service/simulated.ts';
import { FLAGS } from '../flags.ts';

interface Flags {
  config?: string;
  listen?: string;
  keyDir?: string;
  policies?: string;
  defaultPolicy?: string;
  collateralDir?: string[];
  collateralCache?: string;
  pccsUrl?: string;
  offline?: boolean;
  root?: string[];
  tokenTtl?: string;
  alg?: string;
  issuer?: string;
  audience?: string;
  rotateKey?: boolean;
  keyRotation?: string;
  rateLimit?: string;
  bodyLimit?: string;
  adminTokenFile?: string;
  tlsCert?: string;
  tlsKey?: string;
  verifyAt?: string;
  simulatedWorld?: string;
}

const collect = (v: string, prev: string[] = []) => [...prev, v];

/** Registers `ratls attest-service`. */
export function registerAttestServiceCommand(program: Command, io: CliIo): void {
  program
    .command('attest-service')
    .description(
      'Run the attestation service: verify TDX quotes / RA-TLS certificates, return signed JWT results (listens on 127.0.0.1:8444 by default; --root applies to every policy)',
    )
    .addOption(FLAGS.config())
    .addOption(FLAGS.listen())
    .option('--key-dir <dir>', 'signing key directory, created 0700 (default ./.ratls/attest-service/keys)')
    .option('--policies <dir>', 'directory of policy files (default: the bundled config/policies)')
    .option('--default-policy <name>', 'policy for requests that name none (default "default")')
    .option('--collateral-dir <dir>', 'local collateral directory (repeatable)', collect)
    .option('--collateral-cache <dir>', 'disk cache for PCCS/PCS collateral (default: next to the key dir)')
    .option('--pccs-url <url>', 'PCCS base URL, tried before Intel PCS')
    .option('--offline', 'never fetch collateral over the network')
    .addOption(FLAGS.root())
    .option('--token-ttl <seconds>', 'token lifetime (default 300)')
    .option('--alg <alg>', 'signing algorithm of new keys: ES256 or ES384 (default ES256)')
    .addOption(FLAGS.issuer())
    .addOption(FLAGS.audience())
    .option('--rotate-key', 'retire the current signing key and create a new one at start')
    .option('--key-rotation <seconds>', 'rotate keys older than this (default 2592000 = 30 days; 0 = never)')
    .option('--rate-limit <rate/burst>', 'per-client limit, requests per second and burst, e.g. 20/40; "off" disables')
    .option('--body-limit <bytes>', 'maximum request body (default 262144)')
    .option('--admin-token-file <file>', 'enables POST /v1/admin/rotate-key with this bearer token')
    .option('--tls-cert <file>', 'serve HTTPS with this certificate (PEM)')
    .option('--tls-key <file>', 'private key for --tls-cert (PEM)')
    .option('--simulated-world <dir>', 'DEVELOPMENT ONLY: trust this simulated TDX world (`ratls sim init`) and serve its collateral')
    .option('--verify-at <iso-time>', 'TESTING ONLY: appraise evidence at this fixed time (tokens say so in x-ratls-verified-at)')
    .action(async (flags: Flags) => {
      let config;
      try {
        const file = flags.config ? readServiceConfigFile(flags.config) : {};
        const over = flagsToFile(flags);
        config = resolveServiceConfig(file, over);
        if (!config.collateralCacheDir && !config.offline) config.collateralCacheDir = resolve(dirname(config.keyDir), 'collateral-cache');
        if (flags.rotateKey) config.rotateKey = true;
        if (flags.verifyAt) {
          const t = new Date(flags.verifyAt);
          if (Number.isNaN(t.getTime())) throw new UsageError(`--verify-at "${flags.verifyAt}" is not an ISO time.`);
          config.verifyAt = () => t;
          io.err(`ratls attest-service: WARNING: evidence is appraised at the fixed time ${t.toISOString()} (--verify-at); never use this in production\n`);
        }
      } catch (err) {
        if (err instanceof ServiceConfigError) throw new UsageError(err.message);
        throw err;
      }
      if (flags.simulatedWorld) {
        const sim = await simulatedWorldSupport(resolve(flags.simulatedWorld));
        // the simulated root is added to (not substituted for) any --root, so both kinds can be shown side by side
        config.roots = [...(config.roots ?? []), sim.rootPem];
        config.collateralSources = [sim.source];
      }
      const logger = pino({ name: 'ratls-attest-service' }, pino.destination(2));
      config.logger = logger;
      config.processMetrics = true;
      const svc = await startAttestService(config);
      if (config.roots) io.err('ratls attest-service: SIMULATED/custom roots configured: tokens carry "x-ratls-simulated": true\n');
      io.out(`ratls attest-service listening on ${svc.url} (kid ${svc.keys.current().kid}, ${svc.keys.current().alg})\n`);
      io.out(`  POST ${svc.url}/v1/attest   GET ${svc.url}/.well-known/jwks.json   GET ${svc.url}/v1/policies\n`);
      await new Promise<void>((resolveStop) => {
        const stop = () => {
          process.off('SIGINT', stop);
          process.off('SIGTERM', stop);
          void svc.close().finally(resolveStop);
        };
        process.on('SIGINT', stop);
        process.on('SIGTERM', stop);
      });
    });
}

function flagsToFile(f: Flags): Partial<AttestServiceFile> {
  const out: Partial<AttestServiceFile> = {};
  if (f.listen) out.listen = f.listen;
  if (f.keyDir) out.keyDir = resolve(f.keyDir);
  if (f.policies) out.policiesDir = resolve(f.policies);
  if (f.defaultPolicy) out.defaultPolicy = f.defaultPolicy;
  if (f.collateralDir) out.collateralDirs = f.collateralDir.map((d) => resolve(d));
  if (f.collateralCache) out.collateralCacheDir = resolve(f.collateralCache);
  if (f.pccsUrl) out.pccsUrl = f.pccsUrl;
  if (f.offline) out.offline = true;
  if (f.root) out.roots = f.root.map((p) => resolve(p));
  if (f.tokenTtl) out.tokenTtlSeconds = Number(f.tokenTtl);
  if (f.alg) out.alg = f.alg.toUpperCase() as SigningAlg;
  if (f.issuer) out.issuer = f.issuer;
  if (f.audience) out.audience = f.audience;
  if (f.keyRotation) out.keyRotationSeconds = Number(f.keyRotation);
  if (f.rateLimit) {
    if (f.rateLimit === 'off') out.rateLimit = false;
    else {
      const m = /^(\d+(?:\.\d+)?)\/(\d+)$/.exec(f.rateLimit);
      if (!m) throw new UsageError(`--rate-limit "${f.rateLimit}" must be RATE/BURST (e.g. 20/40) or "off".`);
      out.rateLimit = { ratePerSecond: Number(m[1]), burst: Number(m[2]) };
    }
  }
  if (f.bodyLimit) out.bodyLimitBytes = Number(f.bodyLimit);
  if (f.adminTokenFile) out.adminTokenFile = resolve(f.adminTokenFile);
  if (f.tlsCert || f.tlsKey) {
    if (!f.tlsCert || !f.tlsKey) throw new UsageError('--tls-cert and --tls-key go together.');
    out.tls = { cert: resolve(f.tlsCert), key: resolve(f.tlsKey) };
  }
  return out;
}
