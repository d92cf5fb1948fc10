// Proves SKU/date streams get one stable number each, even when many callers create the same one at
// once, by racing ensure() against the real MariaDB and SQLite.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backends } from './backends.ts';

describe.each(backends)('streams on $name', (backend) => {
  let stores: Awaited<ReturnType<typeof backend.open>>;
  beforeAll(async () => {
    stores = await backend.open('persist_streams');
  });
  afterAll(async () => {
    await stores?.dispose();
  });

  it('gives 20 parallel ensure() of one SKU/date the same number, and makes one row', async () => {
    const refs = await Promise.all(Array.from({ length: 20 }, () => stores.streams.ensure('race-sku', '2026-12-24')));
    const numbers = new Set(refs.map((r) => r.streamNo));
    expect(numbers.size).toBe(1);
    expect(refs[0]).toEqual({ streamNo: refs[0]?.streamNo, skuId: 'race-sku', date: '2026-12-24' });
    expect((await stores.streams.all()).filter((r) => r.skuId === 'race-sku')).toHaveLength(1);
  });

  it('numbers different SKU/dates differently and finds them by number and by key', async () => {
    const a = await stores.streams.ensure('look-sku', '2026-12-24');
    const b = await stores.streams.ensure('look-sku', 'open');
    const c = await stores.streams.ensure('LOOK-SKU', 'open');
    expect(new Set([a.streamNo, b.streamNo, c.streamNo]).size).toBe(3);
    expect(await stores.streams.ensure('look-sku', 'open')).toEqual(b);
    expect(await stores.streams.byNo(b.streamNo)).toEqual(b);
    expect(await stores.streams.byKey('look-sku', '2026-12-24')).toEqual(a);
    expect(await stores.streams.byKey('look-sku', '2027-01-01')).toBeUndefined();
    expect(await stores.streams.byNo(999_999)).toBeUndefined();
    expect(await stores.streams.listForSku('look-sku')).toEqual([a, b]);
    const all = await stores.streams.all();
    expect(all).toEqual(expect.arrayContaining([a, b, c]));
    expect(all.map((r) => r.streamNo)).toEqual([...all.map((r) => r.streamNo)].sort((x, y) => x - y));
  });
});
