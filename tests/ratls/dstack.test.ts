/**
 * The optional dstack-compatible profile, end to end: `ratls serve` configured with
 * tls.profile dstack (flag --profile, env RATLS_PROFILE) serves a certificate shaped like the one
 * dstack's ra-tls crate writes, and `ratls verify` / verifyRatlsCertificate / the attested client
 * accept it. The byte layout follows dstack's source (Dstack-TEE/dstack: ra-tls/src/cert.rs add_ext,
 * dstack-attest QuoteContentType::RaTlsCert, ra-tls/src/attestation.rs from_ext_getter); the
 * REPORTDATA is recomputed here with node:crypto, independently of src/.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as asn1js from 'asn1js';
import * as x509 from '@peculiar/x509';
import { resolveServeConfig } from '../../src/cli/commands/serve.ts';
import { startRatlsServer, type RunningRatlsServer } from '../../src/proxy/server.ts';
import { initSimulatedWorld, loadSimulatedProvider, type SimulatedProvider } from '../../src/tee/simulated/index.ts';
import { createRatlsIdentity } from '../../src/ratls/identity.ts';
import { OID_DSTACK_EVENT_LOG, OID_DSTACK_QUOTE, OID_RATLS_ENDORSEMENTS, OID_RATLS_EVIDENCE } from '../../src/ratls/extension.ts';
import { verifyRatlsCertificate } from '../../src/ratls/verify-cert.ts';
import { parseQuote } from '../../src/quote/parse.ts';
import { createAttestedFetch, defaultClientPolicy } from '../../src/client/index.ts';
import { main } from '../../src/cli/main.ts';
import type { CliIo } from '../../src/cli/io.ts';
import { pino } from 'pino';
import { servedCertificate } from '../helpers/net.ts';

let dir: string;
let simDir: string;
let sim: SimulatedProvider;
let upstream: Server;
let upstreamUrl: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ratls-dstack-'));
  simDir = join(dir, 'sim');
  await initSimulatedWorld(simDir);
  sim = await loadSimulatedProvider(simDir);
  upstream = createServer((req, res) => res.end(`ok ${req.url}`));
  await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
  upstreamUrl = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`;
});
afterAll(async () => {
  await new Promise<void>((r) => upstream.close(() => r()));
  await rm(dir, { recursive: true, force: true });
});
const open: Array<{ close(): Promise<void> }> = [];
afterEach(async () => {
  while (open.length) await open.pop()!.close();
});

async function serveDstack(how: 'flag' | 'env' | 'file'): Promise<RunningRatlsServer> {
  const flags = { simulate: true, simDir, listen: '127.0.0.1:0', upstream: [`/=${upstreamUrl}`], host: ['localhost', '127.0.0.1'], logLevel: 'silent' };
  let config;
  if (how === 'flag') config = resolveServeConfig({ ...flags, profile: 'dstack' }, {}).config;
  else if (how === 'env') config = resolveServeConfig(flags, { RATLS_PROFILE: 'dstack' }).config;
  else {
    const file = join(dir, 'dstack.yaml');
    await writeFile(file, 'tls:\n  profile: dstack\n');
    config = resolveServeConfig({ ...flags, config: file }, {}).config;
  }
  expect(config.tls.profile).toBe('dstack');
  const srv = await startRatlsServer(config, { logger: pino({ level: 'silent' }), autoRotate: false });
  open.push(srv);
  return srv;
}

/** The extension's payload after dstack's DER OCTET STRING wrapping (yasna write_bytes). */
function unwrapped(cert: x509.X509Certificate, oid: string): Uint8Array {
  const ext = cert.getExtension(oid);
  expect(ext, oid).not.toBeNull();
  const parsed = asn1js.fromBER(ext!.value);
  expect(parsed.offset).toBe(ext!.value.byteLength);
  expect(parsed.result).toBeInstanceOf(asn1js.OctetString);
  return new Uint8Array((parsed.result as asn1js.OctetString).valueBlock.valueHexView);
}

describe('dstack profile through ratls serve', () => {
  it('serves a dstack-shaped certificate that every verifier here accepts', async () => {
    const srv = await serveDstack('flag');
    const der = await servedCertificate(srv.port);
    const cert = new x509.X509Certificate(new Uint8Array(der));

    // Shape: quote in 62397.1.1 and an event log in 62397.1.2, both OCTET STRING-wrapped; no CCC evidence.
    expect(cert.getExtension(OID_RATLS_EVIDENCE)).toBeNull();
    const quote = unwrapped(cert, OID_DSTACK_QUOTE);
    expect(new TextDecoder().decode(unwrapped(cert, OID_DSTACK_EVENT_LOG))).toBe('[]');
    expect(cert.getExtension(OID_RATLS_ENDORSEMENTS)).not.toBeNull();

    // REPORTDATA = SHA-512("ratls-cert:" || SubjectPublicKeyInfo DER), recomputed independently.
    const spki = new Uint8Array(cert.publicKey.rawData);
    const expected = createHash('sha512').update('ratls-cert:').update(spki).digest();
    expect(Buffer.from(parseQuote(quote).body.reportData).equals(expected)).toBe(true);
    // An empty runtime event log replays to 48 zero bytes; dstack's verifier compares that to RTMR3.
    expect(Buffer.from(parseQuote(quote).body.rtmr3).equals(Buffer.alloc(48))).toBe(true);

    const r = await verifyRatlsCertificate(der, { now: new Date(), trustedRoots: [sim.rootPem] });
    expect(r.errors).toEqual([]);
    expect(r.ratls?.profile).toBe('dstack');
    expect(r.checks.find((c) => c.name === 'REPORTDATA binding')?.detail).toMatch(/SHA-512\("ratls-cert:"/);

    // The attested client, with a nonce round trip: fresh CCC evidence for the same key works
    // alongside a dstack certificate.
    const client = createAttestedFetch({
      ...defaultClientPolicy(),
      trustedRoots: [sim.rootPem],
      freshness: { ...defaultClientPolicy().freshness, binding: 'certificate', requireNonce: true },
      collateral: { offline: true },
    });
    open.push(client);
    const res = await client(`https://localhost:${srv.port}/hi`);
    expect(await res.text()).toBe('ok /hi');
  });

  it('`ratls verify URL --nonce` accepts it; env RATLS_PROFILE and the config file select it too', async () => {
    const srv = await serveDstack('env');
    let out = '';
    const io: CliIo = { out: (s) => void (out += s), err: () => undefined, setExitCode: () => undefined, isTty: false };
    const policy = join(dir, 'offline.yaml');
    await writeFile(policy, 'collateral:\n  offline: true\n');
    const code = await main(
      ['node', 'ratls', 'verify', `https://127.0.0.1:${srv.port}/`, '--root', join(simDir, 'root.pem'), '--policy', policy, '--nonce', '--json'],
      io,
    );
    expect(code).toBe(0);
    const r = JSON.parse(out) as { ok: boolean; ratls: { profile: string } };
    expect(r.ok).toBe(true);
    expect(r.ratls.profile).toBe('dstack');

    const fromFile = await serveDstack('file');
    expect(fromFile.identity().profile).toBe('dstack');
  });
});

describe('dstack profile verification details', () => {
  it('rejects a dstack quote moved into a certificate for another key', async () => {
    const a = await createRatlsIdentity({ provider: sim, profile: 'dstack' });
    const keys = (await crypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, ['sign', 'verify'])) as CryptoKeyPair;
    const moved = await x509.X509CertificateGenerator.createSelfSigned({
      serialNumber: '01',
      name: 'CN=localhost',
      notBefore: a.notBefore,
      notAfter: a.notAfter,
      keys,
      signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' },
      extensions: new x509.X509Certificate(new Uint8Array(a.certDer)).extensions.filter(
        (e) => e.type === OID_DSTACK_QUOTE || e.type === OID_RATLS_ENDORSEMENTS,
      ),
    });
    const r = await verifyRatlsCertificate(new Uint8Array(moved.rawData), { now: new Date(), trustedRoots: [sim.rootPem] });
    expect(r.ok).toBe(false);
    expect(r.errors.map((e) => e.code)).toContain('REPORTDATA_MISMATCH');
  });

  it('also reads a quote stored without the OCTET STRING wrapping', async () => {
    const keys = (await crypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, ['sign', 'verify'])) as CryptoKeyPair;
    const spki = new Uint8Array(await crypto.subtle.exportKey('spki', keys.publicKey));
    const quote = await sim.getQuote(new Uint8Array(createHash('sha512').update('ratls-cert:').update(spki).digest()));
    const now = new Date();
    const cert = await x509.X509CertificateGenerator.createSelfSigned({
      serialNumber: '02',
      name: 'CN=localhost',
      notBefore: new Date(now.getTime() - 60_000),
      notAfter: new Date(now.getTime() + 3_600_000),
      keys,
      signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' },
      extensions: [new x509.Extension(OID_DSTACK_QUOTE, false, quote.slice().buffer)],
    });
    const r = await verifyRatlsCertificate(new Uint8Array(cert.rawData), { now, trustedRoots: [sim.rootPem], collateral: await sim.collateral(now) });
    expect(r.errors).toEqual([]);
    expect(r.ratls?.profile).toBe('dstack');
  });
});
