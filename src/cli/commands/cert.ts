/**
 * `ratls cert issue` and `ratls cert verify`: make an RA-TLS certificate from an evidence provider
 * (for tests and demos; the proxy makes its own in memory) and check one offline.
 */
import { writeFile } from 'node:fs/promises';
import { Option, type Command } from 'commander';
import { type CliIo, UsageError, parseAt } from '../io.ts';
import { readCertificateInput } from '../cert-file.ts';
import { policyFromFlags } from '../policy-flags.ts';
import { selectEvidenceProvider } from '../../tee/select.ts';
import { createRatlsIdentity } from '../../ratls/identity.ts';
import { verifyRatlsCertificate, type RatlsVerificationResult } from '../../ratls/verify-cert.ts';
import { collateralSourcesFromSettings } from '../../collateral/from-settings.ts';
import { loadCollateral } from '../../collateral/file.ts';
import { RatlsError } from '../../core/errors.ts';
import { writeSecretFile } from '../../core/secret-file.ts';
import { policyCheckJson, renderReport } from '../../client/report.ts';
import type { AppraisalPolicy, Collateral } from '../../core/types.ts';
import { expectedNonceFlag, fileFlagOrArgument, FLAGS } from '../flags.ts';
import { pinCommands } from './verify.ts';

function parseInt10(v: string, name: string): number {
  if (!/^\d+$/.test(v)) throw new UsageError(`${name} must be a whole number, got "${v}".`);
  return Number(v);
}

interface IssueOpts {
  simulate?: boolean;
  simDir?: string;
  configfsRoot?: string;
  outCert: string;
  outKey?: string;
  host?: string[];
  keyAlg: string;
  validity: string;
  profile: string;
  staple: boolean;
}

interface VerifyOpts {
  cert: string;
  root?: string[];
  at?: string;
  policy?: string;
  collateral?: string;
  nonce?: string;
  expectNonce?: string;
  maxAge?: string;
  json?: boolean;
}

/** The readable report of `ratls cert verify`: the one report style of the CLI. */
export function renderCertResult(
  r: RatlsVerificationResult,
  now: Date,
  ctx: { target?: string; policy?: AppraisalPolicy; root?: string[]; colour?: boolean } = {},
): string {
  const target = ctx.target ?? 'the certificate';
  return renderReport(r, {
    target,
    kind: 'certificate',
    nonceRequested: false,
    nonceVerified: false,
    colour: ctx.colour ?? false,
    at: now,
    ...(ctx.policy ? { policy: ctx.policy } : {}),
    pinCommands: pinCommands({ cert: target }, ctx.root),
  });
}

/** Registers `cert issue` and `cert verify`. */
export function registerCertCommands(program: Command, io: CliIo): void {
  const cert = program.command('cert').description('Issue and verify RA-TLS certificates');

  cert
    .command('issue')
    .description('Issue an RA-TLS certificate from the TDX evidence provider (key output for tests and demos only)')
    .addOption(FLAGS.simulate())
    .addOption(FLAGS.simDir())
    .option('--configfs-root <dir>', 'configfs-tsm mount (default /sys/kernel/config/tsm)')
    .requiredOption('--out-cert <file>', 'where to write the certificate (PEM)')
    .option('--out-key <file>', 'ALSO write the private key (PKCS#8 PEM, mode 0600): tests and demos only')
    .addOption(FLAGS.host())
    .addOption(FLAGS.keyAlg().default('P-256'))
    .option('--validity <seconds>', 'certificate lifetime in seconds', '86400')
    .addOption(FLAGS.profile().default('ccc'))
    .option('--no-staple', 'do not staple collateral (2.23.133.5.4.2)')
    .action(async (o: IssueOpts) => {
      if (o.keyAlg !== 'P-256' && o.keyAlg !== 'P-384') throw new UsageError('--key-alg must be P-256 or P-384.');
      if (o.profile !== 'ccc' && o.profile !== 'dstack') throw new UsageError('--profile must be ccc or dstack.');
      const validitySeconds = parseInt10(o.validity, '--validity');
      try {
        const provider = await selectEvidenceProvider({
          ...(o.simulate ? { simulate: true } : {}),
          ...(o.simDir ? { simDir: o.simDir } : {}),
          ...(o.configfsRoot ? { configfsRoot: o.configfsRoot } : {}),
        });
        const id = await createRatlsIdentity({
          provider,
          hosts: o.host ?? [],
          keyAlg: o.keyAlg,
          validitySeconds,
          stapleCollateral: o.staple,
          profile: o.profile,
        });
        await writeFile(o.outCert, id.certPem);
        if (o.outKey) await writeSecretFile(o.outKey, id.keyPem);
        const sim = id.simulated ? ' SIMULATED' : '';
        io.out(
          `Issued${sim} RA-TLS certificate (${id.profile}, ${o.keyAlg}, provider ${id.providerName})\n` +
            `  file:    ${o.outCert}\n  sha256:  ${id.fingerprintSha256}\n  valid:   ${id.notBefore.toISOString()} .. ${id.notAfter.toISOString()}\n` +
            (o.outKey ? `  key:     ${o.outKey} (test/demo only; keep it private)\n` : '') +
            (id.simulated && o.simDir ? `  verify with: ratls cert verify --cert ${o.outCert} --root ${o.simDir}/root.pem\n` : ''),
        );
        io.setExitCode(0);
      } catch (err) {
        if (err instanceof RatlsError) {
          io.err(`ratls: ${err.code}: ${err.message}\n`);
          io.setExitCode(2);
          return;
        }
        throw err;
      }
    });

  cert
    .command('verify')
    .description('Verify an RA-TLS certificate offline (stapled collateral, --collateral or policy sources)')
    .argument('[file]', 'the certificate, as --cert')
    .addOption(FLAGS.cert())
    .addOption(FLAGS.policy())
    .addOption(FLAGS.root())
    .addOption(FLAGS.at())
    .addOption(FLAGS.collateral())
    .addOption(FLAGS.expectNonce())
    .addOption(new Option('--nonce <hex>').hideHelp())
    .option('--max-age <seconds>', 'reject certificates issued longer ago than this')
    .addOption(FLAGS.json())
    .action(async (file: string | undefined, opts: Omit<VerifyOpts, 'cert'> & { cert?: string }) => {
      const o: VerifyOpts = { ...opts, cert: fileFlagOrArgument(opts.cert, file, '--cert') };
      const { der, note } = await readCertificateInput(o.cert);
      // on stderr, so that --json output stays one document
      if (note) io.err(`ratls: note: ${note}\n`);
      const now = parseAt(o.at);
      let expectedNonce: Uint8Array | undefined;
      // --nonce <hex> is the old spelling; ratls verify's --nonce is a switch, so this one is named apart
      const nonceHex = o.expectNonce ?? o.nonce;
      if (nonceHex !== undefined) {
        expectedNonce = expectedNonceFlag(nonceHex);
      }
      const policy = policyFromFlags({ ...(o.policy ? { policy: o.policy } : {}), ...(o.root ? { root: o.root } : {}) });
      let collateral: Collateral | undefined;
      try {
        if (o.collateral) collateral = await loadCollateral(o.collateral);
      } catch (err) {
        throw new UsageError(err instanceof Error ? err.message : String(err));
      }
      const maxAge = o.maxAge !== undefined ? parseInt10(o.maxAge, '--max-age') : policy.freshness.maxCertAgeSeconds;
      const result = await verifyRatlsCertificate(der, {
        now,
        trustedRoots: policy.trustedRoots,
        policy: policy.appraisal,
        ...(collateral ? { collateral } : {}),
        collateralSources: o.policy ? collateralSourcesFromSettings(policy.collateral) : [],
        ...(expectedNonce ? { expectedNonce } : {}),
        ...(maxAge !== undefined ? { maxCertAgeSeconds: maxAge } : {}),
      });
      io.out(
        o.json
          ? `${JSON.stringify({ ...result, policyCheck: policyCheckJson(result, policy.appraisal) })}\n`
          : renderCertResult(result, now, { target: o.cert, policy: policy.appraisal, ...(o.root ? { root: o.root } : {}), colour: io.isTty }),
      );
      io.setExitCode(result.ok ? 0 : 1);
    });
}
