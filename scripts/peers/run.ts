/**
 * Runs the real stack by hand until Ctrl-C: `node --import tsx scripts/peers/run.ts`
 * (after `bash scripts/peers/setup.sh`). Prints where everything listens; open the
 * `ratls connect` address in a browser (the first account you create becomes the admin).
 */
import { startStack } from './stack.ts';

const stack = await startStack({ log: (l) => console.log(`[peers] ${l}`), keepDir: process.env.RATLS_PEERS_KEEP === '1' });
console.log(`
  browser (through ratls connect):  ${stack.connect.url}
  ratls serve -> open-webui:        ${stack.serve.url}   (root: ${stack.serve.rootPem})
  ratls serve -> Ollama:            ${stack.ollamaServe.url}
  models:                           ${stack.models.map((m) => `${m.name} ${m.digest.slice(0, 12)}`).join(', ')}
  logs:                             ${stack.dir}
Ctrl-C stops everything.`);
await new Promise<void>((resolve) => {
  process.once('SIGINT', resolve);
  process.once('SIGTERM', resolve);
});
await stack.stop();
