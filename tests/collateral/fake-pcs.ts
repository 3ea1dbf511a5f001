/** A fake Intel PCS / PCCS on loopback serving a collateral directory, as the real services do. */
import { createServer, type Server } from 'node:http';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';

export interface FakePcs {
  url: string;
  /** Paths requested, in order. */
  requests: string[];
  close(): Promise<void>;
}

/**
 * Serves `dir` (seven-file layout) for its FMSPC; `mode` 'pccs' serves the root CRL as hex.
 * Listens on loopback, port 0, unless `listen` says otherwise (the container test's PCCS service).
 */
export async function startFakePcs(dir: string, mode: 'pcs' | 'pccs' = 'pccs', listen: { host?: string; port?: number } = {}): Promise<FakePcs> {
  const f = (n: string) => readFileSync(join(dir, n));
  const tcbInfo = f('tcb_info.json');
  const fmspc = (JSON.parse(tcbInfo.toString('utf8')) as { tcbInfo: { fmspc: string } }).tcbInfo.fmspc.toLowerCase();
  const enc = (n: string) => encodeURIComponent(f(n).toString('utf8'));
  const requests: string[] = [];
  const server: Server = createServer((req, res) => {
    requests.push(req.url ?? '');
    const u = new URL(req.url ?? '/', 'http://x');
    if (u.pathname === '/tdx/certification/v4/tcb') {
      if (u.searchParams.get('fmspc')?.toLowerCase() !== fmspc) return void res.writeHead(404).end();
      res.writeHead(200, { 'content-type': 'application/json', 'TCB-Info-Issuer-Chain': enc('tcb_info_issuer_chain.pem') }).end(tcbInfo);
    } else if (u.pathname === '/tdx/certification/v4/qe/identity') {
      res
        .writeHead(200, { 'content-type': 'application/json', 'SGX-Enclave-Identity-Issuer-Chain': enc('qe_identity_issuer_chain.pem') })
        .end(f('qe_identity.json'));
    } else if (u.pathname === '/sgx/certification/v4/pckcrl') {
      if (u.searchParams.get('encoding') !== 'der') return void res.writeHead(400).end();
      res.writeHead(200, { 'content-type': 'application/pkix-crl', 'SGX-PCK-CRL-Issuer-Chain': enc('pck_crl_issuer_chain.pem') }).end(f('pck_crl.der'));
    } else if (mode === 'pccs' && u.pathname === '/sgx/certification/v4/rootcacrl') {
      res.writeHead(200, { 'content-type': 'text/plain' }).end(f('root_ca_crl.der').toString('hex'));
    } else if (mode === 'pcs' && u.pathname === '/IntelSGXRootCA.der') {
      res.writeHead(200, { 'content-type': 'application/pkix-crl' }).end(f('root_ca_crl.der'));
    } else {
      res.writeHead(404).end();
    }
  });
  const host = listen.host ?? '127.0.0.1';
  await new Promise<void>((r) => server.listen(listen.port ?? 0, host, r));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://${host}:${port}`,
    requests,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}
