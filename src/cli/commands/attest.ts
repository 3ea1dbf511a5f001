/**
 * `ratls attest https://vm:8443 --service URL`: the delegated flow in one command. Fresh evidence
 * for our nonce from the VM, appraised by the attestation service, and its token verified here.
 * Exit 0 pass, 1 refused, 2 usage or connection error.
 */
import type { Command } from 'commander';
import { type CliIo, UsageError } from '../io.ts';
import { FLAGS } from '../flags.ts';
import { policyFromFlags } from '../policy-flags.ts';
import { attestViaService } from '../../client/attest-via-service.ts';
import { attestPolicyComparison, renderAttestReport } from '../../client/attest-report.ts';
import { RatlsError } from '../../core/errors.ts';

interface AttestFlags {
  service: string;
  servicePolicy?: string;
  policy?: string;
  root?: string[];
  issuer?: string;
  audience?: string;
  json?: boolean;
  timeout: string;
}

/** The commands that pin what `url` presents and attest it again with them. */
function pinCommands(url: string, service: string, root: string[] | undefined): string[] {
  const roots = (root ?? []).map((r) => ` --root ${r}`).join('');
  return [`ratls policy from --url ${url}${roots} --out policy.yaml`, `ratls attest ${url} --service ${service} --policy policy.yaml${roots}`];
}

/** Registers `ratls attest`. */
export function registerAttestCommand(program: Command, io: CliIo): void {
  program
    .command('attest')
    .description(
      'Attest a server through an attestation service: fresh evidence for a nonce from the server, appraised by `ratls attest-service`, its signed token verified (exit 0 pass, 1 refused, 2 usage or connection error)',
    )
    .argument('<url>', 'https://host[:port] of the RA-TLS server')
    .requiredOption('--service <url>', 'the attestation service, https://host[:port] (plain http only to this machine)')
    .addOption(FLAGS.servicePolicy())
    .addOption(FLAGS.policy())
    .addOption(FLAGS.root())
    .addOption(FLAGS.issuer())
    .addOption(FLAGS.audience())
    .addOption(FLAGS.json())
    .option('--timeout <ms>', 'connection timeout in milliseconds', '15000')
    .action(async (url: string, flags: AttestFlags) => {
      const policy = policyFromFlags(flags);
      const timeoutMs = Number(flags.timeout);
      if (!Number.isFinite(timeoutMs) || timeoutMs <= 0) throw new UsageError('--timeout must be a positive number of milliseconds.');
      let a;
      try {
        a = await attestViaService(url, {
          service: flags.service,
          policy,
          timeoutMs,
          ...(flags.servicePolicy ? { servicePolicy: flags.servicePolicy } : {}),
          ...(flags.issuer ? { issuer: flags.issuer } : {}),
          ...(flags.audience ? { audience: flags.audience } : {}),
        });
      } catch (err) {
        if (err instanceof RatlsError) {
          if (flags.json) io.out(JSON.stringify({ ok: false, target: url, service: flags.service, errors: [err.toJSON()] }, null, 2) + '\n');
          else io.err(`ratls attest: ${err.code}: ${err.message}\n`);
          io.setExitCode(2);
          return;
        }
        throw err;
      }
      if (flags.json) io.out(JSON.stringify({ ...a, policyCheck: attestPolicyComparison(a, policy.appraisal) }, null, 2) + '\n');
      else io.out(renderAttestReport(a, { colour: io.isTty, policy: policy.appraisal, pinCommands: pinCommands(url, a.service, flags.root) }));
      io.setExitCode(a.ok ? 0 : 1);
    });
}
