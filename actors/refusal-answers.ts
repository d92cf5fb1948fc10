// Why: API.md honours an Idempotency-Key's first answer for 24 h ("same key and same body → the first
// answer again"). A 201 and a 409 sold_out are made durable by their SKU/date's journal and projected
// into the idempotency table; a refusal decided before any SKU/date (404, 409 not_on_sale, 403
// limit_exceeded) changes nothing that is journaled, so its answer lived only in the HTTP gate's memory
// (10 minutes, lost on a restart) and a retry after that was placed as a new order. Such answers are
// written here, before they are sent: gathered over one event-loop turn and while a write is in
// flight, one transaction per write, so a storm of keyed refusals (bots before a sale opens) costs
// a write per turn, not one per request.

import type { IdempotencyRow, ProjectionStore } from '../persistence/ports.ts';
import type { AnswerKeys } from './answer-keys.ts';

/** Rows per write at most (one transaction; the statement is split into packets as needed). */
const ROWS_PER_WRITE_MAX = 1_000;

interface Waiting {
  row: IdempotencyRow;
  resolve: () => void;
  reject: (error: unknown) => void;
}

export class RefusalAnswers {
  private queue: Waiting[] = [];
  private writing = false;
  private scheduled = false;

  constructor(
    private readonly store: Pick<ProjectionStore, 'saveAnswers'>,
    /** Told of each answer's key before it is written (actors/answer-keys.ts). */
    private readonly keys?: AnswerKeys,
  ) {}

  /** Resolves once `row` is durable; rejects with the store's error if its write failed. */
  remember(row: IdempotencyRow): Promise<void> {
    this.keys?.add(row.userId, row.key);
    return new Promise((resolve, reject) => {
      this.queue.push({ row, resolve, reject });
      this.schedule();
    });
  }

  private schedule(): void {
    if (this.writing || this.scheduled || this.queue.length === 0) return;
    this.scheduled = true;
    setImmediate(this.write);
  }

  private readonly write = (): void => {
    this.scheduled = false;
    const batch = this.queue.splice(0, ROWS_PER_WRITE_MAX);
    if (batch.length === 0) return;
    this.writing = true;
    void this.store.saveAnswers(batch.map((w) => w.row)).then(
      () => {
        for (const w of batch) w.resolve();
      },
      (error: unknown) => {
        for (const w of batch) w.reject(error);
      },
    ).finally(() => {
      this.writing = false;
      this.schedule();
    });
  };
}
