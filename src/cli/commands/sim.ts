import type { Command } from 'commander';
import type { CliIo } from '../io.ts';

/** Placeholder until the `sim` command lands. */
export function registerSimCommands(_program: Command, _io: CliIo): void {}
