// The event bus of the embedded default (no NATS): consumers read the outbox table itself, so there
// is no relay and no second copy of an event. Each durable keeps its position in outbox_cursors
// (`bus:<durable>`), so after a crash it resumes at its last acked event: at-least-once, like the
// JetStream consumers of nats-bus.ts, with the same concurrency and redelivery-on-reject. The
// projector nudges the bus after each write; a fallback poll covers a missed nudge. Rows every known
// durable has passed are trimmed.
import { StoreUnavailableError } from '../errors.ts';
import type { OutboxStore } from '../ports.ts';
import { concurrencyOf } from './handler-slots.ts';
import { durableCursor, OutboxConsumer, type OutboxConsumerSettings } from './outbox-consumer.ts';
import type { ConsumeOptions, EventBus, Subscription } from './ports.ts';
import { checkConsumer, checkDurable } from './subjects.ts';

export interface OutboxBusOptions {
  /** The bus's subjects: a filter outside them is refused, as on NATS. */
  subjects?: string[];
  /** A consumer looks for new rows at least this often without a nudge. */
  poll_ms?: number;
  /** Rows per read, at most. */
  readRows_max?: number;
  /** A durable reads no more while it holds this many matching rows read but unacked (at least its concurrency). */
  windowEvents_max?: number;
  /** A durable saves its position at most this often: a crash redelivers what was acked since. */
  saveInterval_ms?: number;
  /** How long a rejected event waits before its first redelivery; doubles after each. */
  redeliveryDelay_ms?: number;
  redeliveryDelayMax_ms?: number;
  /** Retries of a failing read or save: first delay, doubling up to the max. */
  retryMin_ms?: number;
  retryMax_ms?: number;
  /** Longest stop() and close() wait for handlers in flight. */
  stopTimeout_ms?: number;
  /**
   * Durables whose positions hold rows back from trimming, besides those consumed by this bus
   * since it opened. A durable in neither list does not hold rows back: name every durable the
   * application uses here, so one that is not running yet still finds its rows.
   */
  durables?: string[];
  /** Trims at most this often. */
  trimInterval_ms?: number;
  /** Failures to read or save (database unavailable): reported, then retried. */
  onError?: (error: unknown) => void;
}

export const outbox_bus_defaults = {
  subjects: ['stampede.evt.>'],
  poll_ms: 1_000,
  readRows_max: 500,
  windowEvents_max: 1_000,
  saveInterval_ms: 100,
  redeliveryDelay_ms: 1_000,
  redeliveryDelayMax_ms: 60_000,
  retryMin_ms: 100,
  retryMax_ms: 10_000,
  stopTimeout_ms: 10_000,
  trimInterval_ms: 10_000,
} as const;

export class OutboxBus implements EventBus {
  private readonly o: Required<OutboxBusOptions>;
  private readonly consumers = new Map<string, OutboxConsumer>();
  /** Durables whose cursors gate trimming. */
  private readonly known = new Set<string>();
  private closing: Promise<void> | undefined;
  private trimming: Promise<void> | undefined;
  private lastTrim_ms = 0;
  private trimAgain = false;

  constructor(
    private readonly store: OutboxStore,
    options: OutboxBusOptions = {},
  ) {
    this.o = { ...outbox_bus_defaults, onError: () => {}, durables: [], ...options, subjects: [...(options.subjects ?? outbox_bus_defaults.subjects)] };
    if (!Number.isInteger(this.o.readRows_max) || this.o.readRows_max < 1 || this.o.readRows_max > 10_000) {
      throw new RangeError('outbox bus: readRows_max must be an integer in 1..10000');
    }
    for (const durable of this.o.durables) {
      checkDurable(durable);
      this.known.add(durable);
    }
  }

  async consume(options: ConsumeOptions): Promise<Subscription> {
    checkConsumer(options.durable, options.filter, this.o.subjects);
    const concurrency = concurrencyOf(options.concurrency);
    if (this.closing) throw new StoreUnavailableError('outbox bus is closed');
    // One reader per durable and process: two would each keep a position and overwrite the other's.
    if (this.consumers.has(options.durable)) throw new Error(`outbox bus: durable ${options.durable} is already consumed`);
    const settings: OutboxConsumerSettings = {
      poll_ms: this.o.poll_ms,
      readRows_max: this.o.readRows_max,
      windowEvents_max: this.o.windowEvents_max,
      saveInterval_ms: this.o.saveInterval_ms,
      redeliveryDelay_ms: this.o.redeliveryDelay_ms,
      redeliveryDelayMax_ms: this.o.redeliveryDelayMax_ms,
      retryMin_ms: this.o.retryMin_ms,
      retryMax_ms: this.o.retryMax_ms,
      stopTimeout_ms: this.o.stopTimeout_ms,
      onError: this.o.onError,
      onSaved: () => this.maybeTrim(),
    };
    const consumer = new OutboxConsumer(this.store, options, concurrency, settings);
    this.consumers.set(options.durable, consumer);
    this.known.add(options.durable);
    consumer.start();
    return {
      stop: async () => {
        await consumer.stop();
        if (this.consumers.get(options.durable) === consumer) this.consumers.delete(options.durable);
      },
    };
  }

  /** New rows are in the outbox: every consumer looks at once. */
  nudge(): void {
    for (const consumer of this.consumers.values()) consumer.nudge();
  }

  async ping(): Promise<boolean> {
    return !this.closing;
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      await Promise.all([...this.consumers.values()].map((c) => c.stop()));
      await this.trimming;
    })();
    return this.closing;
  }

  /**
   * Trims in the background, one trim at a time, at most every trimInterval_ms; a request while one
   * runs is remembered, so the positions saved last are always trimmed to in the end.
   */
  private maybeTrim(): void {
    if (this.closing) return;
    if (this.trimming) {
      this.trimAgain = true;
      return;
    }
    const now_ms = Date.now();
    if (now_ms - this.lastTrim_ms < this.o.trimInterval_ms) return;
    this.lastTrim_ms = now_ms;
    this.trimAgain = false;
    const names = [...this.known].map(durableCursor);
    this.trimming = this.store
      .trim(names)
      .then(
        () => {},
        (error: unknown) => this.o.onError(error),
      )
      .finally(() => {
        this.trimming = undefined;
        if (this.trimAgain) this.maybeTrim();
      });
  }
}
