/** digest(): small inputs are hashed in JavaScript, large ones by WebCrypto; both give the standard result. */
import { describe, expect, it } from 'vitest';
import { createHash, randomBytes } from 'node:crypto';
import { digest, toHex } from '../../src/core/bytes.ts';

describe('digest', () => {
  it('equals node:crypto for SHA-256/384/512 at every size around the block and the sync limit', async () => {
    for (const alg of ['SHA-256', 'SHA-384', 'SHA-512'] as const) {
      const node = alg.replace('-', '').toLowerCase();
      for (const n of [0, 1, 55, 56, 63, 64, 111, 112, 127, 128, 1000, 4095, 4096, 4097, 20_000]) {
        const data = new Uint8Array(randomBytes(n));
        expect(toHex(await digest(alg, data)), `${alg} ${n}`).toBe(createHash(node).update(data).digest('hex'));
      }
    }
    // FIPS 180-4 example "abc"
    expect(toHex(await digest('SHA-256', new TextEncoder().encode('abc')))).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
  });

  it('hashes the bytes of a view, not its whole buffer', async () => {
    const big = new Uint8Array(randomBytes(10_000));
    for (const [off, len] of [
      [10, 32],
      [100, 5000],
    ] as const) {
      const view = big.subarray(off, off + len);
      expect(toHex(await digest('SHA-256', view))).toBe(createHash('sha256').update(view).digest('hex'));
    }
  });
});
