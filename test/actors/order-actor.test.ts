// Proves that a payment's `paid` record rides in its SKU/date's `sold` write, on a real node (SQLite
// and MariaDB) with its journal wrapped to hold or fail appends: both records go in one append (one
// transaction), a failed append leaves neither behind and the callback gets 503 unavailable, and the
// provider's retry then pays the order once; a wrong amount first (journaled on the order's own
// stream) shifts the `paid` record's seq and still rides along. And that an order actor reads its
// stream at activation only when it may hold something: not for a reservation made since its
// inventory actor's recovery, but after a wrong amount was journaled, and after a restart.
import { afterEach, describe, expect, it } from 'vitest';
import { decodeEvent } from '../../actors/inventory-codec.ts';
import { UnavailableError } from '../../actors/errors.ts';
import { orderStream } from '../../actors/order-actor.ts';
import { StoreUnavailableError } from '../../persistence/errors.ts';
import type { JournalRecord } from '../../persistence/ports.ts';
import { restartable, startEngine, type Backend, type TestEngine } from '../support/engine.ts';
import { injectJournalFaults, releaseAndStop, waitFor, watchReads, type JournalFaults } from '../support/journal-faults.ts';
import { freshMysqlDatabase } from '../support/services.ts';

const SKU_STREAM = 'paid-ride/2026-12-01';

/** The kinds of the events of `records`, per stream ("s" = sold; order events by their type). */
function kinds(records: readonly JournalRecord[]): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const r of records) {
    out[r.stream] = [...(out[r.stream] ?? []), ...r.events.map((raw) => (r.stream.startsWith('@o/') ? (raw as { type: string }).type : decodeEvent(raw).type))];
  }
  return out;
}

describe.each([
  { name: 'sqlite', backend: async (): Promise<Backend> => ({ kind: 'sqlite' }) },
  { name: 'mysql', backend: async (): Promise<Backend> => ({ kind: 'mysql', url: await freshMysqlDatabase('actors_order_paid_ride') }) },
])('a payment on $name', ({ backend }) => {
  const open = async (extra: Record<string, string> = {}, at?: Backend) => startEngine(at ?? (await backend()), extra);
  let e: TestEngine | undefined;
  let faults: JournalFaults | undefined;
  afterEach(async () => {
    await releaseAndStop(faults, e);
    e = undefined;
    faults = undefined;
  });

  it('writes `paid` in the same append as `sold`; a failed append leaves neither, and the retry pays once', async () => {
    e = await open();
    const { node, client: c } = e;
    await c.sku('paid-ride', '2026-12-01', 10, { delivery: 'manual', priceCents: 500 });
    const placed = await node.orders.placeOrder({ userId: 'u1', skuId: 'paid-ride', date: '2026-12-01', qty: 1 });
    const orderId = (placed.body as { orderId: string }).orderId;
    const own = orderStream(orderId);
    const f = (faults = injectJournalFaults(node.stores.journal));
    f.only = (stream) => stream === SKU_STREAM || stream === own;
    f.hold = true;

    const payment = { paymentId: 'p1', amountCents: 500, status: 'succeeded' as const };
    const first = node.orders.pay(orderId, payment).then(
      (r) => ({ ok: true as const, r }),
      (error: unknown) => ({ ok: false as const, error }),
    );
    await waitFor(() => f.held.length === 1, 5_000, 'the sale held');
    expect(kinds(f.held[0]!.records)).toEqual({ [SKU_STREAM]: ['sold'], [own]: ['order.reserved', 'order.paid'] });
    await f.held[0]!.fail(new StoreUnavailableError('injected: the write failed'));
    const failed = await first;
    expect(failed.ok).toBe(false);
    expect((failed as { error: unknown }).error).toBeInstanceOf(UnavailableError);
    f.hold = false;
    // Nothing of it is durable: neither the order's stream nor a sale.
    expect(await node.stores.journal.readAfter(own, 0)).toEqual([]);
    const skuKinds = kinds(await node.stores.journal.readAfter(SKU_STREAM, 0))[SKU_STREAM] ?? [];
    expect(skuKinds).not.toContain('sold');

    // The provider retries: one append with both records, the order paid once.
    const calls = f.calls.length;
    const retried = await node.orders.pay(orderId, payment);
    expect(retried).toEqual({ ok: true, value: { orderId, status: 'paid' } });
    // (The failed write's outcome was unknown: the SKU/date's next incarnation fenced its journal first.)
    expect(f.calls.slice(calls).map(kinds)).toEqual([{ [SKU_STREAM]: ['fenced'] }, { [SKU_STREAM]: ['sold'], [own]: ['order.reserved', 'order.paid'] }]);
    expect(await node.orders.pay(orderId, payment)).toEqual({ ok: true, value: { orderId, status: 'paid' } });
    const ownRecords = await node.stores.journal.readAfter(own, 0);
    expect(ownRecords.map((r) => [r.seq, r.lastSeq])).toEqual([[1, 2]]);
    expect(kinds(await node.stores.journal.readAfter(SKU_STREAM, 0))[SKU_STREAM]!.filter((k) => k === 'sold')).toHaveLength(1);
    expect((await c.admin('GET', `/ops/inventory/paid-ride/2026-12-01`)).body).toMatchObject({ sold: 1, reserved: 0 });
  });

  it('after a wrong amount (on the order\'s own stream), the right payment\'s `paid` rides with `sold` at the next seq', async () => {
    e = await open();
    const { node } = e;
    await e.client.sku('paid-ride', '2026-12-01', 10, { delivery: 'manual', priceCents: 500 });
    const placed = await node.orders.placeOrder({ userId: 'u2', skuId: 'paid-ride', date: '2026-12-01', qty: 1 });
    const orderId = (placed.body as { orderId: string }).orderId;
    const own = orderStream(orderId);
    const f = (faults = injectJournalFaults(node.stores.journal));
    f.only = (stream) => stream === SKU_STREAM || stream === own;
    expect(await node.orders.pay(orderId, { paymentId: 'p-wrong', amountCents: 499, status: 'succeeded' })).toEqual({ ok: true, value: { orderId, status: 'reserved' } });
    expect(await node.orders.pay(orderId, { paymentId: 'p-right', amountCents: 500, status: 'succeeded' })).toEqual({ ok: true, value: { orderId, status: 'paid' } });
    expect(f.calls.map(kinds)).toEqual([
      { [own]: ['order.reserved', 'order.payment_mismatch'] },
      { [SKU_STREAM]: ['sold'], [own]: ['order.paid'] },
    ]);
    expect((await node.stores.journal.readAfter(own, 0)).map((r) => [r.seq, r.lastSeq])).toEqual([[1, 2], [3, 3]]);
    // The ops history shows the wrong amount too, made while the order was still reserved.
    await node.projector.drained();
    const history = await node.orders.orderHistory(orderId);
    expect(history.ok && history.value.history.map((h) => [h.status, h.cause])).toEqual([
      ['reserved', 'created'],
      ['reserved', 'payment_mismatch p-wrong of 499'],
      ['paid', 'payment p-right'],
    ]);
  });

  it.each([
    { besideOwnWrite: 'commits' as const },
    // Its own write of the `paid` the sale was made without fails (the database away): 503, and the
    // provider's retry finds the sale in its SKU/date and the order paid.
    { besideOwnWrite: 'fails' as const },
  ])("a stale order actor's `paid` refused for its seq fails only its own payment, not the sale beside it in the same write (whose own write $besideOwnWrite); the retries pay them", async ({ besideOwnWrite }) => {
    e = await open();
    const { node } = e;
    await e.client.sku('paid-ride', '2026-12-01', 10, { delivery: 'manual', priceCents: 500 });
    const place = async (userId: string) =>
      ((await node.orders.placeOrder({ userId, skuId: 'paid-ride', date: '2026-12-01', qty: 1 })).body as { orderId: string }).orderId;
    const stale = await place('u-stale');
    const beside = await place('u-beside');
    // The stale order's actor has read its stream (a wrong amount is journaled on it) ...
    expect(await node.orders.pay(stale, { paymentId: 'ps-wrong', amountCents: 499, status: 'succeeded' })).toEqual({ ok: true, value: { orderId: stale, status: 'reserved' } });
    // ... and then a write of an earlier incarnation lands behind its back at its next seq.
    const [written] = await node.stores.journal.readAfter(orderStream(stale), 0);
    await node.stores.journal.append([{ stream: orderStream(stale), seq: 3, lastSeq: 3, at: written!.at, events: [written!.events[1]] }]);

    // Both sales gather into one write of the SKU/date (a cancel's write holds it meanwhile).
    const third = await place('u-third');
    const f = (faults = injectJournalFaults(node.stores.journal));
    f.only = (stream) => stream === SKU_STREAM || stream.startsWith('@o/');
    if (besideOwnWrite === 'fails') {
      const faulty = node.stores.journal.append;
      let failed = false;
      node.stores.journal.append = async (records) => {
        if (!failed && records.length === 1 && records[0]!.stream === orderStream(beside)) {
          failed = true;
          throw new StoreUnavailableError('injected: the order\'s own write failed');
        }
        return faulty.call(node.stores.journal, records);
      };
    }
    f.hold = true;
    const cancelled = node.orders.cancelOrder(third, 'u-third');
    await waitFor(() => f.held.length === 1, 5_000, 'the cancel held');
    const settle = (p: Promise<unknown>) => p.then((r) => ({ ok: true as const, r }), (error: unknown) => ({ ok: false as const, error }));
    const payStale = settle(node.orders.pay(stale, { paymentId: 'ps', amountCents: 500, status: 'succeeded' }));
    const payBeside = settle(node.orders.pay(beside, { paymentId: 'pb', amountCents: 500, status: 'succeeded' }));
    // Both sales decided behind the held write (not a guess at how long that takes): they gather into its successor.
    await waitFor(async () => {
      const r = await node.orders.inspect('paid-ride', '2026-12-01');
      return r.ok && r.value.pendingEvents === 2;
    }, 5_000, 'both sales decided behind the held write');
    f.hold = false;
    await f.held[0]!.release();
    await cancelled;
    await waitFor(() => f.calls.some((records) => records.some((r) => r.stream === orderStream(beside))), 5_000, 'the sales written');
    // The write with both `paid` records was refused for the stale one's seq; the sale was made again without them.
    const both = f.calls.find((records) => records.some((r) => r.stream === orderStream(stale)))!;
    expect(kinds(both)).toEqual({ [SKU_STREAM]: ['sold', 'sold'], [orderStream(stale)]: ['order.paid'], [orderStream(beside)]: ['order.reserved', 'order.paid'] });
    if (besideOwnWrite === 'commits') {
      expect(await payBeside).toEqual({ ok: true, r: { ok: true, value: { orderId: beside, status: 'paid' } } });
    } else {
      const refused = await payBeside;
      expect(refused.ok).toBe(false);
      expect((refused as { error: unknown }).error).toBeInstanceOf(UnavailableError);
      expect(await node.orders.pay(beside, { paymentId: 'pb', amountCents: 500, status: 'succeeded' })).toEqual({ ok: true, value: { orderId: beside, status: 'paid' } });
    }
    const failed = await payStale;
    expect(failed.ok).toBe(false);
    expect((failed as { error: unknown }).error).toBeInstanceOf(UnavailableError);
    // The provider retries: the order's next incarnation reads its stream and takes the sale over.
    expect(await node.orders.pay(stale, { paymentId: 'ps', amountCents: 500, status: 'succeeded' })).toEqual({ ok: true, value: { orderId: stale, status: 'paid' } });
    const besideRecords = await node.stores.journal.readAfter(orderStream(beside), 0);
    // Its stream holds its own `paid`, or (its write failed) nothing: the order adopted the sale its SKU/date holds.
    expect(kinds(besideRecords)).toEqual(besideOwnWrite === 'commits' ? { [orderStream(beside)]: ['order.reserved', 'order.paid'] } : {});
    expect(await node.orders.pay(beside, { paymentId: 'pb', amountCents: 500, status: 'succeeded' })).toEqual({ ok: true, value: { orderId: beside, status: 'paid' } });
    expect(kinds(await node.stores.journal.readAfter(SKU_STREAM, 0))[SKU_STREAM]!.filter((k) => k === 'sold')).toHaveLength(2);
    expect((await e.client.admin('GET', `/ops/inventory/paid-ride/2026-12-01`)).body).toMatchObject({ sold: 2, reserved: 0 });
  });

  it('does not run a command whose caller already got 503: a cancel batched behind a slow write stays undone', async () => {
    e = await open({ STAMPEDE_ASK_TIMEOUT_MS: '300' });
    const { node } = e;
    await e.client.sku('paid-ride', '2026-12-01', 10, { delivery: 'manual', priceCents: 500 });
    const placed = await node.orders.placeOrder({ userId: 'u-slow', skuId: 'paid-ride', date: '2026-12-01', qty: 1 });
    const orderId = (placed.body as { orderId: string }).orderId;
    const f = (faults = injectJournalFaults(node.stores.journal));
    f.only = (stream) => stream === orderStream(orderId);
    f.hold = true;
    // A wrong amount (journaled on the order's stream, held) and a cancel in the same turn: one batch.
    const settle = <T,>(p: Promise<T>) => p.then((value) => ({ ok: true as const, value }), (error: unknown) => ({ ok: false as const, error }));
    const mismatch = settle(node.orders.pay(orderId, { paymentId: 'p-wrong', amountCents: 499, status: 'succeeded' }));
    const cancel = settle(node.orders.cancelOrder(orderId, 'u-slow'));
    await waitFor(() => f.held.length === 1, 5_000, 'the mismatch held');
    const cancelled = await cancel;
    expect(cancelled.ok).toBe(false); // timed out: the buyer got 503
    f.hold = false;
    await f.held[0]!.release();
    expect((await mismatch).ok).toBe(false); // its ask timed out too, but its write was already made
    // The cancel that was answered 503 changed nothing: the order is still reserved, its stock held.
    // (A read through the same actor comes after its batch.)
    expect(await node.orders.getOrder(orderId, 'u-slow')).toMatchObject({ ok: true, value: { status: 'reserved' } });
    expect((await e.client.admin('GET', `/ops/orders/${orderId}`)).body.status).toBe('reserved');
    expect((await e.client.admin('GET', '/ops/inventory/paid-ride/2026-12-01')).body).toMatchObject({ reserved: 1 });
  });

  it('reads the order\'s stream at activation only when it may hold something', async () => {
    const at = restartable(await backend());
    // Order actors go idle quickly, so a later payment activates a new one.
    e = await open({ STAMPEDE_IDLE_MS: '200' }, at);
    await e.client.sku('paid-ride', '2026-12-01', 10, { delivery: 'manual', priceCents: 500 });
    const place = async (user: string) => ((await e!.node.orders.placeOrder({ userId: user, skuId: 'paid-ride', date: '2026-12-01', qty: 1 })).body as { orderId: string }).orderId;
    let reads = watchReads(e.node.stores.journal, '@o/');
    const pay = (orderId: string, paymentId: string, amountCents = 500) => e!.node.orders.pay(orderId, { paymentId, amountCents, status: 'succeeded' });

    // Fresh: paid without reading its (empty) stream.
    const a = await place('u-a');
    expect(await pay(a, 'pa')).toEqual({ ok: true, value: { orderId: a, status: 'paid' } });
    expect(reads).toEqual([]);

    // A wrong amount is journaled while the reservation is live: once its actor is gone, the next
    // activation reads the stream (and writes `paid` after the mismatch, at seq 3).
    const b = await place('u-b');
    const c = await place('u-c');
    expect(await pay(b, 'pb-wrong', 499)).toEqual({ ok: true, value: { orderId: b, status: 'reserved' } });
    const activeOrders = async () => ((await e!.client.admin('GET', '/ops/shards')).body as { byKind: Record<string, number> }).byKind.order ?? 0;
    await waitFor(async () => (await activeOrders()) === 0, 10_000, 'the order actors passivated');
    expect(await pay(b, 'pb')).toEqual({ ok: true, value: { orderId: b, status: 'paid' } });
    expect(reads).toEqual([orderStream(b)]);
    expect((await e.node.stores.journal.readAfter(orderStream(b), 0)).map((r) => [r.seq, r.lastSeq])).toEqual([[1, 2], [3, 3]]);

    // After a restart the reservation was recovered, not made by this incarnation: read.
    await e.stop();
    e = await open({ STAMPEDE_IDLE_MS: '200' }, at);
    reads = watchReads(e.node.stores.journal, '@o/');
    // (The node may wake orders of the previous run at start, e.g. to project what it had not.)
    const ours = () => reads.filter((stream) => stream === orderStream(c) || stream === orderStream(d));
    expect(await pay(c, 'pc')).toEqual({ ok: true, value: { orderId: c, status: 'paid' } });
    // A reservation made after the recovery is fresh again.
    const d = await place('u-d');
    expect(await pay(d, 'pd')).toEqual({ ok: true, value: { orderId: d, status: 'paid' } });
    expect(ours()).toEqual([orderStream(c)]);
  });

  it('asks for the keys of an order it paid itself without the delivery actor looking in the store', async () => {
    e = await open();
    const { node, client: c } = e;
    expect((await c.admin('PUT', '/v1/skus/fresh-keys', { name: 'Key', priceCents: 700, merchantId: 'm1', delivery: 'card_key' })).status).toBe(200);
    expect((await c.admin('POST', '/v1/skus/fresh-keys/card-keys', { keys: ['K-1', 'K-2', 'K-3', 'K-4', 'K-5'] })).body).toEqual({ added: 5, total: 5 });
    const lookedUp: string[] = [];
    const original = node.stores.cardKeys.assignedToMany;
    node.stores.cardKeys.assignedToMany = (ids) => {
      lookedUp.push(...ids);
      return original.call(node.stores.cardKeys, ids);
    };
    try {
      const ids = await Promise.all(
        [1, 2, 3, 4, 5].map(async (i) => {
          const placed = await node.orders.placeOrder({ userId: `k${i}`, skuId: 'fresh-keys', date: 'open', qty: 1 });
          const orderId = (placed.body as { orderId: string }).orderId;
          expect(await node.orders.pay(orderId, { paymentId: `pk${i}`, amountCents: 700, status: 'succeeded' })).toMatchObject({ ok: true });
          return orderId;
        }),
      );
      const keys = await Promise.all(ids.map(async (id) => {
        await waitFor(async () => (await node.stores.cardKeys.assignedTo(id)).length === 1, 5_000, `keys of ${id}`);
        return (await node.stores.cardKeys.assignedTo(id))[0];
      }));
      expect(new Set(keys).size).toBe(5);
      expect(lookedUp.filter((id) => ids.includes(id))).toEqual([]);
    } finally {
      node.stores.cardKeys.assignedToMany = original;
    }
  });

  it('writes `delivered` in the card-key assignment\'s transaction; a failed one leaves neither keys nor `delivered`, and a retry delivers once', async () => {
    e = await open();
    const { node, client: c } = e;
    expect((await c.admin('PUT', '/v1/skus/ride-keys', { name: 'Key', priceCents: 700, merchantId: 'm1', delivery: 'card_key' })).status).toBe(200);
    expect((await c.admin('POST', '/v1/skus/ride-keys/card-keys', { keys: ['R-1', 'R-2', 'R-3'] })).body).toEqual({ added: 3, total: 3 });
    const own: string[] = [];
    const f = (faults = injectJournalFaults(node.stores.journal));
    f.only = (stream) => own.includes(stream);
    const place = async (userId: string) => {
      const placed = await node.orders.placeOrder({ userId, skuId: 'ride-keys', date: 'open', qty: 1 });
      const orderId = (placed.body as { orderId: string }).orderId;
      own.push(orderStream(orderId));
      return orderId;
    };
    const typesOf = async (orderId: string) => (await node.stores.journal.readAfter(orderStream(orderId), 0)).flatMap((r) => r.events.map((x) => (x as { type: string }).type));

    const first = await place('ride-1');
    expect(await node.orders.pay(first, { paymentId: 'pr1', amountCents: 700, status: 'succeeded' })).toMatchObject({ ok: true });
    await waitFor(async () => (await typesOf(first)).includes('order.delivered'), 5_000, 'the first order delivered');
    // No append of the order's stream alone: `paid` rode with the sale, `delivered` with the keys.
    expect(f.calls).toEqual([]);
    expect(await typesOf(first)).toEqual(['order.reserved', 'order.paid', 'order.delivered']);
    expect(await node.stores.cardKeys.assignedTo(first)).toHaveLength(1);

    // The assignment's transaction fails once: no key, no `delivered`; the in-process retry delivers once.
    const original = node.stores.cardKeys.assign;
    let failures = 0;
    let release!: () => void;
    const retries = new Promise<void>((resolve) => (release = resolve));
    node.stores.cardKeys.assign = async (assignments, at, journal) => {
      if (failures++ === 0) throw new StoreUnavailableError('injected: the assignment failed');
      await retries; // held until the failure's outcome is checked
      return original.call(node.stores.cardKeys, assignments, at, journal);
    };
    try {
      const second = await place('ride-2');
      expect(await node.orders.pay(second, { paymentId: 'pr2', amountCents: 700, status: 'succeeded' })).toMatchObject({ ok: true });
      await waitFor(() => failures >= 1, 5_000, 'the failed assignment');
      expect(await node.stores.cardKeys.assignedTo(second)).toEqual([]);
      expect(await typesOf(second)).toEqual(['order.reserved', 'order.paid']);
      release();
      await waitFor(async () => (await typesOf(second)).includes('order.delivered'), 10_000, 'the second order delivered by a retry');
      expect(await typesOf(second)).toEqual(['order.reserved', 'order.paid', 'order.delivered']);
      const keys = await node.stores.cardKeys.assignedTo(second);
      expect(keys).toHaveLength(1);
      const order = await node.orders.getOrder(second, 'ride-2');
      expect(order).toMatchObject({ ok: true, value: { status: 'delivered' } });
      expect(f.calls).toEqual([]);
    } finally {
      node.stores.cardKeys.assign = original;
    }
  });

  it('does not wake a SKU/date to activate an order it no longer holds (an old order after a restart)', async () => {
    const at = restartable(await backend());
    e = await open({}, at);
    await e.client.sku('paid-ride', '2026-12-01', 10, { delivery: 'manual', priceCents: 500 });
    const placed = await e.node.orders.placeOrder({ userId: 'old', skuId: 'paid-ride', date: '2026-12-01', qty: 1 });
    const orderId = (placed.body as { orderId: string }).orderId;
    expect(await e.node.orders.pay(orderId, { paymentId: 'p-old', amountCents: 500, status: 'succeeded' })).toMatchObject({ ok: true });
    await e.node.projector.drained();
    await e.stop();
    e = await open({}, at);
    await e.node.projector.drained();
    expect(e.node.inventory.has(SKU_STREAM)).toBe(false);
    const got = await e.client.buyer('old', 'GET', `/v1/orders/${orderId}`);
    expect([got.status, got.body.status]).toEqual([200, 'paid']);
    // The order actor read its own stream, which settles it: its SKU/date was not asked.
    expect(e.node.inventory.has(SKU_STREAM)).toBe(false);
  });
});
