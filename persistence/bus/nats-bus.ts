// The event bus on NATS JetStream (STAMPEDE_NATS_URL). Events go to the stream STAMPEDE_EVENTS with
// `Nats-Msg-Id` = event id (the contract's dedupe), and a publish resolves only on every PubAck.
// Each durable is a pull consumer with explicit acks: the bus pulls only as many events as it has
// free handler slots, acks an event when its handler resolves and naks it with a growing delay when
// it rejects. The client reconnects forever; a subscription's loop waits out an outage and resumes
// by itself. Every wait is bounded; anything unreachable or timed out becomes StoreUnavailableError.
import {
  AckPolicy,
  connect,
  DeliverPolicy,
  Events,
  nanos,
  type Consumer,
  type ConsumerConfig,
  type JetStreamClient,
  type JetStreamManager,
  type JsMsg,
  type NatsConnection,
  type StreamConfig,
} from 'nats';
import { StoreUnavailableError } from '../errors.ts';
import { concurrencyOf, HandlerSlots } from './handler-slots.ts';
import type { BusEvent, ConsumeOptions, EventBus, OutgoingEvent, Publisher, Subscription } from './ports.ts';
import { JetStreamPublisher } from './jetstream-publisher.ts';
import { AcceptedSubjects, checkConsumer, checkEvent } from './subjects.ts';
import { backoff_ms, within, Wakeup } from './waits.ts';

export { serveRequests, type RequestHandler, type RequestService, type RequestServiceOptions } from './request-service.ts';

export interface NatsBusOptions {
  /**
   * Credentials of the engine's NATS user (docker/nats/nats.conf). Given a user, open() refuses a
   * server that does not ask for one (NatsServerWithoutUsersError).
   */
  user?: string;
  pass?: string;
  stream?: string;
  subjects?: string[];
  /** JetStream drops a republished Nats-Msg-Id within this window. */
  duplicateWindow_ms?: number;
  /** Events older than this leave the stream (the stream's bound; merchants read well within it). */
  streamMaxAge_ms?: number;
  /** Bytes the stream keeps at most; the oldest events go first. */
  streamMax_bytes?: number;
  /** Longest the first connection, the stream setup, and one consumer setup may take. */
  connectTimeout_ms?: number;
  /** Wait between reconnection attempts; the client reconnects forever. */
  reconnectWait_ms?: number;
  /** Longest a publish call may wait for its PubAcks. */
  publishTimeout_ms?: number;
  /** How long a rejected event waits (nak delay) before its first redelivery; doubles after each. */
  redeliveryDelay_ms?: number;
  redeliveryDelayMax_ms?: number;
  /** An event delivered but neither acked nor nak'ed (handler hung, process died) comes again after this. */
  ackWait_ms?: number;
  /** Events delivered to a durable and not yet acked, at most (waiting redeliveries count). */
  ackPending_max?: number;
  /** Longest stop() and close() wait for handlers in flight. */
  stopTimeout_ms?: number;
  /** Failures of a subscription's loop (NATS away, consumer missing): reported, then retried. */
  onError?: (error: unknown) => void;
}

export const nats_bus_defaults = {
  stream: 'STAMPEDE_EVENTS',
  subjects: ['stampede.evt.>'],
  duplicateWindow_ms: 120_000,
  streamMaxAge_ms: 7 * 24 * 3_600_000,
  streamMax_bytes: 1024 ** 3,
  connectTimeout_ms: 2_000,
  reconnectWait_ms: 500,
  publishTimeout_ms: 5_000,
  redeliveryDelay_ms: 1_000,
  redeliveryDelayMax_ms: 60_000,
  ackWait_ms: 30_000,
  ackPending_max: 10_000,
  stopTimeout_ms: 10_000,
} as const;

/** A pull ends by itself after this, so a stopping subscription waits at most this long for it. */
export const nats_pull_expires_ms = 1_000;
/** A pull asks for at least this share of the concurrency (fewer, larger pulls under load). */
export const nats_pull_refill_fraction = 0.25;
/** Events in one publish call, at most. */
export const nats_publish_events_max = 1_000;
/** Longest ping() and the flush of a stopping subscription's acks may take. */
export const nats_ping_timeout_ms = 1_000;
/** Longest a failing subscription loop waits before trying again. */
export const nats_retry_max_ms = 5_000;
/**
 * The inbox prefix of the engine's connection: every reply it waits for (its JetStream publishes'
 * acks, JetStream API answers, pulled events) arrives under it. Fixed, not per node: the request
 * service refuses to answer a request whose reply subject is under it (request-service.ts), and
 * whichever node of a cluster takes a request must refuse one aimed at any node's inbox.
 */
export const nats_engine_inbox_prefix = '_INBOX.stampede-engine';
/** Client pings: a silent server is noticed within about interval × (outstanding + 1). */
export const nats_ping_interval_ms = 5_000;
export const nats_pings_outstanding_max = 2;

type Options = Required<Omit<NatsBusOptions, 'subjects' | 'user' | 'pass'>> & { subjects: string[] };

function unavailable(what: string, cause: unknown): StoreUnavailableError {
  if (cause instanceof StoreUnavailableError) return cause;
  const reason = cause instanceof Error ? cause.message : String(cause);
  return new StoreUnavailableError(`${what}: ${reason}`, { cause });
}

/**
 * NATS's "no responders" (503): nothing took the request. Since nats-server 2.10.26 a pull from a
 * consumer or stream that does not exist is answered so (nats.js's fetch rejects with code "503"),
 * and so is a publish to subjects no stream takes: the stream or consumer is gone (a wiped server,
 * an operator's delete) and must be made again.
 */
function isNoResponders(error: unknown): boolean {
  const e = error as { code?: unknown; status?: unknown } | undefined;
  return e?.code === '503' || e?.status === 503 || (e instanceof Error && isNoResponders((e as { cause?: unknown }).cause));
}

/** JetStream's "stream not found" (10059) or "consumer not found" (10014). */
function isNotFound(error: unknown): boolean {
  const e = error as { api_error?: { err_code?: number }; message?: string } | undefined;
  const code = e?.api_error?.err_code;
  return code === 10059 || code === 10014 || e?.message === 'stream not found' || e?.message === 'consumer not found';
}

/**
 * The bus was given a user, and the server does not ask for one: it takes every connection and
 * ignores the credentials, so the per-merchant users and permissions the engine relies on to keep
 * merchants apart (docker/nats/nats.conf) are not there. A configuration error, not an outage.
 */
export class NatsServerWithoutUsersError extends Error {
  override name = 'NatsServerWithoutUsersError';
}

export class NatsBus implements EventBus, Publisher {
  private readonly subscriptions = new Set<NatsSubscription>();
  private closing: Promise<void> | undefined;
  private connected = true;
  private readonly publisher: JetStreamPublisher;
  private readonly accepted = new AcceptedSubjects();

  private constructor(
    /** The bus's connection, for request/reply services (serveRequests); the bus closes it. */
    readonly connection: NatsConnection,
    private readonly jsm: JetStreamManager,
    private readonly js: JetStreamClient,
    readonly options: Options,
  ) {
    this.publisher = new JetStreamPublisher(connection, nats_engine_inbox_prefix);
    void this.watchStatus();
  }

  /** Connects and creates or updates the stream; StoreUnavailableError if NATS cannot be reached in time. */
  static async open(url: string, options: NatsBusOptions = {}): Promise<NatsBus> {
    const { user, pass, ...rest } = options;
    const o: Options = { ...nats_bus_defaults, onError: () => {}, ...rest, subjects: [...(options.subjects ?? nats_bus_defaults.subjects)] };
    if (o.subjects.length === 0) throw new RangeError('NATS bus: no subjects');
    let nc: NatsConnection;
    try {
      nc = await connect({
        servers: url,
        timeout: o.connectTimeout_ms,
        maxReconnectAttempts: -1,
        reconnectTimeWait: o.reconnectWait_ms,
        pingInterval: nats_ping_interval_ms,
        maxPingOut: nats_pings_outstanding_max,
        name: 'stampede-bus',
        inboxPrefix: nats_engine_inbox_prefix,
        // Without it every request and JetStream publish captures two stack traces up front (an
        // Error and a timeout NatsError) in case it fails: ~5% of the payment path's CPU, measured.
        // A failure still says what failed (the bus wraps it as unavailable with the subject).
        noAsyncTraces: true,
        // By default two authentication errors in a row (a server restarting with its users not yet
        // loaded, a resolver not yet synced) close the connection for good: the relay, the delivery
        // consumer and merchant commands dead until the process restarts, though NATS is back. Keep
        // reconnecting instead, as for any other outage.
        ignoreAuthErrorAbort: true,
        ...(user === undefined ? {} : { user, pass }),
      });
    } catch (error) {
      throw unavailable(`NATS at ${url}`, error);
    }
    if (user !== undefined && nc.info?.auth_required !== true) {
      await nc.close().catch(() => {});
      throw new NatsServerWithoutUsersError(
        `NATS at ${url} does not ask for a user, so it ignores the engine's (${user}) and keeps no merchant apart: configure its users (docker/nats/nats.conf)`,
      );
    }
    try {
      const jsm = await within(nc.jetstreamManager({ timeout: o.connectTimeout_ms }), o.connectTimeout_ms, 'JetStream');
      await within(ensureStream(jsm, o), o.connectTimeout_ms, `JetStream stream ${o.stream}`);
      return new NatsBus(nc, jsm, nc.jetstream({ timeout: o.publishTimeout_ms }), o);
    } catch (error) {
      await nc.close().catch(() => {});
      throw unavailable(`JetStream stream ${o.stream}`, error);
    }
  }

  async publish(events: readonly OutgoingEvent[]): Promise<void> {
    if (events.length > nats_publish_events_max) throw new RangeError(`NATS bus: at most ${nats_publish_events_max} events per publish`);
    for (const event of events) checkEvent(event, this.options.subjects, this.accepted);
    if (events.length === 0) return;
    if (this.closing || this.connection.isClosed()) throw new StoreUnavailableError('NATS bus is closed');
    // Known to be away: fail now rather than leave requests in the client's buffer, which would
    // send them (stale, and behind newer ones) when it reconnects.
    if (!this.connected) throw new StoreUnavailableError('NATS is disconnected');
    const { stream, publishTimeout_ms: timeout } = this.options;
    // Sent back to back on one connection, so the stream stores them in this order (unless the
    // connection drops part-way: the caller then publishes again, and a row may land after later ones).
    try {
      await this.publisher.publish(events, stream, timeout);
    } catch (error) {
      // No stream takes the subjects any more: make it again (once at a time), so the caller's next
      // try lands; the events wait in the outbox meanwhile.
      if (isNoResponders(error)) this.restoreStream();
      throw unavailable(`JetStream publish to ${stream}`, error);
    }
  }

  private restoring: Promise<void> | undefined;

  /**
   * Creates the stream again if it is gone — only then: a stream that exists (a publish answered 503
   * during a leader election, say) keeps the settings an operator gave it. One attempt at a time, its
   * failure reported, never thrown.
   */
  private restoreStream(): void {
    this.restoring ??= within(createStreamIfMissing(this.jsm, this.options), this.options.connectTimeout_ms, `JetStream stream ${this.options.stream}`)
      .then(() => undefined)
      .catch((error: unknown) => this.options.onError(unavailable(`JetStream stream ${this.options.stream}`, error)))
      .finally(() => {
        this.restoring = undefined;
      });
  }

  async consume(options: ConsumeOptions): Promise<Subscription> {
    checkConsumer(options.durable, options.filter, this.options.subjects);
    const concurrency = concurrencyOf(options.concurrency);
    if (concurrency > this.options.ackPending_max) {
      throw new RangeError(`concurrency ${concurrency} is above the consumer's ackPending_max ${this.options.ackPending_max}`);
    }
    if (this.closing) throw new StoreUnavailableError('NATS bus is closed');
    const subscription = new NatsSubscription(this, options, concurrency, () => this.subscriptions.delete(subscription));
    this.subscriptions.add(subscription);
    subscription.start();
    return subscription;
  }

  async ping(): Promise<boolean> {
    if (this.closing || this.connection.isClosed()) return false;
    try {
      await within(this.jsm.getAccountInfo(), nats_ping_timeout_ms, 'JetStream ping');
      return true;
    } catch {
      return false;
    }
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      this.publisher.close(false); // the connection's close below drops its subscription
      await Promise.all([...this.subscriptions].map((s) => s.stop()));
      await within(this.connection.close(), this.options.stopTimeout_ms, 'NATS close').catch(() => {});
    })();
    return this.closing;
  }

  get isConnected(): boolean {
    return this.connected && !this.closing && !this.connection.isClosed();
  }

  /** Creates or updates the durable (and the stream, if it went missing); bounded. */
  async ensureConsumer(durable: string, filter: string): Promise<Consumer> {
    const o = this.options;
    const wanted: Partial<ConsumerConfig> = {
      filter_subject: filter,
      ack_policy: AckPolicy.Explicit,
      ack_wait: nanos(o.ackWait_ms),
      max_ack_pending: o.ackPending_max,
      max_deliver: -1,
    };
    return within(
      (async () => {
        let info;
        try {
          info = await this.jsm.consumers.info(o.stream, durable);
        } catch (error) {
          if (!isNotFound(error)) throw error;
        }
        if (info === undefined) {
          try {
            await this.jsm.consumers.add(o.stream, { durable_name: durable, deliver_policy: DeliverPolicy.All, ...wanted });
          } catch (error) {
            if (!isNotFound(error)) throw error;
            await ensureStream(this.jsm, o); // the stream itself was gone (a wiped server)
            await this.jsm.consumers.add(o.stream, { durable_name: durable, deliver_policy: DeliverPolicy.All, ...wanted });
          }
        } else if (
          info.config.filter_subject !== filter ||
          info.config.ack_wait !== wanted.ack_wait ||
          info.config.max_ack_pending !== wanted.max_ack_pending ||
          // A consumer edited to give up after n deliveries would drop a paid order for good during a
          // database outage of a minute (the naks' backoff reaches 16 s): unlimited, always.
          (info.config.max_deliver ?? -1) > 0
        ) {
          await this.jsm.consumers.update(o.stream, durable, wanted);
        }
        return this.js.consumers.get(o.stream, durable);
      })(),
      o.connectTimeout_ms,
      `JetStream consumer ${durable}`,
    );
  }

  /** Tracks whether the client is connected (status events end when the connection closes). */
  private async watchStatus(): Promise<void> {
    try {
      for await (const s of this.connection.status()) {
        if (s.type === Events.Disconnect) this.connected = false;
        else if (s.type === Events.Reconnect) {
          this.connected = true;
          for (const sub of this.subscriptions) sub.wake();
        }
      }
    } catch {
      // the iterator only ends; nothing to report
    }
  }
}

function streamConfig(o: Options): Partial<StreamConfig> {
  return {
    subjects: o.subjects,
    duplicate_window: nanos(o.duplicateWindow_ms),
    max_age: nanos(o.streamMaxAge_ms),
    max_bytes: o.streamMax_bytes,
  };
}

/** Creates the stream, or brings an existing one to the configured settings (at open). */
async function ensureStream(jsm: JetStreamManager, o: Options): Promise<void> {
  if (await createStreamIfMissing(jsm, o)) return;
  await jsm.streams.update(o.stream, streamConfig(o));
}

/** Creates the stream when it does not exist; true when it did so. */
async function createStreamIfMissing(jsm: JetStreamManager, o: Options): Promise<boolean> {
  try {
    await jsm.streams.info(o.stream);
    return false;
  } catch (error) {
    if (!isNotFound(error)) throw error;
    await jsm.streams.add({ name: o.stream, ...streamConfig(o) });
    return true;
  }
}

/**
 * One subscription's pull loop. It pulls as many events as it has free slots (so nothing waits in
 * memory), each pull ending by itself within nats_pull_expires_ms; events that arrive after stop()
 * are nak'ed at once, so none sits with a stopped subscriber until its ack_wait runs out.
 */
class NatsSubscription implements Subscription {
  private stopped = false;
  private stopping: Promise<void> | undefined;
  /** The pull in flight: stop() lets it end (each does within nats_pull_expires_ms) to hand back its events. */
  private pulling: Promise<void> | undefined;
  private readonly wakeup = new Wakeup();
  private readonly slots: HandlerSlots;
  private readonly refill: number;
  /**
   * Events handled and not yet acked: their acks leave together once per turn of the event loop.
   * Handlers end in turns of their own (an actor's reply each), and nats.js writes what one turn
   * sent in one socket write: acked one by one, 2,000 deliveries a second made ~1,700 writes a
   * second of ~90 bytes (bench:payments), each a syscall on the engine's thread.
   */
  private acks: JsMsg[] = [];
  private acksScheduled = false;

  constructor(
    private readonly bus: NatsBus,
    private readonly options: ConsumeOptions,
    concurrency: number,
    private readonly onStopped: () => void,
  ) {
    this.slots = new HandlerSlots(concurrency, () => this.wakeup.wake());
    this.refill = Math.max(1, Math.ceil(concurrency * nats_pull_refill_fraction));
  }

  wake(): void {
    this.wakeup.wake();
  }

  start(): void {
    void this.run();
  }

  stop(): Promise<void> {
    this.stopping ??= (async () => {
      this.stopped = true;
      this.wakeup.wake();
      const o = this.bus.options;
      // The loop itself ends at its next step; only a pull must be waited for (it may still hand us events).
      if (this.pulling) await within(this.pulling, nats_pull_expires_ms * 2, 'NATS subscription stop').catch(() => {});
      await this.slots.drain(o.stopTimeout_ms);
      this.sendAcks();
      // The acks and naks sent so far reach the server before stop() returns (when it is there).
      if (this.bus.isConnected) await within(this.bus.connection.flush(), nats_ping_timeout_ms, 'NATS flush').catch(() => {});
      this.onStopped();
    })();
    return this.stopping;
  }

  private async run(): Promise<void> {
    const o = this.bus.options;
    let consumer: Consumer | undefined;
    let failures = 0;
    while (!this.stopped) {
      try {
        if (!this.bus.isConnected) {
          await this.wakeup.sleep(o.reconnectWait_ms);
          continue;
        }
        consumer ??= await this.bus.ensureConsumer(this.options.durable, this.options.filter);
        if (this.stopped) break;
        if (this.slots.free < Math.min(this.refill, this.slots.size)) {
          await this.wakeup.sleep(nats_pull_expires_ms);
          continue;
        }
        this.pulling = this.pull(consumer);
        await this.pulling;
        failures = 0;
      } catch (error) {
        if (this.stopped) break;
        failures += 1;
        // Its consumer (or stream) is gone: made again on the next turn (ensureConsumer).
        if (isNotFound(error) || isNoResponders(error)) consumer = undefined;
        this.bus.options.onError(unavailable(`NATS consumer ${this.options.durable}`, error));
        await this.wakeup.sleep(backoff_ms(failures, o.reconnectWait_ms, nats_retry_max_ms));
      }
    }
  }

  /** One pull of as many events as there are free slots; each starts its handler as it arrives. */
  private async pull(consumer: Consumer): Promise<void> {
    const batch = await consumer.fetch({ max_messages: this.slots.free, expires: nats_pull_expires_ms });
    for await (const m of batch) {
      if (this.stopped || this.slots.free === 0) {
        nak(m, 0); // back to the durable at once, for whoever consumes it next
        continue;
      }
      this.slots.start(() => this.handle(m));
    }
  }

  private async handle(m: JsMsg): Promise<void> {
    const o = this.bus.options;
    const event: BusEvent = {
      id: m.headers?.get('Nats-Msg-Id') || `${m.info.stream}:${m.seq}`,
      subject: m.subject,
      data: m.data,
    };
    const deliveryCount = m.info.redeliveryCount;
    try {
      await this.options.handler(event, { redelivered: m.redelivered, deliveryCount });
    } catch {
      nak(m, backoff_ms(deliveryCount, o.redeliveryDelay_ms, o.redeliveryDelayMax_ms));
      return;
    }
    // Not confirmed one by one (ackAck costs a round trip per event and about half the throughput):
    // stop() flushes the connection instead, and an ack lost on the way means the event comes
    // again after ack_wait (at least once; handlers are idempotent).
    this.acks.push(m);
    if (!this.acksScheduled) {
      this.acksScheduled = true;
      setImmediate(() => this.sendAcks());
    }
  }

  private sendAcks(): void {
    this.acksScheduled = false;
    const acks = this.acks;
    if (acks.length === 0) return;
    this.acks = [];
    for (const m of acks) {
      try {
        m.ack();
      } catch {
        // the connection closed meanwhile: see above
      }
    }
  }
}

/** A nak on a closed or broken connection throws; the event then simply comes again after ack_wait. */
function nak(m: JsMsg, delay_ms: number): void {
  try {
    m.nak(delay_ms);
  } catch {
    // see above
  }
}

export function openNatsBus(url: string, options: NatsBusOptions = {}): Promise<NatsBus> {
  return NatsBus.open(url, options);
}
