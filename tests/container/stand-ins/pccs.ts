/**
 * PCCS service of the container test's real-TDX stack: the suite's fake PCCS (the same protocol
 * the proxy's PCCS client speaks) serving the collateral directory mounted at COLLATERAL_DIR.
 * Logs every request on stdout, so the test can tell whether the proxy asked.
 */
import { startFakePcs } from '../../collateral/fake-pcs.ts';

// No top-level await: mounted without the repository's package.json, this file loads as CommonJS.
async function main(): Promise<void> {
  const [host, port] = (process.env.LISTEN ?? '0.0.0.0:8081').split(':');
  const pcs = await startFakePcs(process.env.COLLATERAL_DIR ?? '/collateral', 'pccs', { host: host!, port: Number(port) });
  let logged = 0;
  setInterval(() => {
    while (logged < pcs.requests.length) console.log(`pccs request ${pcs.requests[logged++]}`);
  }, 100);
  console.log(`pccs stand-in listening on ${pcs.url}`);
  process.on('SIGTERM', () => void pcs.close().then(() => process.exit(0)));
}
void main();
