import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createRequire } from 'node:module';
import * as x509 from '@peculiar/x509';
import { initSimulatedWorld, loadSimulatedProvider, WORLD_FILES } from '../../src/tee/simulated/index.ts';
import { parseQuote } from '../../src/quote/parse.ts';
import { pckInfoFromQuote } from '../../src/verify/pck.ts';
import { encodeQuote } from '../../src/quote/encode.ts';
import { RatlsError } from '../../src/core/errors.ts';
import { toHex } from '../../src/core/bytes.ts';
import type { Collateral } from '../../src/core/types.ts';
import { quoteParts } from '../helpers/quote.ts';

// @phala/dcap-qvl is CommonJS without ESM types for this entry point.
const require = createRequire(import.meta.url);
const { QuoteVerifier } = require('@phala/dcap-qvl') as {
  QuoteVerifier: {
    newWithRootCa(der: Buffer): { verify(q: Uint8Array, c: unknown, nowSecs: number): { status: string; advisory_ids: string[] } };
    newProd(): { verify(q: Uint8Array, c: unknown, nowSecs: number): unknown };
  };
};

/** Collateral in dcap-qvl's shape (an independent DCAP verifier). */
function forDcapQvl(c: Collateral) {
  const split = (s: string, k: string) => {
    const o = JSON.parse(s) as Record<string, unknown>;
    return { body: JSON.stringify(o[k]), sig: Buffer.from(o.signature as string, 'hex') };
  };
  const ti = split(c.tcbInfoJson, 'tcbInfo');
  const qi = split(c.qeIdentityJson, 'enclaveIdentity');
  return {
    pck_crl_issuer_chain: c.pckCrlIssuerChain,
    root_ca_crl: Buffer.from(c.rootCaCrl),
    pck_crl: Buffer.from(c.pckCrl),
    tcb_info_issuer_chain: c.tcbInfoIssuerChain,
    tcb_info: ti.body,
    tcb_info_signature: ti.sig,
    qe_identity_issuer_chain: c.qeIdentityIssuerChain,
    qe_identity: qi.body,
    qe_identity_signature: qi.sig,
  };
}

let dir: string;
const now = new Date();
const nowSecs = Math.floor(now.getTime() / 1000) + 1;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ratls-sim-'));
  await initSimulatedWorld(join(dir, 'w'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('simulated DCAP world', () => {
  it('is generated once, says SIMULATED, and keeps private keys at mode 0600', async () => {
    const w = join(dir, 'w');
    const root = new x509.X509Certificate(await readFile(join(w, WORLD_FILES.root), 'utf8'));
    expect(root.subject).toMatch(/SIMULATED/);
    expect(root.subject).not.toMatch(/CN=Intel SGX Root CA/);
    for (const k of [WORLD_FILES.rootKey, WORLD_FILES.pckCaKey, WORLD_FILES.pckKey, WORLD_FILES.tcbSigningKey, WORLD_FILES.attestationKey]) {
      expect((await stat(join(w, k))).mode & 0o777, k).toBe(0o600);
    }
    expect(await readFile(join(w, '.gitignore'), 'utf8')).toMatch(/^\*$/m);
    const again = await initSimulatedWorld(w);
    expect(again.created).toBe(false);
    expect(again.rootPem).toBe(await readFile(join(w, WORLD_FILES.root), 'utf8'));
  });

  it('makes v4 quotes that parse, carry the REPORTDATA, and re-encode identically', async () => {
    const p = await loadSimulatedProvider(join(dir, 'w'));
    const rd = new Uint8Array(64).map((_, i) => 255 - i);
    const bytes = await p.getQuote(rd);
    const q = parseQuote(bytes);
    expect(q.header.version).toBe(4);
    expect(q.header.attestationKeyType).toBe(2);
    expect(q.header.teeType).toBe(0x81);
    expect(q.length).toBe(bytes.length);
    expect(q.body.reportData).toEqual(rd);
    expect(toHex(q.body.mrTd)).toBe(p.measurements.mrTd);
    expect(q.certification.certDataType).toBe(5);
    expect(q.certification.pckChainPem.length).toBe(3);
    // QE REPORTDATA = SHA-256(attestation key || QE auth data) || 0^32
    const h = new Uint8Array(await crypto.subtle.digest('SHA-256', Buffer.concat([q.attestationKey, q.certification.qeAuthData])));
    expect(q.certification.qeReport.reportData.subarray(0, 32)).toEqual(h);
    expect(toHex(q.certification.qeReport.reportData.subarray(32))).toBe('00'.repeat(32));
    const re = encodeQuote(quoteParts(q));
    expect(toHex(re)).toBe(toHex(bytes));
  });

  it('carries Intel-format SGX extensions in the PCK leaf', async () => {
    const p = await loadSimulatedProvider(join(dir, 'w'));
    const info = pckInfoFromQuote(parseQuote(await p.getQuote(new Uint8Array(64))));
    const world = JSON.parse(await readFile(join(dir, 'w', WORLD_FILES.world), 'utf8')) as {
      fmspc: string;
      sgxTcbComponents: number[];
      pceSvn: number;
      cpuSvn: string;
    };
    expect(info.pckCa).toBe('platform');
    expect(info.fmspc).toBe(world.fmspc);
    expect(info.pceId).toBe('0000');
    expect(info.tcbComponents).toEqual(world.sgxTcbComponents);
    expect(info.pceSvn).toBe(world.pceSvn);
    expect(info.cpuSvn).toBe(world.cpuSvn);
    expect(info.sgxType).toBe(1);
  });

  it('passes an independent DCAP verifier (dcap-qvl) only with the simulated root', async () => {
    const p = await loadSimulatedProvider(join(dir, 'w'));
    const quote = await p.getQuote(new Uint8Array(64).fill(1));
    const coll = forDcapQvl(await p.collateral(now));
    const root = new x509.X509Certificate(p.rootPem);
    const r = QuoteVerifier.newWithRootCa(Buffer.from(root.rawData)).verify(quote, coll, nowSecs);
    expect(r.status).toBe('UpToDate');
    expect(() => QuoteVerifier.newProd().verify(quote, coll, nowSecs)).toThrow();
    // Collateral is dated from `now` and valid 30 days.
    expect(() => QuoteVerifier.newWithRootCa(Buffer.from(root.rawData)).verify(quote, coll, nowSecs + 31 * 86400)).toThrow(/expired/i);
  });

  it('signs TCB info and QE identity over the exact inner JSON text', async () => {
    const p = await loadSimulatedProvider(join(dir, 'w'));
    const c = await p.collateral(now);
    const m = /^\{"tcbInfo":(.*),"signature":"([0-9a-f]{128})"\}$/.exec(c.tcbInfoJson)!;
    expect(m).not.toBeNull();
    const signer = new x509.X509Certificate(c.tcbInfoIssuerChain);
    expect(signer.subject).toMatch(/SIMULATED SGX TCB Signing/);
    const key = await signer.publicKey.export();
    const ok = await crypto.subtle.verify({ name: 'ECDSA', hash: 'SHA-256' }, key, Buffer.from(m[2]!, 'hex'), new TextEncoder().encode(m[1]!));
    expect(ok).toBe(true);
    const ti = JSON.parse(m[1]!) as Record<string, unknown>;
    expect(ti).toMatchObject({ id: 'TDX', version: 3, tcbType: 0 });
    expect(Object.keys(ti)).toEqual(expect.arrayContaining(['tdxModule', 'tdxModuleIdentities', 'tcbLevels']));
    const qe = JSON.parse(c.qeIdentityJson) as { enclaveIdentity: { id: string; version: number } };
    expect(qe.enclaveIdentity).toMatchObject({ id: 'TD_QE', version: 2 });
    const pckCrl = new x509.X509Crl(c.pckCrl.slice().buffer);
    expect(pckCrl.issuer).toMatch(/SIMULATED SGX PCK Platform CA/);
    expect(pckCrl.entries.length).toBe(2);
    expect(new x509.X509Crl(c.rootCaCrl.slice().buffer).issuer).toMatch(/SIMULATED SGX Root CA/);
  });

  it('takes measurements from options, from measurements.json, and sets DEBUG on request', async () => {
    const w = join(dir, 'w');
    const mrTd = 'ab'.repeat(48);
    const p1 = await loadSimulatedProvider(w, { mrTd, rtmrs: ['01'.repeat(48)], debug: true });
    const q1 = parseQuote(await p1.getQuote(new Uint8Array(64)));
    expect(toHex(q1.body.mrTd)).toBe(mrTd);
    expect(toHex(q1.body.rtmr0)).toBe('01'.repeat(48));
    expect(q1.body.tdAttributes[0]! & 1).toBe(1);
    await writeFile(join(w, WORLD_FILES.measurements), JSON.stringify({ rtmr3: 'cd'.repeat(48) }));
    const p2 = await loadSimulatedProvider(w);
    expect(p2.measurements.rtmr3).toBe('cd'.repeat(48));
    expect(p2.measurements.tdAttributes).toBe('0000001000000000');
    await rm(join(w, WORLD_FILES.measurements));
    await expect(loadSimulatedProvider(w, { mrTd: 'zz' })).rejects.toBeInstanceOf(RatlsError);
    await expect(p2.getQuote(new Uint8Array(63))).rejects.toMatchObject({ code: 'EVIDENCE_PROVIDER_FAILED' });
  });

  it('creates one world when several callers race on the same directory', async () => {
    const w = join(dir, 'race');
    const infos = await Promise.all([1, 2, 3, 4].map(() => initSimulatedWorld(w)));
    expect(infos.filter((i) => i.created).length).toBe(1);
    expect(new Set(infos.map((i) => i.rootPem)).size).toBe(1);
    const p = await loadSimulatedProvider(w);
    const root = new x509.X509Certificate(p.rootPem);
    const r = QuoteVerifier.newWithRootCa(Buffer.from(root.rawData)).verify(await p.getQuote(new Uint8Array(64)), forDcapQvl(await p.collateral(now)), nowSecs);
    expect(r.status).toBe('UpToDate');
  });

  it('refuses a directory without a world with a helpful message', async () => {
    await expect(loadSimulatedProvider(join(dir, 'empty'))).rejects.toMatchObject({
      code: 'EVIDENCE_PROVIDER_UNAVAILABLE',
      message: expect.stringMatching(/sim init/),
    });
  });
});
