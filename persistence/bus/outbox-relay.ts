// Moves outbox rows to the bus (NATS): reads the rows after its cursor in id order, publishes them
// (Nats-Msg-Id = event id), and only once every PubAck is in saves the cursor; then trims the rows
// every reader has passed. A pass runs at once when the projector nudges it after a write, and on a
// fallback poll. While the bus or the database is down it retries with capped exponential backoff
// and reports each failure; nothing is lost (a row published twice is dropped by the duplicate
// window and by consumers that dedupe by id). Rows the live publisher (live-publisher.ts) published
// at their commit are passed over: with it running the relay is the safety net, and the engine does
// not nudge it after each projector write (it polls).
import { OUTBOX_SKIP_SUBJECT, type OutboxStore, type PublishedRows } from '../ports.ts';
import type { Publisher } from './ports.ts';
import { backoff_ms, within, Wakeup } from './waits.ts';

export interface OutboxRelayOptions {
  outbox: OutboxStore;
  publisher: Publisher;
  /** The relay's cursor in outbox_cursors. */
  cursorName?: string;
  /** Cursors every row must be past before it is trimmed (default: the relay's own). */
  trimCursors?: readonly string[];
  /** Rows read and published per pass, at most. */
  batchRows_max?: number;
  /** A pass runs at least this often without a nudge. */
  poll_ms?: number;
  /** Trims at most this often. */
  trimInterval_ms?: number;
  /** First retry delay after a failure, doubling up to retryMax_ms. */
  retryMin_ms?: number;
  retryMax_ms?: number;
  /** Longest stop() waits for the pass in flight (a publish or a statement, each bounded by itself). */
  stopTimeout_ms?: number;
  /** Each failed pass (bus or database unavailable), e.g. to log it; then the relay retries. */
  onError?: (error: unknown) => void;
  /** Rows published already, at their commit (live-publisher.ts): passed over, not published again. */
  published?: PublishedRows;
  /** Events this relay published (and had acknowledged) in a pass. */
  onPublished?: (events: number) => void;
}

export const outbox_relay_defaults = {
  cursorName: 'relay:nats',
  batchRows_max: 500,
  poll_ms: 1_000,
  trimInterval_ms: 1_000,
  retryMin_ms: 100,
  retryMax_ms: 5_000,
  stopTimeout_ms: 10_000,
} as const;

export class OutboxRelay {
  private readonly outbox: OutboxStore;
  private readonly publisher: Publisher;
  private readonly o: Required<Omit<OutboxRelayOptions, 'outbox' | 'publisher' | 'published'>>;
  private readonly publishedRows: PublishedRows | undefined;
  /** Woken by nudge() and stop(): the next pass runs at once. */
  private readonly nudges = new Wakeup();
  /** Woken by stop() only: a retry delay is not cut short by nudges. */
  private readonly stops = new Wakeup();
  private loop: Promise<void> | undefined;
  private stopping: Promise<void> | undefined;
  private stopped = false;
  /** The last id published (and acked), once the cursor is loaded. */
  private published: number | undefined;
  private saved = 0;
  private lastTrim_ms = 0;

  constructor(options: OutboxRelayOptions) {
    this.outbox = options.outbox;
    this.publisher = options.publisher;
    const cursorName = options.cursorName ?? outbox_relay_defaults.cursorName;
    this.publishedRows = options.published;
    this.o = {
      ...outbox_relay_defaults,
      onError: () => {},
      onPublished: () => {},
      ...options,
      cursorName,
      trimCursors: options.trimCursors ?? [cursorName],
    };
    if (!Number.isInteger(this.o.batchRows_max) || this.o.batchRows_max < 1 || this.o.batchRows_max > 1_000) {
      throw new RangeError('outbox relay: batchRows_max must be an integer in 1..1000');
    }
  }

  /** Starts the passes (idempotent). */
  start(): this {
    if (!this.stopped) this.loop ??= this.run();
    return this;
  }

  /** New rows are there: run a pass now (or right after the one in flight). */
  nudge(): void {
    this.nudges.wake();
  }

  /** Ids of outbox rows not yet published (head - cursor), for metrics. */
  async lag(): Promise<number> {
    const [head, cursor] = await Promise.all([this.outbox.head(), this.published ?? this.outbox.cursor(this.o.cursorName)]);
    return Math.max(0, head - cursor);
  }

  /** Stops after the pass in flight, waiting at most stopTimeout_ms for it. */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      this.stopped = true;
      this.nudges.wake();
      this.stops.wake();
      if (this.loop) await within(this.loop, this.o.stopTimeout_ms, 'outbox relay stop').catch(() => {});
    })();
    return this.stopping;
  }

  private async run(): Promise<void> {
    let failures = 0;
    while (!this.stopped) {
      try {
        const moved = await this.pass();
        failures = 0;
        if (moved < this.o.batchRows_max) await this.nudges.sleep(this.o.poll_ms);
      } catch (error) {
        if (this.stopped) break;
        failures += 1;
        this.o.onError(error);
        await this.stops.sleep(backoff_ms(failures, this.o.retryMin_ms, this.o.retryMax_ms));
      }
    }
  }

  /** One batch: read, publish, save the cursor, maybe trim. Returns the rows published. */
  private async pass(): Promise<number> {
    if (this.published === undefined) {
      this.published = await this.outbox.cursor(this.o.cursorName);
      this.saved = this.published;
    }
    const rows = await this.outbox.readAfter(this.published, this.o.batchRows_max, undefined, this.publishedRows);
    if (rows.length > 0) {
      // `$skip` rows only move the position (actors/journal-outbox.ts): nothing to publish.
      const events = rows.filter((r) => r.subject !== OUTBOX_SKIP_SUBJECT);
      if (events.length > 0) {
        await this.publisher.publish(events.map((r) => ({ id: r.eventId, subject: r.subject, data: r.body })));
        this.o.onPublished(events.length);
      }
      this.published = rows[rows.length - 1]!.id;
    }
    if (this.published > this.saved) {
      const target = this.published;
      await this.outbox.saveCursor(this.o.cursorName, target);
      this.saved = target;
    }
    const now_ms = Date.now();
    if (now_ms - this.lastTrim_ms >= this.o.trimInterval_ms) {
      this.lastTrim_ms = now_ms;
      await this.outbox.trim(this.o.trimCursors);
    }
    return rows.length;
  }
}
