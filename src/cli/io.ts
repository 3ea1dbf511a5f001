/** What a command needs from its process: output streams and a way to set the exit code. */
export interface CliIo {
  out(text: string): void;
  err(text: string): void;
  /** 0 ok, 1 verification or policy rejected, 2 usage error or unreadable input. */
  setExitCode(code: number): void;
  /** True when stdout is a terminal (colours allowed). */
  isTty: boolean;
  /** All of standard input, for commands that read it (default: the process's stdin). */
  readStdin?: () => Promise<string>;
}

/** Thrown by commands for usage errors and unreadable files; main prints it and exits 2. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

/**
 * Parses a `--at` flag: an explicit ISO 8601 date or date-time (so "2025" or locale strings are not
 * silently accepted); absent means now.
 */
export function parseAt(at: string | undefined): Date {
  if (at === undefined) return new Date();
  const d = /^\d{4}-\d{2}-\d{2}(T[\d:.]+(Z|[+-]\d{2}:?\d{2})?)?$/.test(at) ? new Date(at) : new Date(NaN);
  if (Number.isNaN(d.getTime())) throw new UsageError(`--at must be an ISO 8601 time such as 2025-07-19T10:00:00Z, got "${at}".`);
  return d;
}
