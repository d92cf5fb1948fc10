// Proves the purchase-rule store upserts, overwrites, lists by id, gets and deletes idempotently, keeping
// every field of a rule through its JSON text (a 1,000-SKU rule too), and the book's empty time, by writing and reading on the real
// MariaDB and SQLite.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Rule } from '../../engine/rules.ts';
import { backends } from './backends.ts';

const regionWeek: Rule = {
  id: 'region-week',
  match: { skuIds: ['louvre-night', 'orsay-day'], attributes: { region: 'idf' } },
  groupBy: ['region'],
  window: { rollingDays: 7 },
  max: { units: 20, distinct: { venue: 3 } },
};
const noShow: Rule = { id: 'no-show', window: { from: '2026-12-01T00:00:00.000Z', to: '2027-01-01T00:00:00.000Z' }, max: { noShows: 5 } };
const venueDate: Rule = { id: 'Venue-date', groupBy: ['venue', 'date'], max: { units: 1 } };

describe.each(backends)('limit rules on $name', (backend) => {
  let stores: Awaited<ReturnType<typeof backend.open>>;
  beforeAll(async () => {
    stores = await backend.open('persist_rules');
  });
  afterAll(async () => {
    await stores?.dispose();
  });

  it('stores, overwrites, lists by id and deletes rules; deleting twice is no error', async () => {
    expect(await stores.rules.all()).toEqual([]);
    await stores.rules.upsert(regionWeek);
    await stores.rules.upsert(regionWeek);
    await stores.rules.upsert(noShow);
    await stores.rules.upsert(venueDate);
    expect(await stores.rules.get('region-week')).toEqual(regionWeek);
    // Byte order: upper case before lower case, on both backends.
    expect((await stores.rules.all()).map((r) => r.id)).toEqual(['Venue-date', 'no-show', 'region-week']);
    expect(await stores.rules.all()).toEqual([venueDate, noShow, regionWeek]);

    const tighter: Rule = { id: 'region-week', groupBy: ['region', 'merchantId'], max: { orders: 2 } };
    await stores.rules.upsert(tighter);
    expect(await stores.rules.get('region-week')).toEqual(tighter);

    expect(await stores.rules.delete('no-show')).toBe(true);
    expect(await stores.rules.delete('no-show')).toBe(false);
    expect(await stores.rules.delete('never-was')).toBe(false);
    expect(await stores.rules.get('no-show')).toBeUndefined();
    expect((await stores.rules.all()).map((r) => r.id)).toEqual(['Venue-date', 'region-week']);
    // Ids are case-sensitive: deleting another case leaves the rule.
    expect(await stores.rules.delete('venue-date')).toBe(false);
    expect(await stores.rules.get('Venue-date')).toEqual(venueDate);
  });

  it("keeps the book's empty time: unset on a new database, a time (ms beyond 32 bits), then null", async () => {
    expect(await stores.rules.emptySince()).toBeUndefined();
    await stores.rules.setEmptySince(1_801_476_063_123);
    expect(await stores.rules.emptySince()).toBe(1_801_476_063_123);
    await stores.rules.setEmptySince(null);
    expect(await stores.rules.emptySince()).toBeNull();
    await stores.rules.setEmptySince(5);
    expect(await stores.rules.emptySince()).toBe(5);
  });

  it('keeps a rule longer than a MySQL text column holds (1,000 SKU ids of 64 characters)', async () => {
    const big: Rule = {
      id: 'big',
      match: { skuIds: Array.from({ length: 1_000 }, (_, i) => `sku-${String(i).padStart(60, '0')}`), attributes: { region: 'idf' } },
      max: { orders: 1 },
    };
    expect(JSON.stringify(big).length).toBeGreaterThan(65_535);
    await stores.rules.upsert(big);
    expect(await stores.rules.get('big')).toEqual(big);
    await stores.rules.delete('big');
  });
});
