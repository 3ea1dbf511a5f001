/**
 * Starts the real stack once for the whole peer suite (scripts/peers/stack.ts), creates the first
 * open-webui user (who becomes its admin) through `ratls serve` with the attested client, and hands
 * the addresses and credentials to the tests. The teardown stops every process, also when tests
 * failed; the run's logs are copied to tests/artifacts/peers-logs/.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { TestProject } from 'vitest/node';
import { startStack, type RunningStack } from '../../scripts/peers/stack.ts';
import { requirePeers } from '../../scripts/peers/pins.ts';
import { createAttestedFetch } from '../../src/client/fetch.ts';
import { peersPolicy, type PeersInfo } from './context.ts';

const LOGS = fileURLToPath(new URL('../artifacts/peers-logs/', import.meta.url));

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  // Fail at once, with the command to run, if a peer is not installed.
  const paths = requirePeers(['openWebui', 'ollama', 'gguf', 'native']);
  const started = Date.now();
  const stack: RunningStack = await startStack({ logsTo: LOGS, log: (l) => console.log(`[peers] ${l}`) });
  try {
    const rootPem = readFileSync(stack.serve.rootPem, 'utf8');
    const fetch = createAttestedFetch(peersPolicy(rootPem));
    const admin = { name: 'Peer Admin', email: 'admin@peers.test', password: `pw-${Date.now()}-admin` };
    const res = await fetch(`${stack.serve.url}/api/v1/auths/signup`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(admin),
    });
    const body = (await res.json()) as { token?: string; role?: string; detail?: string };
    if (res.status !== 200 || !body.token) throw new Error(`open-webui sign-up through ratls serve failed: HTTP ${res.status} ${JSON.stringify(body)}`);
    await fetch.close();
    const info: PeersInfo = {
      serveUrl: stack.serve.url,
      rootPem,
      connectUrl: stack.connect.url,
      ollamaServeUrl: stack.ollamaServe.url,
      openWebuiUrl: stack.openWebui.url,
      openWebuiDataDir: stack.openWebui.dataDir,
      openWebuiVersion: stack.openWebui.version,
      ollamaUrl: stack.ollama.url,
      ollamaVersion: stack.ollama.version,
      ollamaModelsDir: join(stack.dir, 'ollama', 'models'),
      rootFile: stack.serve.rootPem,
      models: stack.models,
      admin: { ...admin, token: body.token, role: body.role ?? '' },
      nativeBins: { dcapQvl: paths.dcapQvlBin, goTdxGuest: paths.goTdxGuestBin },
      versions: { dcapQvl: paths.dcapQvlVersion, goTdxGuest: paths.goTdxGuestVersion },
    };
    project.provide('peers', info);
    console.log(`[peers] stack ready in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  } catch (err) {
    await stack.stop();
    throw err;
  }
  return async () => {
    await stack.stop();
  };
}
