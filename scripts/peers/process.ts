/**
 * Child processes for the real peers: each in its own process group (so a server's own children,
 * like Ollama's model runner, go down with it), output kept in a log file and a bounded tail, and
 * every group still running killed when this Node process exits, also after a failed test.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, type WriteStream } from 'node:fs';

const TAIL_BYTES = 64 * 1024;
const live = new Set<number>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const pgid of live) {
      try {
        process.kill(-pgid, 'SIGKILL');
      } catch {}
    }
  });
}

export interface PeerProcess {
  readonly name: string;
  readonly pid: number;
  readonly logFile: string;
  /** The last 64 KiB of stdout and stderr, interleaved. */
  tail(): string;
  /** Resolves with the first output line matching `re`; rejects if the process exits first or time runs out. */
  waitForLine(re: RegExp, timeoutMs: number): Promise<RegExpExecArray>;
  /** Settles when the process has exited (exit code, or the signal's name). */
  readonly exited: Promise<number | string>;
  hasExited(): boolean;
  /** SIGTERM to the group, SIGKILL to whatever is left after `graceMs`. */
  stop(graceMs?: number): Promise<void>;
}

export interface StartOptions {
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  logFile: string;
}

export function startProcess(name: string, cmd: string, args: string[], opts: StartOptions): PeerProcess {
  installExitHook();
  const log: WriteStream = createWriteStream(opts.logFile, { flags: 'a' });
  const child: ChildProcess = spawn(cmd, args, {
    cwd: opts.cwd,
    env: opts.env ?? process.env,
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  if (child.pid === undefined) throw new Error(`${name}: could not start ${cmd}`);
  const pid = child.pid;
  live.add(pid);
  let tail = '';
  let partial = '';
  const watchers = new Set<(line: string) => void>();
  const onData = (d: Buffer): void => {
    const s = d.toString('utf8');
    log.write(s);
    tail = (tail + s).slice(-TAIL_BYTES);
    const lines = (partial + s).split('\n');
    partial = lines.pop() ?? '';
    for (const line of lines) for (const w of watchers) w(line);
  };
  child.stdout!.on('data', onData);
  child.stderr!.on('data', onData);
  let done = false;
  const exited = new Promise<number | string>((resolve) => {
    child.on('exit', (code, signal) => {
      done = true;
      resolve(code ?? signal ?? 'unknown');
    });
    child.on('error', (err) => {
      done = true;
      tail += `\n${name}: ${err.message}\n`;
      resolve(err.message);
    });
  });
  void exited.then(() => log.end());

  const waitForLine = (re: RegExp, timeoutMs: number): Promise<RegExpExecArray> =>
    new Promise((resolve, reject) => {
      for (const line of tail.split('\n')) {
        const m = re.exec(line);
        if (m) return resolve(m);
      }
      const finish = (): void => {
        watchers.delete(watch);
        clearTimeout(timer);
      };
      const watch = (line: string): void => {
        const m = re.exec(line);
        if (m) {
          finish();
          resolve(m);
        }
      };
      const timer = setTimeout(() => {
        finish();
        reject(new Error(`${name}: no line matching ${re} within ${timeoutMs} ms. Output so far (${opts.logFile}):\n${tail.slice(-4000)}`));
      }, timeoutMs);
      watchers.add(watch);
      void exited.then((how) => {
        finish();
        reject(new Error(`${name} exited (${how}) before printing a line matching ${re}. Output (${opts.logFile}):\n${tail.slice(-4000)}`));
      });
    });

  const stop = async (graceMs = 10_000): Promise<void> => {
    const kill = (sig: NodeJS.Signals): void => {
      try {
        process.kill(-pid, sig);
      } catch {}
    };
    if (!done) {
      kill('SIGTERM');
      const timer = new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), graceMs).unref());
      if ((await Promise.race([exited, timer])) === 'timeout') kill('SIGKILL');
      await exited;
    }
    // the leader is gone; anything it left in its group goes too
    kill('SIGKILL');
    live.delete(pid);
  };

  return { name, pid, logFile: opts.logFile, tail: () => tail, waitForLine, exited, hasExited: () => done, stop };
}
