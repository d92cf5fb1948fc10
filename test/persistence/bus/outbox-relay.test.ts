// Proves the relay moves outbox rows to JetStream in id order, at least once, saving its cursor and
// trimming what it passed, runs at once on a nudge, and loses nothing when NATS dies and comes back
// while rows keep arriving: with the real MariaDB and SQLite outbox, the shared JetStream, and a
// nats-server of our own that we kill and start again.
import { connect } from 'nats';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openNatsBus, type NatsBus } from '../../../persistence/bus/nats-bus.ts';
import { OutboxRelay } from '../../../persistence/bus/outbox-relay.ts';
import { StoreUnavailableError } from '../../../persistence/errors.ts';
import { backends } from '../backends.ts';
import { OwnNatsServer } from '../../support/nats-server.ts';
import { nats_url, outboxBatch, outboxEvents, recorder, uniqueSuffix, waitFor } from './support.ts';

const names = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => String(from + i));

describe.each(backends)('outbox relay from $name to the shared JetStream', (backend) => {
  const suffix = uniqueSuffix();
  const prefix = `stampede_test_${suffix.toLowerCase()}.evt`;
  const stream = `STAMPEDE_TEST_RELAY_${suffix}`;
  let stores: Awaited<ReturnType<typeof backend.open>>;
  let bus: NatsBus;
  beforeAll(async () => {
    stores = await backend.open('bus_relay');
    bus = await openNatsBus(nats_url, { stream, subjects: [`${prefix}.>`] });
  });
  afterAll(async () => {
    await bus?.close();
    await stores?.dispose();
    const nc = await connect({ servers: nats_url, timeout: 2_000 });
    await (await nc.jetstreamManager()).streams.delete(stream).catch(() => {});
    await nc.close();
  });

  it('publishes every row once, in id order, saves its cursor and trims what it passed', async () => {
    const all = outboxEvents(prefix, 'order', ...names(1, 1_203));
    for (let i = 0; i < all.length; i += 401) await stores.projection.apply(outboxBatch(all.slice(i, i + 401)));
    const relay = new OutboxRelay({ outbox: stores.outbox, publisher: bus, batchRows_max: 500, trimInterval_ms: 0 });
    expect(await relay.lag()).toBeGreaterThan(0);
    const r = recorder();
    const sub = await bus.consume({ durable: 'order', filter: `${prefix}.>`, handler: r.handler, concurrency: 1 });
    relay.start();
    await waitFor('every row on NATS', () => r.acked.length >= all.length, 20_000);
    await waitFor('no lag', async () => (await relay.lag()) === 0);
    await relay.stop();
    await sub.stop();
    expect(r.acked).toEqual(all.map((e) => e.eventId));
    const head = await stores.outbox.head();
    expect(await stores.outbox.cursor('relay:nats')).toBe(head);
    // Trimmed down to the newest row (kept so ids never restart).
    expect((await stores.outbox.readAfter(0, 10)).map((row) => row.id)).toEqual([head]);
    const nc = await connect({ servers: nats_url, timeout: 2_000 });
    const info = await (await nc.jetstreamManager()).streams.info(stream);
    await nc.close();
    expect(info.state.messages).toBe(all.length);
  });

  it('runs a pass at once when nudged, long before its poll', async () => {
    const relay = new OutboxRelay({ outbox: stores.outbox, publisher: bus, poll_ms: 60_000 }).start();
    await waitFor('the first pass', async () => (await relay.lag()) === 0);
    const r = recorder();
    const sub = await bus.consume({ durable: 'nudge', filter: `${prefix}.nudge.>`, handler: r.handler });
    await stores.projection.apply(outboxBatch(outboxEvents(prefix, 'nudge', 'a', 'b')));
    relay.nudge();
    await waitFor('the nudged rows', () => r.acked.length === 2, 5_000);
    await relay.stop();
    await sub.stop();
    expect([...r.acked].sort()).toEqual(['nudge-a', 'nudge-b']);
  });
});

describe('outbox relay through an outage of its own nats-server', () => {
  const backend = backends.find((b) => b.name === 'mysql')!;
  let server: OwnNatsServer;
  let stores: Awaited<ReturnType<typeof backend.open>>;
  beforeAll(async () => {
    server = await OwnNatsServer.start();
    stores = await backend.open('bus_relay_outage');
  });
  afterAll(async () => {
    await stores?.dispose();
    await server?.dispose();
  });

  it('delivers every event after NATS restarts while rows keep arriving, none lost, none twice to a deduping consumer', async () => {
    const relayErrors: unknown[] = [];
    const bus = await openNatsBus(server.url, { publishTimeout_ms: 1_000, reconnectWait_ms: 100, ackWait_ms: 3_000, redeliveryDelay_ms: 100 });
    let relay: OutboxRelay | undefined;
    let sub: Awaited<ReturnType<typeof bus.consume>> | undefined;
    // The consumer dedupes by event id, as the contract asks of every consumer.
    const seen = new Set<string>();
    let deliveries = 0;
    try {
      const started = new OutboxRelay({
        outbox: stores.outbox,
        publisher: bus,
        poll_ms: 200,
        retryMin_ms: 50,
        retryMax_ms: 500,
        onError: (e) => relayErrors.push(e),
      }).start();
      relay = started;
      sub = await bus.consume({
        durable: 'outage',
        filter: 'stampede.evt.>',
        concurrency: 16,
        handler: async (e) => {
          deliveries += 1;
          seen.add(e.id);
        },
      });
      const write = async (from: number, to: number) => {
        for (let i = from; i <= to; i += 5) {
          await stores.projection.apply(outboxBatch(outboxEvents('stampede.evt.m1', 'outage', ...names(i, Math.min(to, i + 4)))));
          started.nudge();
          await new Promise((resolve) => setTimeout(resolve, 10));
        }
      };

      await write(1, 100);
      await waitFor('some events through', () => seen.size >= 50);
      await server.kill();
      try {
        await write(101, 200);
        await waitFor('the relay to fail and report', () => relayErrors.length >= 2, 10_000);
      } finally {
        // Back for the rest of this test, and for any test after it, whatever failed above.
        await server.start();
      }
      await write(201, 300);
      await waitFor('every event after the restart', () => seen.size === 300, 30_000);
      await waitFor('no lag', async () => (await started.lag()) === 0, 10_000);
    } finally {
      await relay?.stop();
      await sub?.stop();
      await bus.close();
    }
    expect(seen).toEqual(new Set(names(1, 300).map((n) => `outage-${n}`)));
    expect(deliveries).toBeGreaterThanOrEqual(300);
    expect(relayErrors.every((e) => e instanceof StoreUnavailableError)).toBe(true);
  });
});
