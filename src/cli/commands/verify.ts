import type { Command } from 'commander';
import { type CliIo, UsageError } from '../io.ts';
import { policyFromFlags } from '../policy-flags.ts';
import { probe } from '../../client/probe.ts';
import { renderReport } from '../../client/report.ts';
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

/** `ratls verify https://host[:port]`: connect, attest, report. Exit 0 pass, 1 rejected, 2 usage/connection. */
export function registerVerifyCommand(program: Command, io: CliIo): void {
  program
    .command('verify')
    .description('Connect to an RA-TLS server and verify its attestation (exit 0 pass, 1 rejected, 2 usage or connection error)')
    .argument('<url>', 'https://host[:port]')
    .option('--policy <file>', 'policy file (YAML or JSON); default: Intel root, UpToDate, no DEBUG')
    .option('--root <pem>', "trust this root certificate file instead of the policy's roots (repeatable)", (v: string, prev: string[] = []) => [...prev, v])
    .option('--binding <kind>', 'session (default: evidence bound to this TLS session) or certificate (the key only; relayable if the TLS key leaks)')
    .option('--nonce', 'with --binding certificate: also do a nonce round trip to /.well-known/ratls/evidence (session evidence already carries a nonce)')
    .option('--json', 'print the verification result as JSON')
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
          }),
        );
      }
      io.setExitCode(event.result.ok ? 0 : 1);
    });
}
