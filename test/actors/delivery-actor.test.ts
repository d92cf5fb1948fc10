// Proves the delivery actor gives each card key to one order and each order one key set, parks what
// the pool cannot cover (FIFO, one exhaustion event per episode) and serves it when keys arrive, and
// that a failed write fails its asks without losing or doubling a key, by running the actor in the
// real actor runtime on the real MariaDB and SQLite stores, with failures injected into the stores.
import { createHash } from 'node:crypto';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  DeliveryActor,
  deliveryStream,
  delivery_limits_default,
  EPISODE_KEPT_OPEN_GRACE_MS,
  type DeliveryInspection,
  type DeliveryLimits,
  type DeliveryMessage,
  type DeliveryReply,
} from '../../actors/delivery-actor.ts';
import { UnavailableError } from '../../actors/errors.ts';
import { GroupCommitter } from '../../actors/group-commit.ts';
import { Projector } from '../../actors/projector.ts';
import { ActorRuntime, type ActorKind } from '../../actors/runtime/index.ts';
import { StoreUnavailableError } from '../../persistence/errors.ts';
import type { CardKeyStore } from '../../persistence/ports.ts';
import { backends } from '../persistence/backends.ts';
import { injectJournalFaults, waitFor, type JournalFaults } from '../support/journal-faults.ts';

const T0 = Date.parse('2026-12-01T10:00:00.000Z');

const sealed = (skuId: string, plain: string) => ({ hash: createHash('sha256').update(`${skuId}/${plain}`).digest('hex'), ciphertext: `enc(${plain})` });

/** Uploads `n` new keys to the SKU. */
async function upload(cardKeys: CardKeyStore, skuId: string, n: number, batch: string): Promise<void> {
  expect(await cardKeys.add(skuId, Array.from({ length: n }, (_, i) => sealed(skuId, `${batch}-${i}`)))).toBe(n);
}

type Settled = { ok: true; reply: DeliveryReply } | { ok: false; error: unknown };

describe.each(backends)('delivery actor on $name', (backend) => {
  let stores: Awaited<ReturnType<typeof backend.open>>;
  let runtime: ActorRuntime;
  let committer: GroupCommitter;
  let projector: Projector;
  let delivery: ActorKind<DeliveryMessage>;
  let announced: { orderId: string; keyIds: number[] }[];
  let dropped: string[][];
  let ridersRefused: string[][] = [];
  let faults: JournalFaults | undefined;
  let restoreCardKeys: (() => void) | undefined;
  let now: number;

  beforeAll(async () => {
    stores = await backend.open('actor_delivery');
  });
  afterAll(async () => {
    await stores?.dispose();
  });

  /** A fresh node's worth of actor machinery on the same stores (as after a restart). */
  async function startNode(limits: DeliveryLimits = delivery_limits_default): Promise<void> {
    runtime = new ActorRuntime({ shards: 2, mailboxMax: 10_000, idleMs: 60_000, askTimeoutMs: 30_000, nodeId: 'test' });
    committer = new GroupCommitter(stores.journal, { writes_in_flight_max: 1, batch_records_max: 1_000, batch_events_max: 10_000 }, { committed() {}, failed() {} });
    projector = new Projector(
      stores.projection,
      { batch_events_max: 1_000, linger_ms: 2, retry_backoff_ms_max: 200 },
      (stream, seq) => {
        const skuId = stream.slice('@d/'.length);
        if (stream.startsWith('@d/') && delivery.has(skuId)) delivery.tell(skuId, { type: '$projected', seq });
      },
      () => {},
    );
    await projector.start();
    delivery = runtime.define<DeliveryMessage>(
      'delivery',
      (skuId) =>
        new DeliveryActor(skuId, {
          cardKeys: stores.cardKeys,
          journal: stores.journal,
          committer,
          projector,
          merchantOf: (id) => `m-${id}`,
          now: () => now,
          onAssigned: (orderId, keyIds) => announced.push({ orderId, keyIds }),
          onParkedDropped: (orderIds) => dropped.push(orderIds),
          onRidersRefused: (records) => ridersRefused.push(records.map((r) => r.stream)),
          limits,
        }),
    );
  }

  async function stopNode(): Promise<void> {
    await runtime.stop();
    await projector.close();
    committer.close();
  }

  beforeEach(async () => {
    announced = [];
    dropped = [];
    ridersRefused = [];
    now = T0;
    await startNode();
  });
  afterEach(async () => {
    if (faults) for (const h of faults.held) void h.fail(new Error('test over'));
    faults?.restore();
    faults = undefined;
    restoreCardKeys?.();
    restoreCardKeys = undefined;
    await stopNode();
  });

  const ask = (skuId: string, orderId: string, qty = 1) => delivery.ask<DeliveryReply>(skuId, { type: 'assign', orderId, qty });
  const settle = (p: Promise<DeliveryReply>): Promise<Settled> =>
    p.then(
      (reply) => ({ ok: true, reply }),
      (error: unknown) => ({ ok: false, error }),
    );
  const inspect = (skuId: string) => delivery.ask<DeliveryInspection>(skuId, { type: 'inspect' });
  const keysOf = (r: DeliveryReply) => {
    expect(r.outcome).toBe('assigned');
    return (r as Extract<DeliveryReply, { outcome: 'assigned' }>).keyIds;
  };
  async function journalEvents(skuId: string): Promise<{ type: string; at: number; awaitingOrders?: number }[]> {
    const records = await stores.journal.readAfter(deliveryStream(skuId), 0);
    let seq = 0;
    for (const r of records) {
      expect(r.seq).toBe(seq + 1);
      seq = r.lastSeq;
    }
    return records.flatMap((r) => r.events as { type: string; at: number }[]);
  }
  async function outboxOf(skuId: string) {
    await projector.drained();
    return (await stores.outbox.readAfter(0, 10_000)).filter((r) => r.eventId.startsWith(`${deliveryStream(skuId)}:`));
  }
  function expectDistinct(keySets: number[][]): number[] {
    const all = keySets.flat();
    expect(new Set(all).size).toBe(all.length);
    return all;
  }

  it('100 keys, 300 parallel asks: 100 assigned with distinct keys, 200 parked FIFO under one exhaustion event; 200 keys later serve them in order', async () => {
    const sku = 'flash';
    await upload(stores.cardKeys, sku, 100, 'first');
    const pool = new Set(await stores.cardKeys.unassigned(sku, 0, 10_000));
    expect(pool.size).toBe(100);

    const orders = Array.from({ length: 300 }, (_, i) => `o${i}`);
    const replies = await Promise.all(orders.map((o) => ask(sku, o)));
    const assigned = orders.filter((_, i) => replies[i]!.outcome === 'assigned');
    const awaiting = orders.filter((_, i) => replies[i]!.outcome === 'awaiting');
    expect(assigned).toHaveLength(100);
    expect(awaiting).toHaveLength(200);
    // First come, first served.
    expect(assigned).toEqual(orders.slice(0, 100));
    const firstKeys = expectDistinct(replies.slice(0, 100).map(keysOf));
    for (const k of firstKeys) expect(pool.has(k)).toBe(true);
    expect(await stores.cardKeys.countUnassigned(sku)).toBe(0);
    for (const i of [0, 57, 99]) expect(await stores.cardKeys.assignedTo(orders[i]!)).toEqual(keysOf(replies[i]!));

    // Exactly one exhaustion event, journaled and published.
    expect(await journalEvents(sku)).toEqual([{ type: 'card_keys_exhausted', at: T0, awaitingOrders: 200, keysLeft: 0 }]);
    const [event, ...more] = await outboxOf(sku);
    expect(more).toEqual([]);
    expect(event!.subject).toBe(`stampede.evt.m-${sku}.sku.card_keys_exhausted`);
    expect(JSON.parse(event!.body)).toEqual({
      eventId: '@d/flash:1',
      type: 'sku.card_keys_exhausted',
      at: '2026-12-01T10:00:00.000Z',
      merchantId: `m-${sku}`,
      skuId: sku,
      awaitingOrders: 200,
    });
    let seen = await inspect(sku);
    expect(seen).toMatchObject({ skuId: sku, windowKeys: 0, exhausted: true, assignedInMemory: 100 });
    expect(seen.parked).toEqual(awaiting.map((orderId) => ({ orderId, qty: 1 })));

    // A parked order asking again stays parked once (no second event, no second place in the queue).
    expect(await ask(sku, 'o150')).toEqual({ outcome: 'awaiting' });
    expect((await inspect(sku)).parked).toHaveLength(200);

    // 200 more keys: the parked orders are served in the order they came, with new, distinct keys.
    now = T0 + 60_000;
    await upload(stores.cardKeys, sku, 200, 'second');
    expect(delivery.tell(sku, { type: 'keys_added' })).toBe(true);
    await waitFor(() => announced.length >= 200, 20_000, 'the parked orders served');
    expect(announced.map((a) => a.orderId)).toEqual(awaiting);
    expect(announced.every((a) => a.keyIds.length === 1)).toBe(true);
    const secondKeys = expectDistinct(announced.map((a) => a.keyIds));
    expectDistinct([firstKeys, secondKeys]);
    expect(await stores.cardKeys.countUnassigned(sku)).toBe(0);
    for (const a of announced.filter((_, i) => i % 40 === 0)) expect(await stores.cardKeys.assignedTo(a.orderId)).toEqual(a.keyIds);
    seen = await inspect(sku);
    expect(seen).toMatchObject({ windowKeys: 0, parked: [], exhausted: false });
    expect((await journalEvents(sku)).map((e) => e.type)).toEqual(['card_keys_exhausted', 'card_keys_restocked']);

    // Asking again for an assigned order answers the same keys.
    expect(keysOf(await ask(sku, 'o5'))).toEqual(keysOf(replies[5]!));
    expect(keysOf(await ask(sku, 'o150'))).toEqual(announced.find((a) => a.orderId === 'o150')!.keyIds);

    // The episode ended: the next order that must wait opens a new one, with its own event.
    now = T0 + 120_000;
    expect(await ask(sku, 'late-1')).toEqual({ outcome: 'awaiting' });
    expect(await journalEvents(sku)).toEqual([
      { type: 'card_keys_exhausted', at: T0, awaitingOrders: 200, keysLeft: 0 },
      { type: 'card_keys_restocked', at: T0 + 60_000 },
      { type: 'card_keys_exhausted', at: T0 + 120_000, awaitingOrders: 1, keysLeft: 0 },
    ]);
    expect((await outboxOf(sku)).map((r) => r.eventId)).toEqual(['@d/flash:1', '@d/flash:3']);

    // After a restart: assigned orders get the same keys from the store, and the open episode is
    // known from the journal (re-parking an order journals nothing new).
    await stopNode();
    await startNode();
    expect(keysOf(await ask(sku, 'o7'))).toEqual(keysOf(replies[7]!));
    expect(keysOf(await ask(sku, 'o299'))).toEqual(announced.find((a) => a.orderId === 'o299')!.keyIds);
    expect(await ask(sku, 'late-1')).toEqual({ outcome: 'awaiting' });
    expect(await inspect(sku)).toMatchObject({ exhausted: true, parked: [{ orderId: 'late-1', qty: 1 }] });
    expect(await journalEvents(sku)).toHaveLength(3);
  });

  it('group commit: asks arriving while a write is in flight gather into the next single write, and no reply leaves before its write resolved', async () => {
    const sku = 'gc';
    await upload(stores.cardKeys, sku, 200, 'k');
    const original = stores.cardKeys.assign;
    const calls: { orders: string[]; release: () => void }[] = [];
    stores.cardKeys.assign = async (assignments, at) => {
      let release!: () => void;
      const gate = new Promise<void>((resolve) => (release = resolve));
      calls.push({ orders: assignments.map((a) => a.orderId), release });
      await gate;
      await original.call(stores.cardKeys, assignments, at);
    };
    restoreCardKeys = () => (stores.cardKeys.assign = original);

    const answered = new Set<string>();
    const track = (o: string) => ask(sku, o).then((r) => (answered.add(o), r));
    const wave1 = Array.from({ length: 30 }, (_, i) => track(`w1-${i}`));
    await waitFor(() => calls.length === 1, 10_000, 'the first write');
    const wave2 = Array.from({ length: 50 }, (_, i) => track(`w2-${i}`));
    await new Promise((r) => setTimeout(r, 50));
    // One write in flight, nothing answered, nothing else written.
    expect(calls).toHaveLength(1);
    expect(calls[0]!.orders).toHaveLength(30);
    expect(answered.size).toBe(0);
    calls[0]!.release();
    await Promise.all(wave1);
    await waitFor(() => calls.length === 2, 10_000, 'the second write');
    expect(calls[1]!.orders).toEqual(Array.from({ length: 50 }, (_, i) => `w2-${i}`));
    expect([...answered].every((o) => o.startsWith('w1-'))).toBe(true);
    calls[1]!.release();
    const all = [...(await Promise.all(wave1)), ...(await Promise.all(wave2))];
    expectDistinct(all.map(keysOf));
    expect(calls).toHaveLength(2);
  });

  it('an order asking again gets its keys though a write earlier in its batch let them go from memory', async () => {
    await stopNode();
    // Memory for 4 assignments (the last 2 always kept), writes of at most 2 keys.
    await startNode({ ...delivery_limits_default, window_keys_max: 2, window_refill_below_keys: 1, order_keys_max: 1, assigned_in_memory_max: 4 });
    const sku = 'forgotten';
    await upload(stores.cardKeys, sku, 20, 'k');
    const first = keysOf(await ask(sku, 'o1'));
    const original = stores.cardKeys.assign;
    const held: (() => void)[] = [];
    stores.cardKeys.assign = async (...args) => {
      if (held.length === 0) await new Promise<void>((resolve) => held.push(resolve));
      return original.apply(stores.cardKeys, args);
    };
    restoreCardKeys = () => (stores.cardKeys.assign = original);
    const blocker = ask(sku, 'blocker');
    await waitFor(() => held.length === 1, 10_000, 'the held write');
    // One batch behind the held write: o3 and o4 fill a write (2 keys) that is made before o1's turn,
    // and remembering them lets o1's assignment go from memory.
    const batch = [ask(sku, 'o3'), ask(sku, 'o4'), ask(sku, 'o1')];
    await new Promise((r) => setTimeout(r, 50));
    held[0]!();
    const blocked = keysOf(await blocker);
    const [o3, o4, again] = await Promise.all(batch);
    expect(keysOf(again!)).toEqual(first);
    expectDistinct([first, blocked, keysOf(o3!), keysOf(o4!)]);
    expect((await stores.cardKeys.assignedToMany(['o1'])).get('o1')).toEqual(first);
  });

  it('a bounded window: with room for 10 keys, 30 parallel asks are assigned in writes of at most 10 keys, from a window refilled as it drains', async () => {
    await stopNode();
    await startNode({ ...delivery_limits_default, window_keys_max: 10, window_refill_below_keys: 5, order_keys_max: 5 });
    const sku = 'small-window';
    await upload(stores.cardKeys, sku, 37, 'k');
    const original = stores.cardKeys.assign;
    const sizes: number[] = [];
    stores.cardKeys.assign = async (assignments, at) => {
      sizes.push(assignments.reduce((n, a) => n + a.keyIds.length, 0));
      await original.call(stores.cardKeys, assignments, at);
    };
    restoreCardKeys = () => (stores.cardKeys.assign = original);

    expect((await inspect(sku)).windowKeys).toBe(10);
    const replies = await Promise.all(Array.from({ length: 30 }, (_, i) => ask(sku, `s${i}`)));
    expectDistinct(replies.map(keysOf));
    expect(sizes.every((n) => n <= 10)).toBe(true);
    expect(sizes.reduce((a, b) => a + b, 0)).toBe(30);
    expect((await inspect(sku)).windowKeys).toBeLessThanOrEqual(10);
    // 7 left: an order of 5 and one of 2 take them all; the next waits.
    expect(keysOf(await ask(sku, 'big', 5))).toHaveLength(5);
    expect(keysOf(await ask(sku, 'rest', 2))).toHaveLength(2);
    expect(await ask(sku, 'none', 1)).toEqual({ outcome: 'awaiting' });
    expect(await stores.cardKeys.countUnassigned(sku)).toBe(0);
  });

  /**
   * A node whose delivery windows hold 10 keys (topped up below 8), `keys` keys uploaded to `sku`, and
   * three orders served (`<prefix>-a1..3`): the window's top-up read has started and is held. Returns
   * the held read's release (the reads after it are not held).
   */
  async function topUpHeld(sku: string, keys: number, prefix: string): Promise<(() => void)[]> {
    await stopNode();
    await startNode({ ...delivery_limits_default, window_keys_max: 10, window_refill_below_keys: 8, order_keys_max: 5 });
    await upload(stores.cardKeys, sku, keys, 'k');
    expect((await inspect(sku)).windowKeys).toBe(10);
    const original = stores.cardKeys.unassigned;
    const heldReads: (() => void)[] = [];
    let holding = true;
    stores.cardKeys.unassigned = async (...args) => {
      if (holding) {
        holding = false;
        await new Promise<void>((resolve) => heldReads.push(resolve));
      }
      return original.apply(stores.cardKeys, args);
    };
    restoreCardKeys = () => (stores.cardKeys.unassigned = original);
    // A write of 3 keys leaves 7 (< 8): the top-up read starts, and is held.
    expectDistinct((await Promise.all([1, 2, 3].map((i) => ask(sku, `${prefix}-a${i}`)))).map(keysOf));
    await waitFor(() => heldReads.length === 1, 5_000, 'the top-up read started');
    return heldReads;
  }

  it('tops the window up in the background after a write: asks meanwhile are served from what it holds, not held behind the read', async () => {
    const sku = 'topup';
    const heldReads = await topUpHeld(sku, 30, 'top');
    // Asks while it is held are answered from the 7 keys still in the window.
    const during = await Promise.all([ask(sku, 'top-b1'), ask(sku, 'top-b2', 2)]);
    expect(heldReads).toHaveLength(1);
    heldReads.shift()!();
    // An order larger than what is left waits for the top-up, then is served; no key twice.
    const after = await Promise.all([ask(sku, 'top-c1', 5), ask(sku, 'top-c2', 5)]);
    const all = [...during, ...after].map(keysOf);
    expect(all.map((k) => k.length)).toEqual([1, 2, 5, 5]);
    expectDistinct(all);
  });

  it('a reload while a top-up read runs (keys uploaded meanwhile) waits for it: no key is loaded twice, every order served', async () => {
    const sku = 'topup-reload';
    const heldReads = await topUpHeld(sku, 12, 'tr');
    // Keys arrive meanwhile: the restock's reload must wait for the top-up, not race it.
    await upload(stores.cardKeys, sku, 10, 'more');
    delivery.tell(sku, { type: 'keys_added' });
    await new Promise((r) => setTimeout(r, 50));
    heldReads.shift()!();
    const replies = await Promise.all(Array.from({ length: 19 }, (_, i) => settle(ask(sku, `tr-b${i}`))));
    expect(replies.every((r) => r.ok)).toBe(true);
    expectDistinct(replies.map((r) => keysOf((r as { ok: true; reply: DeliveryReply }).reply)));
    expect(await stores.cardKeys.countUnassigned(sku)).toBe(0);
  });

  it('an order of qty n gets n distinct keys; a large order at the head of the queue is served before smaller ones behind it', async () => {
    const sku = 'multi';
    await upload(stores.cardKeys, sku, 10, 'a');
    const [a, b, c] = await Promise.all([ask(sku, 'a', 3), ask(sku, 'b', 3), ask(sku, 'c', 3)]);
    const first = [keysOf(a!), keysOf(b!), keysOf(c!)];
    expect(first.map((k) => k.length)).toEqual([3, 3, 3]);
    expectDistinct(first);
    // One key left: d (3) waits, and e (1) waits behind it.
    expect(await ask(sku, 'd', 3)).toEqual({ outcome: 'awaiting' });
    expect(await ask(sku, 'e', 1)).toEqual({ outcome: 'awaiting' });
    expect(await inspect(sku)).toMatchObject({ windowKeys: 1, parked: [{ orderId: 'd', qty: 3 }, { orderId: 'e', qty: 1 }], exhausted: true });

    await upload(stores.cardKeys, sku, 5, 'b');
    delivery.tell(sku, { type: 'keys_added' });
    await waitFor(() => announced.length >= 2, 10_000, 'd and e served');
    expect(announced.map((x) => [x.orderId, x.keyIds.length])).toEqual([
      ['d', 3],
      ['e', 1],
    ]);
    expectDistinct([...first, ...announced.map((x) => x.keyIds)]);
    expect(await stores.cardKeys.countUnassigned(sku)).toBe(2);
    // Asked again (even with another qty), an order keeps its one key set.
    expect(keysOf(await ask(sku, 'a', 3))).toEqual(first[0]);
    expect(keysOf(await ask(sku, 'd', 1))).toEqual(announced[0]!.keyIds);
    await expect(ask(sku, 'f', 0)).rejects.toThrow(RangeError);
    await expect(ask(sku, 'f', 101)).rejects.toThrow(RangeError);
  });

  it('a restart keeps an episode open that began with keys left (a head order needs more): no second exhaustion for the same shortage; one after keys came is over', async () => {
    const sku = 'short';
    await upload(stores.cardKeys, sku, 2, 'a');
    expect(await ask(sku, 'short-big', 3)).toEqual({ outcome: 'awaiting' });
    expect(await journalEvents(sku)).toEqual([{ type: 'card_keys_exhausted', at: T0, awaitingOrders: 1, keysLeft: 2 }]);
    // A restart: the parked order is gone from memory; asked again, it parks under the same episode.
    await stopNode();
    await startNode();
    expect(await ask(sku, 'short-big', 3)).toEqual({ outcome: 'awaiting' });
    expect((await journalEvents(sku)).map((e) => e.type)).toEqual(['card_keys_exhausted']);
    expect((await outboxOf(sku)).length).toBe(1);
    // Keys uploaded while no incarnation looks: the next one finds more than were left, and the episode is over.
    await stopNode();
    await upload(stores.cardKeys, sku, 2, 'b');
    await startNode();
    expect(keysOf(await ask(sku, 'short-big', 3))).toHaveLength(3);
    expect((await journalEvents(sku)).map((e) => e.type)).toEqual(['card_keys_exhausted', 'card_keys_restocked']);
  });

  it('an episode kept open across a restart ends once an order is served with nobody waiting, past a grace for the lost parked orders to come back', async () => {
    const sku = 'short2';
    await upload(stores.cardKeys, sku, 3, 'a');
    expect(await ask(sku, 'short2-big', 4)).toEqual({ outcome: 'awaiting' });
    // Restarted with the same 3 keys: the episode stays open (same shortage). A smaller order asking
    // first, before the lost big one comes back, is served, and the shortage still stands: no event.
    await stopNode();
    await startNode();
    expect(keysOf(await ask(sku, 'short2-small', 1))).toHaveLength(1);
    expect(await ask(sku, 'short2-big', 4)).toEqual({ outcome: 'awaiting' });
    expect((await journalEvents(sku)).map((e) => e.type)).toEqual(['card_keys_exhausted']);
    // Restarted again; past the grace, an order served with nobody waiting ends the episode ...
    await stopNode();
    await startNode();
    expect(await inspect(sku)).toMatchObject({ exhausted: true, parked: [] });
    now += EPISODE_KEPT_OPEN_GRACE_MS;
    expect(keysOf(await ask(sku, 'short2-small2', 2))).toHaveLength(2);
    expect((await journalEvents(sku)).map((e) => e.type)).toEqual(['card_keys_exhausted', 'card_keys_restocked']);
    // ... so the next order that waits is a new shortage, and the merchant hears of it.
    expect(await ask(sku, 'short2-big', 4)).toEqual({ outcome: 'awaiting' });
    expect((await journalEvents(sku)).map((e) => e.type)).toEqual(['card_keys_exhausted', 'card_keys_restocked', 'card_keys_exhausted']);
    expect((await outboxOf(sku)).length).toBe(2);
  });

  it('parked orders are served without keys_added once the recheck timer finds the upload', async () => {
    await stopNode();
    await startNode({ ...delivery_limits_default, parked_recheck_ms: 50 });
    const sku = 'recheck';
    expect(await ask(sku, 'r1', 2)).toEqual({ outcome: 'awaiting' });
    await upload(stores.cardKeys, sku, 2, 'x');
    await waitFor(() => announced.length === 1, 10_000, 'r1 served by the timer');
    expect(announced[0]!.orderId).toBe('r1');
    expect(announced[0]!.keyIds).toHaveLength(2);
  });

  it('past parked_orders_max an ask is answered overloaded and not parked', async () => {
    await stopNode();
    await startNode({ ...delivery_limits_default, parked_orders_max: 3 });
    const sku = 'crowded';
    const replies = await Promise.all(Array.from({ length: 5 }, (_, i) => ask(sku, `c${i}`)));
    expect(replies.map((r) => r.outcome)).toEqual(['awaiting', 'awaiting', 'awaiting', 'overloaded', 'overloaded']);
    expect((await inspect(sku)).parked.map((p) => p.orderId)).toEqual(['c0', 'c1', 'c2']);
  });

  it('a failed card-key write fails its asks with UnavailableError; retried, they get keys, none lost or doubled, also when the failed write had committed', async () => {
    const sku = 'store-fault';
    await upload(stores.cardKeys, sku, 20, 'k');
    const original = stores.cardKeys.assign;
    let mode: 'fail' | 'commit_then_fail' | 'pass' = 'fail';
    stores.cardKeys.assign = async (assignments, at) => {
      if (mode === 'fail') throw new StoreUnavailableError('injected: database went away');
      await original.call(stores.cardKeys, assignments, at);
      if (mode === 'commit_then_fail') throw new StoreUnavailableError('injected: no answer in time (the write committed)');
    };
    restoreCardKeys = () => (stores.cardKeys.assign = original);

    // Nothing is written: the asks fail, and the keys are still free.
    const failed = await Promise.all(['f1', 'f2', 'f3', 'f4', 'f5'].map((o) => settle(ask(sku, o))));
    for (const r of failed) {
      expect(r.ok).toBe(false);
      expect((r as { error: unknown }).error).toBeInstanceOf(UnavailableError);
    }
    expect(await stores.cardKeys.countUnassigned(sku)).toBe(20);

    // The write commits but its caller hears a failure: the asks fail, the keys are taken.
    mode = 'commit_then_fail';
    const ghosts = await Promise.all(['g1', 'g2', 'g3'].map((o) => settle(ask(sku, o, 2))));
    for (const r of ghosts) expect((r as { error: unknown }).error).toBeInstanceOf(UnavailableError);
    expect(await stores.cardKeys.countUnassigned(sku)).toBe(14);
    const ghostKeys = await Promise.all(['g1', 'g2', 'g3'].map((o) => stores.cardKeys.assignedTo(o)));

    // Retried on a healthy store: the failed ones get free keys, the ghosts get the keys they hold.
    mode = 'pass';
    const retried = await Promise.all(['f1', 'f2', 'f3', 'f4', 'f5'].map((o) => ask(sku, o)));
    const retriedGhosts = await Promise.all(['g1', 'g2', 'g3'].map((o) => ask(sku, o, 2)));
    expect(retriedGhosts.map(keysOf)).toEqual(ghostKeys);
    const after = await ask(sku, 'h1', 3);
    const all = expectDistinct([...retried.map(keysOf), ...ghostKeys, keysOf(after)]);
    expect(all).toHaveLength(5 + 6 + 3);
    expect(await stores.cardKeys.countUnassigned(sku)).toBe(20 - all.length);
    for (const o of ['f1', 'f5', 'h1']) expect((await stores.cardKeys.assignedTo(o)).length).toBeGreaterThan(0);
  });

  it('an ask marked fresh is not looked up in the store; an unmarked one is; a wrong fresh mark is refused by the store, no key doubled', async () => {
    const sku = 'fresh-asks';
    await upload(stores.cardKeys, sku, 10, 'k');
    const original = stores.cardKeys.assignedToMany;
    const lookedUp: string[][] = [];
    stores.cardKeys.assignedToMany = (orderIds) => {
      lookedUp.push([...orderIds]);
      return original.call(stores.cardKeys, orderIds);
    };
    restoreCardKeys = () => (stores.cardKeys.assignedToMany = original);
    const freshAsk = (orderId: string) => delivery.ask<DeliveryReply>(sku, { type: 'assign', orderId, qty: 1, fresh: true });

    const n1 = keysOf(await freshAsk('n1'));
    expect(lookedUp).toEqual([]);
    const n2 = keysOf(await ask(sku, 'n2'));
    expect(lookedUp).toEqual([['n2']]);
    expectDistinct([n1, n2]);

    // An order that holds keys from elsewhere (an earlier process, say), wrongly asked as fresh: the
    // store's own check refuses the write, nothing is assigned twice, and an unmarked ask gets its keys.
    const free = (await stores.cardKeys.unassigned(sku, 0, 10)).at(-1)!;
    await stores.cardKeys.assign([{ skuId: sku, orderId: 'held', keyIds: [free] }], now);
    const wrong = await settle(freshAsk('held'));
    expect(wrong.ok).toBe(false);
    expect(await stores.cardKeys.assignedTo('held')).toEqual([free]);
    expect(keysOf(await ask(sku, 'held'))).toEqual([free]);
    expect(await stores.cardKeys.countUnassigned(sku)).toBe(10 - 3);
  });

  it("writes the order's delivered record with its keys, but not for an ask whose deadline passed while its batch was handled", async () => {
    await upload(stores.cardKeys, 'rides', 3, 'r');
    const made: string[] = [];
    const record = (orderId: string) => (keyIds: number[]) => {
      made.push(orderId);
      return { stream: `@o/${orderId}`, seq: 1, lastSeq: 1, at: now, events: [{ type: 'order.delivered', at: now, delivery: { kind: 'card_key', keyIds } }] };
    };
    const riding = await delivery.ask<DeliveryReply>('rides', { type: 'assign', orderId: 'ride-a', qty: 1, fresh: true, record: record('ride-a') });
    expect(riding).toMatchObject({ outcome: 'assigned', recorded: true });
    expect((await stores.journal.readAfter('@o/ride-a', 0)).map((r) => r.seq)).toEqual([1]);

    // The store look-up of the batch is slow: the ask's deadline passes while it is handled.
    const original = stores.cardKeys.assignedToMany;
    let open!: () => void;
    const gate = new Promise<void>((resolve) => (open = resolve));
    stores.cardKeys.assignedToMany = async (ids) => {
      await gate;
      return original.call(stores.cardKeys, ids);
    };
    restoreCardKeys = () => (stores.cardKeys.assignedToMany = original);
    const late = settle(delivery.ask<DeliveryReply>('rides', { type: 'assign', orderId: 'ride-b', qty: 1, record: record('ride-b') }, 100));
    expect(await late).toMatchObject({ ok: false });
    open();
    // Its keys are assigned (a later ask finds them), but no record was made or written for it.
    await waitFor(async () => (await stores.cardKeys.assignedTo('ride-b')).length === 1, 5_000, 'ride-b keys');
    expect(made).toEqual(['ride-a']);
    expect(await stores.journal.readAfter('@o/ride-b', 0)).toEqual([]);
    expect(await ask('rides', 'ride-b')).toMatchObject({ outcome: 'assigned' });
  });

  it("a stale order's record refused for a taken seq does not fail the keys of the orders beside it: the tick is written again without the records", async () => {
    await upload(stores.cardKeys, 'stale-rider', 4, 's');
    const record = (orderId: string) => (keyIds: number[]) => ({
      stream: `@o/${orderId}`,
      seq: 1,
      lastSeq: 1,
      at: now,
      events: [{ type: 'order.delivered', at: now, delivery: { kind: 'card_key', keyIds } }],
    });
    // An earlier incarnation of st-a's order actor wrote its seq 1 after this one read the stream.
    await stores.journal.append([{ stream: '@o/st-a', seq: 1, lastSeq: 1, at: now, events: [{ type: 'order.paid', at: now }] }]);
    const assign = (orderId: string) => delivery.ask<DeliveryReply>('stale-rider', { type: 'assign', orderId, qty: 1, fresh: true, record: record(orderId) });
    const [a, b] = await Promise.all([assign('st-a'), assign('st-b')]);
    for (const reply of [a, b]) {
      expect(reply.outcome).toBe('assigned');
      expect(reply).not.toHaveProperty('recorded');
    }
    expectDistinct([keysOf(a), keysOf(b)]);
    expect(await stores.cardKeys.assignedTo('st-a')).toEqual(keysOf(a));
    expect(await stores.cardKeys.assignedTo('st-b')).toEqual(keysOf(b));
    // No record written by the delivery actor: each order writes its own.
    expect((await stores.journal.readAfter('@o/st-a', 0)).flatMap((r) => r.events)).toEqual([{ type: 'order.paid', at: now }]);
    expect(await stores.journal.readAfter('@o/st-b', 0)).toEqual([]);
    expect(ridersRefused).toEqual([['@o/st-a', '@o/st-b']]);
  });

  it('a failed journal write of the exhaustion event fails the parked asks, drops nothing silently, and a retry parks them under one event', async () => {
    const sku = 'journal-fault';
    await upload(stores.cardKeys, sku, 2, 'k');
    const first = await Promise.all([ask(sku, 'j1'), ask(sku, 'j2')]);
    expectDistinct(first.map(keysOf));

    const f = (faults = injectJournalFaults(stores.journal));
    f.only = (stream) => stream === deliveryStream(sku);
    f.hold = true;
    const parked = [settle(ask(sku, 'j3')), settle(ask(sku, 'j4'))];
    await waitFor(() => f.held.length === 1, 10_000, 'the exhaustion event write');
    expect(f.held[0]!.records[0]!.events).toEqual([{ type: 'card_keys_exhausted', at: T0, awaitingOrders: 2, keysLeft: 0 }]);
    f.hold = false;
    await f.held.shift()!.fail(new StoreUnavailableError('injected: database went away'));
    for (const r of await Promise.all(parked)) {
      expect(r.ok).toBe(false);
      expect((r as { error: unknown }).error).toBeInstanceOf(UnavailableError);
    }
    expect(await journalEvents(sku)).toEqual([]);
    // The restarted incarnation handed the orders it had parked back to the engine.
    expect(dropped).toEqual([['j3', 'j4']]);

    // Retried: parked again, under exactly one event.
    expect(await ask(sku, 'j3')).toEqual({ outcome: 'awaiting' });
    expect(await ask(sku, 'j4')).toEqual({ outcome: 'awaiting' });
    expect((await journalEvents(sku)).map((e) => e.type)).toEqual(['card_keys_exhausted']);
    await upload(stores.cardKeys, sku, 2, 'more');
    delivery.tell(sku, { type: 'keys_added' });
    await waitFor(() => announced.length === 2, 10_000, 'j3 and j4 served');
    expect(announced.map((a) => a.orderId)).toEqual(['j3', 'j4']);
    expectDistinct([...first.map(keysOf), ...announced.map((a) => a.keyIds)]);
    expect(await stores.cardKeys.countUnassigned(sku)).toBe(0);
  });
});
