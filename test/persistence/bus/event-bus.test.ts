// Proves both event buses keep the port's promises — dedupe by id, redelivery of a rejected event
// without loss, every durable gets every event, handlers overlap up to the concurrency and never
// beyond, a durable resumes where it acked, nothing sits with a stopped subscriber — by running the
// same cases against a fresh stream on the real NATS JetStream and the outbox bus on real SQLite and
// MariaDB (events reach it through the projection store, as in the engine).
import { connect } from 'nats';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openNatsBus } from '../../../persistence/bus/nats-bus.ts';
import { OutboxBus } from '../../../persistence/bus/outbox-bus.ts';
import type { EventBus } from '../../../persistence/bus/ports.ts';
import type { OutboxEvent } from '../../../persistence/ports.ts';
import { backends } from '../backends.ts';
import { nats_url, outboxBatch, outboxEvents, recorder, sleep, uniqueSuffix, waitFor } from './support.ts';

const suffix = uniqueSuffix();
const prefix = `stampede_test_${suffix.toLowerCase()}.evt`;
const stream = `STAMPEDE_TEST_BUS_${suffix}`;
const redeliveryDelay_ms = 200;

interface Harness {
  bus: EventBus;
  /** Puts the events on the bus the way the engine does: NATS publish, or the projector's outbox write. */
  publish(events: OutboxEvent[]): Promise<void>;
  close(): Promise<void>;
}

const adapters: { name: string; open(): Promise<Harness> }[] = [
  {
    name: 'NATS JetStream',
    async open() {
      const bus = await openNatsBus(nats_url, { stream, subjects: [`${prefix}.>`], redeliveryDelay_ms });
      return {
        bus,
        publish: (events) => bus.publish(events.map((e) => ({ id: e.eventId, subject: e.subject, data: e.body }))),
        async close() {
          await bus.close();
          const nc = await connect({ servers: nats_url, timeout: 2_000 });
          try {
            await (await nc.jetstreamManager()).streams.delete(stream);
          } finally {
            await nc.close();
          }
        },
      };
    },
  },
  ...backends.map((backend) => ({
    name: `the outbox on ${backend.name}`,
    async open(): Promise<Harness> {
      const stores = await backend.open('bus_contract');
      const bus = new OutboxBus(stores.outbox, { subjects: [`${prefix}.>`], redeliveryDelay_ms });
      return {
        bus,
        async publish(events) {
          await stores.projection.apply(outboxBatch(events));
          bus.nudge();
        },
        async close() {
          await bus.close();
          await stores.dispose();
        },
      };
    },
  })),
];

const filter = (test: string) => `${prefix}.${test}.>`;
const ids = (test: string, ...names: string[]) => names.map((n) => `${test}-${n}`);
const events = (test: string, ...names: string[]) => outboxEvents(prefix, test, ...names);

describe.each(adapters)('event bus on $name', (adapter) => {
  let h: Harness;
  beforeAll(async () => {
    h = await adapter.open();
  });
  afterAll(async () => {
    await h?.close();
  });

  it('answers ping while open', async () => {
    expect(await h.bus.ping()).toBe(true);
  });

  it('delivers an id published twice only once, with the body as written', async () => {
    const r = recorder();
    const sub = await h.bus.consume({ durable: 'dedupe', filter: filter('dedupe'), handler: r.handler });
    await h.publish(events('dedupe', 'a'));
    await h.publish([...events('dedupe', 'a', 'b'), ...events('dedupe', 'b')]);
    await waitFor('b', () => r.acked.includes('dedupe-b'));
    await sleep(300);
    await sub.stop();
    expect([...r.acked].sort()).toEqual(ids('dedupe', 'a', 'b'));
    expect(r.deliveries).toHaveLength(2);
    expect(r.deliveries.find((d) => d.id === 'dedupe-a')).toMatchObject({
      subject: `${prefix}.dedupe.order.paid`,
      text: '{"eventId":"dedupe-a"}',
      redelivered: false,
      deliveryCount: 1,
    });
  });

  it('gives a rejected event again, marked redelivered, and loses nothing', async () => {
    const r = recorder((e, meta) => e.id === 'reject-2' && meta.deliveryCount === 1);
    const sub = await h.bus.consume({ durable: 'reject', filter: filter('reject'), handler: r.handler });
    await h.publish(events('reject', '1', '2', '3'));
    await waitFor('all acked', () => r.acked.length === 3);
    await sleep(300);
    await sub.stop();
    expect([...r.acked].sort()).toEqual(ids('reject', '1', '2', '3'));
    const second = r.deliveries.filter((d) => d.id === 'reject-2');
    expect(second.map((d) => [d.redelivered, d.deliveryCount])).toEqual([
      [false, 1],
      [true, 2],
    ]);
    expect(r.deliveries).toHaveLength(4);
  });

  it('gives every event to each durable, in stream order when one handler runs at a time', async () => {
    const a = recorder();
    const b = recorder();
    const subA = await h.bus.consume({ durable: 'fan-a', filter: filter('fan'), handler: a.handler, concurrency: 1 });
    const subB = await h.bus.consume({ durable: 'fan-b', filter: filter('fan'), handler: b.handler, concurrency: 1 });
    const names = Array.from({ length: 20 }, (_, i) => String(i));
    await h.publish(events('fan', ...names.slice(0, 10)));
    await h.publish(events('fan', ...names.slice(10)));
    await waitFor('both consumers', () => a.acked.length === 20 && b.acked.length === 20);
    await Promise.all([subA.stop(), subB.stop()]);
    expect(a.acked).toEqual(ids('fan', ...names));
    expect(b.acked).toEqual(ids('fan', ...names));
  });

  it('delivers only what the filter matches', async () => {
    const r = recorder();
    const sub = await h.bus.consume({ durable: 'filtered', filter: `${prefix}.filter.order.*`, handler: r.handler });
    await h.publish([
      { eventId: 'filter-sku', subject: `${prefix}.filter.sku.card_keys_exhausted`, body: '{}', at: 1 },
      { eventId: 'filter-order', subject: `${prefix}.filter.order.paid`, body: '{}', at: 2 },
    ]);
    await waitFor('order event', () => r.acked.length === 1);
    await sleep(200);
    await sub.stop();
    expect(r.deliveries.map((d) => d.id)).toEqual(['filter-order']);
  });

  it('runs handlers at once up to the concurrency, never more', async () => {
    const concurrency = 8;
    let running = 0;
    let most = 0;
    const acked = new Set<string>();
    let release: () => void = () => {};
    const gate = new Promise<void>((resolve) => (release = resolve));
    const sub = await h.bus.consume({
      durable: 'overlap',
      filter: filter('overlap'),
      concurrency,
      handler: async (e) => {
        running += 1;
        most = Math.max(most, running);
        await gate;
        running -= 1;
        acked.add(e.id);
      },
    });
    const names = Array.from({ length: 3 * concurrency }, (_, i) => String(i));
    await h.publish(events('overlap', ...names));
    try {
      await waitFor(`${concurrency} handlers at once`, () => running === concurrency);
      await sleep(200); // room for a ninth, which must not come
    } finally {
      release();
    }
    await waitFor('every event', () => acked.size === names.length);
    await sub.stop();
    expect(most).toBe(concurrency);
  });

  it('resumes a stopped durable where it acked, keeping what it had not acked', async () => {
    const first = recorder((e) => e.id === 'resume-3');
    const sub1 = await h.bus.consume({ durable: 'resume', filter: filter('resume'), handler: first.handler, concurrency: 1 });
    await h.publish(events('resume', '1', '2', '3'));
    await waitFor('three deliveries', () => first.deliveries.length >= 3);
    await sub1.stop();
    expect(first.acked).toEqual(ids('resume', '1', '2'));

    await h.publish(events('resume', '4', '5'));
    const second = recorder();
    const sub2 = await h.bus.consume({ durable: 'resume', filter: filter('resume'), handler: second.handler });
    await waitFor('3, 4 and 5', () => second.acked.length === 3);
    await sleep(300);
    await sub2.stop();
    expect([...second.acked].sort()).toEqual(ids('resume', '3', '4', '5'));
    expect(second.deliveries).toHaveLength(3);
  });

  it('leaves nothing with a stopped subscriber: the next one gets the rest at once', async () => {
    const names = Array.from({ length: 30 }, (_, i) => String(i));
    let release: () => void = () => {};
    const gate = new Promise<void>((resolve) => (release = resolve));
    const first = recorder();
    const sub1 = await h.bus.consume({
      durable: 'backlog',
      filter: filter('backlog'),
      concurrency: 2,
      handler: async (e, meta) => {
        await gate;
        await first.handler(e, meta);
      },
    });
    await h.publish(events('backlog', ...names));
    await sleep(100);
    const stopping = sub1.stop();
    release();
    await stopping;
    const second = recorder();
    const sub2 = await h.bus.consume({ durable: 'backlog', filter: filter('backlog'), handler: second.handler });
    // Far below NATS's 30 s ack wait: nothing may be held by the stopped subscriber.
    await waitFor('the rest of the backlog', () => new Set([...first.acked, ...second.acked]).size >= 30, 5_000);
    await sub2.stop();
    expect(new Set([...first.acked, ...second.acked])).toEqual(new Set(ids('backlog', ...names)));
    expect(first.acked.length).toBeLessThan(30);
  });

  it('refuses a durable name NATS would refuse, a filter outside the bus, a bad concurrency', async () => {
    const handler = async () => {};
    await expect(h.bus.consume({ durable: 'has.dot', filter: filter('x'), handler })).rejects.toThrow(RangeError);
    await expect(h.bus.consume({ durable: 'outside', filter: 'elsewhere.>', handler })).rejects.toThrow(RangeError);
    await expect(h.bus.consume({ durable: 'conc', filter: filter('x'), handler, concurrency: 0 })).rejects.toThrow(RangeError);
  });
});
