/** What the peer suite's global setup hands to the tests, and the client policy that trusts the run's simulated root. */
import { inject } from 'vitest';
import type { TinyModel } from '../../scripts/peers/peers.ts';
import { defaultClientPolicy, type ClientPolicy } from '../../src/verify/policy-file.ts';

export interface PeersInfo {
  /** `ratls serve` in front of open-webui (every path). */
  serveUrl: string;
  /** The simulated root (PEM) that verifies both `ratls serve` instances. */
  rootPem: string;
  /** `ratls connect` in front of serveUrl, for the browser. */
  connectUrl: string;
  /** `ratls serve` in front of Ollama itself (Host rewritten, admin routes blocked). */
  ollamaServeUrl: string;
  /** open-webui and Ollama directly (for comparisons and server-side checks only). */
  openWebuiUrl: string;
  openWebuiDataDir: string;
  openWebuiVersion: string;
  ollamaUrl: string;
  ollamaVersion: string;
  /** Ollama's OLLAMA_MODELS directory (manifests and blobs), for server-side checks. */
  ollamaModelsDir: string;
  /** The simulated root's file, for CLI runs (--root). */
  rootFile: string;
  models: TinyModel[];
  /** The first user: open-webui made them admin. */
  admin: { name: string; email: string; password: string; token: string; role: string };
  nativeBins: { dcapQvl: string; goTdxGuest: string };
  versions: { dcapQvl: string; goTdxGuest: string };
}

declare module 'vitest' {
  export interface ProvidedContext {
    peers: PeersInfo;
  }
}

export function peers(): PeersInfo {
  return inject('peers');
}

/** The default client policy, trusting only this run's simulated root, collateral from the certificate. */
export function peersPolicy(rootPem: string): ClientPolicy {
  const p = defaultClientPolicy();
  p.trustedRoots = [rootPem];
  p.collateral = { offline: true };
  return p;
}
