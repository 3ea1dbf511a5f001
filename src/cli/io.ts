/** What a command needs from its process: output streams and a way to set the exit code. */
export interface CliIo {
  out(text: string): void;
  err(text: string): void;
  /** 0 ok, 1 verification or policy rejected, 2 usage error or unreadable input. */
  setExitCode(code: number): void;
  /** True when stdout is a terminal (colours allowed). */
  isTty: boolean;
}

/** Thrown by commands for usage errors and unreadable files; main prints it and exits 2. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}
