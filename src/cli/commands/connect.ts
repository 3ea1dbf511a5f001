import type { Command } from 'commander';
import { isIP } from 'node:net';
import { type CliIo, UsageError } from '../io.ts';
import { policyFromFlags } from '../policy-flags.ts';
import { startConnectProxy } from '../../client/connect.ts';

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
    .option('--listen <host:port>', 'where to listen (keep it on loopback)', '127.0.0.1:8080')
    .option('--policy <file>', 'policy file (YAML or JSON); default: Intel root, UpToDate, no DEBUG')
    .option('--root <pem>', "trust this root certificate file instead of the policy's roots (repeatable)", (v: string, prev: string[] = []) => [...prev, v])
    .option('--binding <kind>', 'session (default: evidence bound to each upstream TLS session) or certificate (the key only; relayable if the TLS key leaks)')
    .option('--nonce', 'with --binding certificate: require a nonce round trip on every new upstream connection')
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
      io.out(
        `ratls connect: attestation ${s.state === 'verified' ? `VERIFIED (TCB ${s.lastVerified?.result.tcbStatus ?? '?'}, MRTD ${s.lastVerified?.result.quote?.mrTd.slice(0, 16) ?? '?'}..., platform PPID ${s.lastVerified?.result.quote?.ppid ?? '?'})` : 'REFUSED: nothing will be forwarded until it passes'}${sim ? ' [SIMULATED root]' : ''}\n`,
      );
      io.out(
        `ratls connect: binding ${policy.freshness.binding === 'session' ? 'session (evidence bound to each upstream TLS session)' : 'CERTIFICATE ONLY: relayable if the TLS key leaks'}; upstream connections closed after ${policy.freshness.maxConnectionAgeSeconds ? `${policy.freshness.maxConnectionAgeSeconds} s` : 'no limit'} and re-attested\n`,
      );
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
