// The projector keeps the order read model (orders, their history, idempotency records) up to date
// from what actors have made durable. It is off the purchase path: actors hand it changes after
// their journal write committed, it writes them in large batches, one batch at a time (so a later
// change never overtakes an earlier one), retries with backoff while the database is down, and tells
// each stream how far it got so the actor can forget settled orders it was keeping for reads.

import { RecentMap } from '../engine/recent-map.ts';
import { STATUS_RANK, type OutboxEvent, type ProjectionBatch, type ProjectionStore } from '../persistence/ports.ts';
import type { ProjectedEvent } from './inventory-projection.ts';
import type { AnswerKeys } from './answer-keys.ts';

export interface ProjectorOptions {
  /** Events per write at most. */
  batch_events_max: number;
  /**
   * Bytes per write at most, as estimated from the events' outbox bodies (a manual delivery's payload,
   * up to 32 KiB, rides in its order row and its event alike): default PROJECTOR_BATCH_BYTES_MAX. By
   * count alone, 8,000 such deliveries backed up behind a slow database made one write of ~500 MB that
   * could never finish within its deadline, failing on every retry while the read model stood still.
   */
  batch_bytes_max?: number;
  /** How long a change may wait for more to join its write. */
  linger_ms: number;
  retry_backoff_ms_max: number;
  /** Told of each stored answer's key before it is written (actors/answer-keys.ts). */
  answerKeys?: AnswerKeys;
  /**
   * Streams of which there is one per order, without bound over the engine's life: the checkpoints of
   * only the most recently written are kept in memory (at most `max`; the `max / 2` written last
   * always); the others are read from the store when asked (checkpointOf). Every other stream's
   * checkpoint stays in memory (one per SKU/date or SKU).
   */
  transient?: { matches: (stream: string) => boolean; max: number };
}

export type ProjectedListener = (stream: string, seq: number) => void;

/** See ProjectorOptions.batch_bytes_max. */
export const PROJECTOR_BATCH_BYTES_MAX = 4 * 1024 * 1024;
/** What a change costs a write besides its outbox body (its row, history line and their SQL), roughly. */
const CHANGE_BYTES = 400;

/** A change's estimated share of a write: its outbox body twice (the event, and the payload in its row). */
function bytesOf(e: ProjectedEvent): number {
  return CHANGE_BYTES + (e.outbox ? 2 * e.outbox.body.length : 0);
}

interface Pending {
  stream: string;
  events: ProjectedEvent[];
  /** Estimated bytes of these events' write (bytesOf). */
  bytes: number;
  /** The last journal seq these events cover (some events change nothing in the read model); 0 for a part before the last (no checkpoint). */
  lastSeq: number;
  /** Live reservations of the stream after these events. */
  live: number;
  /** The outbox rows of these events' range (SKU/date streams: one, or several for a recovery's long range), if any event in it is for the outside world. */
  outboxRange: OutboxEvent | readonly OutboxEvent[] | undefined;
}

export class Projector {
  private pending: Pending[] = [];
  private pendingEvents = 0;
  private writing = false;
  private timer: NodeJS.Timeout | undefined;
  private failures = 0;
  private closed = false;
  private readonly checkpoints = new Map<string, number>();
  /** The transient streams' checkpoints written lately (bounded by `transient.max`). */
  private readonly recentCheckpoints: RecentMap<string, number>;
  private idleWaiters: (() => void)[] = [];
  /** Changes enqueued and written so far (counts of enqueue calls), and who waits for a count. */
  private enqueued = 0;
  private written = 0;
  private writtenWaiters: { upTo: number; resolve: () => void; reject: (error: Error) => void }[] = [];

  constructor(
    private readonly store: ProjectionStore,
    private readonly options: ProjectorOptions,
    private readonly onProjected: ProjectedListener,
    private readonly onError: (error: unknown) => void,
    /** After a write that added outbox events (their readers need not wait for their poll). */
    private readonly onOutbox: () => void = () => {},
  ) {
    this.recentCheckpoints = new RecentMap(options.transient?.max ?? 1);
  }

  /**
   * Loads the checkpoints written by earlier runs, and returns them all, the transient streams' too,
   * for the start's comparison with the journal (the caller lets go of them after it).
   */
  async start(): Promise<ReadonlyMap<string, number>> {
    const all = await this.store.checkpoints();
    const transient = this.options.transient;
    for (const [stream, seq] of all) if (!transient?.matches(stream)) this.checkpoints.set(stream, seq);
    return all;
  }

  /**
   * Last seq of the stream whose changes are in the read model, as far as memory knows: exact but for
   * a transient stream (see ProjectorOptions.transient) not written lately, which is 0 here (ask
   * checkpointOf).
   */
  checkpoint(stream: string): number {
    return this.checkpoints.get(stream) ?? this.recentCheckpoints.peek(stream) ?? 0;
  }

  /** Last seq of the stream whose changes are in the read model; a transient stream's from the store when memory lacks it. */
  async checkpointOf(stream: string): Promise<number> {
    const known = this.checkpoints.get(stream) ?? this.recentCheckpoints.peek(stream);
    if (known !== undefined || !this.options.transient?.matches(stream)) return known ?? 0;
    return this.store.checkpoint(stream);
  }

  /** Memory follows the store only after its write committed, so a checkpoint not in memory is the store's. */
  private remember(stream: string, seq: number): void {
    const transient = this.options.transient;
    if (!transient?.matches(stream)) {
      this.checkpoints.set(stream, seq);
      return;
    }
    this.recentCheckpoints.set(stream, seq);
  }

  /**
   * `events`: the read-model changes of the stream's events up to `lastSeq`; `live`: the stream's
   * live reservations after them (recorded with its checkpoint).
   */
  enqueue(stream: string, events: ProjectedEvent[], lastSeq: number, live: number, outboxRange?: OutboxEvent | readonly OutboxEvent[]): void {
    if (this.closed) return;
    // More events than one batch takes (a recovery hands over everything after its snapshot, maybe
    // hundreds of thousands): in parts, written in order, the checkpoint and the outbox row with the
    // last part only (a checkpoint says the outbox holds everything up to it; a crash before the last
    // part projects the whole range again, which is idempotent). One write of it all could pass the
    // database's packet limit and then fail on every retry.
    // Parts are bounded by bytes too (a recovery's range of heavy manual deliveries).
    const part = this.options.batch_events_max;
    const bytesMax = this.options.batch_bytes_max ?? PROJECTOR_BATCH_BYTES_MAX;
    let from = 0;
    let bytes = 0;
    for (let i = 0; i < events.length; i++) {
      const size = bytesOf(events[i]!);
      if (i > from && (i - from >= part || bytes + size > bytesMax)) {
        this.queue({ stream, events: events.slice(from, i), bytes, lastSeq: 0, live, outboxRange: undefined });
        from = i;
        bytes = 0;
      }
      bytes += size;
    }
    this.queue({ stream, events: from === 0 ? events : events.slice(from), bytes, lastSeq, live, outboxRange });
    if (this.pendingEvents >= this.options.batch_events_max) this.flushSoon(0);
    else this.flushSoon(this.options.linger_ms);
  }

  private queue(p: Pending): void {
    this.pending.push(p);
    this.enqueued++;
    this.pendingEvents += p.events.length + 1;
  }

  get backlog(): number {
    return this.pendingEvents;
  }

  /** Resolves when everything enqueued so far is written (tests, shutdown). */
  drained(): Promise<void> {
    if (this.pending.length === 0 && !this.writing) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /**
   * Resolves when everything enqueued before the call is written, however much is enqueued after it
   * (under a steady load the projector may never be idle: drained() could wait for ever).
   */
  caughtUp(): Promise<void> {
    if (this.closed) return Promise.reject(new Error('the projector closed'));
    if (this.written >= this.enqueued) return Promise.resolve();
    return new Promise((resolve, reject) => this.writtenWaiters.push({ upTo: this.enqueued, resolve, reject }));
  }

  async close(): Promise<void> {
    if (this.pending.length > 0 || this.writing) {
      this.flushSoon(0);
      await Promise.race([this.drained(), new Promise((r) => setTimeout(r, 5_000).unref())]);
    }
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    const waiting = this.writtenWaiters;
    this.writtenWaiters = [];
    for (const w of waiting) w.reject(new Error('the projector closed'));
  }

  private flushSoon(delay_ms: number): void {
    if (this.writing) return; // the running write picks up what is pending when it ends
    if (this.timer && delay_ms > 0) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.flush();
    }, delay_ms);
  }

  private takeBatch(): { batch: ProjectionBatch; taken: Pending[] } {
    const taken: Pending[] = [];
    let events = 0;
    let bytes = 0;
    const bytesMax = this.options.batch_bytes_max ?? PROJECTOR_BATCH_BYTES_MAX;
    while (
      this.pending.length > 0 &&
      (taken.length === 0 || (events + this.pending[0]!.events.length <= this.options.batch_events_max && bytes + this.pending[0]!.bytes <= bytesMax))
    ) {
      const p = this.pending.shift()!;
      events += p.events.length + 1;
      bytes += p.bytes;
      taken.push(p);
    }
    this.pendingEvents -= events;
    // Within a batch an order may change several times: keep its furthest row (the rule the store
    // applies between batches: the higher status rank, a recorded visit one step further; of equal
    // ones the later), and all its history lines. Not simply the last: a row queued again by a
    // recovery (`paid`) can come after one it must not undo (`delivered`, retried after a failed write).
    const orders = new Map<string, ProjectionBatch['orders'][number]>();
    const batch: ProjectionBatch = { orders: [], history: [], idempotency: [], checkpoints: new Map(), live: new Map(), outbox: [] };
    for (const p of taken) {
      batch.live.set(p.stream, p.live);
      for (const e of p.events) {
        if (e.change) {
          const row = e.change.row;
          const known = orders.get(row.orderId);
          if (!known || rankOf(row) >= rankOf(known)) orders.set(row.orderId, row);
          if (e.change.history) batch.history.push(e.change.history);
        }
        if (e.idempotency) {
          batch.idempotency.push(e.idempotency);
          this.options.answerKeys?.add(e.idempotency.userId, e.idempotency.key);
        }
        if (e.outbox) batch.outbox.push(e.outbox);
      }
      if (Array.isArray(p.outboxRange)) batch.outbox.push(...(p.outboxRange as readonly OutboxEvent[]));
      else if (p.outboxRange) batch.outbox.push(p.outboxRange as OutboxEvent);
      if (p.lastSeq > (batch.checkpoints.get(p.stream) ?? 0)) batch.checkpoints.set(p.stream, p.lastSeq);
    }
    batch.orders = [...orders.values()];
    return { batch, taken };
  }

  private async flush(): Promise<void> {
    if (this.writing || this.closed) return;
    if (this.pending.length === 0) {
      this.wakeIdle();
      return;
    }
    this.writing = true;
    const { batch, taken } = this.takeBatch();
    try {
      await this.store.apply(batch);
      this.failures = 0;
      this.written += taken.length;
      if (this.writtenWaiters.length > 0) this.wakeWritten();
      if (batch.outbox.length > 0) this.onOutbox();
      for (const [stream, seq] of batch.checkpoints) {
        if (seq > this.checkpoint(stream)) this.remember(stream, seq);
        this.onProjected(stream, seq);
      }
    } catch (error) {
      // Put the batch back in front, in order, and retry after a backoff.
      this.pending.unshift(...taken);
      for (const p of taken) this.pendingEvents += p.events.length + 1;
      this.failures++;
      this.onError(error);
    } finally {
      this.writing = false;
    }
    if (this.pending.length > 0) {
      const backoff = this.failures === 0 ? 0 : Math.min(this.options.retry_backoff_ms_max, 50 * 2 ** Math.min(this.failures, 10));
      this.flushSoon(backoff);
    } else {
      this.wakeIdle();
    }
  }

  private wakeWritten(): void {
    const waiting = this.writtenWaiters;
    this.writtenWaiters = [];
    for (const w of waiting) {
      if (w.upTo <= this.written) w.resolve();
      else this.writtenWaiters.push(w);
    }
  }

  private wakeIdle(): void {
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const w of waiters) w();
  }
}

/** How far along an order row is (the read model's `status_rank`: persistence/sql/projection-store.ts). */
function rankOf(row: ProjectionBatch['orders'][number]): number {
  return STATUS_RANK[row.status] * 2 + (row.visit ? 1 : 0);
}
