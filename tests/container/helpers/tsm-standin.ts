/**
 * A TDX guest's configfs-tsm for containers on a machine without TDX: the FUSE stand-in
 * (tests/container/tsm-standin, built by scripts/container/setup.sh) mounted on a directory, with
 * its quotes made by a simulated TDX world in this process. Bind-mount `dir` where
 * deploy/compose.yaml mounts /sys/kernel/config/tsm.
 */
import { spawn, spawnSync } from 'node:child_process';
import { createServer } from 'node:http';
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { SimulatedProvider } from '../../../src/tee/simulated/index.ts';

export interface TsmStandin {
  /** The configfs-tsm root (holds report/). */
  dir: string;
  /** Quotes made so far (one per outblob read after a new inblob). */
  quotes(): number;
  close(): Promise<void>;
}

/** Mounts the stand-in on `<base>/tsm`, answering with quotes of `world`. */
export async function startTsmStandin(binary: string, base: string, world: SimulatedProvider): Promise<TsmStandin> {
  const dir = join(base, 'tsm');
  const socket = join(base, 'quote.sock');
  await mkdir(dir, { recursive: true });
  let made = 0;
  const helper = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const reportData = new Uint8Array(Buffer.concat(chunks));
      world.getQuote(reportData).then(
        (q) => {
          made++;
          res.writeHead(200, { 'content-type': 'application/octet-stream' }).end(Buffer.from(q));
        },
        (err: unknown) => res.writeHead(500).end(String(err)),
      );
    });
  });
  await new Promise<void>((r) => helper.listen(socket, r));

  const child = spawn(binary, ['-mount', dir, '-quote-socket', socket], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr!.on('data', (c: Buffer) => (out += c.toString()));
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  const started = await Promise.race([
    new Promise<boolean>((resolve) => child.stdout!.on('data', () => /^ready$/m.test(out) && resolve(true))),
    exited.then(() => false),
    new Promise<boolean>((resolve) => setTimeout(() => resolve(false), 15_000)),
  ]);
  if (!started) {
    child.kill('SIGKILL');
    helper.close();
    throw new Error(`the configfs-tsm stand-in did not mount on ${dir}: ${out}`);
  }
  return {
    dir,
    quotes: () => made,
    async close() {
      child.kill('SIGTERM');
      const code = await Promise.race([exited, new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), 5000))]);
      if (code !== 0) {
        // still mounted (busy, or the daemon died): detach it so nothing is left behind
        child.kill('SIGKILL');
        spawnSync('umount', ['-l', dir]);
      }
      await new Promise<void>((r) => helper.close(() => r()));
      await rm(socket, { force: true });
    },
  };
}
