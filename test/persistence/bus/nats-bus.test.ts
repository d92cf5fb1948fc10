// Proves what only the NATS bus can get wrong — the stream's settings, the contract's Nats-Msg-Id
// header, refusing a bad event before sending any, making a deleted stream or consumer again (a publish
// or a pull answered "no responders"), refusing a server without users when given a user, bounded
// StoreUnavailableError failures during an
// outage, and a running consumer that carries on by itself after the server comes back — against the
// shared JetStream and against a nats-server of our own that we kill and start again.
import { connect, nanos, NatsError, type NatsConnection } from 'nats';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { StoreUnavailableError } from '../../../persistence/errors.ts';
import { NatsServerWithoutUsersError, openNatsBus } from '../../../persistence/bus/nats-bus.ts';
import { freePort, OwnNatsServer } from '../../support/nats-server.ts';
import { nats_url, recorder, uniqueSuffix, waitFor } from './support.ts';

const suffix = uniqueSuffix();
const prefix = `stampede_test_${suffix.toLowerCase()}.evt`;
const stream = `STAMPEDE_TEST_NATS_${suffix}`;

describe('NATS bus on the shared JetStream', () => {
  let nc: NatsConnection;
  beforeAll(async () => {
    nc = await connect({ servers: nats_url, timeout: 2_000 });
  });
  afterAll(async () => {
    const jsm = await nc.jetstreamManager();
    await jsm.streams.delete(stream).catch(() => {});
    await nc.close();
  });

  it('creates the stream with its bounds, then updates it when opened with other settings', async () => {
    const jsm = await nc.jetstreamManager();
    const first = await openNatsBus(nats_url, { stream, subjects: [`${prefix}.>`], duplicateWindow_ms: 60_000 });
    await first.close();
    let info = await jsm.streams.info(stream);
    expect(info.config.subjects).toEqual([`${prefix}.>`]);
    expect(info.config.duplicate_window).toBe(nanos(60_000));
    expect(info.config.max_age).toBe(nanos(7 * 24 * 3_600_000));
    expect(info.config.max_bytes).toBe(1024 ** 3);

    const second = await openNatsBus(nats_url, { stream, subjects: [`${prefix}.>`] });
    info = await jsm.streams.info(stream);
    expect(info.config.duplicate_window).toBe(nanos(120_000));
    await second.close();
  });

  it('stores each event once with Nats-Msg-Id = event id and the body as sent', async () => {
    const bus = await openNatsBus(nats_url, { stream, subjects: [`${prefix}.>`] });
    const jsm = await nc.jetstreamManager();
    const before = (await jsm.streams.info(stream)).state.last_seq;
    const body = '{"eventId":"hdr-1","type":"order.paid","at":1}';
    await bus.publish([{ id: 'hdr-1', subject: `${prefix}.m1.order.paid`, data: body }]);
    await bus.publish([{ id: 'hdr-1', subject: `${prefix}.m1.order.paid`, data: body }]);
    const info = await jsm.streams.info(stream);
    expect(info.state.last_seq).toBe(before + 1);
    const stored = await jsm.streams.getMessage(stream, { seq: before + 1 });
    expect(stored.header.get('Nats-Msg-Id')).toBe('hdr-1');
    expect(stored.subject).toBe(`${prefix}.m1.order.paid`);
    expect(new TextDecoder().decode(stored.data)).toBe(body);
    await bus.close();
  });

  it('makes the stream again when a publish finds it gone (a wiped server), with no consumer to notice', async () => {
    const errors: unknown[] = [];
    const bus = await openNatsBus(nats_url, { stream, subjects: [`${prefix}.>`], onError: (e) => errors.push(e) });
    const jsm = await nc.jetstreamManager();
    await jsm.streams.delete(stream);
    const subject = `${prefix}.m1.order.paid`;
    // Nothing takes the subject now: NATS answers "no responders", the publish fails as unavailable.
    await expect(bus.publish([{ id: 'gone-1', subject, data: '{}' }])).rejects.toBeInstanceOf(StoreUnavailableError);
    // The caller (the relay) tries again: the stream is back and takes it.
    await waitFor('a publish after the stream was made again', () => bus.publish([{ id: 'gone-1', subject, data: '{}' }]).then(() => true, () => false), 5_000);
    const info = await jsm.streams.info(stream);
    expect(info.config.subjects).toEqual([`${prefix}.>`]);
    expect(info.state.messages).toBe(1);
    expect(errors).toEqual([]);
    await bus.close();
  });

  it('leaves an existing stream\'s settings alone when a publish is answered "no responders" (an operator narrowed its subjects)', async () => {
    const bus = await openNatsBus(nats_url, { stream, subjects: [`${prefix}.>`] });
    const jsm = await nc.jetstreamManager();
    const info = await jsm.streams.info(stream);
    await jsm.streams.update(stream, { ...info.config, subjects: [`${prefix}.m1.>`] });
    await expect(bus.publish([{ id: 'narrowed-1', subject: `${prefix}.m2.order.paid`, data: '{}' }])).rejects.toBeInstanceOf(StoreUnavailableError);
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect((await jsm.streams.info(stream)).config.subjects).toEqual([`${prefix}.m1.>`]);
    await jsm.streams.update(stream, { ...info.config, subjects: [`${prefix}.>`] });
    await bus.close();
  });

  it('sets its consumer back to unlimited deliveries when an operator edited it to give up after a few', async () => {
    const bus = await openNatsBus(nats_url, { stream, subjects: [`${prefix}.>`] });
    const durable = `capped_${suffix}`;
    await bus.ensureConsumer(durable, `${prefix}.>`);
    const jsm = await nc.jetstreamManager();
    expect((await jsm.consumers.info(stream, durable)).config.max_deliver).toBe(-1);
    await jsm.consumers.update(stream, durable, { max_deliver: 5 });
    expect((await jsm.consumers.info(stream, durable)).config.max_deliver).toBe(5);
    await bus.ensureConsumer(durable, `${prefix}.>`);
    expect((await jsm.consumers.info(stream, durable)).config.max_deliver).toBe(-1);
    await jsm.consumers.delete(stream, durable);
    await bus.close();
  });

  it('makes its consumer again when a pull is answered "no responders" (nats-server 2.10.26 on, for a deleted consumer)', async () => {
    const bus = await openNatsBus(nats_url, { stream, subjects: [`${prefix}.>`], reconnectWait_ms: 50 });
    const ensure = bus.ensureConsumer.bind(bus);
    let calls = 0;
    // The first consumer handed out is one whose every pull the server answers 503, as a current
    // server does for a consumer that was deleted.
    bus.ensureConsumer = async (durable, filter) => {
      calls++;
      if (calls === 1) return { fetch: async () => Promise.reject(new NatsError('no responders', '503')) } as unknown as Awaited<ReturnType<typeof ensure>>;
      return ensure(durable, filter);
    };
    const r = recorder();
    const sub = await bus.consume({ durable: `gone_${suffix}`, filter: `${prefix}.>`, handler: r.handler });
    await bus.publish([{ id: 'after-503', subject: `${prefix}.m2.order.paid`, data: '{}' }]);
    await waitFor('the event through the consumer made again', () => r.acked.includes('after-503'), 10_000);
    expect(calls).toBeGreaterThanOrEqual(2);
    await sub.stop();
    await bus.close();
  });

  it('refuses an event without id or outside the bus subjects, publishing none of the call', async () => {
    const bus = await openNatsBus(nats_url, { stream, subjects: [`${prefix}.>`] });
    const jsm = await nc.jetstreamManager();
    const before = (await jsm.streams.info(stream)).state.last_seq;
    const ok = { id: 'refuse-ok', subject: `${prefix}.m1.order.paid`, data: '{}' };
    await expect(bus.publish([ok, { id: 'x', subject: 'elsewhere.evt', data: '{}' }])).rejects.toThrow(RangeError);
    await expect(bus.publish([{ id: '', subject: `${prefix}.m1.order.paid`, data: '{}' }])).rejects.toThrow(RangeError);
    await expect(bus.publish([{ ...ok, subject: `${prefix}.m1.*` }])).rejects.toThrow(RangeError);
    expect((await jsm.streams.info(stream)).state.last_seq).toBe(before);
    await bus.close();
  });

  it('refuses a server without users when it is given a user: the server would ignore the credentials and keep no merchant apart', async () => {
    // The shared server has no users: it takes any connection, credentials or not.
    const error = await openNatsBus(nats_url, { stream, subjects: [`${prefix}.>`], user: 'stampede-engine', pass: 'any-password-0123456789' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(NatsServerWithoutUsersError);
    expect(String((error as Error).message)).toMatch(/does not ask for a user/);
    // Without a user (a developer's server) it opens as before.
    const bus = await openNatsBus(nats_url, { stream, subjects: [`${prefix}.>`] });
    await bus.close();
  });

  it('rejects opening a server nobody listens on with StoreUnavailableError, naming the server and the client\'s reason', async () => {
    const port = await freePort();
    // Not retried for ever (maxReconnectAttempts is -1 once connected): the first connect fails the
    // open, with the client's own error as the cause (the test's timeout is the hang guard).
    const error = await openNatsBus(`nats://127.0.0.1:${port}`, { connectTimeout_ms: 1_000 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StoreUnavailableError);
    expect(String((error as Error).message)).toContain(`NATS at nats://127.0.0.1:${port}: `);
    expect((error as Error).cause).toBeInstanceOf(NatsError);
  });
});

describe('NATS bus through an outage of its own nats-server', () => {
  let server: OwnNatsServer;
  beforeAll(async () => {
    server = await OwnNatsServer.start();
  });
  afterAll(async () => {
    await server?.dispose();
  });

  it('fails publish and ping at once while the server is down; a running consumer carries on once it is back', async () => {
    const errors: unknown[] = [];
    const bus = await openNatsBus(server.url, { publishTimeout_ms: 1_000, reconnectWait_ms: 200, onError: (e) => errors.push(e) });
    try {
      const subject = 'stampede.evt.m1.order.reserved';
      const r = recorder();
      const sub = await bus.consume({ durable: 'outage', filter: 'stampede.evt.>', handler: r.handler });
      await bus.publish([{ id: 'before', subject, data: '{}' }]);
      await waitFor('before', () => r.acked.includes('before'));
      expect(await bus.ping()).toBe(true);

      await server.kill();
      try {
        await waitFor('the client to notice', () => !bus.isConnected, 5_000);
        // Refused because the bus knows NATS is away, not after the publish's own 1 s deadline (and
        // not left in the client's buffer to go out stale on reconnect).
        const error = await bus.publish([{ id: 'during', subject, data: '{}' }]).catch((e: unknown) => e);
        expect(error).toBeInstanceOf(StoreUnavailableError);
        expect(String((error as Error).message)).toBe('NATS is disconnected');
        expect(await bus.ping()).toBe(false);
      } finally {
        await server.start();
      }
      await waitFor(
        'a publish after the restart',
        () => bus.publish([{ id: 'after', subject, data: '{}' }]).then(() => true, () => false),
        15_000,
      );
      expect(await bus.ping()).toBe(true);
      // The same subscription, never restarted by us.
      await waitFor('after', () => r.acked.includes('after'), 15_000);
      await sub.stop();
      expect(r.acked).toEqual(['before', 'after']);
    } finally {
      await bus.close();
    }
  });

  it('closes, consumers included, while the server is down', async () => {
    const bus = await openNatsBus(server.url, { reconnectWait_ms: 200 });
    try {
      const r = recorder();
      await bus.consume({ durable: 'closing', filter: 'stampede.evt.>', handler: r.handler });
      await server.kill();
      // Resolves with no server to say goodbye to (the test's timeout is the hang guard).
      await bus.close();
      expect(await bus.ping()).toBe(false);
      await expect(bus.publish([{ id: 'late', subject: 'stampede.evt.m1.order.paid', data: '{}' }])).rejects.toThrow(new StoreUnavailableError('NATS bus is closed'));
    } finally {
      await bus.close();
      await server.start();
    }
  });
});
