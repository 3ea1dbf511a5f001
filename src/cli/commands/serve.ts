import type { Command } from 'commander';
import type { CliIo } from '../io.ts';

/** Placeholder until the `serve` command lands. */
export function registerServeCommand(_program: Command, _io: CliIo): void {}
