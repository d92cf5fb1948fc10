// Proves that a buyer's limit actor reads its journal only when the buyer may have one, on a real
// node (SQLite and MariaDB) with a purchase rule: a new buyer's first order reads nothing; a buyer
// this process wrote reads again once its actor is gone; after a restart, a buyer whose stream the
// journal held is read (and its rule still counts), while a new one is not.
import { afterEach, describe, expect, it } from 'vitest';
import { startEngine, restartable, type Backend, type TestEngine } from '../support/engine.ts';
import { waitFor, watchReads } from '../support/journal-faults.ts';
import { freshMysqlDatabase } from '../support/services.ts';

const DATE = '2026-12-20';

describe.each([
  { name: 'sqlite', backend: async (): Promise<Backend> => ({ kind: 'sqlite' }) },
  { name: 'mysql', backend: async (): Promise<Backend> => ({ kind: 'mysql', url: await freshMysqlDatabase('actors_buyer_streams') }) },
])('buyer limit journals on $name', ({ backend }) => {
  let e: TestEngine | undefined;
  afterEach(async () => {
    await e?.stop();
    e = undefined;
  });

  it('reads a buyer\'s journal only if the buyer may have one', async () => {
    const at = restartable(await backend());
    // Limit actors go idle quickly, so a later order activates a new one.
    const open = async () => startEngine(at, { STAMPEDE_IDLE_MS: '200' });
    e = await open();
    const c = e.client;
    expect((await c.admin('PUT', '/v1/limit-rules/one-per-day', { id: 'one-per-day', groupBy: ['skuId', 'date'], max: { units: 1 } })).status).toBe(200);
    expect((await c.admin('PUT', '/v1/skus/bs', { name: 'bs', priceCents: 500, merchantId: 'm1', delivery: 'ticket' })).status).toBe(200);
    expect((await c.admin('PUT', `/v1/skus/bs/stock/${DATE}`, { total: 100 })).status).toBe(200);
    const order = (user: string) => e!.client.buyer(user, 'POST', '/v1/orders', { skuId: 'bs', date: DATE, qty: 1 });
    const limitActors = async () => ((await e!.client.admin('GET', '/ops/shards')).body as { byKind: Record<string, number> }).byKind.limits ?? 0;
    let reads = watchReads(e.node.stores.journal, '@b/');

    expect((await order('new-1')).status).toBe(201);
    expect(reads).toEqual([]);
    await waitFor(async () => (await limitActors()) === 0, 10_000, 'the limit actors passivated');
    // Its state was left for its next incarnation (actors/warm-buyers.ts): no read, and the rule counts the first order.
    expect((await order('new-1')).body).toMatchObject({ error: 'limit_exceeded', rule: 'one-per-day' });
    expect(reads).toEqual([]);
    await waitFor(async () => (await limitActors()) === 0, 10_000, 'the limit actors passivated');
    // Without it (aged out, or no room for it): written by this process, so its next activation reads.
    expect(e.node.warmBuyers.take('new-1')).toBeDefined();
    expect((await order('new-1')).body).toMatchObject({ error: 'limit_exceeded', rule: 'one-per-day' });
    expect(reads).toEqual(['@b/new-1']);

    await e.stop();
    e = await open();
    reads = watchReads(e.node.stores.journal, '@b/');
    // A stream the journal held at start is read; a buyer without one is not.
    expect((await order('new-1')).body).toMatchObject({ error: 'limit_exceeded', rule: 'one-per-day' });
    expect((await order('new-2')).status).toBe(201);
    expect(reads).toEqual(['@b/new-1']);
    expect(e.node.buyerStreams.stats).toMatchObject({ complete: true });
  });
});
