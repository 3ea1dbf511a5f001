import type { Command } from 'commander';
import { type CliIo, UsageError } from '../io.ts';
import { FLAGS } from '../flags.ts';
import { policyFromFlags } from '../policy-flags.ts';
import { probe } from '../../client/probe.ts';
import { policyCheckJson, renderReport } from '../../client/report.ts';
import { RatlsError } from '../../core/errors.ts';
import { platformPinned } from '../../verify/policy-file.ts';

interface VerifyFlags {
  policy?: string;
  root?: string[];
  nonce?: boolean;
  binding?: string;
  json?: boolean;
  timeout: string;
}

/** The commands that pin what `target` presents, with the same roots, for the report. */
export function pinCommands(source: { url: string } | { cert: string }, root: string[] | undefined): string[] {
  const roots = (root ?? []).map((r) => ` --root ${r}`).join('');
  return 'url' in source
    ? [`ratls policy from --url ${source.url}${roots} --out policy.yaml`, `ratls verify ${source.url} --policy policy.yaml`]
    : [`ratls policy from --cert ${source.cert}${roots} --out policy.yaml`, `ratls cert verify --cert ${source.cert} --policy policy.yaml`];
}

/** `ratls verify https://host[:port]`: connect, attest, report. Exit 0 pass, 1 rejected, 2 usage/connection. */
export function registerVerifyCommand(program: Command, io: CliIo): void {
  program
    .command('verify')
    .description('Connect to an RA-TLS server and verify its attestation (exit 0 pass, 1 rejected, 2 usage or connection error)')
    .argument('<url>', 'https://host[:port]')
    .addOption(FLAGS.policy())
    .addOption(FLAGS.root())
    .addOption(FLAGS.binding())
    .addOption(FLAGS.nonce())
    .addOption(FLAGS.json())
    .option('--timeout <ms>', 'connection timeout in milliseconds', '15000')
    .action(async (url: string, flags: VerifyFlags) => {
      const policy = policyFromFlags(flags);
      const timeoutMs = Number(flags.timeout);
      if (!Number.isFinite(timeoutMs) || timeoutMs <= 0) throw new UsageError('--timeout must be a positive number of milliseconds.');
      let event;
      try {
        event = await probe(url, policy, { timeoutMs });
      } catch (err) {
        if (err instanceof RatlsError) {
          if (flags.json) io.out(JSON.stringify({ ok: false, errors: [err.toJSON()] }, null, 2) + '\n');
          else io.err(`ratls verify: ${err.code}: ${err.message}\n`);
          io.setExitCode(2);
          return;
        }
        throw err;
      }
      if (flags.json) {
        io.out(
          JSON.stringify(
            {
              ...event.result,
              target: url,
              binding: policy.freshness.binding,
              sessionBound: event.sessionBound === true,
              ...(event.session ? { session: event.session } : {}),
              nonceVerified: event.nonceVerified,
              policyCheck: policyCheckJson(event.result, policy.appraisal),
            },
            null,
            2,
          ) + '\n',
        );
      } else {
        io.out(
          renderReport(event.result, {
            target: url,
            nonceRequested: policy.freshness.requireNonce,
            nonceVerified: event.nonceVerified,
            colour: io.isTty,
            binding: policy.freshness.binding,
            sessionBound: event.sessionBound === true,
            platformPinned: platformPinned(policy),
            policy: policy.appraisal,
            pinCommands: pinCommands({ url }, flags.root),
          }),
        );
      }
      io.setExitCode(event.result.ok ? 0 : 1);
    });
}
