// Proves a card_key SKU's stock stays its one pool of keys on date `open`: stock on another date is
// refused (409, nothing listed), and an upload refused because the stock would pass its bound stores
// no key (a refused request changes nothing: before, its keys were kept and counted by the next
// upload), the retry of an upload whose stock change failed is answered with what the stock grew by,
// and a large upload leaves the event loop free between slices — on the embedded default
// and on MariaDB.
import { afterEach, describe, expect, it } from 'vitest';
import { CardKeyCipher } from '../../persistence/card-key-cipher.ts';
import { engineBackends, SECRETS, startEngine, type TestEngine } from '../support/engine.ts';

describe.each(engineBackends('e2e_card_key_stock'))('card-key stock on %s', (_name, backend) => {
  let e: TestEngine | undefined;
  afterEach(async () => {
    await e?.stop();
    e = undefined;
  });

  it('is refused on a date other than `open`, and a refused upload stores no key', async () => {
    e = await startEngine(await backend());
    const c = e.client;
    expect((await c.admin('PUT', '/v1/skus/ck', { name: 'Keys', priceCents: 100, merchantId: 'm1', delivery: 'card_key' })).status).toBe(200);
    const dated = await c.admin('PUT', '/v1/skus/ck/stock/2030-01-01', { total: 1 });
    expect(dated.status).toBe(409);
    expect(dated.body.error).toBe('invalid_state');
    expect((await c.request('GET', '/v1/skus/ck')).body.dates).toEqual([]);

    expect((await c.admin('PUT', '/v1/skus/ck/stock/open', { total: 1_000_000_000 })).status).toBe(200);
    const refused = await c.admin('POST', '/v1/skus/ck/card-keys', { keys: ['SECRET-A'] });
    expect(refused.status).toBe(400);
    expect(refused.body.error).toBe('invalid_request');
    expect(await e.node.stores.cardKeys.count('ck')).toBe(0);

    expect((await c.admin('PUT', '/v1/skus/ck/stock/open', { total: 0 })).status).toBe(200);
    expect((await c.admin('POST', '/v1/skus/ck/card-keys', { keys: ['NEW'] })).body).toEqual({ added: 1, total: 1 });
    expect((await c.admin('GET', '/ops/inventory/ck/open')).body).toMatchObject({ total: 1, available: 1 });
  });

  it('answers the retry of an upload whose stock change failed with the keys it brought into the stock', async () => {
    e = await startEngine(await backend());
    const c = e.client;
    await c.sku('ck-retry', 'open', 0, { delivery: 'card_key', priceCents: 100 });
    expect((await c.admin('POST', '/v1/skus/ck-retry/card-keys', { keys: ['R-1', 'R-2'] })).body).toEqual({ added: 2, total: 2 });
    // The first attempt of an upload stored its keys, then its stock change failed (503): as here.
    const cipher = new CardKeyCipher(SECRETS.STAMPEDE_CARD_KEY_SECRET);
    const keys = ['R-3', 'R-4', 'R-5'];
    expect(await e.node.stores.cardKeys.add('ck-retry', keys.map((k) => ({ hash: cipher.hash('ck-retry', k), ciphertext: cipher.encrypt('ck-retry', k) })))).toBe(3);
    expect((await c.admin('GET', '/ops/inventory/ck-retry/open')).body).toMatchObject({ total: 2 });
    // Its retry stores nothing new, and the stock grows by 3: `added` says so (API.md: the stock grows by `added`).
    expect((await c.admin('POST', '/v1/skus/ck-retry/card-keys', { keys })).body).toEqual({ added: 3, total: 5 });
    expect((await c.admin('GET', '/ops/inventory/ck-retry/open')).body).toMatchObject({ total: 5, available: 5 });
    // Sent once more: nothing stored, nothing counted.
    expect((await c.admin('POST', '/v1/skus/ck-retry/card-keys', { keys })).body).toEqual({ added: 0, total: 5 });
  });

  it('fixes the SKU\'s merchant and delivery once keys are stored, even before its stock has a date', async () => {
    e = await startEngine(await backend());
    const c = e.client;
    const sku = { name: 'Keys', priceCents: 100, merchantId: 'm1', delivery: 'card_key' };
    expect((await c.admin('PUT', '/v1/skus/ck-owned', sku)).status).toBe(200);
    // Keys stored, the stock's date not made yet (a first upload between its two steps).
    const cipher = new CardKeyCipher(SECRETS.STAMPEDE_CARD_KEY_SECRET);
    expect(await e.node.stores.cardKeys.add('ck-owned', [{ hash: cipher.hash('ck-owned', 'K-1'), ciphertext: cipher.encrypt('ck-owned', 'K-1') }])).toBe(1);
    expect((await c.request('GET', '/v1/skus/ck-owned')).body.dates).toEqual([]);
    for (const change of [{ merchantId: 'm2' }, { delivery: 'ticket' }]) {
      const moved = await c.admin('PUT', '/v1/skus/ck-owned', { ...sku, ...change });
      expect([moved.status, moved.body.error]).toEqual([409, 'invalid_state']);
    }
    expect((await c.admin('PUT', '/v1/skus/ck-owned', { ...sku, name: 'Keys, renamed' })).status).toBe(200);
  });

  it('hashes and seals 10,000-key uploads a slice at a time, one upload at a time, letting the event loop run in between, and stores them all', async () => {
    e = await startEngine(await backend());
    const c = e.client;
    expect((await c.admin('PUT', '/v1/skus/ck-big', { name: 'Keys', priceCents: 100, merchantId: 'm1', delivery: 'card_key' })).status).toBe(200);
    // Turns of the event loop, counted while the upload runs; each seal notes the turn it ran in.
    let turns = 0;
    let counting = true;
    const tick = () => {
      turns++;
      if (counting) setImmediate(tick);
    };
    setImmediate(tick);
    const cipher = (e.node.orders as unknown as { cipher: { encrypt: (skuId: string, key: string) => string } }).cipher;
    const encrypt = cipher.encrypt.bind(cipher);
    const sealedInTurn: number[] = [];
    cipher.encrypt = (skuId, key) => {
      sealedInTurn.push(turns);
      return encrypt(skuId, key);
    };
    expect((await c.admin('PUT', '/v1/skus/ck-big2', { name: 'Keys', priceCents: 100, merchantId: 'm2', delivery: 'card_key' })).status).toBe(200);
    const keys = (prefix: string) => Array.from({ length: 10_000 }, (_, i) => `${prefix}-${String(i).padStart(5, '0')}`);
    // Two uploads at once (two merchants): one upload's slices at a time on the node.
    const [added, added2] = await Promise.all([e.node.orders.addCardKeys('ck-big', keys('BIG')), e.node.orders.addCardKeys('ck-big2', keys('BIG2'))]);
    counting = false;
    expect(added).toEqual({ ok: true, value: { added: 10_000, total: 10_000 } });
    expect(added2).toEqual({ ok: true, value: { added: 10_000, total: 10_000 } });
    // 500 a turn: the seals span at least 40 turns (one turn for all of an upload before), never more than 500 in one.
    const perTurn = new Map<number, number>();
    for (const t of sealedInTurn) perTurn.set(t, (perTurn.get(t) ?? 0) + 1);
    expect(perTurn.size).toBeGreaterThanOrEqual(40);
    expect(Math.max(...perTurn.values())).toBeLessThanOrEqual(500);
  });
});
