// Proves the inventory actor's group commit, failure and overload contract on a real node over SQLite, with its journal store wrapped to hold, fail or slow each append: replies wait for their write, far fewer writes than reservations, a failed write fails its waiters as 503 unavailable and leaves nothing behind, and overload sheds as 503 overloaded.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { decodeEvent } from '../../actors/inventory-codec.ts';
import { UnavailableError } from '../../actors/errors.ts';
import { ActorCrashedError, OverloadedError } from '../../actors/runtime/index.ts';
import { emptyInventory, evolve, ManualClock, type InventoryState } from '../../engine/index.ts';
import { mapEngineError } from '../../http/engine-errors.ts';
import { JournalConflictError, StoreUnavailableError } from '../../persistence/errors.ts';
import type { JournalRecord, JournalStore } from '../../persistence/ports.ts';
import { restartable, startEngine, type TestEngine } from '../support/engine.ts';
import { until } from '../support/poll.ts';
import { injectJournalFaults, releaseAndStop, sleep, waitFor, type JournalFaults } from '../support/journal-faults.ts';

/** Order ids of the reservations carried by some journal records. */
function reservedIds(records: readonly JournalRecord[]): string[] {
  const ids: string[] = [];
  for (const r of records) for (const raw of r.events) {
    const e = decodeEvent(raw);
    if (e.type === 'reserved') ids.push(e.orderId);
  }
  return ids;
}

/** The state the durable journal of one stream describes (contiguity checked). */
async function foldJournal(journal: JournalStore, stream: string): Promise<{ state: InventoryState; records: JournalRecord[]; seq: number }> {
  const records = await journal.readAfter(stream, 0);
  const state = emptyInventory();
  let seq = 0;
  for (const r of records) {
    expect(r.seq).toBe(seq + 1);
    for (const raw of r.events) evolve(state, decodeEvent(raw));
    seq = r.lastSeq;
  }
  return { state, records, seq };
}

/** An order's status as the engine answers it (its SKU/date, or the read model once projected). */
async function orderStatus(node: TestEngine['node'], orderId: string): Promise<string | undefined> {
  const r = await node.orders.getOrder(orderId, undefined);
  return r.ok ? r.value.status : undefined;
}

/** The outcome of `p`, never a rejection. */
const settle = <T,>(p: Promise<T>) => p.then((value) => ({ ok: true as const, value }), (error: unknown) => ({ ok: false as const, error }));

/** Starts `write` with the faults holding appends, and returns it with the append it is held at. */
async function heldWrite<T>(f: JournalFaults, write: () => Promise<T>, what = 'the write held') {
  f.hold = true;
  const result = write();
  await waitFor(() => f.held.length === 1, 5_000, what);
  const held = f.held.shift()!;
  f.hold = false;
  return { result, held };
}

/**
 * Makes `land` run right after the next read of `stream`'s journal (a next incarnation's recovery):
 * a write whose outcome was unknown committing just too late for that read. `landed()` says it ran.
 */
function landOnNextRead(journal: JournalStore, stream: string, land: () => Promise<void>): { landed: () => boolean } {
  const realRead = journal.readAfter.bind(journal);
  let landed = false;
  journal.readAfter = async (s, after) => {
    const rows = await realRead(s, after);
    if (s === stream && !landed) {
      landed = true;
      await land();
    }
    return rows;
  };
  return { landed: () => landed };
}

describe('inventory actor on a real node (SQLite) with a fault-injecting journal', () => {
  let e: TestEngine | undefined;
  let faults: JournalFaults | undefined;
  afterEach(async () => {
    await releaseAndStop(faults, e);
    e = undefined;
    faults = undefined;
  });

  /** A node (SQLite) with SKU `skuId` stocked 10 on 2026-12-02, the journal appends of that SKU/date faulty (held or failed at will). */
  async function faultyStream(skuId: string) {
    const started = (e = await startEngine({ kind: 'sqlite' }));
    await started.client.sku(skuId, '2026-12-02', 10);
    const stream = `${skuId}/2026-12-02`;
    const f = (faults = injectJournalFaults(started.node.stores.journal));
    f.only = (s) => s === stream;
    return { node: started.node, client: started.client, f, stream };
  }

  it('an $expire told from outside (the reconciler) replaces the armed expiry timer instead of starting another chain of them', async () => {
    e = await startEngine({ kind: 'sqlite' });
    const { node, client: c } = e;
    await c.sku('tx', '2026-12-01', 10);
    expect((await c.buyer('tia', 'POST', '/v1/orders', { skuId: 'tx', date: '2026-12-01', qty: 1 })).status).toBe(201);
    // The expiry timers of a SKU/date whose reservations expire in minutes: re-armed every second
    // (expiry_check_ms_max). Armed here = created and neither fired nor cleared.
    const armed = new Set<unknown>();
    /** Timers armed through the spy that have fired. */
    let fired = 0;
    const realSet = globalThis.setTimeout;
    const realClear = globalThis.clearTimeout;
    const spies = [
      vi.spyOn(globalThis, 'setTimeout').mockImplementation(((fn: (...a: unknown[]) => void, ms?: number, ...rest: unknown[]) => {
        const t = realSet(() => {
          if (armed.delete(t)) fired++;
          fn(...rest);
        }, ms);
        if (ms === 1_000 && String(fn).includes('self(msg)')) armed.add(t); // the runtime's ctx.schedule
        return t;
      }) as unknown as typeof setTimeout),
      vi.spyOn(globalThis, 'clearTimeout').mockImplementation(((t?: Parameters<typeof clearTimeout>[0]) => {
        armed.delete(t);
        realClear(t);
      }) as typeof clearTimeout),
    ];
    try {
      const inspect = () => node.inventory.ask<{ liveReservations: number }>('tx/2026-12-01', { type: 'inspect' });
      for (let i = 0; i < 10; i++) {
        node.inventory.tell('tx/2026-12-01', { type: '$expire' });
        await inspect();
      }
      // Whatever was armed before the spy fires within a second and re-arms through it. Timers fire in
      // the order they were armed (one for a shorter wait, sooner), so once one armed through the spy
      // has fired, every one armed before the spy has fired too; the inspect is answered behind the
      // expiry passes they sent.
      await waitFor(() => fired > 0, 10_000, 'an expiry timer armed through the spy fired');
      expect((await inspect()).liveReservations).toBe(1);
      expect(armed.size).toBe(1);
    } finally {
      for (const s of spies) s.mockRestore();
    }
  });

  it('group commit: 2,000 concurrent reserves take a few journal writes, and no reply leaves before its write resolved', async () => {
    e = await startEngine({ kind: 'sqlite' });
    const { node, client: c } = e;
    await c.sku('gc', '2026-12-01', 2_000);
    const f = (faults = injectJournalFaults(node.stores.journal));
    f.only = (stream) => stream === 'gc/2026-12-01';
    f.hold = true;
    let step = 0;
    const durableAt = new Map<string, number>();
    f.onDurable = (records) => {
      for (const id of reservedIds(records)) durableAt.set(id, ++step);
    };

    // 2,000 reserves, fired in 20 waves one event-loop turn apart, so most arrive while a write is in flight.
    const replies: { orderId: string; status: number; at: number }[] = [];
    const all: Promise<void>[] = [];
    const firing = (async () => {
      for (let wave = 0; wave < 20; wave++) {
        for (let i = 0; i < 100; i++) {
          const n = wave * 100 + i;
          all.push(
            node.orders.placeOrder({ userId: `u${n}`, skuId: 'gc', date: '2026-12-01', qty: 1 }).then((a) => {
              replies.push({ orderId: (a.body as { orderId: string }).orderId, status: a.status, at: ++step });
            }),
          );
        }
        await new Promise((r) => setImmediate(r));
      }
    })();

    // Step through the writes one at a time: while one is held, exactly the reservations of the
    // writes already released have been answered, none more.
    let releasedReservations = 0;
    while (replies.length < 2_000) {
      await waitFor(() => f.held.length > 0 || replies.length === 2_000, 10_000, 'the next journal write');
      const next = f.held.shift();
      if (!next) break;
      await sleep(25); // room for a premature reply to show up
      expect(replies.length).toBe(releasedReservations);
      await next.release();
      releasedReservations += reservedIds(next.records).length;
      await waitFor(() => replies.length === releasedReservations, 5_000, 'the replies of the released write');
    }
    await firing;
    await Promise.all(all);

    expect(replies).toHaveLength(2_000);
    expect(replies.every((r) => r.status === 201)).toBe(true);
    expect(new Set(replies.map((r) => r.orderId)).size).toBe(2_000);
    // Every reply came after the append carrying its reservation had resolved.
    for (const r of replies) {
      const durable = durableAt.get(r.orderId);
      expect(durable, r.orderId).toBeDefined();
      expect(r.at).toBeGreaterThan(durable!);
    }
    // Group commit: a handful of writes for 2,000 reservations, at least one carrying many.
    expect(f.calls.length).toBeGreaterThanOrEqual(2);
    expect(f.calls.length).toBeLessThanOrEqual(20);
    expect(Math.max(...f.calls.map((records) => reservedIds(records).length))).toBeGreaterThanOrEqual(200);

    const inv = await c.admin('GET', '/ops/inventory/gc/2026-12-01');
    expect(inv.body).toMatchObject({ total: 2_000, reserved: 2_000, available: 0, pendingEvents: 0, writeInFlight: false });
    const journal = await foldJournal(node.stores.journal, 'gc/2026-12-01');
    expect(journal.state.reservations.size).toBe(2_000);
    expect(inv.body.journalSeq).toBe(journal.seq);
  });

  it('a stock change answers the counts its own write made durable, not reservations decided after it', async () => {
    const { node, client: c, f, stream } = await faultyStream('sx');
    f.hold = true;
    // A reservation's write in flight; the stock change waits for the next write.
    const a = settle(node.orders.placeOrder({ userId: 'sx-a', skuId: 'sx', date: '2026-12-02', qty: 1 }));
    await waitFor(() => f.held.length === 1, 5_000, 'the reservation held');
    const set = settle(node.orders.setStock('sx', '2026-12-02', 12));
    await f.held[0]!.release();
    await waitFor(() => f.held.length === 2, 5_000, 'the stock change held');
    // A second reservation is decided while the stock change's write is in flight: it is not durable
    // when the stock change answers (and its own write then fails).
    const b = settle(node.orders.placeOrder({ userId: 'sx-b', skuId: 'sx', date: '2026-12-02', qty: 1 }));
    await waitFor(async () => (await inspect(e!, 'sx')).pendingEvents === 1, 5_000, 'the second reservation decided');
    await f.held[1]!.release();
    expect(await set).toEqual({ ok: true, value: { ok: true, value: { skuId: 'sx', date: '2026-12-02', total: 12, reserved: 1, sold: 0, available: 11 } } });
    await waitFor(() => f.held.length === 3, 5_000, 'the second reservation held');
    f.hold = false;
    await f.held[2]!.fail(new StoreUnavailableError('injected: the write failed'));
    expect((await a).ok).toBe(true);
    expect((await b).ok).toBe(false);
    expect((await c.admin('GET', '/ops/inventory/sx/2026-12-02')).body).toMatchObject({ total: 12, reserved: 1 });
  });

  it('after a write whose outcome is unknown, the next incarnation fences the journal: a late commit is seen, never landed behind it', async () => {
    e = await startEngine({ kind: 'sqlite' });
    const { node, client: c } = e;
    const stream = 'fz/2026-12-02';
    await c.sku('fz', '2026-12-02', 10);
    const journal = node.stores.journal;
    const realAppend = journal.append.bind(journal);
    const realRead = journal.readAfter.bind(journal);
    const f = (faults = injectJournalFaults(journal));
    f.only = (s) => s === stream;
    const getOrder = (orderId: string) => node.inventory.ask<{ status: string } | undefined>(stream, { type: 'get_order', orderId });

    // 1. The write lands after all, right after the next incarnation read the journal. It holds an
    // order with an Idempotency-Key and one without (both callers answered 503).
    const keyed = { userId: 'u-keyed', skuId: 'fz', date: '2026-12-02', qty: 1, idempotency: { key: 'k-late', hash: 'h-late' } };
    const { result: first, held: late } = await heldWrite(f, () =>
      Promise.all([settle(node.orders.placeOrder({ userId: 'u-late', skuId: 'fz', date: '2026-12-02', qty: 2 })), settle(node.orders.placeOrder(keyed))]),
    );
    const { landed } = landOnNextRead(journal, stream, () => realAppend(late.records));
    await late.fail(new StoreUnavailableError('injected: no answer within the deadline'));
    expect((await first).map((r) => r.ok)).toEqual([false, false]);
    const [lateId, keyedId] = reservedIds(late.records);
    // The recovered SKU/date knows the reservations that committed late (their fate is not "unknown"):
    // the keyed one stays for its retry; the one without a key, which no one can ever name (its caller
    // was failed), is cancelled.
    expect(await getOrder(keyedId!)).toMatchObject({ status: 'reserved' });
    // From the SKU/date, or from the read model once the cancel is projected.
    expect(await orderStatus(node, lateId!)).toBe('cancelled');
    expect(landed()).toBe(true);
    expect(await inspect(e, 'fz')).toMatchObject({ reserved: 1 });
    const retried = await node.orders.placeOrder(keyed);
    expect([retried.status, (retried.body as { orderId: string }).orderId]).toEqual([201, keyedId]);

    // 2. The write never lands in time: the fence takes its seq, and the late write can never commit.
    journal.readAfter = realRead;
    const { result: second, held: lost } = await heldWrite(f, () => settle(node.orders.placeOrder({ userId: 'u-lost', skuId: 'fz', date: '2026-12-02', qty: 3 })), 'the second write held');
    await lost.fail(new StoreUnavailableError('injected: no answer within the deadline'));
    expect((await second).ok).toBe(false);
    expect(await inspect(e, 'fz')).toMatchObject({ reserved: 1 }); // recovered (and fenced)
    await expect(realAppend(lost.records)).rejects.toBeInstanceOf(JournalConflictError);
    const [lostId] = reservedIds(lost.records);
    expect(await getOrder(lostId!)).toBeUndefined();
    // Business goes on after the fence.
    expect((await c.buyer('u-after', 'POST', '/v1/orders', { skuId: 'fz', date: '2026-12-02', qty: 1 })).status).toBe(201);
    expect(await inspect(e, 'fz')).toMatchObject({ reserved: 2 });
  });

  it('a reservation without an Idempotency-Key whose ask ran out of time before its write committed is cancelled once it commits; a keyed one stays for its retry', async () => {
    e = await startEngine({ kind: 'sqlite' }, { STAMPEDE_ASK_TIMEOUT_MS: '1000' });
    const { node } = e;
    const stream = 'slowc/2026-12-02';
    await e.client.sku('slowc', '2026-12-02', 10);
    const f = (faults = injectJournalFaults(node.stores.journal));
    f.only = (s) => s === stream;
    const keyed = { userId: 'u-k', skuId: 'slowc', date: '2026-12-02', qty: 1, idempotency: { key: 'k-slow', hash: 'h-slow' } };
    const { result, held } = await heldWrite(f, () =>
      Promise.all([settle(node.orders.placeOrder({ userId: 'u-nokey', skuId: 'slowc', date: '2026-12-02', qty: 3 })), settle(node.orders.placeOrder(keyed))]),
    );
    // Both callers are told the request failed (503) while the write is still held.
    const answers = await result;
    expect(answers.map((a) => (a.ok ? a.value.status : mapEngineError(a.error)?.status))).toEqual([503, 503]);
    const [noKeyId, keyedId] = reservedIds(held.records);
    await held.release();
    await waitFor(async () => (await inspect(e!, 'slowc')).reserved === 1, 5_000, 'the unanswered reservation cancelled');
    const getOrder = (orderId: string) => node.inventory.ask<{ status: string } | undefined>(stream, { type: 'get_order', orderId });
    expect(await orderStatus(node, noKeyId!)).toBe('cancelled');
    expect(await getOrder(keyedId!)).toMatchObject({ status: 'reserved', userId: 'u-k' });
    const retried = await node.orders.placeOrder(keyed);
    expect([retried.status, (retried.body as { orderId: string }).orderId]).toEqual([201, keyedId]);
    expect(await inspect(e, 'slowc')).toMatchObject({ reserved: 1, available: 9 });
  });

  it('a stop makes the cancels owed to callers told 503 durable first: after a restart the reservation is not held', async () => {
    const backend = restartable({ kind: 'sqlite' });
    e = await startEngine(backend, { STAMPEDE_ASK_TIMEOUT_MS: '300' });
    const { node } = e;
    const stream = 'stopc/2026-12-02';
    await e.client.sku('stopc', '2026-12-02', 10);
    const f = (faults = injectJournalFaults(node.stores.journal));
    f.only = (s) => s === stream;
    const { result, held } = await heldWrite(f, () => settle(node.orders.placeOrder({ userId: 'u-stop', skuId: 'stopc', date: '2026-12-02', qty: 2 })));
    expect((await result).ok).toBe(false);
    // The reservation commits after its caller was told 503: its cancel is owed. Its write fails, so
    // the next incarnation owes it — and the node is stopped right then.
    f.hold = true;
    await held.release();
    await waitFor(() => f.held.length === 1, 5_000, 'the cancel\'s write held');
    f.hold = false;
    await f.held.shift()!.fail(new StoreUnavailableError('injected: the cancel\'s write failed'));
    await e.stop();
    faults = undefined;
    e = await startEngine(backend);
    expect(await inspect(e, 'stopc')).toMatchObject({ reserved: 0, available: 10, liveReservations: 0 });
  });

  it('the cancels of late reservations go in a write of their own, after what was pending (no write holds more than the pending bound), and a cancel whose write fails is made by the next incarnation', async () => {
    e = await startEngine({ kind: 'sqlite' }, { STAMPEDE_ASK_TIMEOUT_MS: '1000', STAMPEDE_PENDING_EVENTS_MAX: '5', STAMPEDE_COMMIT_EVENTS_MAX: '5' });
    const { node } = e;
    const stream = 'boundc/2026-12-02';
    await e.client.sku('boundc', '2026-12-02', 100);
    const f = (faults = injectJournalFaults(node.stores.journal));
    f.only = (s) => s === stream;
    const place = (i: number) => settle(node.orders.placeOrder({ userId: `u-b${i}`, skuId: 'boundc', date: '2026-12-02', qty: 1 }));
    // Five in one write (held), five more pending behind it: the bound is reached.
    const { result: first, held } = await heldWrite(f, () => Promise.all([0, 1, 2, 3, 4].map(place)));
    const second = Promise.all([5, 6, 7, 8, 9].map(place));
    const answers = [...(await first), ...(await second)];
    expect(answers.map((a) => (a.ok ? a.value.status : mapEngineError(a.error)?.status))).toEqual(Array(10).fill(503));
    // The first write commits late; the cancels of its five go after the five pending — and that
    // cancel write fails (its outcome unknown).
    const types = (h: { records: readonly JournalRecord[] }) => h.records.flatMap((r) => r.events.map((raw) => decodeEvent(raw).type));
    f.hold = true;
    await held.release();
    await waitFor(() => f.held.length === 1, 5_000, 'the next write held');
    const next = f.held.shift()!;
    expect(types(next)).toEqual(Array(5).fill('reserved'));
    await next.release();
    await waitFor(() => f.held.length === 1, 5_000, 'the cancel write held');
    f.hold = false;
    const cancelWrite = f.held.shift()!;
    expect(types(cancelWrite)).toEqual(Array(5).fill('released'));
    await cancelWrite.fail(new StoreUnavailableError('injected: no answer within the deadline'));
    // The next incarnation (woken for its live reservations) cancels the first five again, and the
    // second five, which were late too: durably (an inspect of the failing incarnation could still
    // show its undecided state).
    await waitFor(async () => (await foldJournal(node.stores.journal, stream)).state.reservations.size === 0, 10_000, 'every unanswered reservation cancelled, durably');
    expect(await inspect(e, 'boundc')).toMatchObject({ reserved: 0 });
    for (const records of f.calls) for (const r of records) expect(r.events.length).toBeLessThanOrEqual(5);
  });

  it('an expiry pass takes no more releases than the pending bound leaves room for: no write holds more than the bound', async () => {
    // A manual clock: the reservations fall due when the test says, not while it is still setting up.
    const clock = new ManualClock(Date.now());
    e = await startEngine({ kind: 'sqlite' }, { STAMPEDE_RESERVATION_TTL_MS: '1000', STAMPEDE_PENDING_EVENTS_MAX: '5', STAMPEDE_COMMIT_EVENTS_MAX: '5' }, clock);
    const { node } = e;
    const stream = 'boundx/2026-12-02';
    await e.client.sku('boundx', '2026-12-02', 100);
    const f = (faults = injectJournalFaults(node.stores.journal));
    f.only = (s) => s === stream;
    const place = (i: number) => settle(node.orders.placeOrder({ userId: `u-x${i}`, skuId: 'boundx', date: '2026-12-02', qty: 1 }));
    // Five reservations durable; they expire a second later on the clock.
    expect((await Promise.all([0, 1, 2, 3, 4].map(place))).every((a) => a.ok && a.value.status === 201)).toBe(true);
    // A write held in flight, and four events pending behind it ...
    const { result: inFlight, held } = await heldWrite(f, () => place(5));
    const pending = Promise.all([6, 7, 8, 9].map(place));
    await waitFor(async () => (await inspect(e!, 'boundx')).pendingEvents === 4, 5_000, 'four reservations pending behind the held write');
    expect(await inspect(e, 'boundx')).toMatchObject({ liveReservations: 10, writeInFlight: true });
    // ... when all ten fall due: the expiry pass (its timer looks again within a second) may add one
    // release, not ten (fourteen events in one write); the passes after it are refused at the bound.
    clock.advance(1_000);
    await waitFor(async () => (await inspect(e!, 'boundx')).liveReservations < 10, 5_000, 'an expiry pass while the write is held');
    expect(await inspect(e, 'boundx')).toMatchObject({ liveReservations: 9, pendingEvents: 5, writeInFlight: true });
    expect(f.held).toEqual([]); // the held write is still the first one: nothing else was written meanwhile
    const callsBefore = f.calls.length;
    await held.release();
    await Promise.all([inFlight, pending]);
    // The write after the held one is the four reservations and the one release decided behind it.
    const types = (records: readonly JournalRecord[]) => records.flatMap((r) => r.events.map((raw) => decodeEvent(raw).type));
    await waitFor(() => f.calls.length > callsBefore, 5_000, 'the write after the held one');
    expect(types(f.calls[callsBefore]!)).toEqual(['reserved', 'reserved', 'reserved', 'reserved', 'released']);
    await waitFor(async () => (await foldJournal(node.stores.journal, stream)).state.reservations.size === 0, 10_000, 'every reservation expired, durably');
    for (const records of f.calls) for (const r of records) expect(r.events.length).toBeLessThanOrEqual(5);
  });

  it('a payment turned away by its overloaded SKU/date is answered 503 overloaded (not unavailable), and goes through once the SKU/date has room', async () => {
    e = await startEngine({ kind: 'sqlite' }, { STAMPEDE_PENDING_EVENTS_MAX: '5', STAMPEDE_COMMIT_EVENTS_MAX: '5' });
    const { node, client } = e;
    const stream = 'busyp/2026-12-02';
    await client.sku('busyp', '2026-12-02', 100);
    const placed = await client.buyer('u-p0', 'POST', '/v1/orders', { skuId: 'busyp', date: '2026-12-02', qty: 1 });
    expect(placed.status).toBe(201);
    const f = (faults = injectJournalFaults(node.stores.journal));
    f.only = (s) => s === stream;
    // A write held, and five events pending behind it: the SKU/date refuses more until the write lands.
    const place = (i: number) => settle(node.orders.placeOrder({ userId: `u-p${i}`, skuId: 'busyp', date: '2026-12-02', qty: 1 }));
    const { result: first, held } = await heldWrite(f, () => place(1));
    f.hold = true;
    const pending = Promise.all([2, 3, 4, 5, 6].map(place));
    await waitFor(async () => (await node.inventory.ask<{ pendingEvents?: number; liveReservations: number }>(stream, { type: 'inspect' })).liveReservations >= 1, 5_000, 'the SKU/date answering');
    const payment = { orderId: placed.body.orderId as string, paymentId: 'pay-busy', amountCents: 1999, status: 'succeeded' as const };
    const refused = await client.pay(payment);
    expect([refused.status, refused.body.error, refused.headers.get('retry-after') !== null]).toEqual([503, 'overloaded', true]);
    // Room again: the same callback pays the order.
    f.hold = false;
    await held.release();
    for (const h of f.held.splice(0)) await h.release();
    await Promise.all([first, pending]);
    const paid = await client.pay(payment);
    expect([paid.status, paid.body.status]).toEqual([200, expect.stringMatching(/^(paid|delivered)$/)]);
    // The ops view shows the sold units whose write committed (what reconciliation compares).
    expect((await client.admin('GET', '/ops/inventory/busyp/2026-12-02')).body).toMatchObject({ sold: 1, durableSold: 1 });
  });

  it('an order actor whose first lookup of its reservation is turned away (overloaded) looks again on the next message: not an unknown order', async () => {
    e = await startEngine({ kind: 'sqlite' });
    const { node, client } = e;
    await client.sku('busyl', '2026-12-02', 10);
    const placed = await client.buyer('u-l0', 'POST', '/v1/orders', { skuId: 'busyl', date: '2026-12-02', qty: 1 });
    expect(placed.status).toBe(201);
    const orderId = placed.body.orderId as string;
    // Its stream is empty and it is not taken for fresh (as after a restart): the actor reads the
    // stream, finds nothing, and asks the SKU/date — which is too busy once.
    const inventory = node.inventory as unknown as { ask: (key: string, msg: { type: string }, ...rest: unknown[]) => Promise<unknown> };
    const realAsk = inventory.ask.bind(inventory);
    const lookups: string[] = [];
    inventory.ask = (key, msg, ...rest) => {
      if (msg.type === 'get_order') {
        lookups.push(lookups.length === 0 ? 'not fresh' : lookups.length === 1 ? 'overloaded' : 'answered');
        if (lookups.length === 1) return Promise.resolve(undefined);
        if (lookups.length === 2) return Promise.reject(new OverloadedError('inventory busyl/2026-12-02 is overloaded'));
      }
      return realAsk(key, msg, ...rest);
    };
    const payment = { orderId, paymentId: 'pay-l', amountCents: 1999, status: 'succeeded' as const };
    const refused = await client.pay(payment);
    expect([refused.status, refused.body.error]).toEqual([503, 'overloaded']);
    const paid = await client.pay(payment);
    expect([paid.status, paid.body.status]).toEqual([200, expect.stringMatching(/^(paid|delivered)$/)]);
    expect(lookups.slice(0, 3)).toEqual(['not fresh', 'overloaded', 'answered']);
  });

  it("under a purchase rule, such a cancelled reservation frees its buyer's usage: the buyer's next order is not refused by the one it never got", async () => {
    e = await startEngine({ kind: 'sqlite' }, { STAMPEDE_ASK_TIMEOUT_MS: '1000' });
    const { node } = e;
    const stream = 'rulec/2026-12-02';
    await e.client.sku('rulec', '2026-12-02', 10);
    const put = await node.rules.put({ id: 'one-each', groupBy: ['skuId'], max: { units: 1 } });
    expect(put.ok).toBe(true);
    const f = (faults = injectJournalFaults(node.stores.journal));
    f.only = (s) => s === stream;
    const order = { userId: 'u-rule', skuId: 'rulec', date: '2026-12-02', qty: 1 };
    const status = (a: Awaited<ReturnType<typeof settle<Awaited<ReturnType<typeof node.orders.placeOrder>>>>>) => (a.ok ? a.value.status : mapEngineError(a.error)?.status);
    const { result, held } = await heldWrite(f, () => settle(node.orders.placeOrder(order)));
    expect(status(await result)).toBe(503);
    // The buyer retries at once, while that write is still held: the retry's hold waits (200 ms at
    // most) for what became of the first order, which its limit actor asks the SKU/date meanwhile.
    const retry = settle(node.orders.placeOrder(order));
    await sleep(30);
    await held.release();
    // The SKU/date answers that ask with the cancel (once durable), not with the `reserved` it was
    // decided on: the retry is never refused by the order its buyer never got (403 limit_exceeded, a
    // final answer); 201, or 503 if the cancel took longer than the retry's wait.
    const second = status(await retry);
    expect([201, 503]).toContain(second);
    await waitFor(async () => (await inspect(e!, 'rulec')).liveReservations === (second === 201 ? 1 : 0), 5_000, 'the unanswered reservation cancelled');
    if (second === 503) {
      // The buyer's limit actor hears of the cancel (the hold it kept unresolved ends): a new order is taken.
      await waitFor(async () => (await node.orders.placeOrder(order)).status === 201, 5_000, "the buyer's next order taken");
    }
    expect(await inspect(e, 'rulec')).toMatchObject({ reserved: 1 });
  });

  it('a keyed retry refused as not on sale after the sale was moved later gets its order\'s answer from the SKU/date still in memory', async () => {
    e = await startEngine({ kind: 'sqlite' });
    const { node, client: c } = e;
    await c.sku('moved', '2026-12-02', 10);
    const order = { userId: 'mover', skuId: 'moved', date: '2026-12-02', qty: 1, idempotency: { key: 'k-moved', hash: 'h-moved' } };
    const first = await node.orders.placeOrder(order);
    expect(first.status).toBe(201);
    // The merchant moves the sale's start later.
    const put = await c.admin('PUT', '/v1/skus/moved', { name: 'moved', priceCents: 1999, merchantId: 'm1', delivery: 'ticket', saleStartsAt: new Date(Date.now() + 3_600_000).toISOString() });
    expect(put.status).toBe(200);
    // The same key and body, straight to the order service (as after a gate that forgot it and a
    // read-model lookup that missed it): the first answer, not a refusal stored over it.
    expect(await node.orders.placeOrder(order)).toEqual(first);
  });

  it('a write refused for its seq (a definite failure: nothing committed) needs no fence', async () => {
    const { node, client: c, f, stream } = await faultyStream('nf');
    f.hold = true;
    const placed = node.orders.placeOrder({ userId: 'u-refused', skuId: 'nf', date: '2026-12-02', qty: 1 }).then(() => 'ok', () => 'failed');
    await waitFor(() => f.held.length === 1, 5_000, 'the write held');
    f.hold = false;
    await f.held.shift()!.fail(new JournalConflictError('injected: the seq is taken'));
    expect(await placed).toBe('failed');
    const calls = f.calls.length;
    expect((await c.buyer('u-next', 'POST', '/v1/orders', { skuId: 'nf', date: '2026-12-02', qty: 1 })).status).toBe(201);
    const kindsAfter = f.calls.slice(calls).flatMap((records) => records.flatMap((r) => r.events.map((raw) => decodeEvent(raw).type)));
    expect(kindsAfter).toEqual(['reserved']);
  });

  it('after a crash with a write in flight, the next incarnation fences the journal too: the write that lands late is seen', async () => {
    e = await startEngine({ kind: 'sqlite' });
    const { node, client: c } = e;
    const stream = 'fc/2026-12-02';
    await c.sku('fc', '2026-12-02', 10);
    const journal = node.stores.journal;
    const f = (faults = injectJournalFaults(journal));
    f.only = (s) => s === stream;
    const { result: placed, held: late } = await heldWrite(f, () => node.orders.placeOrder({ userId: 'u-crash', skuId: 'fc', date: '2026-12-02', qty: 2 }).then(() => 'ok', () => 'failed'));
    // The write commits only after the next incarnation has read the journal.
    const { landed } = landOnNextRead(journal, stream, () => late.release());
    // A bug in the actor (a message it cannot handle) crashes it while the write is in flight.
    node.inventory.tell(stream, { type: 'no-such-command' } as never);
    expect(await placed).toBe('failed');
    const [orderId] = reservedIds(late.records);
    // Seen, and cancelled: made without an Idempotency-Key, its caller failed, no one can name it.
    expect(await node.inventory.ask<{ status: string } | undefined>(stream, { type: 'get_order', orderId: orderId! })).toMatchObject({ status: 'cancelled' });
    expect(landed()).toBe(true);
    expect(await inspect(e, 'fc')).toMatchObject({ reserved: 0 });
  });

  it('a SKU/date woken after a failed write that recovers with no live reservation is done with, not woken for ever after', async () => {
    const { node, client: c, f, stream } = await faultyStream('wk');
    f.hold = true;
    const set = node.orders.setStock('wk', '2026-12-02', 12).then(() => 'ok', () => 'failed');
    await waitFor(() => f.held.length === 1, 5_000, 'the stock change held');
    f.hold = false;
    await f.held.shift()!.fail(new StoreUnavailableError('injected: the write failed'));
    expect(await set).toBe('failed');
    // Discarded with a write in flight: woken; it recovers with nothing live, so nothing more is due.
    await waitFor(() => node.wakes.pending === 0, 5_000, 'the woken SKU/date done with');
    expect(await inspect(e!, 'wk')).toMatchObject({ total: 10, reserved: 0 });
  });

  it('the storefront\'s availability follows what each write made durable, not decisions pending behind it (whose write may fail)', async () => {
    const { node, client: c, f } = await faultyStream('av');
    const shown = async () => (await c.request('GET', '/v1/skus/av')).body.dates[0].available as number;
    expect(await shown()).toBe(10);
    const first = await heldWrite(f, () => node.orders.placeOrder({ userId: 'u1', skuId: 'av', date: '2026-12-02', qty: 1 }));
    // Decided while the first write is in flight: pending, not durable.
    const second = settle(node.orders.placeOrder({ userId: 'u2', skuId: 'av', date: '2026-12-02', qty: 2 }));
    await waitFor(async () => (await inspect(e!, 'av')).reserved === 3, 5_000, 'the second order decided');
    f.hold = true;
    await first.held.release();
    expect((await first.result).status).toBe(201);
    await waitFor(() => f.held.length === 1, 5_000, 'the second write held');
    f.hold = false;
    expect(await shown()).toBe(9);
    await f.held.shift()!.fail(new StoreUnavailableError('injected: the write failed'));
    expect((await second).ok).toBe(false);
    expect(await shown()).toBe(9);
  });

  it('an incarnation whose every ask ran out of time before it was handed over (it never recovered) is passivated like an idle one', async () => {
    e = await startEngine({ kind: 'sqlite' }, { STAMPEDE_IDLE_MS: '100' });
    await e.client.sku('nw', '2026-12-02', 10);
    const stream = 'nw/2026-12-02';
    const inventory = (e.node.orders as unknown as { inventory: { has(key: string): boolean; ask(key: string, msg: unknown, timeoutMs?: number): Promise<unknown> } }).inventory;
    await waitFor(() => !inventory.has(stream), 10_000, 'the SKU/date passivated after its stock change');
    // An ask of 1 ms, then the event loop busy past it: dropped before the actor ever gets it.
    const asked = settle(inventory.ask(stream, { type: 'inspect' }, 1));
    const busyUntil = Date.now() + 60;
    while (Date.now() < busyUntil) { /* a long turn of the event loop */ }
    const outcome = await asked;
    expect(outcome.ok).toBe(false);
    expect(inventory.has(stream)).toBe(true);
    await waitFor(() => !inventory.has(stream), 10_000, 'the never-recovered incarnation passivated');
    expect(await inspect(e, 'nw')).toMatchObject({ total: 10, reserved: 0 });
  });

  it('a failed journal write fails every command waiting on it as 503 unavailable, writes nothing, and the actor recovers from durable state', async () => {
    e = await startEngine({ kind: 'sqlite' });
    const { node, client: c } = e;
    const stream = 'fw/2026-12-02';
    await c.sku('fw', '2026-12-02', 100);
    for (let i = 0; i < 5; i++) expect((await c.buyer(`ok-${i}`, 'POST', '/v1/orders', { skuId: 'fw', date: '2026-12-02', qty: 1 })).status).toBe(201);
    const before = await foldJournal(node.stores.journal, stream);

    const f = (faults = injectJournalFaults(node.stores.journal));
    f.only = (s) => s === stream;
    f.hold = true;
    // A: its write is in flight (held)...
    const a = node.orders.placeOrder({ userId: 'doomed-a', skuId: 'fw', date: '2026-12-02', qty: 2 }).then(
      (v) => ({ ok: true as const, v }),
      (error: unknown) => ({ ok: false as const, error }),
    );
    await waitFor(() => f.held.length === 1, 5_000, 'the first write');
    // ... B: 20 more over HTTP, decided while it is in flight (waiting in the next batch).
    const b = Array.from({ length: 20 }, (_, i) => c.buyer(`doomed-b${i}`, 'POST', '/v1/orders', { skuId: 'fw', date: '2026-12-02', qty: 1 }));
    await waitFor(async () => (await inspect(e!)).liveReservations === 5 + 1 + 20, 5_000, 'B decided');
    expect((await inspect(e)).pendingEvents).toBe(20);

    const held = f.held.shift()!;
    const failedIds = reservedIds(held.records);
    expect(failedIds).toHaveLength(1);
    f.hold = false;
    await held.fail(new StoreUnavailableError('injected: database went away'));

    const ra = await a;
    expect(ra.ok).toBe(false);
    const error = (ra as { error: unknown }).error;
    expect(error instanceof UnavailableError || error instanceof ActorCrashedError).toBe(true);
    const mapped = mapEngineError(error);
    expect([mapped?.status, mapped?.code]).toEqual([503, 'unavailable']);
    for (const r of await Promise.all(b)) {
      expect([r.status, r.body.error]).toEqual([503, 'unavailable']);
      expect(Number(r.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    }

    // Nothing of the failed write (nor of what waited behind it) reached the journal.
    const after = await foldJournal(node.stores.journal, stream);
    expect(after.seq).toBe(before.seq);
    expect(after.records.flatMap((r) => reservedIds([r]))).not.toContain(failedIds[0]);
    expect(after.state.reserved).toBe(5);

    // The next command succeeds on an actor recovered from durable state: only the 5 + 1 successes count.
    const next = await c.buyer('after', 'POST', '/v1/orders', { skuId: 'fw', date: '2026-12-02', qty: 1 });
    expect(next.status).toBe(201);
    const inv = await c.admin('GET', '/ops/inventory/fw/2026-12-02');
    expect(inv.body).toMatchObject({ total: 100, reserved: 6, sold: 0, available: 94, liveReservations: 6 });
    const final = await foldJournal(node.stores.journal, stream);
    expect(inv.body.journalSeq).toBe(final.seq);
    expect(final.state.reserved).toBe(6);
    expect(final.state.reservations.has(next.body.orderId)).toBe(true);
    // The storefront never saw the discarded decisions either.
    expect((await c.request('GET', '/v1/skus/fw')).body.dates).toEqual([{ date: '2026-12-02', available: 94 }]);
    // The failed order ids are unknown to the engine.
    expect((await c.buyer('doomed-a', 'GET', `/v1/orders/${failedIds[0]}`)).status).toBe(404);
  });

  it('after a failed write, a command in the same batch is not decided on the discarded state (a failed cancel frees no stock)', async () => {
    e = await startEngine({ kind: 'sqlite' });
    const { node, client: c } = e;
    const stream = 'zombie/2026-12-02';
    await c.sku('zombie', '2026-12-02', 1);
    const held = await c.buyer('holder', 'POST', '/v1/orders', { skuId: 'zombie', date: '2026-12-02', qty: 1 });
    expect(held.status).toBe(201);
    const before = await foldJournal(node.stores.journal, stream);

    const f = (faults = injectJournalFaults(node.stores.journal));
    f.only = (s) => s === stream;
    f.hold = true;
    // The cancel is decided (the only unit is free in memory) and its write is held...
    const cancel = c.buyer('holder', 'POST', `/v1/orders/${held.body.orderId}/cancel`);
    await waitFor(() => f.held.length === 1, 5_000, 'the cancel write');
    f.hold = false;
    // ... then fails. Its `$commit_failed` reaches the actor's buffer within this run of microtasks
    // (no event-loop turn passes, so the runtime has not handed it over yet), and an order placed
    // right after lands in the same batch, behind it.
    await f.held.shift()!.fail(new StoreUnavailableError('injected: database went away'));
    for (let i = 0; i < 50; i++) await null;
    const sneaky = node.orders.placeOrder({ userId: 'sneaky', skuId: 'zombie', date: '2026-12-02', qty: 1 }).then(
      (v) => v.status,
      (error: unknown) => mapEngineError(error)?.status,
    );
    expect(await sneaky).toBe(503);
    expect((await cancel).status).toBe(503);

    // Nothing was written after the failure: the unit is still the holder's, never reserved twice.
    await sleep(100);
    const after = await foldJournal(node.stores.journal, stream);
    expect(after.seq).toBe(before.seq);
    expect(after.state.reserved).toBe(1);
    const inv = await c.admin('GET', '/ops/inventory/zombie/2026-12-02');
    expect(inv.body).toMatchObject({ total: 1, reserved: 1, available: 0 });
    expect((await c.buyer('late', 'POST', '/v1/orders', { skuId: 'zombie', date: '2026-12-02', qty: 1 })).status).toBe(409);
  });

  /** A node on SQLite with one SKU/date of `total` on 2026-12-02, whose journal writes are held for the test. */
  async function heldStream(skuId: string, total: number): Promise<{ node: TestEngine['node']; stream: string; f: JournalFaults }> {
    e = await startEngine({ kind: 'sqlite' });
    await e.client.sku(skuId, '2026-12-02', total);
    const stream = `${skuId}/2026-12-02`;
    const f = (faults = injectJournalFaults(e.node.stores.journal));
    f.only = (s) => s === stream;
    f.hold = true;
    return { node: e.node, stream, f };
  }

  it('a retry of an Idempotency-Key while the first reservation is not durable yet gets that reservation, once durable (no second one)', async () => {
    const { node, stream, f } = await heldStream('retry', 10);
    const place = () => node.orders.placeOrder({ userId: 'retrier', skuId: 'retry', date: '2026-12-02', qty: 1, idempotency: { key: 'k-retry', hash: 'h-1' } });
    // The first is decided and its write held (as if its ask had timed out and the gate forgot it)...
    const first = place();
    await waitFor(() => f.held.length === 1, 5_000, 'the first write');
    // ... a retry in flight behind it (and one with another body) wait for it and get its answer.
    const retry = place();
    const other = node.orders.placeOrder({ userId: 'retrier', skuId: 'retry', date: '2026-12-02', qty: 2, idempotency: { key: 'k-retry', hash: 'h-2' } });
    await sleep(50);
    expect((await inspect(e!, 'retry')).liveReservations).toBe(1);
    f.hold = false;
    await f.held.shift()!.release();
    const [a, b, o] = await Promise.all([first, retry, other]);
    expect(a.status).toBe(201);
    expect([b.status, b.body]).toEqual([201, a.body]);
    expect([o.status, (o.body as { error: string }).error]).toEqual([422, 'idempotency_key_reused']);
    const journal = await foldJournal(node.stores.journal, stream);
    expect(journal.state.reserved).toBe(1);
    expect([...journal.state.reservations.values()].map((r) => r.orderId)).toEqual([(a.body as { orderId: string }).orderId]);
  });

  it('tells the fate of a reservation whose write is still in flight only once it is durable (and not at all if the write fails)', async () => {
    const { node, stream, f } = await heldStream('fate', 10);
    for (const outcome of ['committed', 'failed'] as const) {
      const placed = node.orders.placeOrder({ userId: `fate-${outcome}`, skuId: 'fate', date: '2026-12-02', qty: 1 }).catch(() => undefined);
      await waitFor(() => f.held.length === 1, 5_000, 'the write');
      const held = f.held.shift()!;
      const [orderId] = reservedIds(held.records);
      let told: string | undefined;
      const fate = node.orders.fateOf(orderId!).then(
        (v) => (told = v),
        (error: unknown) => (told = `failed: ${(error as Error).name}`),
      );
      // The SKU/date has handled the fate's ask once it answers an inspect sent after it (one mailbox,
      // in order); an answer it gave would have reached `told` by the next turn of the event loop.
      await inspect(e!, 'fate');
      await new Promise((r) => setImmediate(r));
      expect(told).toBeUndefined();
      if (outcome === 'committed') {
        await held.release();
        await fate;
        expect(told).toBe('reserved');
      } else {
        await held.fail(new StoreUnavailableError('injected: database went away'));
        await fate;
        expect(told).not.toBe('reserved');
      }
      await placed;
    }
  });

  it('a cancel of a limited reservation whose write committed but answered a failure frees the buyer\'s usage at once', async () => {
    e = await startEngine({ kind: 'sqlite' });
    const { node, client: c } = e;
    const stream = 'doubt/2026-12-02';
    expect((await c.admin('PUT', '/v1/limit-rules/one-each', { groupBy: ['skuId'], max: { units: 1 } })).status).toBe(200);
    await c.sku('doubt', '2026-12-02', 10);
    const first = await c.buyer('doubter', 'POST', '/v1/orders', { skuId: 'doubt', date: '2026-12-02', qty: 1 });
    expect(first.status).toBe(201);
    expect((await c.buyer('doubter', 'POST', '/v1/orders', { skuId: 'doubt', date: '2026-12-02', qty: 1 })).status).toBe(403);
    // The cancel's write reaches the database, and its answer is lost on the way back.
    const journal = node.stores.journal;
    const append = journal.append;
    journal.append = async (records) => {
      await append.call(journal, records);
      if (records.some((r) => r.stream === stream)) throw new StoreUnavailableError('injected: the answer was lost');
    };
    try {
      expect((await c.buyer('doubter', 'POST', `/v1/orders/${first.body.orderId}/cancel`)).status).toBe(503);
    } finally {
      journal.append = append;
    }
    // The SKU/date recovers it cancelled; the buyer's limit actor, still in memory, learns it now.
    await waitFor(async () => (await c.admin('GET', '/ops/buyers/doubter')).body.holds.length === 0, 2_000, 'the hold released');
    expect((await c.buyer('doubter', 'GET', `/v1/orders/${first.body.orderId}`)).body.status).toBe('cancelled');
    expect((await c.buyer('doubter', 'POST', '/v1/orders', { skuId: 'doubt', date: '2026-12-02', qty: 1 })).status).toBe(201);
  });

  it('while a SKU/date recovers, its mailbox stays bounded, and orders whose callers were answered 503 meanwhile reserve nothing', async () => {
    const backend = restartable({ kind: 'sqlite' });
    const env = { STAMPEDE_ASK_TIMEOUT_MS: '200', STAMPEDE_MAILBOX_MAX: '10' };
    e = await startEngine(backend, env);
    await e.client.sku('slow', '2026-12-02', 100);
    await e.stop();
    // Restarted: the SKU/date has no work, so it recovers on its first order, and its journal read
    // waits until every caller has had its answer (as a read slower than every ask's deadline would).
    e = await startEngine(backend, env);
    const { node } = e;
    const journal = node.stores.journal;
    const readAfter = journal.readAfter;
    let readStarted = false;
    let releaseRead!: () => void;
    const readGate = new Promise<void>((resolve) => (releaseRead = resolve));
    journal.readAfter = async (stream, afterSeq) => {
      if (stream === 'slow/2026-12-02') {
        readStarted = true;
        await readGate;
      }
      return readAfter.call(journal, stream, afterSeq);
    };
    const outcome = (i: number) =>
      node.orders.placeOrder({ userId: `slow-${i}`, skuId: 'slow', date: '2026-12-02', qty: 1 }).then(
        (a) => String(a.status),
        (error: unknown) => (error instanceof OverloadedError ? 'overloaded' : String(mapEngineError(error)?.status)),
      );
    // The first orders start the recovery; those sent while it runs wait in the runtime's mailbox of 10.
    const first = Array.from({ length: 5 }, (_, i) => outcome(i));
    // The recovery has taken them (its journal read runs): the mailbox is empty for the next ones.
    await waitFor(() => readStarted && node.inventory.mailboxDepth('slow/2026-12-02') === 0, 5_000, 'the recovery under way');
    const later = Array.from({ length: 30 }, (_, i) => outcome(100 + i));
    const answers = await Promise.all([...first, ...later]);
    journal.readAfter = readAfter;
    releaseRead();
    expect(answers.filter((a) => a === 'overloaded')).toHaveLength(20);
    expect(answers.filter((a) => a === '503')).toHaveLength(15);
    // Every caller was answered a failure before the SKU/date could take its order: none was reserved.
    // An inspect is answered behind the orders queued during the recovery (one mailbox, in order); one
    // may time out while the recovery ends, so asked until answered.
    const inv = await until('the SKU/date recovered', () => node.orders.inspect('slow', '2026-12-02').catch(() => undefined), (r) => r !== undefined, 10_000);
    expect(inv?.ok && { reserved: inv.value.reserved, live: inv.value.liveReservations }).toEqual({ reserved: 0, live: 0 });
    expect((await e.client.buyer('after-recovery', 'POST', '/v1/orders', { skuId: 'slow', date: '2026-12-02', qty: 1 })).status).toBe(201);
  });

  it('past the mailbox and pending-events bounds, orders are refused with 503 overloaded and Retry-After; ops counts equal the 201s', async () => {
    e = await startEngine({ kind: 'sqlite' }, { STAMPEDE_MAILBOX_MAX: '50', STAMPEDE_PENDING_EVENTS_MAX: '50' });
    const { node, client: c } = e;
    await c.sku('ov', '2026-12-03', 600);
    // The mailbox bound, exactly: 200 asks in one tick, 50 fit, 150 are refused at once.
    await c.sku('mb', '2026-12-03', 1_000);
    // An empty mailbox first: the read model's acknowledgement of the stock write ($projected) is a
    // message too, and lands whenever the projector's write ends. Once the projector is idle, an ask
    // queued behind that acknowledgement returns when the mailbox is empty again.
    await node.projector.drained();
    await node.orders.inspect('mb', '2026-12-03');
    const direct = await Promise.allSettled(
      Array.from({ length: 200 }, (_, i) => node.orders.placeOrder({ userId: `mb-${i}`, skuId: 'mb', date: '2026-12-03', qty: 1 })),
    );
    const refused = direct.filter((r) => r.status === 'rejected').map((r) => (r as PromiseRejectedResult).reason);
    expect(refused).toHaveLength(150);
    for (const err of refused) {
      expect(err).toBeInstanceOf(OverloadedError);
      expect([mapEngineError(err)?.status, mapEngineError(err)?.code]).toEqual([503, 'overloaded']);
    }
    expect(direct.filter((r) => r.status === 'fulfilled' && r.value.status === 201)).toHaveLength(50);
    expect((await c.admin('GET', '/ops/inventory/mb/2026-12-03')).body.reserved).toBe(50);

    // Over HTTP, with a slow journal so work piles up behind each write.
    const f = (faults = injectJournalFaults(node.stores.journal));
    f.only = (s) => s === 'ov/2026-12-03';
    f.delay_ms = 100;
    const tokens = await Promise.all(Array.from({ length: 2_000 }, (_, i) => c.token(`ov-${i}`)));
    const answers = await Promise.all(
      tokens.map((t) => c.request('POST', '/v1/orders', { auth: t, body: { skuId: 'ov', date: '2026-12-03', qty: 1 } })),
    );
    const created = answers.filter((a) => a.status === 201);
    const overloaded = answers.filter((a) => a.status === 503);
    const soldOut = answers.filter((a) => a.status === 409);
    expect(created.length + overloaded.length + soldOut.length).toBe(2_000);
    expect(overloaded.length).toBeGreaterThan(0);
    expect(created.length).toBeGreaterThan(0);
    for (const a of overloaded) {
      expect(a.body.error).toBe('overloaded');
      expect(Number(a.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    }
    for (const a of soldOut) expect(a.body.error).toBe('sold_out');
    const inv = await c.admin('GET', '/ops/inventory/ov/2026-12-03');
    expect(inv.body.reserved).toBe(created.length);
    expect(inv.body.available).toBe(600 - created.length);
    const journal = await foldJournal(node.stores.journal, 'ov/2026-12-03');
    expect(journal.state.reservations.size).toBe(created.length);
    for (const a of created) expect(journal.state.reservations.has(a.body.orderId)).toBe(true);
  });
});

async function inspect(e: TestEngine, skuId = 'fw') {
  const r = await e.node.orders.inspect(skuId, '2026-12-02');
  if (!r.ok) throw new Error(r.message);
  return r.value;
}
