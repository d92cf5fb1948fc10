// Proves the SKU catalog upsert is idempotent and overwrites every field, by writing and reading SKUs
// on the real MariaDB and SQLite.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Sku } from '../../persistence/ports.ts';
import { backends } from './backends.ts';

const ticket: Sku = {
  skuId: 'museum-night',
  name: 'Museum night — entry',
  priceCents: 2_500,
  merchantId: 'm-1',
  delivery: 'ticket',
  attributes: { venue: 'louvre', region: 'idf' },
  visibleAt: '2026-11-01T00:00:00.000Z',
  saleStartsAt: '2026-11-02T10:00:00.000Z',
  saleEndsAt: null,
  updatedAt: '2026-10-01T00:00:00.000Z',
};

describe.each(backends)('skus on $name', (backend) => {
  let stores: Awaited<ReturnType<typeof backend.open>>;
  beforeAll(async () => {
    stores = await backend.open('persist_skus');
  });
  afterAll(async () => {
    await stores?.dispose();
  });

  it('stores, overwrites and lists SKUs', async () => {
    await stores.skus.upsert(ticket);
    await stores.skus.upsert(ticket);
    expect(await stores.skus.get('museum-night')).toEqual(ticket);

    const changed: Sku = { ...ticket, name: 'Museum night', priceCents: 0, attributes: {}, visibleAt: null, saleEndsAt: '2026-12-01T00:00:00.000Z', updatedAt: '2026-10-02T00:00:00.000Z' };
    await stores.skus.upsert(changed);
    expect(await stores.skus.get('museum-night')).toEqual(changed);

    const keys: Sku = { ...ticket, skuId: 'game-card', delivery: 'card_key', attributes: { platform: 'pc' } };
    await stores.skus.upsert(keys);
    expect(await stores.skus.all()).toEqual([keys, changed]);
    expect(await stores.skus.get('nope')).toBeUndefined();
  });
});
