/** Runs the `ratls` CLI in-process with captured output. */
import { main } from '../../src/cli/main.ts';
import type { CliIo } from '../../src/cli/io.ts';

export interface CliRun {
  code: number;
  out: string;
  err: string;
}

/** `ratls ARGS...` as main() runs it, stdout and stderr captured, never a TTY. */
export async function runCli(...args: string[]): Promise<CliRun> {
  let out = '';
  let err = '';
  const io: CliIo = { out: (s) => void (out += s), err: (s) => void (err += s), setExitCode: () => undefined, isTty: false };
  const code = await main(['node', 'ratls', ...args], io);
  return { code, out, err };
}
