import type { Command } from 'commander';
import { isIP } from 'node:net';
import { type CliIo, UsageError } from '../io.ts';
import { policyFromFlags } from '../policy-flags.ts';
import { startConnectProxy } from '../../client/connect.ts';
import { verdictText } from '../../client/report.ts';
import { comparePolicy } from '../../verify/report.ts';
import { platformPinned } from '../../verify/policy-file.ts';
import { allAdvisoryIds } from '../../core/types.ts';
import { FLAGS } from '../flags.ts';

interface ConnectFlags {
  upstream: string;
  listen: string;
  policy?: string;
  root?: string[];
  nonce?: boolean;
  binding?: string;
  allowHost?: string[];
}

function parseListen(v: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d{1,5})$/.exec(v);
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535) throw new UsageError(`--listen must be HOST:PORT (e.g. 127.0.0.1:8080), got "${v}".`);
  return { host: m[1] ?? m[2]!, port };
}

function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || (isIP(host) === 4 && host.startsWith('127.'));
}

/** `ratls connect`: local verifying proxy; runs until SIGINT/SIGTERM. */
export function registerConnectCommand(program: Command, io: CliIo): void {
  program
    .command('connect')
    .description('Local plain-HTTP proxy that forwards to an RA-TLS server only while it passes attestation')
    .requiredOption('--upstream <url>', 'https://host[:port] of the RA-TLS server')
    .addOption(FLAGS.listen('127.0.0.1:8080'))
    .addOption(FLAGS.policy())
    .addOption(FLAGS.root())
    .addOption(FLAGS.binding())
    .addOption(FLAGS.nonce())
    .option(
      '--allow-host <name>',
      'also accept this Host header name (default: localhost, 127.0.0.1, [::1], the listen address); repeatable',
      (v: string, prev: string[] = []) => [...prev, v],
    )
    .action(async (flags: ConnectFlags) => {
      const listen = parseListen(flags.listen);
      const policy = policyFromFlags(flags);
      if (!isLoopback(listen.host)) {
        io.err(`ratls connect: WARNING: listening on ${listen.host}, not loopback. Traffic between clients and this proxy is plain HTTP.\n`);
      }
      let proxy;
      try {
        proxy = await startConnectProxy({
          upstream: flags.upstream,
          policy,
          listen,
          ...(flags.allowHost ? { allowedHosts: flags.allowHost } : {}),
          log: (l) => io.err(`ratls connect: ${l}\n`),
        });
      } catch (err) {
        throw new UsageError(`cannot start: ${err instanceof Error ? err.message : String(err)}`);
      }
      const s = proxy.status();
      const sim = s.lastVerified?.result.nonIntelRoot || s.lastFailure?.result.nonIntelRoot;
      io.out(`ratls connect: ${proxy.url} -> ${s.upstream}\n`);
      const last = s.lastVerified ?? s.lastFailure;
      const verdict = last
        ? verdictText(last.result, comparePolicy(policy.appraisal, last.result.quote, last.result.tcbStatus, allAdvisoryIds(last.result)))
        : 'REJECTED';
      io.out(
        `ratls connect: attestation ${s.state === 'verified' ? verdict : 'REFUSED: nothing will be forwarded until it passes'}${sim ? ' [SIMULATED root]' : ''}\n`,
      );
      io.out(
        `ratls connect: binding ${policy.freshness.binding === 'session' ? 'session (evidence bound to each upstream TLS session)' : 'CERTIFICATE ONLY: relayable if the TLS key leaks'}; platform PPID ${last?.result.quote?.ppid ?? '?'}${platformPinned(policy) ? ' (pinned)' : ' (not pinned)'}; upstream connections closed after ${policy.freshness.maxConnectionAgeSeconds ? `${policy.freshness.maxConnectionAgeSeconds} s` : 'no limit'} and re-attested\n`,
      );
      if (s.state === 'verified' && !comparePolicy(policy.appraisal, null, null, []).softwarePinned) {
        const roots = (flags.root ?? []).map((r) => ` --root ${r}`).join('');
        io.out(`ratls connect: pin it: ratls policy from --url ${flags.upstream}${roots} --out policy.yaml, then --policy policy.yaml\n`);
      }
      io.out(`ratls connect: status page ${proxy.url}/.ratls/status\n`);
      await new Promise<void>((resolve) => {
        const stop = () => {
          process.off('SIGINT', stop);
          process.off('SIGTERM', stop);
          resolve();
        };
        process.on('SIGINT', stop);
        process.on('SIGTERM', stop);
      });
      await proxy.close();
      io.setExitCode(0);
    });
}
