import { readFileSync } from 'node:fs';
import { Command, CommanderError } from 'commander';
import { type CliIo, UsageError } from './io.ts';
import { registerQuoteCommands } from './commands/quote.ts';
import { registerCertCommands } from './commands/cert.ts';
import { registerSimCommands } from './commands/sim.ts';
import { registerServeCommand } from './commands/serve.ts';
import { registerVerifyCommand } from './commands/verify.ts';
import { registerConnectCommand } from './commands/connect.ts';
import { registerPolicyCommands } from './commands/policy.ts';
import { registerAttestServiceCommand } from './commands/attest-service.ts';
import { registerEventlogCommands } from './commands/eventlog.ts';
import { registerDemoCommands } from './commands/demo.ts';
import { registerAttestCommand } from './commands/attest.ts';
import { registerTokenCommands } from './commands/token.ts';

/** The package version, read from package.json (two levels up from src/cli and from dist/cli). */
export function packageVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version?: unknown };
    return typeof pkg.version === 'string' ? pkg.version : 'unknown';
  } catch {
    return 'unknown';
  }
}

/** Builds the `ratls` program; exported so tests can run commands in-process. */
export function buildProgram(io: CliIo): Command {
  const program = new Command('ratls')
    .description('Attested TLS (RA-TLS) for Intel TDX: serve, verify, connect, attest')
    .version(`ratls-proxy ${packageVersion()}`, '-V, --version', 'print the version and exit')
    .exitOverride()
    .configureOutput({ writeOut: (s) => io.out(s), writeErr: (s) => io.err(s) })
    .showHelpAfterError();
  registerQuoteCommands(program, io);
  registerCertCommands(program, io);
  registerSimCommands(program, io);
  registerServeCommand(program, io);
  registerVerifyCommand(program, io);
  registerConnectCommand(program, io);
  registerPolicyCommands(program, io);
  registerAttestServiceCommand(program, io);
  registerEventlogCommands(program, io);
  registerAttestCommand(program, io);
  registerTokenCommands(program, io);
  registerDemoCommands(program, io);
  return program;
}

/** Runs the CLI and resolves to the process exit code. */
export async function main(argv: string[], io: CliIo = processIo()): Promise<number> {
  let exitCode = 0;
  const wrapped: CliIo = {
    ...io,
    setExitCode: (c) => {
      exitCode = c;
      io.setExitCode(c);
    },
  };
  const program = buildProgram(wrapped);
  try {
    await program.parseAsync(argv);
    return exitCode;
  } catch (err) {
    if (err instanceof CommanderError) {
      // help and version are "errors" to commander but successes to the user
      if (err.exitCode === 0 || err.code === 'commander.helpDisplayed' || err.code === 'commander.version') return 0;
      return 2;
    }
    if (err instanceof UsageError) {
      io.err(`ratls: ${err.message}\n`);
      return 2;
    }
    io.err(`ratls: ${err instanceof Error ? err.message : String(err)}\n`);
    return 2;
  }
}

function processIo(): CliIo {
  return {
    out: (s) => void process.stdout.write(s),
    err: (s) => void process.stderr.write(s),
    setExitCode: (c) => {
      process.exitCode = c;
    },
    isTty: Boolean(process.stdout.isTTY),
  };
}
