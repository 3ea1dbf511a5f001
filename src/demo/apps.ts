/**
 * Both demo apps together, as `ratls serve --demo` (npm start) runs them: the Ollama-shaped backend
 * and, in front of it, the open-webui-shaped app with its admin account (credentials kept in a state
 * directory so shell commands can read them).
 */
import { loadOrCreateDemoCredentials, type LoadedCredentials } from './credentials.ts';
import { startDemoOllama, type RunningDemoOllama } from './ollama.ts';
import { startDemoWebui, type RunningDemoWebui } from './webui.ts';

export interface DemoAppsOptions {
  host?: string;
  webuiPort?: number;
  ollamaPort?: number;
  /** Where the admin's password and API key are kept (undefined: memory only). */
  stateDir?: string;
  tokenDelayMs?: number;
}

export interface RunningDemoApps {
  webui: RunningDemoWebui;
  ollama: RunningDemoOllama;
  credentials: LoadedCredentials;
  close(): Promise<void>;
}

/** Starts the backend, then the app in front of it; closes both together. */
export async function startDemoApps(opts: DemoAppsOptions = {}): Promise<RunningDemoApps> {
  const host = opts.host ?? '127.0.0.1';
  const credentials = await loadOrCreateDemoCredentials(opts.stateDir);
  const ollama = await startDemoOllama({ host, port: opts.ollamaPort ?? 0, ...(opts.tokenDelayMs !== undefined ? { tokenDelayMs: opts.tokenDelayMs } : {}) });
  let webui: RunningDemoWebui;
  try {
    webui = await startDemoWebui({ host, port: opts.webuiPort ?? 0, ollamaUrl: ollama.url, admin: credentials.credentials });
  } catch (err) {
    await ollama.close();
    throw err;
  }
  return {
    webui,
    ollama,
    credentials,
    close: async () => {
      await webui.close();
      await ollama.close();
    },
  };
}
