import { describe, expect, it } from 'vitest';
import { CollateralMemo } from '../../src/proxy/collateral-memo.ts';
import type { Collateral } from '../../src/core/types.ts';

/** Distinct fake collateral objects, one per fetch (the memo never looks inside). */
function counter(fail?: () => Error | undefined) {
  let n = 0;
  const fetch = async (): Promise<Collateral | undefined> => {
    n++;
    const err = fail?.();
    if (err) throw err;
    return { tcbInfoJson: `tcb ${n}` } as unknown as Collateral;
  };
  return { fetch, calls: () => n };
}

describe('CollateralMemo: collateral for the control route', () => {
  it('answers undefined without fetching when the source has no collateral', async () => {
    expect(await new CollateralMemo(undefined).get()).toBeUndefined();
  });

  it('hands out one fetch for ttlMs, then fetches again', async () => {
    let ms = 1_000_000;
    const c = counter();
    const memo = new CollateralMemo(c.fetch, { ttlMs: 300_000, clockMs: () => ms });
    const first = await memo.get();
    ms += 299_999;
    expect(await memo.get()).toBe(first);
    expect(c.calls()).toBe(1);
    ms += 1;
    const second = await memo.get();
    expect(second).not.toBe(first);
    expect(c.calls()).toBe(2);
  });

  it('fetches again after invalidate (a rotation)', async () => {
    const c = counter();
    const memo = new CollateralMemo(c.fetch, { clockMs: () => 0 });
    await memo.get();
    memo.invalidate();
    await memo.get();
    expect(c.calls()).toBe(2);
  });

  it('does not remember a failed fetch', async () => {
    let failing = true;
    const c = counter(() => (failing ? new Error('PCS down') : undefined));
    const memo = new CollateralMemo(c.fetch, { clockMs: () => 0 });
    await expect(memo.get()).rejects.toThrow('PCS down');
    failing = false;
    expect(await memo.get()).toBeDefined();
    expect(c.calls()).toBe(2);
  });

  it('remembers "no collateral" too (the source said undefined)', async () => {
    let n = 0;
    const memo = new CollateralMemo(
      async () => {
        n++;
        return undefined;
      },
      { clockMs: () => 0 },
    );
    expect(await memo.get()).toBeUndefined();
    expect(await memo.get()).toBeUndefined();
    expect(n).toBe(1);
  });
});
