// Proves a projection batch is idempotent and never moves an order backwards (older batches replayed
// after newer ones change nothing), that the first idempotent answer wins and checkpoints only grow,
// by applying batches out of order to the real MariaDB and SQLite.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { IdempotencyRow, OrderHistoryRow, OrderRow, ProjectionBatch } from '../../persistence/ports.ts';
import { backends } from './backends.ts';

function order(orderId: string, over: Partial<OrderRow> = {}): OrderRow {
  return {
    orderId,
    stream: 'sku-1:2026-12-24',
    userId: 'u-1',
    skuId: 'sku-1',
    date: '2026-12-24',
    qty: 2,
    amountCents: 5_000,
    status: 'reserved',
    createdAt: 1_000,
    expiresAt: 901_000,
    updatedAt: 1_000,
    seq: 1,
    ...over,
  };
}

function step(o: OrderRow, cause: string): OrderHistoryRow {
  return { orderId: o.orderId, stream: o.stream, seq: o.seq, status: o.status, at: o.updatedAt, cause };
}

function batch(part: Partial<ProjectionBatch>): ProjectionBatch {
  return { orders: [], history: [], idempotency: [], checkpoints: new Map(), live: new Map(), ...part };
}

describe.each(backends)('projection on $name', (backend) => {
  let stores: Awaited<ReturnType<typeof backend.open>>;
  beforeAll(async () => {
    stores = await backend.open('persist_projection');
  });
  afterAll(async () => {
    await stores?.dispose();
  });

  it('applies a batch idempotently', async () => {
    const o = order('o-idem');
    const b = batch({ orders: [o], history: [step(o, 'order.reserved')], checkpoints: new Map([['idem:s', 1]]) });
    await stores.projection.apply(b);
    await stores.projection.apply(b);
    expect(await stores.projection.order('o-idem')).toEqual(o);
    expect(await stores.projection.history('o-idem')).toEqual([step(o, 'order.reserved')]);
    expect(await stores.projection.order('o-none')).toBeUndefined();
    expect(await stores.projection.history('o-none')).toEqual([]);
  });

  it('never moves an order backwards when an older batch is replayed after a newer one', async () => {
    const reserved = order('o-fwd', { seq: 3 });
    const paid = order('o-fwd', { seq: 9, status: 'paid', updatedAt: 5_000, expiresAt: 0 });
    const newer = batch({ orders: [paid], history: [step(paid, 'payment.succeeded')] });
    const older = batch({ orders: [reserved], history: [step(reserved, 'order.reserved')] });

    await stores.projection.apply(newer);
    await stores.projection.apply(older);
    expect(await stores.projection.order('o-fwd')).toEqual(paid);
    expect(await stores.projection.history('o-fwd')).toEqual([step(reserved, 'order.reserved'), step(paid, 'payment.succeeded')]);

    const delivered = order('o-fwd', { seq: 12, status: 'delivered', updatedAt: 6_000, expiresAt: 0 });
    await stores.projection.apply(batch({ orders: [delivered] }));
    expect(await stores.projection.order('o-fwd')).toEqual(delivered);
    await stores.projection.apply(batch({ orders: [order('o-fwd', { seq: 12, status: 'cancelled' })] }));
    expect(await stores.projection.order('o-fwd')).toEqual(delivered);
  });

  it('keeps the first idempotent answer', async () => {
    const first: IdempotencyRow = { userId: 'u-1', key: 'k-1', requestHash: 'h1', status: 201, body: { orderId: 'o-1', status: 'reserved' }, createdAt: 10 };
    const second: IdempotencyRow = { ...first, requestHash: 'h2', status: 409, body: { error: 'sold_out' }, createdAt: 20 };
    await stores.projection.apply(batch({ idempotency: [first] }));
    await stores.projection.apply(batch({ idempotency: [second] }));
    expect(await stores.projection.idempotency('u-1', 'k-1')).toEqual(first);
    expect(await stores.projection.idempotency('u-2', 'k-1')).toBeUndefined();
  });

  it('keeps the greatest checkpoint of each stream', async () => {
    await stores.projection.apply(batch({ checkpoints: new Map([['cp:a', 10], ['cp:b', 3]]) }));
    await stores.projection.apply(batch({ checkpoints: new Map([['cp:a', 5], ['cp:b', 4]]) }));
    const cps = await stores.projection.checkpoints();
    expect(cps.get('cp:a')).toBe(10);
    expect(cps.get('cp:b')).toBe(4);
  });

  it('lists streams whose checkpoint had live reservations and counts orders and units by status', async () => {
    const s1 = 'count:s1';
    const s2 = 'count:s2';
    await stores.projection.apply(
      batch({
        orders: [
          order('c-1', { stream: s1, qty: 1 }),
          order('c-2', { stream: s1, qty: 3 }),
          order('c-3', { stream: s1, qty: 2, status: 'paid' }),
          order('c-4', { stream: s2, qty: 5, status: 'expired' }),
        ],
        checkpoints: new Map([[s1, 1], [s2, 1]]),
        live: new Map([[s1, 2], [s2, 0]]),
      }),
    );
    const reserved = await stores.projection.streamsWithReservations();
    expect(reserved).toContain(s1);
    expect(reserved).not.toContain(s2);
    expect(await stores.projection.countByStatus(s1)).toEqual({ reserved: { orders: 2, units: 4 }, paid: { orders: 1, units: 2 } });
    expect(await stores.projection.countByStatus(s2)).toEqual({ expired: { orders: 1, units: 5 } });
    expect(await stores.projection.countByStatus('count:none')).toEqual({});

    await stores.projection.apply(
      batch({
        orders: [order('c-1', { stream: s1, qty: 1, seq: 2, status: 'cancelled' }), order('c-2', { stream: s1, qty: 3, seq: 2, status: 'expired' })],
        checkpoints: new Map([[s1, 2]]),
        live: new Map([[s1, 0]]),
      }),
    );
    expect(await stores.projection.streamsWithReservations()).not.toContain(s1);
    // An older checkpoint (a replayed batch) never brings the count back.
    await stores.projection.apply(batch({ checkpoints: new Map([[s1, 1]]), live: new Map([[s1, 5]]) }));
    expect(await stores.projection.streamsWithReservations()).not.toContain(s1);
  });

  it('applies a batch in one transaction: a failing row leaves none of the batch behind', async () => {
    const o = order('o-atomic', { stream: 'atomic:s' });
    const broken = { ...step(o, 'order.reserved'), cause: null as unknown as string };
    const b = batch({ orders: [o], history: [broken], checkpoints: new Map([['atomic:s', 1]]) });
    await expect(stores.projection.apply(b)).rejects.toThrow();
    expect(await stores.projection.order('o-atomic')).toBeUndefined();
    expect((await stores.projection.checkpoints()).has('atomic:s')).toBe(false);
  });

  it('applies a batch larger than one statement in one go', async () => {
    const orders = Array.from({ length: 1_203 }, (_, i) => order(`bulk-${i}`, { stream: 'bulk:s', seq: i + 1 }));
    const history = orders.map((o) => step(o, 'order.reserved'));
    const checkpoints = new Map([['bulk:s', 1_203]]);
    await stores.projection.apply(batch({ orders, history, checkpoints }));
    await stores.projection.apply(batch({ orders, history, checkpoints }));
    expect(await stores.projection.countByStatus('bulk:s')).toEqual({ reserved: { orders: 1_203, units: 2 * 1_203 } });
    expect(await stores.projection.order('bulk-1202')).toEqual(orders[1_202]);
    expect((await stores.projection.checkpoints()).get('bulk:s')).toBe(1_203);
  });
});
