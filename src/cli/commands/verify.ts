import type { Command } from 'commander';
import type { CliIo } from '../io.ts';

/** Placeholder until the `verify` command lands. */
export function registerVerifyCommand(_program: Command, _io: CliIo): void {}
