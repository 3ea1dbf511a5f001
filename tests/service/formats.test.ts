/**
 * The attestation service tells raw quotes, CCC RA-TLS evidence and certificates (DER, PEM) apart
 * before parsing, so what `ratls serve` hands out is accepted in the right field and refused with
 * the name of the right field in the wrong one (it used to read evidence as "quote version 60121").
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { checkFieldFormat, certificateDer, detectEvidenceFormat, type EvidenceField } from '../../src/service/formats.ts';
import { parseAttestRequest } from '../../src/service/request.ts';
import { RatlsError } from '../../src/core/errors.ts';
import { createNonceEvidence } from '../../src/ratls/evidence.ts';
import { createRatlsIdentity, type RatlsIdentity } from '../../src/ratls/identity.ts';
import { initSimulatedWorld, loadSimulatedProvider } from '../../src/tee/simulated/index.ts';
import { loadManifest, readTestFile } from '../helpers/testdata.ts';

const quote = readTestFile(loadManifest().quotes.find((q) => q.id === 'v4-b0c06f000000-dcapqvl.dat')!.file);
const b64 = (b: Uint8Array | string) => Buffer.from(b).toString('base64');

let dir: string;
let id: RatlsIdentity;
let evidence: Uint8Array;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'ratls-formats-'));
  await initSimulatedWorld(dir);
  const provider = await loadSimulatedProvider(dir);
  id = await createRatlsIdentity({ provider, hosts: ['localhost'] });
  evidence = await createNonceEvidence(id, provider, new Uint8Array([1, 2, 3]));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function codeOf(f: () => unknown): string | undefined {
  try {
    f();
    return undefined;
  } catch (err) {
    expect(err).toBeInstanceOf(RatlsError);
    return (err as RatlsError).code;
  }
}

describe('detectEvidenceFormat', () => {
  it('names each format from its first bytes', () => {
    expect(detectEvidenceFormat(quote)).toBe('tdx-quote');
    expect(detectEvidenceFormat(evidence)).toBe('ccc-evidence');
    expect(detectEvidenceFormat(id.certDer)).toBe('x509-der');
    expect(detectEvidenceFormat(new TextEncoder().encode(id.certPem))).toBe('x509-pem');
    // PEM files with a byte order mark or leading blank lines are still PEM
    expect(detectEvidenceFormat(new TextEncoder().encode(`\ufeff\n\n  ${id.certPem}`))).toBe('x509-pem');
    const v5 = quote.slice();
    v5[0] = 5;
    expect(detectEvidenceFormat(v5)).toBe('tdx-quote');
    for (const b of [
      new Uint8Array(0),
      new Uint8Array([4]),
      new Uint8Array([0xd9, 0xea]),
      new Uint8Array([3, 0, 2, 0]),
      new Uint8Array([0x30, 0x03, 2, 1, 0]),
    ]) {
      expect(detectEvidenceFormat(b)).toBe('unknown');
    }
  });

  it('never throws on random bytes, and every answer is one of the five names', () => {
    for (let i = 0; i < 2000; i++) {
      const b = new Uint8Array(randomBytes(i % 40));
      expect(['tdx-quote', 'ccc-evidence', 'x509-der', 'x509-pem', 'unknown']).toContain(detectEvidenceFormat(b));
    }
  });
});

describe('each field takes its format and names the right field for another', () => {
  const cases: Array<[string, EvidenceField, () => Uint8Array, RegExp | undefined]> = [
    ['CCC evidence as "quote" (the old "version 60121")', 'quote', () => evidence, /"quote" holds CCC RA-TLS evidence.*Send it as "evidence"/],
    ['a certificate as "quote"', 'quote', () => id.certDer, /"quote" holds an X\.509 certificate \(DER\).*Send it as "certificate"/],
    ['a PEM certificate as "quote"', 'quote', () => new TextEncoder().encode(id.certPem), /X\.509 certificate \(PEM\).*"certificate"/],
    ['a quote as "evidence"', 'evidence', () => quote, /"evidence" holds a raw TDX quote.*Send it as "quote"/],
    ['a certificate as "evidence"', 'evidence', () => id.certDer, /Send it as "certificate"/],
    ['a quote as "certificate"', 'certificate', () => quote, /"certificate" holds a raw TDX quote.*"quote"/],
    ['CCC evidence as "certificate"', 'certificate', () => evidence, /"certificate" holds CCC RA-TLS evidence.*"evidence"/],
  ];
  it.each(cases)('%s: EVIDENCE_FORMAT_MISMATCH', (_name, field, bytes, message) => {
    let err: RatlsError | undefined;
    try {
      checkFieldFormat(field, bytes());
    } catch (e) {
      err = e as RatlsError;
    }
    expect(err?.code).toBe('EVIDENCE_FORMAT_MISMATCH');
    expect(err?.message).toMatch(message!);
  });

  it('the right format, or bytes of no known format, pass to the field’s own parser', () => {
    expect(checkFieldFormat('quote', quote)).toBe('tdx-quote');
    expect(checkFieldFormat('evidence', evidence)).toBe('ccc-evidence');
    expect(checkFieldFormat('certificate', id.certDer)).toBe('x509-der');
    expect(checkFieldFormat('certificate', new TextEncoder().encode(id.certPem))).toBe('x509-pem');
    expect(checkFieldFormat('quote', new Uint8Array([9, 9, 9]))).toBe('unknown');
  });
});

describe('certificates posted as PEM', () => {
  it('are read as the DER inside', () => {
    expect(certificateDer(new TextEncoder().encode(id.certPem))).toEqual(id.certDer);
    expect(certificateDer(id.certDer)).toBe(id.certDer);
  });

  it('a PEM of something else (a key) is refused with its label, not parsed', () => {
    const key = new TextEncoder().encode('-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n');
    expect(codeOf(() => certificateDer(key))).toBe('CERT_MALFORMED');
    expect(() => certificateDer(key)).toThrow(/holds "PRIVATE KEY"/);
    const broken = new TextEncoder().encode('-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n');
    expect(codeOf(() => certificateDer(broken))).toBe('CERT_MALFORMED');
  });
});

describe('requests with evidence', () => {
  it('evidence alone, or with its certificate (DER or PEM), is an "evidence" request', () => {
    const alone = parseAttestRequest(JSON.stringify({ evidence: b64(evidence), nonce: b64('n') }));
    expect(alone).toMatchObject({ kind: 'evidence', evidence });
    expect('certificate' in alone).toBe(false);
    const withPem = parseAttestRequest(JSON.stringify({ evidence: b64(evidence), certificate: b64(id.certPem) }));
    expect(withPem.kind).toBe('evidence');
    expect(withPem.kind === 'evidence' && withPem.certificate).toEqual(id.certDer);
    expect(parseAttestRequest(JSON.stringify({ certificate: b64(id.certPem) }))).toMatchObject({ kind: 'certificate', certificate: id.certDer });
  });

  it.each([
    ['quote and evidence', { quote: b64(quote), evidence: b64(new Uint8Array([0xd9, 0xea, 0x60])) }],
    ['quote and certificate', { quote: b64(quote), certificate: b64(new Uint8Array([0x30, 0x82])) }],
    ['nothing', { nonce: b64('n') }],
    ['runtimeData with evidence', { evidence: b64(new Uint8Array([0xd9, 0xea, 0x60])), runtimeData: b64('x') }],
  ])('%s: REQUEST_MALFORMED', (_name, body) => {
    expect(codeOf(() => parseAttestRequest(JSON.stringify(body)))).toBe('REQUEST_MALFORMED');
  });
});
