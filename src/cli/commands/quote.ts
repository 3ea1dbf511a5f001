import type { Command } from 'commander';
import type { CliIo } from '../io.ts';

/** Placeholder until the `quote` command lands. */
export function registerQuoteCommands(_program: Command, _io: CliIo): void {}
