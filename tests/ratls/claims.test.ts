import { describe, expect, it } from 'vitest';
import { decode as cborgDecode } from 'cborg';
import { encode as cbor2Encode, Tag } from 'cbor2';
import { decodeClaims, encodeClaims, reportDataForClaims, claimsBindKey } from '../../src/ratls/claims.ts';
import { decodeEvidence, encodeEvidence, decodeEndorsements, encodeEndorsements } from '../../src/ratls/extension.ts';
import { RatlsError } from '../../src/core/errors.ts';
import { fromHex, toHex } from '../../src/core/bytes.ts';
import type { Collateral } from '../../src/core/types.ts';

// Claims buffers taken from the interop certificates of CCC-Attestation/interoperable-ra-tls
// (interoperability-tests/gramine-cert.pem and rats-tls-cert.pem). The digests are SHA-256 of
// those certificates' SPKI, and the SHA-256 of each buffer is the REPORTDATA in their quotes.
const GRAMINE_CLAIMS = 'a16b7075626b65792d686173685824820158205a5a5b2d177433048e9d62409d1acc4ec526c06e294d09e69a36cff9369e4851';
const GRAMINE_SPKI_SHA256 = '5a5a5b2d177433048e9d62409d1acc4ec526c06e294d09e69a36cff9369e4851';
const GRAMINE_REPORTDATA = 'd8673446fe0f6842d4af0d182c8751d7e967039116deff5f85a43b2ca90c2831';
const RATSTLS_CLAIMS =
  'a36b7075626b65792d6861736858248201582072c0b70c2092741a4cfda0c2465487faf132998617b0aad53118aa5d6e180006656b65795f304876616c75655f3000656b65795f314876616c75655f3100';

function code(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (e) {
    return e instanceof RatlsError ? e.code : `not RatlsError: ${String(e)}`;
  }
  return undefined;
}

const spki = new Uint8Array(91).map((_, i) => i);

describe('claims (CCC interoperable RA-TLS)', () => {
  it("decodes the interop certificates' claims buffers and hashes them to their REPORTDATA", async () => {
    const c = decodeClaims(fromHex(GRAMINE_CLAIMS)!);
    expect(c.pubkeyHashAlg).toBe('SHA-256');
    expect(toHex(c.pubkeyHash)).toBe(GRAMINE_SPKI_SHA256);
    expect(c.nonce).toBeUndefined();
    expect(toHex((await reportDataForClaims(fromHex(GRAMINE_CLAIMS)!)).subarray(0, 32))).toBe(GRAMINE_REPORTDATA);
    // rats-tls adds custom claims; they are reported, never trusted.
    expect(decodeClaims(fromHex(RATSTLS_CLAIMS)!).otherClaims).toEqual(['key_0', 'key_1']);
  });

  it('encodes byte for byte like the interop implementations', async () => {
    // Same structure as Gramine's: {"pubkey-hash": h'<CBOR [1, digest]>'}
    const digest = fromHex(GRAMINE_SPKI_SHA256)!;
    const m = new Map([['pubkey-hash', cbor2Encode([1, digest])]]);
    expect(toHex(cbor2Encode(m))).toBe(GRAMINE_CLAIMS);
    const ours = await encodeClaims({ spkiDer: spki });
    const again = decodeClaims(ours);
    expect(await claimsBindKey(again, spki)).toBe(true);
    expect(toHex(ours).startsWith('a16b7075626b65792d68617368582482015820')).toBe(true);
  });

  it('puts pubkey-hash before nonce and is readable by an independent decoder (cborg)', async () => {
    const nonce = fromHex('00112233445566778899')!;
    const buf = await encodeClaims({ spkiDer: spki, nonce, hashAlg: 'SHA-384' });
    const m = cborgDecode(buf, { useMaps: true }) as Map<string, Uint8Array>;
    expect([...m.keys()]).toEqual(['pubkey-hash', 'nonce']);
    expect(toHex(m.get('nonce')!)).toBe('00112233445566778899');
    const [alg, h] = cborgDecode(m.get('pubkey-hash')!) as [number, Uint8Array];
    expect(alg).toBe(7);
    expect(h.length).toBe(48);
    const rd = await reportDataForClaims(buf);
    expect(rd.length).toBe(64);
    expect(toHex(rd.subarray(32))).toBe('00'.repeat(32));
  });

  it('supports hash ids 1, 7 and 8 and rejects others', async () => {
    for (const [alg, id] of [
      ['SHA-256', 1],
      ['SHA-384', 7],
      ['SHA-512', 8],
    ] as const) {
      const c = decodeClaims(await encodeClaims({ spkiDer: spki, hashAlg: alg }));
      expect(c.pubkeyHashAlg).toBe(alg);
      expect(await claimsBindKey(c, spki)).toBe(true);
      expect(id).toBeGreaterThan(0);
    }
    const bad = cbor2Encode(new Map([['pubkey-hash', cbor2Encode([2, new Uint8Array(32)])]]));
    expect(code(() => decodeClaims(bad))).toBe('EVIDENCE_MALFORMED');
  });

  it('rejects hostile claims buffers with EVIDENCE_MALFORMED only', () => {
    const cases: Uint8Array[] = [
      new Uint8Array(0),
      fromHex('ff')!,
      fromHex('a1')!, // truncated map
      fromHex('bf6b7075626b65792d68617368ff')!, // indefinite-length map
      cbor2Encode([1, 2]),
      cbor2Encode(new Map([['nonce', new Uint8Array(4)]])), // no pubkey-hash
      cbor2Encode(new Map([['pubkey-hash', cbor2Encode([1, new Uint8Array(31)])]])), // short digest
      cbor2Encode(new Map([['pubkey-hash', 'text']])),
      cbor2Encode(new Map([[1, new Uint8Array(2)]])),
      // duplicate key
      fromHex(
        'a2' +
          '6b7075626b65792d68617368' +
          '5824820158200000000000000000000000000000000000000000000000000000000000000000' +
          '6b7075626b65792d68617368' +
          '5824820158200000000000000000000000000000000000000000000000000000000000000000',
      )!,
    ];
    for (const c of cases)
      expect(
        code(() => decodeClaims(c)),
        toHex(c),
      ).toBe('EVIDENCE_MALFORMED');
  });
});

describe('evidence and endorsements extensions', () => {
  it('evidence is 60000([quote, claims]) and decodes with cborg', async () => {
    const quote = new Uint8Array(1000).fill(9);
    const claims = await encodeClaims({ spkiDer: spki });
    const ev = encodeEvidence(quote, claims);
    expect(toHex(ev.subarray(0, 4))).toBe('d9ea6082'); // tag(60000), array(2)
    const tags: ((x: unknown) => unknown)[] = [];
    tags[60000] = (x) => ({ tagged: x });
    const d = cborgDecode(ev, { tags }) as { tagged: [Uint8Array, Uint8Array] };
    expect(d.tagged[0]).toEqual(quote);
    expect(d.tagged[1]).toEqual(claims);
    expect(decodeEvidence(ev)).toEqual({ quote, claimsBuffer: claims });
  });

  it('rejects other tags, shapes and sizes', () => {
    const bad = [
      cbor2Encode(new Tag(60001, [new Uint8Array(4), new Uint8Array(4)])),
      cbor2Encode([new Uint8Array(4), new Uint8Array(4)]),
      cbor2Encode(new Tag(60000, [new Uint8Array(4)])),
      cbor2Encode(new Tag(60000, [new Uint8Array(0), new Uint8Array(4)])),
      cbor2Encode(new Tag(60000, ['x', new Uint8Array(4)])),
      new Uint8Array([0xd9, 0xea, 0x60, 0x82, 0x59, 0xff]),
    ];
    for (const b of bad)
      expect(
        code(() => decodeEvidence(b)),
        toHex(b),
      ).toBe('EVIDENCE_MALFORMED');
  });

  it('endorsements round-trip in the Open Enclave field order', () => {
    const c: Collateral = {
      tcbInfoJson: '{"tcbInfo":{}}',
      tcbInfoIssuerChain: 'TCB CHAIN',
      qeIdentityJson: '{"enclaveIdentity":{}}',
      qeIdentityIssuerChain: 'QE CHAIN',
      pckCrl: new Uint8Array([0x30, 1, 2]),
      pckCrlIssuerChain: 'PCK CRL CHAIN',
      rootCaCrl: new Uint8Array([0x30, 3, 4]),
    };
    const when = new Date('2026-01-02T03:04:05.678Z');
    const e = encodeEndorsements(c, when);
    const tags: ((x: unknown) => unknown)[] = [];
    tags[60000] = (x) => x;
    const arr = cborgDecode(e, { tags }) as unknown[];
    expect(arr.length).toBe(9);
    const t = (x: unknown) => new TextDecoder().decode(x as Uint8Array);
    expect([t(arr[1]), t(arr[2]), t(arr[5]), t(arr[6]), t(arr[7]), t(arr[8])]).toEqual([
      c.tcbInfoJson,
      'TCB CHAIN',
      'PCK CRL CHAIN',
      c.qeIdentityJson,
      'QE CHAIN',
      '2026-01-02T03:04:05Z',
    ]);
    expect(arr[3]).toEqual(c.pckCrl);
    expect(arr[4]).toEqual(c.rootCaCrl);
    const d = decodeEndorsements(e);
    expect(d.collateral).toEqual(c);
    expect(d.createdAt).toBe('2026-01-02T03:04:05Z');
  });

  it('accepts NUL-terminated strings and PEM CRLs from other implementations', () => {
    const z = (s: string) => new TextEncoder().encode(s + '\0');
    const pemCrl = '-----BEGIN X509 CRL-----\nMAECAw==\n-----END X509 CRL-----\n';
    const e = cbor2Encode(new Tag(60000, [3, z('{"a":1}'), z('c1'), z(pemCrl), new Uint8Array([0x30, 0]), z('c2'), z('{"b":2}'), z('c3')]));
    const d = decodeEndorsements(e);
    expect(d.collateral.tcbInfoJson).toBe('{"a":1}');
    expect(d.collateral.pckCrl).toEqual(new Uint8Array([0x30, 0x01, 0x02, 0x03]));
    expect(code(() => decodeEndorsements(cbor2Encode(new Tag(60000, [3, 'x']))))).toBe('COLLATERAL_MALFORMED');
  });
});

describe('hostile input', () => {
  it('deep nesting, huge declared lengths and random bytes only ever raise RatlsError', () => {
    const cases = [
      new Uint8Array(60000).fill(0x81),
      new Uint8Array([0xd9, 0xea, 0x60, ...new Uint8Array(60000).fill(0x9f)]),
      new Uint8Array([0x5b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]),
    ];
    for (let i = 0; i < 3000; i++) {
      const b = crypto.getRandomValues(new Uint8Array(1 + (i % 200)));
      if (i % 3 === 0 && b.length >= 3) b.set([0xd9, 0xea, 0x60], 0);
      cases.push(b);
    }
    for (const c of cases) {
      for (const fn of [decodeClaims, decodeEvidence, decodeEndorsements]) {
        try {
          fn(c);
        } catch (e) {
          expect(e).toBeInstanceOf(RatlsError);
        }
      }
    }
  });
});
