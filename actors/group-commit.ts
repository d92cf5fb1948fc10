// Group commit: every actor hands its next journal record here; records that arrive while writes
// are in flight are gathered into the next single write (one transaction, one multi-row INSERT).
// A stream never has two records in flight (its actor waits for one before sending the next), so
// the (stream, seq) order of the journal is the order of decisions.

import type { JournalRecord, JournalStore } from '../persistence/ports.ts';

export interface GroupCommitOptions {
  /** Writes in flight at once (each one transaction). */
  writes_in_flight_max: number;
  /** Records per write at most; the rest wait for the next write. */
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
}

interface Waiting {
  record: JournalRecord;
  resolve: () => void;
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

  /** Resolves once the record is durable; rejects with the store's error if its write failed. */
  commit(record: JournalRecord): Promise<void> {
    if (this.closed) return Promise.reject(new Error('group committer is closed'));
    return new Promise((resolve, reject) => {
      this.queue.push({ record, resolve, reject });
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
        const size = this.queue[n]!.record.events.length;
        if (n > 0 && events + size > this.options.batch_events_max) break;
        events += size;
        n++;
      }
      const batch = this.queue.splice(0, n);
      void this.write(batch, events);
    }
  }

  private async write(batch: Waiting[], events: number): Promise<void> {
    this.inFlight++;
    const started = this.now();
    try {
      await this.journal.append(batch.map((w) => w.record));
      this.observer.committed(events, this.now() - started);
      for (const w of batch) w.resolve();
    } catch (error) {
      this.observer.failed(error);
      for (const w of batch) w.reject(error);
    } finally {
      this.inFlight--;
      this.pump();
    }
  }
}
