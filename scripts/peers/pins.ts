/**
 * The pinned peer versions (pins.env) and where scripts/peers/*.sh put them in the cache, for the
 * TypeScript side: the runner, the peer tests and the bench.
 */
import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** This directory (scripts/peers). */
export const PEERS_SCRIPTS_DIR = fileURLToPath(new URL('.', import.meta.url));

/** KEY=VALUE lines of pins.env (comments and blank lines skipped). */
export function readPins(): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of readFileSync(join(PEERS_SCRIPTS_DIR, 'pins.env'), 'utf8').split('\n')) {
    const m = /^([A-Z0-9_]+)=(.*)$/.exec(line.trim());
    if (m) out[m[1]!] = m[2]!;
  }
  return out;
}

/** The cache root: RATLS_PEERS_CACHE, else ~/.cache/ratls-peers (the same rule as lib.sh). */
export function peersCacheDir(): string {
  return process.env.RATLS_PEERS_CACHE || join(homedir(), '.cache', 'ratls-peers');
}

export interface PeerPaths {
  openWebuiVersion: string;
  ollamaVersion: string;
  dcapQvlVersion: string;
  goTdxGuestVersion: string;
  /** The open-webui virtualenv; its bin/open-webui is the entry point. */
  openWebuiDir: string;
  ollamaBin: string;
  /** Python with gguf and numpy (writes the tiny models). */
  ggufPython: string;
  dcapQvlBin: string;
  goTdxGuestBin: string;
}

export function peerPaths(): PeerPaths {
  const p = readPins();
  const cache = peersCacheDir();
  const need = (k: string): string => {
    const v = p[k];
    if (!v) throw new Error(`scripts/peers/pins.env has no ${k}`);
    return v;
  };
  return {
    openWebuiVersion: need('OPEN_WEBUI_VERSION'),
    ollamaVersion: need('OLLAMA_VERSION').replace(/^v/, ''),
    dcapQvlVersion: need('DCAP_QVL_VERSION'),
    goTdxGuestVersion: need('GO_TDX_GUEST_VERSION'),
    openWebuiDir: join(cache, `open-webui-${need('OPEN_WEBUI_VERSION')}`),
    ollamaBin: join(cache, `ollama-${need('OLLAMA_VERSION')}`, 'bin', 'ollama'),
    ggufPython: join(cache, `gguf-${need('GGUF_VERSION')}`, 'bin', 'python'),
    dcapQvlBin: join(cache, 'native', 'bin', 'dcap-qvl-verify'),
    goTdxGuestBin: join(cache, 'native', 'bin', 'go-tdx-guest-verify'),
  };
}

/**
 * Throws, naming what is missing and the command that installs it, unless every listed peer is in
 * the cache. Peers never skip silently: a missing one is a failure.
 */
export function requirePeers(which: ReadonlyArray<'openWebui' | 'ollama' | 'gguf' | 'native'>): PeerPaths {
  const paths = peerPaths();
  const missing: string[] = [];
  const done = (dir: string): boolean => existsSync(join(dir, '.ok'));
  for (const w of which) {
    if (w === 'openWebui' && !(done(paths.openWebuiDir) && existsSync(join(paths.openWebuiDir, 'bin', 'open-webui'))))
      missing.push(`open-webui ${paths.openWebuiVersion} (bash scripts/peers/install-open-webui.sh)`);
    if (w === 'ollama' && !existsSync(paths.ollamaBin)) missing.push(`ollama ${paths.ollamaVersion} (bash scripts/peers/build-ollama.sh)`);
    if (w === 'gguf' && !existsSync(paths.ggufPython)) missing.push('gguf (bash scripts/peers/install-gguf.sh)');
    if (w === 'native' && !(existsSync(paths.dcapQvlBin) && existsSync(paths.goTdxGuestBin)))
      missing.push('dcap-qvl and go-tdx-guest wrappers (bash scripts/peers/build-native-verifiers.sh)');
  }
  if (missing.length) {
    throw new Error(
      `Real peers missing from ${peersCacheDir()}: ${missing.join('; ')}. Run \`bash scripts/peers/setup.sh\` (or \`npm run test:peers\`, which runs it).`,
    );
  }
  return paths;
}
