// Proves the bus's own JetStream publish against the shared JetStream: a call resolves once every
// event of it is stored (in order, deduplicated by Nats-Msg-Id), and fails — without waiting for its
// timeout when the server says why — on an error ack, on a subject no stream takes, on no ack at all,
// and when closed; a late ack of an ended call touches no later call.
import { connect, type NatsConnection } from 'nats';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { JetStreamPublisher, JetStreamPublishError } from '../../../persistence/bus/jetstream-publisher.ts';
import { nats_url, uniqueSuffix } from './support.ts';

const suffix = uniqueSuffix();
const prefix = `stampede_test_${suffix.toLowerCase()}.pub`;
const stream = `STAMPEDE_TEST_PUB_${suffix}`;

describe('JetStream publisher', () => {
  let nc: NatsConnection;
  beforeAll(async () => {
    nc = await connect({ servers: nats_url, timeout: 2_000 });
    const jsm = await nc.jetstreamManager();
    await jsm.streams.add({ name: stream, subjects: [`${prefix}.>`], duplicate_window: 60_000_000_000 });
  });
  afterAll(async () => {
    const jsm = await nc.jetstreamManager();
    await jsm.streams.delete(stream).catch(() => {});
    await nc.close();
  });

  const event = (id: string, n = 0) => ({ id, subject: `${prefix}.m1.order.paid`, data: JSON.stringify({ eventId: id, n }) });

  it('resolves once all events of a call are stored, in order, each id once', async () => {
    const publisher = new JetStreamPublisher(nc);
    const jsm = await nc.jetstreamManager();
    const before = (await jsm.streams.info(stream)).state.last_seq;
    const events = Array.from({ length: 500 }, (_, i) => event(`order-${i}`, i));
    await publisher.publish(events, stream, 5_000);
    // The same ids again (a relay's retry): JetStream drops them within its duplicate window.
    await publisher.publish(events.slice(0, 10), stream, 5_000);
    const info = await jsm.streams.info(stream);
    expect(info.state.last_seq).toBe(before + 500);
    for (const i of [0, 1, 250, 499]) {
      const stored = await jsm.streams.getMessage(stream, { seq: before + 1 + i });
      expect(stored.header.get('Nats-Msg-Id')).toBe(`order-${i}`);
      expect(JSON.parse(new TextDecoder().decode(stored.data))).toEqual({ eventId: `order-${i}`, n: i });
    }
    publisher.close();
  });

  it('fails a call on an error ack (another stream expected), with the server\'s reason', async () => {
    const publisher = new JetStreamPublisher(nc);
    const started = performance.now();
    const error = await publisher.publish([event('wrong-stream')], 'NOT_THIS_STREAM', 5_000).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(JetStreamPublishError);
    expect(String((error as Error).message)).toMatch(/expected stream/i);
    expect(performance.now() - started).toBeLessThan(2_000);
    publisher.close();
  });

  it('fails a call at once when no stream takes a subject (503), even if its other events are stored', async () => {
    const publisher = new JetStreamPublisher(nc);
    const jsm = await nc.jetstreamManager();
    const before = (await jsm.streams.info(stream)).state.last_seq;
    const started = performance.now();
    const error = await publisher
      .publish([event('stored-1'), { id: 'nowhere', subject: `unrouted_${suffix}.evt`, data: '{}' }, event('stored-2')], stream, 5_000)
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(JetStreamPublishError);
    expect(String((error as Error).message)).toMatch(/503/);
    expect(performance.now() - started).toBeLessThan(2_000);
    expect((await jsm.streams.info(stream)).state.last_seq).toBe(before + 2);
    publisher.close();
  });

  it('fails a call whose ack never comes after its timeout, and a late ack touches no later call', async () => {
    // A core subscriber takes the subject and never answers: no 503, no ack.
    const silent = `silent_${suffix}.evt`;
    const sub = nc.subscribe(silent);
    const publisher = new JetStreamPublisher(nc);
    const started = performance.now();
    const error = await publisher.publish([{ id: 'silent-1', subject: silent, data: '{}' }], stream, 300).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(JetStreamPublishError);
    expect(String((error as Error).message)).toMatch(/no PubAck within 300 ms/);
    expect(performance.now() - started).toBeGreaterThanOrEqual(290);
    // Answer the ended call's reply now, as a late ack would come: the next call is unaffected.
    for await (const m of sub) {
      m.respond(new TextEncoder().encode(JSON.stringify({ error: { code: 500, description: 'late' } })));
      break;
    }
    await expect(publisher.publish([event('after-late')], stream, 5_000)).resolves.toBeUndefined();
    sub.unsubscribe();
    publisher.close();
  });

  it('fails the calls still waiting when closed, and every call after', async () => {
    const silent = `silent2_${suffix}.evt`;
    const sub = nc.subscribe(silent);
    const publisher = new JetStreamPublisher(nc);
    const waiting = publisher.publish([{ id: 'held', subject: silent, data: '{}' }], stream, 10_000).catch((e: unknown) => e);
    publisher.close();
    expect(await waiting).toBeInstanceOf(JetStreamPublishError);
    await expect(publisher.publish([event('closed')], stream, 1_000)).rejects.toThrow(/closed/);
    sub.unsubscribe();
  });
});
