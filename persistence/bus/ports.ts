// The event bus as ports, so order delivery is written once against them and runs on NATS JetStream
// (nats-bus.ts, fed from the outbox by outbox-relay.ts) or, for the embedded default without NATS,
// straight on the outbox table (outbox-bus.ts). Both keep the same promises: at-least-once delivery
// to each durable consumer, an event acked only once its handler resolved, redelivery after a delay
// when it rejected, a durable's position kept across stop/start and restarts. Failures map once to
// persistence/errors.ts.
//
// Publishing is its own port: events reach the bus only through the outbox (the projector writes
// them in the read model's transaction, the relay publishes them), so a consumer never publishes.

/** One event as a consumer receives it. `id` is its identity (the journal's `<stream>:<seq>`). */
export interface BusEvent {
  id: string;
  subject: string;
  /** The body as stored: UTF-8 JSON text for the engine's events. */
  data: Uint8Array;
}

export interface DeliveryMeta {
  /** True when this durable was given this event before (and did not ack it). */
  redelivered: boolean;
  /** 1 on the first delivery to this durable, 2 on the first redelivery, ... */
  deliveryCount: number;
}

export type BusHandler = (event: BusEvent, meta: DeliveryMeta) => Promise<void>;

export interface ConsumeOptions {
  /** The consumer's durable name: its position and unacked events outlive stop() and restarts. */
  durable: string;
  /** Subject filter, NATS syntax (`*` one token, `>` the rest). */
  filter: string;
  /**
   * Called once per delivery. The event is acked when the returned promise resolves; a rejection
   * means it is delivered again after a delay (growing with each failed delivery). Events are
   * handed out in stream order, but with `concurrency` > 1 they complete in any order, and a
   * redelivery comes after later events: handlers must not rely on order.
   */
  handler: BusHandler;
  /**
   * Handlers running at once for this subscription, at most (default bus_concurrency_default).
   * An event waits in the bus, not in memory, while every slot is busy.
   */
  concurrency?: number;
}

export interface Subscription {
  /**
   * Stops taking events and waits for the handlers in flight, for at most the bus's stop bound;
   * a handler still running after that is abandoned (its event is not acked, so it comes again).
   */
  stop(): Promise<void>;
}

/** What a consumer of events needs. */
export interface EventBus {
  /** Starts at-least-once delivery of the events matching `filter` to the durable consumer. */
  consume(options: ConsumeOptions): Promise<Subscription>;
  /** Liveness for /readyz; never throws, bounded in time. */
  ping(): Promise<boolean>;
  /** Stops every subscription (each bounded as in stop()) and releases connections and timers. */
  close(): Promise<void>;
}

/** One event to publish: `id` becomes the NATS `Nats-Msg-Id`, so republishing it is harmless. */
export interface OutgoingEvent {
  id: string;
  subject: string;
  /** Bytes, or text sent as UTF-8. */
  data: Uint8Array | string;
}

/** What the outbox relay needs from a bus. */
export interface Publisher {
  /**
   * Resolves once the bus has durably accepted every event (a duplicate of an id already stored is
   * accepted too). Sent in the given order. Throws StoreUnavailableError when the bus cannot be
   * reached or does not answer in time (then any subset may be stored: publish them all again),
   * RangeError when an event has no id or a subject outside the bus (then none is sent).
   */
  publish(events: readonly OutgoingEvent[]): Promise<void>;
}

/** Handlers at once per subscription unless the caller says otherwise. */
export const bus_concurrency_default = 64;
/** The most a caller may ask for: each slot can hold an event unacked in the bus. */
export const bus_concurrency_max = 4_096;
