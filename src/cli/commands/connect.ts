import type { Command } from 'commander';
import type { CliIo } from '../io.ts';

/** Placeholder until the `connect` command lands. */
export function registerConnectCommand(_program: Command, _io: CliIo): void {}
