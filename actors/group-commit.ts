// Group commit: every actor hands its next journal record here; records that arrive while writes
// are in flight are gathered into the next single write (one transaction, one multi-row INSERT).
// A stream never has two records in flight (its actor waits for one before sending the next), so
// the (stream, seq) order of the journal is the order of decisions. A record may carry records of
// other streams that are made durable with it, in the same write (an order's `paid` with its
// SKU/date's `sold`): all of them or none, except that riders refused for a taken seq (a stale writer
// of their stream) are dropped and the record written without them (commit() says 'refused'). A
// record committed `alone` (large, and awaited by no caller: a buyer's compaction) gets a write of
// its own, so that its failure fails nothing else.

import { JournalConflictError } from '../persistence/errors.ts';
import type { JournalRecord, JournalStore } from '../persistence/ports.ts';

export interface GroupCommitOptions {
  /** Writes in flight at once (each one transaction). */
  writes_in_flight_max: number;
  /** Commits per write at most (a commit's companion records travel with it); the rest wait for the next write. */
  batch_records_max: number;
  /** Events per write at most (bounds the size of one INSERT). */
  batch_events_max: number;
  /**
   * Start a write only at the end of the event loop's turn (setImmediate), so that every record
   * handed over in that turn goes into it. For a store that writes synchronously on this thread
   * (SQLite), where a write started at once finishes before the next record arrives.
   */
  gather_turn?: boolean;
}

export interface CommitObserver {
  committed(events: number, latency_ms: number): void;
  failed(error: unknown): void;
  /** A record's riders were refused for a taken seq and it was written again without them. */
  ridersRefused?(record: JournalRecord, riders: readonly JournalRecord[]): void;
}

/**
 * What became of a commit's `withRecords`: written with the record (`undefined`), or refused for a
 * taken seq (a stale writer of one of their streams) and the record written without them.
 */
export type WithRecords = undefined | 'refused';

interface Waiting {
  record: JournalRecord;
  /** Records written in the same transaction as `record`, or none. */
  with: readonly JournalRecord[] | undefined;
  events: number;
  /** Written in a write of its own (see commit). */
  alone: boolean;
  resolve: (withRecords: WithRecords) => void;
  reject: (error: unknown) => void;
}

export class GroupCommitter {
  private queue: Waiting[] = [];
  private inFlight = 0;
  private closed = false;
  private pumpScheduled = false;

  constructor(
    private readonly journal: JournalStore,
    private readonly options: GroupCommitOptions,
    private readonly observer: CommitObserver,
    private readonly now: () => number = () => performance.now(),
  ) {}

  /**
   * Resolves once the record is durable; rejects with the store's error if its write failed.
   * `withRecords` (of other streams) are written in the same transaction: all durable, or none. When
   * one of them is refused for a taken seq (its stream's writer is stale), the record is written again
   * without them, and this resolves 'refused': their writers must write them (or learn they are stale)
   * themselves. A stale rider thus fails only itself, not the record it rode with.
   *
   * `alone`: the record goes in a write of its own, with no other waiter's records, for a record
   * that is large and can wait (a buyer's compaction): a write is all or nothing, and one that fails
   * for its size (past the database's packet) would fail every other record gathered with it.
   */
  commit(record: JournalRecord, withRecords?: readonly JournalRecord[], options?: { alone?: boolean }): Promise<WithRecords> {
    if (this.closed) return Promise.reject(new Error('group committer is closed'));
    let events = record.events.length;
    if (withRecords) for (const r of withRecords) events += r.events.length;
    return new Promise((resolve, reject) => {
      this.queue.push({ record, with: withRecords, events, alone: options?.alone === true, resolve, reject });
      if (!this.options.gather_turn) this.pump();
      else if (!this.pumpScheduled) {
        this.pumpScheduled = true;
        setImmediate(() => {
          this.pumpScheduled = false;
          this.pump();
        });
      }
    });
  }

  get queued(): number {
    return this.queue.length;
  }

  close(): void {
    this.closed = true;
  }

  /** Resolves once nothing is queued or in flight (bounded by `timeout_ms`). */
  async drained(timeout_ms = 10_000): Promise<void> {
    const until = Date.now() + timeout_ms;
    while ((this.inFlight > 0 || this.queue.length > 0) && Date.now() < until) {
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
  }

  private pump(): void {
    while (this.inFlight < this.options.writes_in_flight_max && this.queue.length > 0) {
      let events = 0;
      let n = 0;
      while (n < this.queue.length && n < this.options.batch_records_max) {
        const w = this.queue[n]!;
        if (n > 0 && (w.alone || events + w.events > this.options.batch_events_max)) break;
        events += w.events;
        n++;
        if (w.alone) break;
      }
      const batch = this.queue.splice(0, n);
      void this.write(batch, events);
    }
  }

  private async write(batch: Waiting[], events: number): Promise<void> {
    this.inFlight++;
    const started = this.now();
    let failure: { error: unknown } | undefined;
    try {
      await this.journal.append(recordsOf(batch));
    } catch (error) {
      failure = { error };
    }
    // A seq taken already (a stale writer: an actor that recovered before a write of its previous
    // incarnation landed) refuses the whole transaction, which committed nothing: the others of the
    // batch are written again on their own, so only the stale writer fails, not every SKU/date and
    // order that shared its write (each would answer 503 and recover).
    if (failure && failure.error instanceof JournalConflictError && (batch.length > 1 || hasRiders(batch[0]!))) {
      await (batch.length > 1 ? this.writeHalves(batch) : this.writeWithout(batch[0]!));
      this.inFlight--;
      this.pump();
      return;
    }
    this.inFlight--;
    this.settle(batch, failure, events, started);
    this.pump();
  }

  /**
   * A refused batch written again in two halves at once, each settled by its own outcome and halved
   * again while it is refused for a taken seq: the stale writer is isolated in about log2(n) rounds
   * (one by one, the last waiters of a large batch could pass their callers' deadlines and commit
   * after those were told 503).
   */
  private async writeHalves(batch: Waiting[]): Promise<void> {
    const mid = batch.length >> 1;
    await Promise.all([batch.slice(0, mid), batch.slice(mid)].map((half) => this.writeHalf(half)));
  }

  private async writeHalf(half: Waiting[]): Promise<void> {
    const started = this.now();
    let events = 0;
    for (const w of half) events += w.events;
    let failure: { error: unknown } | undefined;
    try {
      await this.journal.append(recordsOf(half));
    } catch (error) {
      failure = { error };
    }
    if (failure && failure.error instanceof JournalConflictError) {
      if (half.length > 1) return this.writeHalves(half);
      if (hasRiders(half[0]!)) return this.writeWithout(half[0]!);
    }
    this.settle(half, failure, events, started);
  }

  /**
   * One record refused for a taken seq with records of other streams riding along: written again
   * alone. Refused again, the stale writer was its own; else one of the riders', which it resolves
   * 'refused' about.
   */
  private async writeWithout(w: Waiting): Promise<void> {
    const started = this.now();
    let failure: { error: unknown } | undefined;
    try {
      await this.journal.append([w.record]);
    } catch (error) {
      failure = { error };
    }
    if (!failure) observe(() => this.observer.ridersRefused?.(w.record, w.with ?? []));
    this.settle([w], failure, w.record.events.length, started, 'refused');
  }

  /**
   * The waiters are settled whatever the observer does: a throwing metric must not leave a write's
   * commands waiting for ever (nor fail a write that is durable).
   */
  private settle(batch: Waiting[], failure: { error: unknown } | undefined, events: number, started: number, withRecords?: WithRecords): void {
    if (failure) {
      for (const w of batch) w.reject(failure.error);
      observe(() => this.observer.failed(failure.error));
    } else {
      observe(() => this.observer.committed(events, this.now() - started));
      for (const w of batch) w.resolve(withRecords);
    }
  }
}

function hasRiders(w: Waiting): boolean {
  return w.with !== undefined && w.with.length > 0;
}

function recordsOf(batch: readonly Waiting[]): JournalRecord[] {
  const records: JournalRecord[] = [];
  for (const w of batch) {
    records.push(w.record);
    if (w.with) for (const r of w.with) records.push(r);
  }
  return records;
}

/** Runs an observer's callback; what it throws is its own bug, not the write's outcome. */
function observe(call: () => void): void {
  try {
    call();
  } catch {
    // ignored: metrics and logs only
  }
}
