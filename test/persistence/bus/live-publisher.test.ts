// Proves the live publisher against a JetStream of the file's own and the real MariaDB outbox: the
// rows offered in one turn go out as one publish, at once, in order; the relay then passes over
// them (a SKU/date range without reading its journal) and publishes only the rows it did not take;
// a row whose publish is in flight is waited for, not published twice; after a failed publish (the
// server killed) its rows are the relay's and the publisher pauses, then resumes once NATS is back;
// rows remembered are bounded and forgotten after keep_ms; a row of many events is the relay's.
import { connect } from 'nats';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeEvent } from '../../../actors/inventory-codec.ts';
import { outboxKindOf } from '../../../actors/inventory-projection.ts';
import { JournalOutbox, outboxRangeRow, rangeEvents } from '../../../actors/journal-outbox.ts';
import type { InventoryEvent } from '../../../engine/index.ts';
import { LivePublisher } from '../../../persistence/bus/live-publisher.ts';
import { openNatsBus, type NatsBus } from '../../../persistence/bus/nats-bus.ts';
import { OutboxRelay } from '../../../persistence/bus/outbox-relay.ts';
import type { OutgoingEvent } from '../../../persistence/bus/ports.ts';
import type { JournalStore, OutboxEvent } from '../../../persistence/ports.ts';
import { OwnNatsServer } from '../../support/nats-server.ts';
import { backends } from '../backends.ts';
import { outboxBatch, sleep, uniqueSuffix, waitFor } from './support.ts';

const STREAM = 'STAMPEDE_EVENTS';

describe('live publisher, with a JetStream of its own and the MariaDB outbox', () => {
  const backend = backends.find((b) => b.name === 'mysql')!;
  let server: OwnNatsServer;
  let stores: Awaited<ReturnType<typeof backend.open>>;
  let bus: NatsBus;
  /** Every publish call's event ids, in call order. */
  const calls: string[][] = [];

  beforeAll(async () => {
    server = await OwnNatsServer.start();
    stores = await backend.open('bus_live');
    bus = await openNatsBus(server.url, { publishTimeout_ms: 500, reconnectWait_ms: 100 });
    const publish = bus.publish.bind(bus);
    bus.publish = (events: readonly OutgoingEvent[]) => {
      calls.push(events.map((e) => e.id));
      return publish(events);
    };
  });
  afterAll(async () => {
    await bus?.close();
    await stores?.dispose();
    await server?.dispose();
  });

  /** Ids stored in the stream, in stream order (a consumer of the test's own reads them all). */
  const stored = async (): Promise<string[]> => {
    const nc = await connect({ servers: server.url, timeout: 2_000 });
    try {
      const jsm = await nc.jetstreamManager();
      const info = await jsm.streams.info(STREAM);
      const ids: string[] = [];
      for (let seq = info.state.first_seq; seq <= info.state.last_seq && info.state.messages > 0; seq++) {
        const m = await jsm.streams.getMessage(STREAM, { seq });
        ids.push(m.header.get('Nats-Msg-Id'));
      }
      return ids;
    } finally {
      await nc.close();
    }
  };

  /** A journal that counts its range reads (what the relay needs to expand a range row). */
  const counting = (journal: JournalStore) => {
    const counter = { readRange: 0 };
    const wrapped: JournalStore = Object.create(journal);
    wrapped.readRange = (...args) => {
      counter.readRange++;
      return journal.readRange(...args);
    };
    return { journal: wrapped, counter };
  };

  const orderEvent = (merchant: string, id: string): OutboxEvent => ({
    eventId: id,
    subject: `stampede.evt.${merchant}.order.delivered`,
    body: JSON.stringify({ eventId: id, type: 'order.delivered' }),
    at: 1_000,
  });

  it('publishes one turn\'s rows as one publish at once, and the relay passes over them (a range without its journal)', async () => {
    const merchant = `m${uniqueSuffix().toLowerCase()}`;
    const stream = `live-${merchant}/2026-12-01`;
    const context = { stream, skuId: `live-${merchant}`, date: '2026-12-01', merchantId: merchant };
    const reserved: InventoryEvent[] = [1, 2, 3].map((i) => ({
      type: 'reserved',
      orderId: `o-${merchant}-${i}`,
      userId: `u${i}`,
      qty: 1,
      amountCents: 100,
      createdAt: 1_000 + i,
      expiresAt: 901_000 + i,
    }));
    const raws = reserved.map(encodeEvent);
    await stores.journal.append([{ stream, seq: 1, lastSeq: 3, at: 1_000, events: raws }]);
    const range = outboxRangeRow({ stream, fromSeq: 1, toSeq: 3, kinds: reserved.reduce((k, e) => k | outboxKindOf(e), 0), merchantId: merchant }, 1_000);
    const [e1, e2, e3] = ['d1', 'd2', 'd3'].map((n) => orderEvent(merchant, `${merchant}-${n}`)) as [OutboxEvent, OutboxEvent, OutboxEvent];

    const published: number[] = [];
    const live = new LivePublisher(bus, { onPublished: (n) => published.push(n) });
    const before = calls.length;
    live.offer(range.eventId, 3, () => rangeEvents(raws, 1, context, 1, 3));
    live.offer(e1.eventId, 1, () => [e1]);
    live.offer(e2.eventId, 1, () => [e2]);
    // A row offered twice is published once.
    live.offer(e2.eventId, 1, () => [e2]);
    await waitFor('the live publish acknowledged', () => published.length === 1, 5_000);
    const rangeIds = [1, 2, 3].map((seq) => `${stream}:${seq}`);
    expect(calls.slice(before)).toEqual([[...rangeIds, e1.eventId, e2.eventId]]);
    expect(published).toEqual([5]);
    expect(await stored()).toEqual([...rangeIds, e1.eventId, e2.eventId]);

    // The projector indexes the same rows, and one more the live publisher never saw.
    await stores.projection.apply(outboxBatch([range, e1, e2, e3]));
    const { journal, counter } = counting(stores.journal);
    let relayed = 0;
    const relay = new OutboxRelay({
      outbox: new JournalOutbox(stores.outbox, journal),
      publisher: bus,
      trimInterval_ms: 0,
      published: (id) => live.published(id),
      onPublished: (n) => (relayed += n),
    }).start();
    await waitFor('the relay past every row', async () => (await relay.lag()) < 2 ** 20, 10_000);
    await relay.stop();
    expect(relayed).toBe(1);
    expect(counter.readRange).toBe(0);
    expect(await stored()).toEqual([...rangeIds, e1.eventId, e2.eventId, e3.eventId]);
    // The relay asked about each row once: nothing is remembered any more.
    expect(live.remembered).toBe(0);
    await live.close();
  });

  it('publishes a turn of more events than the bus takes at once in several publishes, each acknowledged', async () => {
    const merchant = `m${uniqueSuffix().toLowerCase()}`;
    const events = Array.from({ length: 1_205 }, (_, i) => orderEvent(merchant, `${merchant}-many-${i}`));
    const errors: unknown[] = [];
    const published: number[] = [];
    const live = new LivePublisher(bus, { onError: (e) => errors.push(e), onPublished: (n) => published.push(n) });
    const before = calls.length;
    for (const e of events) live.offer(e.eventId, 1, () => [e]);
    await waitFor('every event acknowledged', () => published.reduce((a, b) => a + b, 0) === events.length, 10_000);
    expect(errors).toEqual([]);
    expect(calls.slice(before).map((c) => c.length)).toEqual([1_000, 205]);
    for (const e of [events[0]!, events[999]!, events[1_000]!, events[1_204]!]) expect(await live.published(e.eventId)).toBe(true);
    await live.close();
  });

  it('makes the relay wait for a publish in flight instead of publishing the row again', async () => {
    const merchant = `m${uniqueSuffix().toLowerCase()}`;
    const e = orderEvent(merchant, `${merchant}-inflight`);
    const live = new LivePublisher(bus);
    const before = (await stored()).length;
    live.offer(e.eventId, 1, () => [e]);
    const answer = live.published(e.eventId);
    expect(answer).toBeInstanceOf(Promise);
    expect(await answer).toBe(true);
    expect(live.published(e.eventId)).toBe(false); // asked once, forgotten
    expect((await stored()).length).toBe(before + 1);
    await live.close();
  });

  it('leaves rows past rows_max, and rows of more than row_events_max events, to the relay, and forgets rows nobody asked about after keep_ms', async () => {
    const merchant = `m${uniqueSuffix().toLowerCase()}`;
    const [a, b, c, d] = ['a', 'b', 'c', 'd'].map((n) => orderEvent(merchant, `${merchant}-${n}`)) as [OutboxEvent, OutboxEvent, OutboxEvent, OutboxEvent];
    let now = 1_000_000;
    const live = new LivePublisher(bus, { rows_max: 2, keep_ms: 10_000, row_events_max: 5, now: () => now });
    // A row of more events than row_events_max (a flash sale's hot write) is the relay's.
    let madeBig = false;
    live.offer(`${merchant}-big`, 6, () => ((madeBig = true), [a]));
    expect(madeBig).toBe(false);
    expect(live.published(`${merchant}-big`)).toBe(false);
    live.offer(a.eventId, 1, () => [a]);
    live.offer(b.eventId, 1, () => [b]);
    let madeC = false;
    live.offer(c.eventId, 1, () => ((madeC = true), [c]));
    expect(madeC).toBe(false); // not taken: its events are not even made
    expect(await live.published(a.eventId)).toBe(true);
    expect(live.published(c.eventId)).toBe(false);
    expect(live.remembered).toBe(1); // b: published, never asked about
    now += 10_001;
    live.offer(d.eventId, 1, () => [d]);
    await waitFor('d published', async () => live.remembered === 1 && (await stored()).includes(d.eventId), 5_000);
    // b was older than keep_ms when d went out: forgotten, so the relay would publish it (deduplicated).
    expect(live.published(b.eventId)).toBe(false);
    expect(await live.published(d.eventId)).toBe(true);
    await live.close();
  });

  it('after a failed publish leaves its rows to the relay and pauses, then publishes again once NATS is back', async () => {
    const merchant = `m${uniqueSuffix().toLowerCase()}`;
    const [a, b, c] = ['a', 'b', 'c'].map((n) => orderEvent(merchant, `${merchant}-${n}`)) as [OutboxEvent, OutboxEvent, OutboxEvent];
    const errors: unknown[] = [];
    const live = new LivePublisher(bus, { retryMin_ms: 300, retryMax_ms: 300, onError: (e) => errors.push(e) });
    await server.kill();
    try {
      live.offer(a.eventId, 1, () => [a]);
      await waitFor('the failed publish reported', () => errors.length === 1, 5_000);
      expect(live.active).toBe(false);
      expect(live.published(a.eventId)).toBe(false);
      // Paused: an offer now is the relay's at once.
      live.offer(b.eventId, 1, () => [b]);
      expect(live.remembered).toBe(0);
    } finally {
      await server.start();
    }
    await stores.projection.apply(outboxBatch([a, b]));
    const relay = new OutboxRelay({ outbox: new JournalOutbox(stores.outbox, stores.journal), publisher: bus, published: (id) => live.published(id), retryMin_ms: 50, poll_ms: 100 }).start();
    await waitFor('the relay published a and b', async () => {
      const ids = await stored().catch((): string[] => []);
      return ids.includes(a.eventId) && ids.includes(b.eventId);
    }, 15_000);
    await relay.stop();
    await waitFor('the pause over', () => live.active, 5_000);
    // Once the server is back and answering, live publishes go through again.
    await waitFor('a live publish after the outage', async () => {
      live.offer(c.eventId, 1, () => [c]);
      await sleep(100);
      return (await stored().catch((): string[] => [])).includes(c.eventId);
    }, 15_000);
    expect(await live.published(c.eventId)).toBe(true);
    await live.close();
  });
});
