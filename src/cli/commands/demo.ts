/**
 * `ratls demo webui` and `ratls demo ollama`: the two demo apps on their own, e.g. one per container,
 * with `ratls serve` in front. They run until SIGINT/SIGTERM.
 */
import { isIP } from 'node:net';
import type { Command } from 'commander';
import { type CliIo, UsageError } from '../io.ts';
import { ConfigError, DEFAULT_OLLAMA_URL, parseListen } from '../../proxy/config.ts';
import { loadOrCreateDemoCredentials } from '../../demo/credentials.ts';
import { startDemoOllama } from '../../demo/ollama.ts';
import { startDemoWebui } from '../../demo/webui.ts';
import type { RunningDemoServer } from '../../demo/http.ts';
import { FLAGS } from '../flags.ts';

interface WebuiFlags {
  listen: string;
  ollama: string;
  stateDir: string;
  signup: boolean;
}

interface OllamaFlags {
  listen: string;
  tokenDelay: string;
}

function listenOf(v: string): { host: string; port: number } {
  try {
    return parseListen(v);
  } catch (err) {
    throw new UsageError(`--listen: ${err instanceof ConfigError ? err.message : String(err)}`);
  }
}

function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || (isIP(host) === 4 && host.startsWith('127.'));
}

async function untilSignal(what: string, server: RunningDemoServer, io: CliIo): Promise<void> {
  await new Promise<void>((resolve) => {
    const stop = (sig: NodeJS.Signals): void => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      io.err(`ratls demo ${what}: ${sig} received, stopping\n`);
      void server.close().finally(resolve);
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
  io.setExitCode(0);
}

async function started<T>(what: string, listen: { host: string; port: number }, start: () => Promise<T>): Promise<T> {
  try {
    return await start();
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EADDRINUSE' || code === 'EADDRNOTAVAIL') {
      throw new UsageError(`demo ${what}: cannot listen on ${listen.host}:${listen.port} (${code}). Pick another with --listen HOST:PORT.`);
    }
    throw err;
  }
}

/** Registers `demo webui` and `demo ollama`. */
export function registerDemoCommands(program: Command, io: CliIo): void {
  const demo = program
    .command('demo')
    .description('Demo apps shaped like open-webui and Ollama (same routes, login and JSON), for trying ratls serve without the real ones');

  demo
    .command('webui')
    .description('Run the open-webui-shaped demo app (login, API keys, /api, /ollama, /openai, socket.io) in front of an Ollama(-shaped) backend')
    .addOption(FLAGS.listen('127.0.0.1:8080'))
    .addOption(FLAGS.ollama(DEFAULT_OLLAMA_URL))
    .option('--state-dir <dir>', 'where the admin password and API key are kept (created 0700, files 0600)', '.ratls/demo')
    .option('--no-signup', 'close signup (by default anyone may sign up as a "user" after the admin)')
    .action(async (f: WebuiFlags) => {
      const listen = listenOf(f.listen);
      let ollamaUrl: string;
      try {
        const u = new URL(f.ollama);
        if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new Error('not http(s)');
        ollamaUrl = u.origin;
      } catch {
        throw new UsageError(`--ollama must be an http(s) origin such as ${DEFAULT_OLLAMA_URL}, got "${f.ollama}".`);
      }
      const creds = await loadOrCreateDemoCredentials(f.stateDir);
      const app = await started('webui', listen, () =>
        startDemoWebui({ host: listen.host, port: listen.port, ollamaUrl, admin: creds.credentials, enableSignup: f.signup }),
      );
      const c = creds.credentials;
      io.err(
        `ratls demo webui: open-webui-shaped demo app listening on ${app.url}, Ollama backend ${ollamaUrl}\n` +
          `  admin login  ${c.email} / ${c.password}${creds.files ? `   (also in ${creds.files.password})` : ''}\n` +
          `  API key      ${c.apiKey}${creds.files ? `   (also in ${creds.files.apiKey})` : ''}\n` +
          (creds.warning ? `  WARNING: the credentials are not saved (${creds.warning}); they change at the next start\n` : '') +
          (isLoopback(listen.host)
            ? ''
            : `  WARNING: listening on ${listen.host}, not loopback, over plain HTTP: put ratls serve in front and publish only its port\n`),
      );
      await untilSignal('webui', app, io);
    });

  demo
    .command('ollama')
    .description('Run the Ollama-shaped demo backend (/api/tags, /api/chat, /api/pull, ...); like Ollama it has no authentication')
    .addOption(FLAGS.listen('127.0.0.1:11434'))
    .option('--token-delay <ms>', 'pause between streamed tokens in milliseconds', '40')
    .action(async (f: OllamaFlags) => {
      const listen = listenOf(f.listen);
      const delay = Number(f.tokenDelay);
      if (!Number.isInteger(delay) || delay < 0 || delay > 60_000)
        throw new UsageError(`--token-delay must be 0 to 60000 milliseconds, got "${f.tokenDelay}".`);
      const backend = await started('ollama', listen, () => startDemoOllama({ host: listen.host, port: listen.port, tokenDelayMs: delay }));
      io.err(
        `ratls demo ollama: Ollama-shaped demo backend listening on ${backend.url} (models: ${backend
          .models()
          .map((m) => m.name)
          .join(', ')})\n` +
          (isLoopback(listen.host)
            ? ''
            : `  WARNING: listening on ${listen.host}, not loopback: like Ollama this API has no authentication; keep it on a private network\n`),
      );
      await untilSignal('ollama', backend, io);
    });
}
