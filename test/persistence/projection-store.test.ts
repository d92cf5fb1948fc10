// Proves a projection batch is idempotent and never moves an order backwards (older batches replayed
// after newer ones change nothing), that the first idempotent answer wins, checkpoints only grow and
// outbox rows commit with the batch or not at all, answers past their time are pruned oldest first, by applying batches out of order to the real
// MariaDB and SQLite.
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
    paymentId: null,
    delivery: null,
    visit: null,
    ...over,
  };
}

function step(o: OrderRow, cause: string): OrderHistoryRow {
  return { orderId: o.orderId, stream: o.stream, seq: o.seq, status: o.status, at: o.updatedAt, cause };
}

function batch(part: Partial<ProjectionBatch>): ProjectionBatch {
  return { orders: [], history: [], idempotency: [], checkpoints: new Map(), live: new Map(), outbox: [], ...part };
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
    const event = { eventId: 'idem:s:1', subject: 'stampede.evt.m1.order.reserved', body: '{"eventId":"idem:s:1"}', at: 1_000 };
    const b = batch({ orders: [o], history: [step(o, 'order.reserved')], checkpoints: new Map([['idem:s', 1]]), outbox: [event] });
    await stores.projection.apply(b);
    await stores.projection.apply(b);
    expect((await stores.outbox.readAfter(0, 10_000)).filter((r) => r.eventId === event.eventId).map(({ id: _, ...e }) => e)).toEqual([event]);
    expect(await stores.projection.order('o-idem')).toEqual(o);
    expect(await stores.projection.history('o-idem')).toEqual([step(o, 'order.reserved')]);
    expect(await stores.projection.order('o-none')).toBeUndefined();
    expect(await stores.projection.history('o-none')).toEqual([]);
  });

  it('writes a batch of 200 delivered orders holding quote-heavy 32 KiB payloads (past MariaDB\'s 16 MiB packet once escaped)', async () => {
    // A merchant's manual deliveries near the payload limit, quote-heavy (escaping grows them: each
    // value ~80 KB as SQL, twice per order, ~32 MB in all). The projector bounds its own writes to a
    // few MiB (PROJECTOR_BATCH_BYTES_MAX); the store must still take a bigger batch whole.
    const payload = { note: '"'.repeat(16_000) + 'x'.repeat(16_000) };
    const orders = Array.from({ length: 200 }, (_, i) => order(`o-big-${String(i).padStart(3, '0')}`, { status: 'delivered', seq: 3, paymentId: `p${i}`, delivery: { kind: 'manual', payload } as OrderRow['delivery'] }));
    const outbox = orders.map((o, i) => ({ eventId: `big:s:${i}`, subject: 'stampede.evt.m1.order.delivered', body: JSON.stringify({ eventId: `big:s:${i}`, orderId: o.orderId, payload }), at: 1_000 }));
    await stores.projection.apply(batch({ orders, outbox }));
    expect(await stores.projection.order('o-big-199')).toEqual(orders[199]);
    expect((await stores.outbox.readAfter(0, 10_000)).filter((r) => r.eventId.startsWith('big:s:')).length).toBe(200);
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

  it('orders rows by lifecycle, not by seq, since two streams write them (the SKU/date and the order)', async () => {
    // The SKU/date stream sells at its seq 900; the order's own stream delivers at its seq 2.
    const paid = order('o-two', { seq: 900, status: 'paid', paymentId: 'pay-1', updatedAt: 5_000 });
    const delivered = order('o-two', { stream: paid.stream, seq: 2, status: 'delivered', paymentId: 'pay-1', updatedAt: 6_000, delivery: { kind: 'card_key', keyIds: [7, 9] } });
    await stores.projection.apply(batch({ orders: [delivered] }));
    await stores.projection.apply(batch({ orders: [paid] }));
    expect(await stores.projection.order('o-two')).toEqual(delivered);
    const expired = order('o-late', { seq: 50, status: 'expired' });
    const refund = order('o-late', { seq: 1, status: 'refund_required', paymentId: 'pay-2' });
    await stores.projection.apply(batch({ orders: [expired] }));
    await stores.projection.apply(batch({ orders: [refund] }));
    await stores.projection.apply(batch({ orders: [expired] }));
    expect(await stores.projection.order('o-late')).toEqual(refund);
  });

  it('a recorded visit moves a delivered row forward once, and unvisited delivered orders are listed by date', async () => {
    const delivered = order('v-1', { status: 'delivered', date: '2026-12-02', delivery: { kind: 'ticket', codes: ['T'] } });
    await stores.projection.apply(batch({ orders: [delivered, order('v-2', { status: 'delivered', date: '2026-12-05' })] }));
    expect((await stores.projection.unvisitedDelivered('2026-12-03', 100)).map((o) => o.orderId).filter((id) => id.startsWith('v-'))).toEqual(['v-1']);
    const noShow = { ...delivered, seq: 2, visit: { kind: 'no_show' as const, at: 5_000 } };
    await stores.projection.apply(batch({ orders: [noShow] }));
    await stores.projection.apply(batch({ orders: [delivered] })); // an older replay changes nothing
    expect(await stores.projection.order('v-1')).toEqual(noShow);
    expect((await stores.projection.unvisitedDelivered('2026-12-03', 100)).map((o) => o.orderId).filter((id) => id.startsWith('v-'))).toEqual([]);
  });

  it('lists orders of a status by order id, page by page', async () => {
    const ids = ['pg-a', 'pg-b', 'pg-c'];
    await stores.projection.apply(batch({ orders: ids.map((id) => order(id, { status: 'paid', paymentId: `p-${id}` })) }));
    const first = await stores.projection.ordersByStatus('paid', 2, 'pg-');
    expect(first.map((o) => o.orderId)).toEqual(['pg-a', 'pg-b']);
    const next = await stores.projection.ordersByStatus('paid', 2, 'pg-b');
    expect(next.map((o) => o.orderId).filter((id) => id.startsWith('pg-'))).toEqual(['pg-c']);
  });

  it('keeps the first idempotent answer', async () => {
    const first: IdempotencyRow = { userId: 'u-1', key: 'k-1', requestHash: 'h1', status: 201, body: { orderId: 'o-1', status: 'reserved' }, createdAt: 10 };
    const second: IdempotencyRow = { ...first, requestHash: 'h2', status: 409, body: { error: 'sold_out' }, createdAt: 20 };
    await stores.projection.apply(batch({ idempotency: [first] }));
    await stores.projection.apply(batch({ idempotency: [second] }));
    expect(await stores.projection.idempotency('u-1', 'k-1')).toEqual(first);
    expect(await stores.projection.idempotency('u-2', 'k-1')).toBeUndefined();
  });

  it('replaces an idempotent answer only with one made 24 h or more after it (the key used again once expired)', async () => {
    const day = 24 * 3_600_000;
    const first: IdempotencyRow = { userId: 'u-9', key: 'k-9', requestHash: 'h1', status: 201, body: { orderId: 'o-1' }, createdAt: 1_000 };
    await stores.projection.apply(batch({ idempotency: [first] }));
    await stores.projection.apply(batch({ idempotency: [{ ...first, body: { orderId: 'o-early' }, createdAt: 1_000 + day - 1 }] }));
    expect(await stores.projection.idempotency('u-9', 'k-9')).toEqual(first);
    const reused: IdempotencyRow = { ...first, requestHash: 'h2', body: { orderId: 'o-2' }, createdAt: 1_000 + day };
    await stores.projection.apply(batch({ idempotency: [reused] }));
    expect(await stores.projection.idempotency('u-9', 'k-9')).toEqual(reused);
  });

  it('lists the stored answers\' keys a page at a time, in order, each once, however the pages fall', async () => {
    // Of users and keys that sort together: a user's keys on both sides of a page boundary, a user id
    // that is another's prefix, keys that differ in case (binary order).
    const pairs: [string, string][] = [
      ['ak-a', 'K1'], ['ak-a', 'k1'], ['ak-a', 'k2'], ['ak-a', 'k3'], ['ak-ab', 'k1'], ['ak-b', 'A'], ['ak-b', 'b'],
    ];
    await stores.projection.saveAnswers(pairs.map(([userId, key], i) => ({ userId, key, requestHash: 'h', status: 404, body: {}, createdAt: 1_000 + i })));
    const ours = (rows: [string, string][]) => rows.filter(([u]) => u.startsWith('ak-'));
    const all = ours(await stores.projection.answerKeys(undefined, 1_000));
    expect(all).toEqual([...pairs].sort(([u1, k1], [u2, k2]) => (u1 < u2 ? -1 : u1 > u2 ? 1 : k1 < k2 ? -1 : k1 > k2 ? 1 : 0)));
    for (const size of [1, 2, 3]) {
      const paged: [string, string][] = [];
      let after: [string, string] | undefined;
      for (;;) {
        const page = await stores.projection.answerKeys(after, size);
        paged.push(...page);
        if (page.length < size) break;
        after = page[page.length - 1];
      }
      expect(ours(paged)).toEqual(all);
    }
  });

  it('keeps the earliest answer within 24 h whatever order the writes come in (a refusal stored at once, the 201 it followed projected later)', async () => {
    const day = 24 * 3_600_000;
    // A later request with the same key and another body is refused, and its answer stored at once...
    const refusal: IdempotencyRow = { userId: 'u-late', key: 'k-late', requestHash: 'h-other', status: 409, body: { error: 'not_on_sale' }, createdAt: 5_000 };
    await stores.projection.saveAnswers([refusal]);
    // ...then the read model takes in the reservation the key first answered, made before it.
    const reservation: IdempotencyRow = { ...refusal, requestHash: 'h-first', status: 201, body: { orderId: 'o-first', status: 'reserved' }, createdAt: 4_000 };
    await stores.projection.apply(batch({ idempotency: [reservation] }));
    expect(await stores.projection.idempotency('u-late', 'k-late')).toEqual(reservation);
    // Written again (a projection replayed after a restart): unchanged; a later answer does not replace it.
    await stores.projection.apply(batch({ idempotency: [reservation] }));
    await stores.projection.saveAnswers([{ ...refusal, createdAt: 4_500 }]);
    expect(await stores.projection.idempotency('u-late', 'k-late')).toEqual(reservation);
    // An answer from 24 h or more before the stored one belongs to an earlier period of the key: it does not replace it.
    const older: IdempotencyRow = { ...refusal, key: 'k-periods', createdAt: 10 * day };
    await stores.projection.saveAnswers([older]);
    await stores.projection.apply(batch({ idempotency: [{ ...reservation, key: 'k-periods', createdAt: 9 * day }] }));
    expect(await stores.projection.idempotency('u-late', 'k-periods')).toEqual(older);
  });

  it('deletes first answers made before a time, oldest first, a bounded batch at a time', async () => {
    const base = 2_000_000_000_000;
    await stores.projection.dropAnswersBefore(base, 1_000_000); // this file's earlier answers
    const answer = (key: string, createdAt: number): IdempotencyRow => ({ userId: 'u-prune', key, requestHash: 'h', status: 201, body: { key }, createdAt });
    await stores.projection.apply(batch({ idempotency: [answer('p-3', base + 3), answer('p-1', base + 1), answer('p-4', base + 4), answer('p-2', base + 2)] }));
    expect(await stores.projection.dropAnswersBefore(base + 3, 1)).toBe(1);
    expect(await stores.projection.idempotency('u-prune', 'p-1')).toBeUndefined();
    expect(await stores.projection.idempotency('u-prune', 'p-2')).toBeDefined();
    expect(await stores.projection.dropAnswersBefore(base + 3, 10)).toBe(1);
    expect(await stores.projection.dropAnswersBefore(base + 3, 10)).toBe(0);
    const left = await Promise.all(['p-1', 'p-2', 'p-3', 'p-4'].map((k) => stores.projection.idempotency('u-prune', k)));
    expect(left.map((r) => r?.createdAt ?? null)).toEqual([null, null, base + 3, base + 4]);
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
    const event = { eventId: 'atomic:s:1', subject: 'stampede.evt.m1.order.reserved', body: '{}', at: 1 };
    const b = batch({ orders: [o], history: [broken], checkpoints: new Map([['atomic:s', 1]]), outbox: [event] });
    await expect(stores.projection.apply(b)).rejects.toThrow();
    expect(await stores.projection.order('o-atomic')).toBeUndefined();
    expect((await stores.projection.checkpoints()).has('atomic:s')).toBe(false);
    expect((await stores.outbox.readAfter(0, 10_000)).map((r) => r.eventId)).not.toContain('atomic:s:1');
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
