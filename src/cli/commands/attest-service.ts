import type { Command } from 'commander';
import type { CliIo } from '../io.ts';

/** Placeholder until the `attest-service` command lands. */
export function registerAttestServiceCommand(_program: Command, _io: CliIo): void {}
