// Publishes events the moment their journal write commits, ahead of the relay. Without it an event
// reaches NATS only after the projector has indexed it in the outbox table (its linger and write)
// and the relay has read the table back (and, for a SKU/date's range, the journal): ~35 ms at p50
// and ~100 ms at p99 under bench:payments' load, on a path whose target is 50 ms end to end.
//
// The relay stays the guarantee: it still reads every outbox row in order, and publishes each row
// this publisher did not get acknowledged. A row is a whole unit here as in the table: one order
// event, or the events of one SKU/date journal write (its range row), named by the row's eventId.
// Rows offered in one turn of the event loop go out as one publish; a row counts as published once
// every event of that publish is acknowledged. While a row's publish is in flight the relay waits
// for its outcome rather than publish it a second time.
//
// A failed publish forgets its rows (the relay publishes them, in the table's order) and pauses this
// publisher with a growing backoff, so during a NATS outage only the relay retries. Rows remembered
// are bounded (rows_max); past it a row is left to the relay, and so is a row of many events (a flash
// sale's hot write: row_events_max). A row the relay never asks about (an
// actor that recovered re-indexes its journal in different ranges) is forgotten after keep_ms.
//
// What a consumer may see: an event published here and then again by the relay (it read the row
// before this publisher remembered it) has the same Nats-Msg-Id, which JetStream drops within its
// duplicate window; after a failed publish, the relay's republication can arrive after later events
// of the same order. Both were already possible (docs/events.md, "Order").

import type { OutboxEvent } from '../ports.ts';
import type { OutgoingEvent, Publisher } from './ports.ts';

export interface LivePublisherOptions {
  /** Rows remembered (published or in flight) at most; past it a row is left to the relay. */
  rows_max: number;
  /**
   * A row of more events is left to the relay: a flash sale's hot writes (hundreds of reservations
   * each) would take the engine's thread from the reservations when it is busiest, while the relay
   * reads them back in bulk after the burst.
   */
  row_events_max: number;
  /** Events in one publish at most (the bus's bound): a turn that offers more publishes them in several. */
  publish_events_max: number;
  /** A row the relay has not asked about for this long is forgotten. */
  keep_ms: number;
  /** Pause after the first failed publish, doubling up to retryMax_ms. */
  retryMin_ms: number;
  retryMax_ms: number;
  /** A failed publish (the relay will publish its rows). */
  onError?: (error: unknown) => void;
  /** Events published and acknowledged here. */
  onPublished?: (events: number) => void;
  now?: () => number;
}

export const live_publisher_defaults = {
  rows_max: 200_000,
  row_events_max: 256,
  publish_events_max: 1_000,
  // Longer than JetStream's duplicate window (2 minutes): a row forgotten sooner, which the relay then
  // reaches more than that window after its live publish, is stored a second time.
  keep_ms: 180_000,
  retryMin_ms: 500,
  retryMax_ms: 30_000,
} as const;

/** One publish: the rows of one turn. `outcome` resolves true once every event is acknowledged. */
interface Flight {
  rows: string[];
  events: OutgoingEvent[];
  outcome: Promise<boolean>;
  settle: (ok: boolean) => void;
  sent: boolean;
}

interface Remembered {
  /** The publish carrying the row, until it is acknowledged. */
  flight: Flight | undefined;
  at: number;
}

export class LivePublisher {
  private readonly o: Required<Omit<LivePublisherOptions, 'onError' | 'onPublished' | 'now'>>;
  private readonly onError: (error: unknown) => void;
  private readonly onPublished: (events: number) => void;
  private readonly now: () => number;
  private readonly rows = new Map<string, Remembered>();
  private gathering: Flight | undefined;
  private failures = 0;
  private pausedUntil = 0;
  private closed = false;
  private readonly inFlight = new Set<Promise<void>>();

  constructor(
    private readonly publisher: Publisher,
    options: Partial<LivePublisherOptions> = {},
  ) {
    const { onError, onPublished, now, ...limits } = options;
    this.o = { ...live_publisher_defaults, ...limits };
    this.onError = onError ?? (() => {});
    this.onPublished = onPublished ?? (() => {});
    this.now = now ?? Date.now;
    for (const [name, v] of Object.entries(this.o)) {
      if (!Number.isSafeInteger(v) || v < 1) throw new RangeError(`live publisher: ${name} must be an integer >= 1, got ${v}`);
    }
  }

  /** Whether offers are taken now (not paused after a failure, not closed). */
  get active(): boolean {
    return !this.closed && this.now() >= this.pausedUntil;
  }

  /** Rows remembered (metrics, tests). */
  get remembered(): number {
    return this.rows.size;
  }

  /**
   * The events of one outbox row, durable now: published in this turn's publish. `size` bounds the
   * row's events; `events` is called only if the row is taken (a SKU/date's range makes its events
   * from the journal write).
   */
  offer(rowId: string, size: number, events: () => readonly OutboxEvent[]): void {
    if (size > this.o.row_events_max || !this.active || this.rows.size >= this.o.rows_max || this.rows.has(rowId)) return;
    const made = events();
    if (made.length === 0) return;
    let flight = this.gathering;
    // Full: it goes now, and this row starts the turn's next publish.
    if (flight && flight.events.length + made.length > this.o.publish_events_max) {
      this.send(flight);
      flight = undefined;
    }
    if (!flight) {
      let settle!: (ok: boolean) => void;
      const outcome = new Promise<boolean>((resolve) => (settle = resolve));
      flight = this.gathering = { rows: [], events: [], outcome, settle, sent: false };
      setImmediate(() => this.send(flight!));
    }
    flight.rows.push(rowId);
    for (const e of made) flight.events.push({ id: e.eventId, subject: e.subject, data: e.body });
    this.rows.set(rowId, { flight, at: this.now() });
  }

  /**
   * Asked by the relay for a row it is about to publish: true if this publisher published it (the
   * relay skips it; the row is forgotten here), after waiting for its publish if it is in flight.
   */
  published(rowId: string): boolean | Promise<boolean> {
    const r = this.rows.get(rowId);
    if (!r) return false;
    if (!r.flight) {
      this.rows.delete(rowId);
      return true;
    }
    return r.flight.outcome.then((ok) => {
      if (ok) this.rows.delete(rowId);
      return ok;
    });
  }

  /** Waits for the publishes in flight (bounded by the publisher's own timeout) and takes no more. */
  async close(): Promise<void> {
    this.closed = true;
    if (this.gathering) this.send(this.gathering);
    await Promise.all([...this.inFlight]);
  }

  private send(flight: Flight): void {
    if (this.gathering === flight) this.gathering = undefined;
    if (flight.sent) return;
    flight.sent = true;
    const count = flight.events.length;
    const sending = this.publisher.publish(flight.events).then(
      () => {
        this.failures = 0;
        for (const id of flight.rows) {
          const r = this.rows.get(id);
          if (r?.flight === flight) r.flight = undefined;
        }
        this.onPublished(count);
        flight.settle(true);
      },
      (error: unknown) => {
        for (const id of flight.rows) if (this.rows.get(id)?.flight === flight) this.rows.delete(id);
        this.failures++;
        this.pausedUntil = this.now() + Math.min(this.o.retryMax_ms, this.o.retryMin_ms * 2 ** Math.min(this.failures - 1, 20));
        this.onError(error);
        flight.settle(false);
      },
    );
    const tracked = sending.finally(() => this.inFlight.delete(tracked));
    this.inFlight.add(tracked);
    // Events are no longer needed once sent; rows the relay never asked about are forgotten.
    flight.events = [];
    this.forgetOld();
  }

  private forgetOld(): void {
    const before = this.now() - this.o.keep_ms;
    for (const [id, r] of this.rows) {
      if (r.at >= before) break; // in insertion order: the rest are newer
      if (!r.flight) this.rows.delete(id);
    }
  }
}
