import type { Command } from 'commander';
import type { CliIo } from '../io.ts';

/** Placeholder until the `cert` command lands. */
export function registerCertCommands(_program: Command, _io: CliIo): void {}
