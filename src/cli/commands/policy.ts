import type { Command } from 'commander';
import type { CliIo } from '../io.ts';

/** Placeholder until the `policy` command lands. */
export function registerPolicyCommands(_program: Command, _io: CliIo): void {}
