/**
 * dstack's current RA-TLS certificates: quote and event log together in 1.3.6.1.4.1.62397.1.8 (V0
 * SCALE, stripped to RTMR3 runtime events as dstack 0.5.9+ writes it), and the older .1.1 + .1.2
 * (JSON, also "ELGZv1" gzip). The RTMR3 events (app-id, compose-hash, os-image-hash, ...) replay to
 * the quote; a changed payload fails naming RTMR3 and the events; policies pin them.
 */
import { gzipSync } from 'node:zlib';
import * as x509 from '@peculiar/x509';
import * as asn1js from 'asn1js';
import { beforeAll, describe, expect, it } from 'vitest';
import { decodeDstackAttestation, dstackRuntimeDigest, type DstackEvent } from '../../src/eventlog/dstack.ts';
import { verifyRatlsCertificate } from '../../src/ratls/verify-cert.ts';
import { dstackReportData } from '../../src/ratls/identity.ts';
import { OID_DSTACK_ATTESTATION } from '../../src/ratls/dstack-evidence.ts';
import { OID_DSTACK_EVENT_LOG, OID_DSTACK_QUOTE } from '../../src/ratls/extension.ts';
import { loadSimulatedProvider, type SimulatedProvider } from '../../src/tee/simulated/provider.ts';
import { concatBytes, toHex } from '../../src/core/bytes.ts';
import { makeWorld, type World } from '../client/helpers.ts';
import { eventlogFixture } from '../helpers/eventlog.ts';

/** SCALE compact length (parity-scale-codec), for lengths below 2^30. */
function compact(n: number): Uint8Array {
  if (n < 64) return Uint8Array.of(n << 2);
  if (n < 1 << 14) return Uint8Array.of(((n << 2) | 1) & 0xff, n >> 6);
  const v = ((n << 2) | 2) >>> 0;
  return Uint8Array.of(v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, v >>> 24);
}
const u32 = (v: number) => Uint8Array.of(v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, v >>> 24);
const vec = (b: Uint8Array) => concatBytes(compact(b.length), b);
const str = (s: string) => vec(new TextEncoder().encode(s));

/** dstack's V0 VersionedAttestation for platform dstack-tdx. */
function scaleAttestation(quote: Uint8Array, events: DstackEvent[], reportData: Uint8Array): Uint8Array {
  return concatBytes(
    Uint8Array.of(0, 0),
    vec(quote),
    compact(events.length),
    ...events.map((e) =>
      concatBytes(u32(e.imr), u32(e.eventType), vec(e.digest ? Buffer.from(e.digest, 'hex') : new Uint8Array(0)), str(e.event), vec(e.payload)),
    ),
    compact(0),
    reportData,
    str('{"os_image_hash":"test"}'),
  );
}

const octets = (b: Uint8Array) => new asn1js.OctetString({ valueHex: b.slice().buffer }).toBER(false);

/** A certificate with the given dstack extensions, for `keys`. */
async function dstackCert(keys: CryptoKeyPair, exts: Array<[string, Uint8Array]>): Promise<Uint8Array> {
  const now = Date.now();
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: '01',
    name: 'CN=dstack-app',
    notBefore: new Date(now - 60_000),
    notAfter: new Date(now + 3_600_000),
    keys,
    signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' },
    extensions: exts.map(([oid, v]) => new x509.Extension(oid, false, octets(v))),
  });
  return new Uint8Array(cert.rawData);
}

let world: World;
let provider: SimulatedProvider;
let keys: CryptoKeyPair;
let quote: Uint8Array;
/** The fixture's RTMR3 runtime events, stripped as a dstack certificate carries them. */
let stripped: DstackEvent[];

beforeAll(async () => {
  world = await makeWorld();
  provider = await loadSimulatedProvider(world.dir);
  stripped = decodeDstackAttestation(eventlogFixture('dstack-attestation.bin'))
    .events.filter((e) => e.imr === 3)
    .map((e) => ({ ...e, digest: '' }));
  // the simulated TD runs dstack's boot: its RTMR3 takes the same runtime events
  const access = provider.rtmrAccess();
  for (const e of stripped) await access.extend(3, await dstackRuntimeDigest(e));
  keys = (await crypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, ['sign', 'verify'])) as CryptoKeyPair;
  const spki = new Uint8Array(await crypto.subtle.exportKey('spki', keys.publicKey));
  quote = await provider.getQuote(await dstackReportData(spki));
});

async function verify(der: Uint8Array, policy = {}) {
  return verifyRatlsCertificate(der, { now: new Date(), trustedRoots: [world.rootPem], collateral: await provider.collateral(new Date()), policy });
}

describe('dstack 0.5.9+ certificates: 1.3.6.1.4.1.62397.1.8', () => {
  it('reads quote and event log; RTMR3 replays; the runtime events are shown', async () => {
    const der = await dstackCert(keys, [[OID_DSTACK_ATTESTATION, scaleAttestation(quote, stripped, new Uint8Array(64))]]);
    const r = await verify(der);
    expect(r.errors).toEqual([]);
    expect(r.ok).toBe(true);
    expect(r.checks.find((c) => c.name === 'evidence extension')?.detail).toBe(OID_DSTACK_ATTESTATION);
    expect(r.workload?.dstack?.replayed).toEqual({ RTMR0: 'not checked', RTMR1: 'not checked', RTMR2: 'not checked', RTMR3: 'match' });
    const byName = Object.fromEntries(r.workload!.dstack!.events.map((e) => [e.name, e.value]));
    expect(byName['compose-hash']).toBe('c143116fef3940e7f776bfc0919c256232ae5338a6e948c96b711e0b2383483a');
    expect(byName['app-id']).toBe('5bb4ff9a3837357f19dc176407a5709c62eb6c56');
    expect(byName['os-image-hash']).toBe('e61be43dd1cc6a6f5edefd7c51b608983780839b0000ce60dd99737dcffe09b9');
  });

  it('a changed compose-hash no longer replays: EVENTLOG_REPLAY_MISMATCH naming RTMR3 and its events', async () => {
    const changed = stripped.map((e) => (e.event === 'compose-hash' ? { ...e, payload: new Uint8Array(32) } : e));
    const r = await verify(await dstackCert(keys, [[OID_DSTACK_ATTESTATION, scaleAttestation(quote, changed, new Uint8Array(64))]]));
    expect(r.ok).toBe(false);
    const e = r.errors.find((x) => x.code === 'EVENTLOG_REPLAY_MISMATCH')!;
    expect(e.message).toMatch(/^RTMR3: dstack's 9 events \(#1 system-preparing, #2 app-id, #3 compose-hash/);
  });

  it('a policy pins dstack events by name', async () => {
    const der = await dstackCert(keys, [[OID_DSTACK_ATTESTATION, scaleAttestation(quote, stripped, new Uint8Array(64))]]);
    const good = await verify(der, { workload: { dstackEvents: { 'compose-hash': ['c143116fef3940e7f776bfc0919c256232ae5338a6e948c96b711e0b2383483a'] } } });
    expect(good.ok).toBe(true);
    const bad = await verify(der, { workload: { dstackEvents: { 'compose-hash': ['00'.repeat(32)] } } });
    expect(bad.errors.map((x) => x.code)).toEqual(['WORKLOAD_MISMATCH']);
    expect(bad.errors[0]!.message).toContain('RTMR3 event #3 (dstack compose-hash)');
  });

  it('malformed attestation bytes are EVENTLOG_MALFORMED, not a crash', async () => {
    const att = scaleAttestation(quote, stripped, new Uint8Array(64));
    const r = await verify(await dstackCert(keys, [[OID_DSTACK_ATTESTATION, att.subarray(0, att.length - 3)]]));
    expect(r.ok).toBe(false);
    expect(r.errors[0]!.code).toBe('EVENTLOG_MALFORMED');
  });
});

describe('older dstack certificates: .1.1 quote and .1.2 JSON event log', () => {
  const json = () =>
    JSON.stringify(stripped.map((e) => ({ imr: e.imr, event_type: e.eventType, digest: e.digest, event: e.event, event_payload: toHex(e.payload) })));

  it('plain JSON', async () => {
    const r = await verify(
      await dstackCert(keys, [
        [OID_DSTACK_QUOTE, quote],
        [OID_DSTACK_EVENT_LOG, new TextEncoder().encode(json())],
      ]),
    );
    expect(r.errors).toEqual([]);
    expect(r.workload?.dstack?.replayed.RTMR3).toBe('match');
  });

  it('"ELGZv1" + gzip', async () => {
    const gz = concatBytes(new TextEncoder().encode('ELGZv1'), gzipSync(json()));
    const r = await verify(
      await dstackCert(keys, [
        [OID_DSTACK_QUOTE, quote],
        [OID_DSTACK_EVENT_LOG, gz],
      ]),
    );
    expect(r.errors).toEqual([]);
    expect(r.workload?.dstack?.events).toHaveLength(9);
  });
});
