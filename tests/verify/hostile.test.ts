/**
 * Hostile input against the parsers and the verifier: structured mutations of every length field,
 * DER lengths, PEM tricks, hostile JSON and huge CRLs. Every case must end in a typed rejection
 * (a code from ERROR_CODES), never an exception, a hang or an accept. Each test is time-boxed.
 */
import { describe, expect, it } from 'vitest';
import { parseQuote } from '../../src/quote/parse.ts';
import { splitSignedJson } from '../../src/verify/signed-json.ts';
import { parseTcbInfo } from '../../src/verify/tcb-info.ts';
import { verifyQuote } from '../../src/verify/dcap.ts';
import { ERROR_CODES } from '../../src/core/errors.ts';
import type { Collateral, VerificationResult } from '../../src/core/types.ts';
import { parseCrl, pemToDers } from '../../src/verify/x509.ts';
import { toBase64 } from '../../src/core/bytes.ts';
import { vector, V4_OK, V5_OK, typedParse } from './helpers.ts';

const base = vector(V4_OK);
const collateral = base.collateral!;
const q = parseQuote(base.quote);
const known = new Set<string>(ERROR_CODES);

async function run(quote: Uint8Array, c: Partial<Collateral> = {}): Promise<VerificationResult> {
  return verifyQuote(quote, { collateral: { ...collateral, ...c }, now: base.now });
}

function expectTypedReject(r: VerificationResult, label: string): void {
  expect(r.ok, label).toBe(false);
  expect(r.errors.length, label).toBeGreaterThan(0);
  for (const e of r.errors) {
    expect(known.has(e.code), `${label}: ${e.code}`).toBe(true);
    expect(e.code, `${label}: ${e.message}`).not.toBe('INTERNAL');
    expect(e.message, label).not.toMatch(/Unexpected failure/);
  }
}

function u32le(n: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, n >>> 0, true);
  return b;
}
function u16le(n: number): Uint8Array {
  const b = new Uint8Array(2);
  new DataView(b.buffer).setUint16(0, n & 0xffff, true);
  return b;
}
function cat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/** Rebuilds the genuine quote with its own parts, optionally replacing the PCK chain bytes. */
function rebuild(certData: Uint8Array = q.certification.certData): Uint8Array {
  const c = q.certification;
  const inner = cat(c.qeReport.raw, c.qeReportSignature, u16le(c.qeAuthData.length), c.qeAuthData, u16le(5), u32le(certData.length), certData);
  const sig = cat(q.signature, q.attestationKey, u16le(6), u32le(inner.length), inner);
  return cat(q.signedBytes, u32le(sig.length), sig);
}

/** Offsets of every length field of the genuine quote, with the value it holds. */
function lengthFields(): Array<{ name: string; at: number; size: 2 | 4; value: number }> {
  const sigLenAt = q.signedBytes.length;
  const outerAt = sigLenAt + 4 + 64 + 64 + 2;
  const authAt = outerAt + 4 + 384 + 64;
  const innerAt = authAt + 2 + q.certification.qeAuthData.length + 2;
  return [
    { name: 'signature data length', at: sigLenAt, size: 4, value: q.length - sigLenAt - 4 },
    { name: 'certification data size', at: outerAt, size: 4, value: 0 },
    { name: 'QE auth data length', at: authAt, size: 2, value: q.certification.qeAuthData.length },
    { name: 'PCK chain size', at: innerAt, size: 4, value: q.certification.certData.length },
  ];
}

describe('hostile quotes: every length field set to hostile values', () => {
  it('the rebuilt genuine quote verifies (the fixture is right)', async () => {
    const r = await run(rebuild());
    expect(r.ok).toBe(true);
  });

  it('0, 1, off-by-one, huge and all-ones lengths give typed errors quickly', async () => {
    const t0 = Date.now();
    const genuine = rebuild();
    for (const f of lengthFields()) {
      const view = new DataView(genuine.buffer, genuine.byteOffset, genuine.byteLength);
      const actual = f.size === 4 ? view.getUint32(f.at, true) : view.getUint16(f.at, true);
      const max = f.size === 4 ? 0xffffffff : 0xffff;
      for (const value of [0, 1, actual - 1, actual + 1, actual + 64, max, max >>> 1, 0x80000000 & max]) {
        const bytes = genuine.slice();
        const dv = new DataView(bytes.buffer);
        if (f.size === 4) dv.setUint32(f.at, value >>> 0, true);
        else dv.setUint16(f.at, value & 0xffff, true);
        const code = typedParse(bytes);
        expect(code, `${f.name}=${value}`).not.toBe('parsed');
        expectTypedReject(await run(bytes), `${f.name}=${value}`);
      }
    }
    expect(Date.now() - t0).toBeLessThan(10_000);
  });

  it("the v5 body descriptor: every body type and size other than Intel's is refused", () => {
    const v5 = vector(V5_OK).quote;
    for (const [type, size] of [
      [2, 648],
      [3, 584],
      [1, 384],
      [4, 648],
      [0, 0],
      [0xffff, 0xffffffff],
      [3, 649],
      [3, 647],
    ] as const) {
      const b = v5.slice();
      const dv = new DataView(b.buffer);
      dv.setUint16(48, type, true);
      dv.setUint32(50, size, true);
      expect(typedParse(b), `${type}/${size}`).not.toBe('parsed');
    }
  });

  it('trailing bytes after the declared signature data are padding; inside it they are refused', async () => {
    const padded = cat(rebuild(), new Uint8Array(4096).fill(0x41));
    expect((await run(padded)).ok).toBe(true);
    // Declared signature data 1 byte longer than its contents, with that byte present.
    const g = rebuild();
    const longer = cat(g, Uint8Array.of(0));
    new DataView(longer.buffer).setUint32(q.signedBytes.length, g.length - q.signedBytes.length - 4 + 1, true);
    expect(typedParse(longer)).toBe('QUOTE_MALFORMED');
  });
});

describe('hostile PCK chain text inside the quote', () => {
  const pem = new TextDecoder('latin1').decode(q.certification.certData);
  const enc = (s: string) => new Uint8Array([...s].map((ch) => ch.charCodeAt(0) & 0xff));
  const cases: Array<[string, string]> = [
    ['empty', ''],
    ['only text', 'hello'],
    ['BEGIN without END', '-----BEGIN CERTIFICATE-----\nMIIB\n'],
    ['10k unterminated BEGIN markers', '-----BEGIN CERTIFICATE-----\n'.repeat(10_000)],
    ['base64 with invalid characters', pem.replace(/(-----BEGIN CERTIFICATE-----\s*)M/, '$1*')],
    ['leaf missing', pem.slice(pem.indexOf('-----END CERTIFICATE-----') + 25)],
    ['NUL bytes inside base64', pem.replace(/(-----BEGIN CERTIFICATE-----\s*MII.)/, '$1\u0000\u0000')],
  ];

  it('each trick is a typed rejection, never an accept', async () => {
    const t0 = Date.now();
    for (const [label, text] of cases) {
      const bytes = rebuild(enc(text));
      expectTypedReject(await run(bytes), label);
    }
    expect(Date.now() - t0).toBeLessThan(10_000);
  });

  it('CRLF line ends, a trailing NUL and stray text around the blocks are harmless formatting', async () => {
    // Intel's splitChain refuses a stray END marker before the first BEGIN; the text outside the
    // blocks is not signed and carries nothing, so ignoring it cannot change a verdict.
    expect((await run(rebuild(enc(`-----END CERTIFICATE-----\n${pem}`)))).ok).toBe(true);
    // An unclosed BEGIN before the real one: the splitter restarts at the last BEGIN (same certificates).
    expect((await run(rebuild(enc(pem.replace('-----BEGIN CERTIFICATE-----\n', '-----BEGIN CERTIFICATE-----\n-----BEGIN CERTIFICATE-----\n'))))).ok).toBe(true);
    expect((await run(rebuild(enc(pem.replace(/\n/g, '\r\n'))))).ok).toBe(true);
    expect((await run(rebuild(enc(`${pem}\u0000`)))).ok).toBe(true);
  });

  it('the chain reversed or the leaf repeated byte for byte is the same chain (Intel builds it from any order)', async () => {
    const blocks = pem.split('-----END CERTIFICATE-----').slice(0, 3);
    const reversed = [...blocks]
      .reverse()
      .map((b) => `${b.trim()}\n-----END CERTIFICATE-----\n`)
      .join('');
    expect((await run(rebuild(enc(reversed)))).ok).toBe(true);
    expect((await run(rebuild(enc(pem.slice(0, pem.indexOf('-----END CERTIFICATE-----') + 25) + '\n' + pem)))).ok).toBe(true);
  });
});

describe('hostile DER in the collateral chains', () => {
  const chainPem = collateral.tcbInfoIssuerChain;
  const ders = pemToDers(chainPem);
  const toPem = (list: Uint8Array[]) =>
    list.map((d) => `-----BEGIN CERTIFICATE-----\n${toBase64(d).replace(/.{64}/g, '$&\n')}\n-----END CERTIFICATE-----\n`).join('');

  it('every length octet of the TCB signing certificate set to hostile values', async () => {
    const t0 = Date.now();
    const der = ders[0]!;
    // Length octets follow a tag: walk the first 200 bytes and hit each one.
    let checked = 0;
    for (let at = 1; at < Math.min(der.length, 200); at++) {
      for (const v of [0x00, 0x7f, 0x80, 0x81, 0x84, 0x85, 0xff]) {
        if (der[at] === v) continue;
        const bad = der.slice();
        bad[at] = v;
        const r = await run(base.quote, { tcbInfoIssuerChain: toPem([bad, ...ders.slice(1)]) });
        expectTypedReject(r, `byte ${at} = ${v}`);
        checked++;
      }
    }
    expect(checked).toBeGreaterThan(1000);
    expect(Date.now() - t0).toBeLessThan(20_000);
  }, 30_000);
});

describe('hostile JSON collateral', () => {
  const text = collateral.tcbInfoJson;

  async function rejectsTcb(mangled: string, label: string): Promise<void> {
    const t0 = Date.now();
    const r = await run(base.quote, { tcbInfoJson: mangled });
    expectTypedReject(r, label);
    // Generous bound: the machine is shared; a hang or a quadratic blow-up takes far longer.
    expect(Date.now() - t0, label).toBeLessThan(5_000);
  }

  it('numbers as strings, strings as numbers, nulls, wrong types', async () => {
    await rejectsTcb(text.replace('"version":3', '"version":"3"'), 'version as string');
    await rejectsTcb(text.replace(/"pcesvn":(\d+)/, '"pcesvn":"$1"'), 'pcesvn as string');
    await rejectsTcb(text.replace(/"svn":(\d+)/, '"svn":-1'), 'negative svn');
    await rejectsTcb(text.replace(/"svn":(\d+)/, '"svn":1e400'), 'infinite svn');
    await rejectsTcb(text.replace(/"svn":(\d+)/, '"svn":null'), 'null svn');
    await rejectsTcb(text.replace('"tcbLevels":[', '"tcbLevels":{"0":').replace(/\]\},"signature"/, '}},"signature"'), 'tcbLevels as object');
  });

  it('duplicate keys at the top level and inside nested objects', async () => {
    await rejectsTcb(text.replace(/\}\s*$/, `,"signature":"${'00'.repeat(64)}"}`), 'second signature');
    await rejectsTcb(text.replace('"tcbStatus":', '"tcbStatus":"UpToDate","tcbStatus":'), 'duplicate tcbStatus');
  });

  it('unicode escapes are decoded before the signature check, so an escaped copy does not verify', async () => {
    await rejectsTcb(text.replace('"TDX"', '"\\u0054DX"'), 'escaped id');
  });

  it('huge arrays and deep nesting finish in time', async () => {
    const body = splitSignedJson(text, 'tcbInfo', 'TCB info').body as Record<string, unknown> & { tcbLevels: unknown[] };
    const level = body.tcbLevels[0];
    const huge = text.replace('"tcbLevels":[', `"tcbLevels":[${Array(5_000).fill(JSON.stringify(level)).join(',')},`);
    await rejectsTcb(huge, '5k duplicate levels');
    // A deeply nested but valid unsigned member is ignored like any other: no stack overflow, same verdict.
    const t0 = Date.now();
    const deep = await run(base.quote, { tcbInfoJson: text.replace(/\}\s*$/, `,"deep":${'['.repeat(100_000)}${']'.repeat(100_000)}}`) });
    expect(deep.ok).toBe(true);
    expect(Date.now() - t0).toBeLessThan(3_000);
    await rejectsTcb(text.replace(/\}\s*$/, `,"deep":${'['.repeat(100_000)}}`), 'unbalanced deep nesting');
    await rejectsTcb('"'.repeat(1) + 'x'.repeat(1_000_000), 'unterminated string');
  }, 20_000);

  it('a TCB info with 5k distinct levels parses in time and still grades correctly', () => {
    const b = structuredClone(splitSignedJson(text, 'tcbInfo', 'TCB info').body) as { tcbLevels: Array<{ tcb: { pcesvn: number } }> };
    const t0 = Date.now();
    const extra = Array.from({ length: 5_000 }, () => ({
      ...structuredClone(b.tcbLevels[b.tcbLevels.length - 1]!),
      tcb: { ...structuredClone(b.tcbLevels[b.tcbLevels.length - 1]!.tcb), pcesvn: 0 },
      tcbDate: '2020-01-01T00:00:00Z',
      tcbStatus: 'OutOfDate',
    })).map((l, i) => ({
      ...l,
      tcb: {
        ...l.tcb,
        sgxtcbcomponents: (l.tcb as unknown as { sgxtcbcomponents: Array<{ svn: number }> }).sgxtcbcomponents.map((c, k) => ({
          ...c,
          svn: k === 15 ? i % 250 : 0,
        })),
        pcesvn: Math.floor(i / 250),
      },
    }));
    b.tcbLevels.push(...(extra as typeof b.tcbLevels));
    const info = parseTcbInfo(b as Record<string, unknown>);
    expect(info.tcbLevels.length).toBe(5_000 + JSON.parse(text).tcbInfo.tcbLevels.length);
    expect(Date.now() - t0).toBeLessThan(3_000);
  });
});

describe('huge and hostile CRLs', () => {
  /** DER TLV with a minimal length. */
  function tlv(tag: number, value: Uint8Array): Uint8Array {
    const n = value.length;
    const len = n < 0x80 ? [n] : n < 0x100 ? [0x81, n] : n < 0x10000 ? [0x82, n >> 8, n & 0xff] : [0x83, n >> 16, (n >> 8) & 0xff, n & 0xff];
    return cat(Uint8Array.of(tag, ...len), value);
  }

  /** A CRL shaped like Intel's, with `count` revoked serials and a signature nobody made. */
  function bigCrl(count: number, extraSerial?: Uint8Array): Uint8Array {
    const real = parseCrl(collateral.pckCrl);
    const alg = tlv(0x30, tlv(0x06, Uint8Array.of(0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02)));
    const time = (s: string) => tlv(0x17, new TextEncoder().encode(s));
    const entries: Uint8Array[] = [];
    for (let i = 0; i < count; i++) entries.push(tlv(0x30, cat(tlv(0x02, Uint8Array.of(0x01, i >> 16, (i >> 8) & 0xff, i & 0xff)), time('250101000000Z'))));
    if (extraSerial) entries.push(tlv(0x30, cat(tlv(0x02, extraSerial), time('250101000000Z'))));
    const tbs = tlv(0x30, cat(tlv(0x02, Uint8Array.of(1)), alg, real.issuerRaw, time('250601000000Z'), time('260101000000Z'), tlv(0x30, cat(...entries))));
    const sig = tlv(0x03, cat(Uint8Array.of(0), tlv(0x30, cat(tlv(0x02, Uint8Array.of(1)), tlv(0x02, Uint8Array.of(1))))));
    return tlv(0x30, cat(tbs, alg, sig));
  }

  it('a CRL with 100k entries parses in time', () => {
    const t0 = Date.now();
    const c = parseCrl(bigCrl(100_000));
    expect(c.revoked.size).toBe(100_000);
    expect(Date.now() - t0).toBeLessThan(3_000);
  });

  it('an unsigned CRL (even one revoking nothing we use) is CRL_INVALID, never trusted', async () => {
    const r = await run(base.quote, { pckCrl: bigCrl(5_000) });
    expectTypedReject(r, 'unsigned pck crl');
    expect(r.errors.map((e) => e.code)).toContain('CRL_INVALID');
    const r2 = await run(base.quote, { rootCaCrl: bigCrl(5_000) });
    expect(r2.errors.map((e) => e.code)).toContain('CRL_INVALID');
  });

  it('truncations and bit flips of a real CRL give typed results', async () => {
    const der = collateral.pckCrl;
    for (let n = 0; n < der.length; n += 7) {
      const r = await run(base.quote, { pckCrl: der.subarray(0, n) });
      expectTypedReject(r, `pck crl truncated to ${n}`);
    }
    for (let at = 0; at < der.length; at += 3) {
      const bad = der.slice();
      bad[at] = bad[at]! ^ 0x80;
      const r = await run(base.quote, { pckCrl: bad });
      expectTypedReject(r, `pck crl flip at ${at}`);
    }
  }, 30_000);
});
