// Proves the bus's own JetStream publish against the shared JetStream: a call resolves once every
// event of it is stored (in order, deduplicated by Nats-Msg-Id), and fails — without waiting for its
// timeout when the server says why — on an error ack, on a subject no stream takes, on no ack at all,
// and when closed; a late ack of an ended call touches no later call; a reply that is not JetStream's
// (a command's answer aimed at its inbox) is passed over, and a forged ack aimed where the reply
// subjects seen so far point next completes nothing.
import { connect, type NatsConnection } from 'nats';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { JetStreamPublisher, JetStreamPublishError } from '../../../persistence/bus/jetstream-publisher.ts';
import { nats_url, uniqueSuffix } from './support.ts';

const suffix = uniqueSuffix();
const prefix = `stampede_test_${suffix.toLowerCase()}.pub`;
const stream = `STAMPEDE_TEST_PUB_${suffix}`;
const encoder = new TextEncoder();
const decoder = new TextDecoder();

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
    // The server's reason, not the call's own timeout (which would say so): the error ack failed it.
    const error = await publisher.publish([event('wrong-stream')], 'NOT_THIS_STREAM', 5_000).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(JetStreamPublishError);
    expect(String((error as Error).message)).toMatch(/expected stream/i);
    expect(String((error as Error).message)).not.toMatch(/no PubAck within/);
    publisher.close();
  });

  it('fails a call at once when no stream takes a subject (503), even if its other events are stored', async () => {
    const publisher = new JetStreamPublisher(nc);
    const jsm = await nc.jetstreamManager();
    const before = (await jsm.streams.info(stream)).state.last_seq;
    const error = await publisher
      .publish([event('stored-1'), { id: 'nowhere', subject: `unrouted_${suffix}.evt`, data: '{}' }, event('stored-2')], stream, 5_000)
      .catch((e: unknown) => e);
    // Failed by the 503 (no responders), not by the call's own timeout.
    expect(error).toBeInstanceOf(JetStreamPublishError);
    expect(String((error as Error).message)).toMatch(/503/);
    expect(String((error as Error).message)).not.toMatch(/no PubAck within/);
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

  it("takes only a PubAck or a JetStream error as an event's ack: another reply aimed at its inbox (a command's answer) is passed over, and the stream's ack still completes the call", async () => {
    // A core subscriber holds the publish (as a slow stream would), so the other replies come first.
    const held = `held_${suffix}.evt`;
    const sub = nc.subscribe(held, { max: 1 });
    const publisher = new JetStreamPublisher(nc);
    const call = publisher.publish([{ id: 'held-ack', subject: held, data: '{"n":1}' }], stream, 10_000);
    for await (const m of sub) {
      // What the engine's request service answers an empty merchant command, something that is not
      // JSON, and JSON that is neither ack nor error.
      for (const junk of ['{"ok":false,"error":"invalid_request","message":"request body is empty"}', 'not json', '{"ok":true}']) m.respond(encoder.encode(junk));
      // Then the stream's own PubAck for this event (the test stores it, with its headers, and relays the answer).
      const stored = await nc.request(`${prefix}.m1.order.paid`, m.data, { headers: m.headers!, timeout: 5_000 });
      expect(JSON.parse(decoder.decode(stored.data))).toMatchObject({ stream, seq: expect.any(Number) });
      m.respond(stored.data);
    }
    await expect(call).resolves.toBeUndefined();
    publisher.close();
  });

  it('names each ack by a token no one can foresee: a PubAck aimed where the tokens seen so far point next does not complete the next call', async () => {
    // A subscriber of the event subjects (as merchant m1 is of its own) sees each publish's reply subject.
    const replies: string[] = [];
    const watch = nc.subscribe(`${prefix}.m1.>`, { callback: (_e, m) => m.reply && replies.push(m.reply) });
    await nc.flush();
    const publisher = new JetStreamPublisher(nc);
    await publisher.publish([event('seen-1'), event('seen-2'), event('seen-3')], stream, 5_000);
    await nc.flush();
    expect(replies).toHaveLength(3);

    const held = `held2_${suffix}.evt`;
    const sub = nc.subscribe(held, { max: 1 });
    let settled = false;
    const call = publisher.publish([{ id: 'held-next', subject: held, data: '{}' }], stream, 10_000).finally(() => (settled = true));
    // Every reply subject seen, and each with its last token counted on (a sequence number's next values).
    const guesses = new Set<string>();
    for (const reply of replies) {
      guesses.add(reply);
      const tokens = reply.split('.');
      const last = Number(tokens.at(-1));
      if (Number.isInteger(last)) for (let n = last + 1; n <= last + 10; n++) guesses.add([...tokens.slice(0, -1), String(n)].join('.'));
    }
    const forged = encoder.encode(JSON.stringify({ stream, seq: 1 }));
    for (const guess of guesses) nc.publish(guess, forged);
    // The forged acks went through the server and back before the flush's answer.
    await nc.flush();
    expect(settled).toBe(false);
    for await (const m of sub) m.respond(encoder.encode(JSON.stringify({ stream, seq: 2 })));
    await expect(call).resolves.toBeUndefined();
    watch.unsubscribe();
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
