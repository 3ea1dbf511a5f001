import { describe, expect, it } from 'vitest';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as px from '@peculiar/x509';
import { parseCertificate, parseCrl, pemToDers } from '../../src/verify/x509.ts';
import { parsePckExtensions, pckInfoFromQuote } from '../../src/verify/pck.ts';
import { parseQuote } from '../../src/quote/parse.ts';
import { toArrayBuffer, toHex } from '../../src/core/bytes.ts';
import { TESTDATA_DIR, loadManifest, readTestFile } from '../helpers/testdata.ts';

/** Our bounded reader must agree with a full X.509 library on every certificate and CRL we have. */
describe('X.509 reader agrees with @peculiar/x509', () => {
  const pems: string[] = [];
  for (const f of readdirSync(join(TESTDATA_DIR, 'pck_chains'))) pems.push(readFileSync(join(TESTDATA_DIR, 'pck_chains', f), 'utf8'));
  const sets = readdirSync(join(TESTDATA_DIR, 'collateral'));
  for (const s of sets) {
    for (const f of ['tcb_info_issuer_chain.pem', 'qe_identity_issuer_chain.pem', 'pck_crl_issuer_chain.pem']) {
      pems.push(readFileSync(join(TESTDATA_DIR, 'collateral', s, f), 'utf8'));
    }
  }

  it('certificates: serial, validity, names, key', () => {
    let n = 0;
    for (const text of pems) {
      for (const der of pemToDers(text)) {
        const ours = parseCertificate(der);
        const ref = new px.X509Certificate(toArrayBuffer(der));
        expect(toHex(ours.serial)).toBe(ref.serialNumber.toLowerCase().replace(/^(00)+(?=.)/, ''));
        expect(ours.notBefore.getTime()).toBe(ref.notBefore.getTime());
        expect(ours.notAfter.getTime()).toBe(ref.notAfter.getTime());
        expect(ref.subject).toContain(`CN=${ours.subjectCn}`);
        expect(ref.issuer).toContain(`CN=${ours.issuerCn}`);
        expect(toHex(ours.spki)).toBe(toHex(new Uint8Array(ref.publicKey.rawData)));
        n++;
      }
    }
    expect(n).toBeGreaterThan(40);
  });

  it('CRLs: issuer, times, revoked serials', () => {
    for (const s of sets) {
      for (const f of ['pck_crl.der', 'root_ca_crl.der']) {
        const der = new Uint8Array(readFileSync(join(TESTDATA_DIR, 'collateral', s, f)));
        const ours = parseCrl(der);
        const ref = new px.X509Crl(toArrayBuffer(der));
        expect(ours.thisUpdate.getTime()).toBe(ref.thisUpdate.getTime());
        expect(ours.nextUpdate?.getTime()).toBe(ref.nextUpdate?.getTime());
        expect(ref.issuer).toContain(`CN=${ours.issuerCn}`);
        const refSerials = new Set(ref.entries.map((e) => e.serialNumber.toLowerCase().replace(/^(00)+(?=.)/, '')));
        expect(ours.revoked).toEqual(refSerials);
      }
    }
  });

  it('PCK extensions match the manifest for every quote', () => {
    for (const m of loadManifest().quotes) {
      const info = pckInfoFromQuote(parseQuote(readTestFile(m.file)));
      expect(info.fmspc).toBe(m.pck.fmspc);
      expect(info.pceId).toBe(m.pck.pceid);
      expect(info.pceSvn).toBe(m.pck.pcesvn);
      expect(info.cpuSvn).toBe(m.pck.cpusvn);
      expect(info.tcbComponents).toEqual(m.pck.sgx_tcb_components);
      expect(info.sgxType).toBe(m.pck.sgx_type);
      expect(info.pckCa).toBe('platform');
      expect(toHex(info.leaf.serial)).toBe(m.pck.leaf_serial);
    }
  });

  it('a certificate without the SGX extension is rejected with PCK_CERT_EXTENSION_INVALID', () => {
    const root = pemToDers(readFileSync(join(TESTDATA_DIR, 'intel', 'intel_sgx_root_ca.pem'), 'utf8'))[0]!;
    expect(() => parsePckExtensions(root)).toThrowError(expect.objectContaining({ code: 'PCK_CERT_EXTENSION_INVALID' }));
  });

  it('truncated certificates give typed errors', () => {
    const der = pemToDers(pems[0]!)[0]!;
    for (let len = 0; len < der.length; len += 7) {
      expect(() => parseCertificate(der.subarray(0, len))).toThrowError(expect.objectContaining({ code: 'PCK_CHAIN_MALFORMED' }));
    }
  });
});
