// The read model the projector keeps from the journal: orders, their history, idempotent answers and
// how far each stream was projected. A batch is applied in one transaction and is idempotent: orders
// only move forward (the row with the greater journal seq wins), history rows are insert-ignore,
// idempotency rows keep the earliest answer of their 24 h (answerStatements), checkpoints keep the maximum.
import { IDEMPOTENCY_ANSWER_MS, STATUS_RANK } from '../ports.ts';
import type {
  IdempotencyRow,
  OrderHistoryRow,
  OrderRow,
  OrderStatusRow,
  ProjectionBatch,
  ProjectionStore,
} from '../ports.ts';
import type { SqlDatabase, SqlStatement } from './database.ts';
import { chunks, rowStatements } from './dialect.ts';
import { outboxStatements } from './outbox-store.ts';

const order_columns = [
  'order_id',
  'stream',
  'user_id',
  'sku_id',
  'date',
  'qty',
  'amount_cents',
  'status',
  'created_at',
  'expires_at',
  'updated_at',
  'seq',
  'payment_id',
  'delivery',
  'visit',
  'visit_at',
  'status_rank',
] as const;

// The row of the higher STATUS_RANK (ports.ts) wins; a recorded visit (redeemed, no-show) of a
// delivered order is one step further (rank × 2 + 1).
const history_columns = ['order_id', 'seq', 'status', 'stream', 'at', 'cause'] as const;
const idempotency_columns = ['user_id', 'idem_key', 'request_hash', 'status', 'body', 'created_at'] as const;

const all_statuses: readonly OrderStatusRow[] = [
  'reserved',
  'paid',
  'delivered',
  'cancelled',
  'expired',
  'refund_required',
];

/** Rows one ordersOfStream read returns at most (the ops listing asks for at most 5,001). */
export const stream_page_rows_max = 10_000;
/**
 * Order ids per deliveriesOf statement: a whole page of the ops listing (5,000) in one query, well under
 * SQLite's 32,766 bound parameters and MySQL's 65,535.
 */
export const deliveries_ids_per_statement_max = 5_000;

type Num = number | string;

interface OrderDbRow {
  order_id: string;
  stream: string;
  user_id: string;
  sku_id: string;
  date: string;
  qty: Num;
  amount_cents: Num;
  status: string;
  created_at: Num;
  expires_at: Num;
  updated_at: Num;
  seq: Num;
  payment_id: string | null;
  delivery: string | null;
  visit: string | null;
  visit_at: Num | null;
}

export class SqlProjectionStore implements ProjectionStore {
  constructor(private readonly db: SqlDatabase) {}

  async apply(batch: ProjectionBatch): Promise<void> {
    const { orders, history, idempotency, checkpoints } = batch;
    if (orders.length + history.length + idempotency.length + checkpoints.size + batch.outbox.length === 0) return;
    const d = this.db.dialect;
    // Rows are written in key order so two concurrent batches lock them in the same order (no deadlock).
    const byOrderId = [...orders].sort((a, b) => compare(a.orderId, b.orderId));
    const marks = [...checkpoints].sort(([a], [b]) => compare(a, b));
    const statements: SqlStatement[] = [];
    this.each(statements, byOrderId, (n) => d.upsertIfGreater('orders', order_columns, ['order_id'], 'status_rank', n), (o) => [
      o.orderId,
      o.stream,
      o.userId,
      o.skuId,
      o.date,
      o.qty,
      o.amountCents,
      o.status,
      o.createdAt,
      o.expiresAt,
      o.updatedAt,
      o.seq,
      o.paymentId,
      o.delivery === null ? null : JSON.stringify(o.delivery),
      o.visit?.kind ?? null,
      o.visit?.at ?? null,
      STATUS_RANK[o.status] * 2 + (o.visit ? 1 : 0),
    ]);
    this.each(statements, history, (n) => d.insertIgnore('order_history', history_columns, n), (h) => [
      h.orderId,
      h.seq,
      h.status,
      h.stream,
      h.at,
      h.cause,
    ]);
    this.answerStatements(statements, idempotency);
    this.each(
      statements,
      marks,
      (n) => d.upsertIfGreater('projection_checkpoints', ['stream', 'live_reservations', 'seq'], ['stream'], 'seq', n),
      ([stream, seq]) => [stream, batch.live.get(stream) ?? 0, seq],
    );
    // -- outbox (outbox-store.ts): events for the outside world commit with the read model (an event
    // its table cannot hold throws here, before anything is written). Last, so the writer lock it
    // takes on MySQL is held only until this commit.
    statements.push(...outboxStatements(d, batch.outbox));
    // -- end outbox
    // One transaction; everything here is projected from the journal again if an OS crash loses it (database.ts).
    await this.db.batch('projection.apply', statements, 'duplicate_key', 'rebuildable');
  }

  async saveAnswers(rows: readonly IdempotencyRow[]): Promise<void> {
    const statements: SqlStatement[] = [];
    this.answerStatements(statements, rows);
    // Not rebuildable: these answers are in no journal.
    await this.db.batch('projection.saveAnswers', statements, 'duplicate_key', 'flushed');
  }

  /**
   * The first answer to a key stands for its 24 h (API.md); a key used again after them has a new
   * first answer, which replaces the expired one (kept, it would have the gate run every retry of
   * the new order again once the gate forgot it). The earliest answer within 24 h wins whatever the
   * order of the writes: a reservation's 201 reaches this table through the read model, after a
   * refusal of a later request with the same key (another body, another SKU) that was stored at once;
   * kept, that refusal answered 422 to the retry of the original request once the gate forgot it.
   */
  private answerStatements(out: SqlStatement[], rows: readonly IdempotencyRow[]): void {
    this.each(out, rows, (n) => this.db.dialect.upsertFirstOfPeriod('idempotency', idempotency_columns, ['user_id', 'idem_key'], 'created_at', IDEMPOTENCY_ANSWER_MS, n), (i) => [
      i.userId,
      i.key,
      i.requestHash,
      i.status,
      JSON.stringify(i.body),
      i.createdAt,
    ]);
  }

  async order(orderId: string): Promise<OrderRow | undefined> {
    const rows = await this.db.all<OrderDbRow>(
      'projection.order',
      `SELECT ${order_columns.join(', ')} FROM orders WHERE order_id = ?`,
      [orderId],
    );
    return rows[0] && toOrder(rows[0]);
  }

  async history(orderId: string): Promise<OrderHistoryRow[]> {
    const rows = await this.db.all<{ order_id: string; seq: Num; status: string; stream: string; at: Num; cause: string }>(
      'projection.history',
      `SELECT ${history_columns.join(', ')} FROM order_history WHERE order_id = ? ORDER BY at, seq`,
      [orderId],
    );
    return rows.map((r) => ({
      orderId: r.order_id,
      stream: r.stream,
      seq: Number(r.seq),
      status: r.status as OrderStatusRow,
      at: Number(r.at),
      cause: r.cause,
    }));
  }

  async answerKeys(after: readonly [string, string] | undefined, limit: number): Promise<[string, string][]> {
    // Keyset pagination on the primary key (binary collation on MySQL: the order is the bytes').
    const rows = await this.db.all<{ user_id: string; idem_key: string }>(
      'projection.answerKeys',
      after === undefined
        ? 'SELECT user_id, idem_key FROM idempotency ORDER BY user_id, idem_key LIMIT ?'
        : // Written so that both engines seek the primary key to the cursor (an OR of the two cases made
          // SQLite scan the index from its start on every page: quadratic over a table of millions).
          'SELECT user_id, idem_key FROM idempotency WHERE user_id >= ? AND (user_id > ? OR idem_key > ?) ORDER BY user_id, idem_key LIMIT ?',
      after === undefined ? [limit] : [after[0], after[0], after[1], limit],
    );
    return rows.map((r) => [r.user_id, r.idem_key]);
  }

  async idempotency(userId: string, key: string): Promise<IdempotencyRow | undefined> {
    const rows = await this.db.all<{ user_id: string; idem_key: string; request_hash: string; status: Num; body: string; created_at: Num }>(
      'projection.idempotency',
      `SELECT ${idempotency_columns.join(', ')} FROM idempotency WHERE user_id = ? AND idem_key = ?`,
      [userId, key],
    );
    const r = rows[0];
    if (r === undefined) return undefined;
    return {
      userId: r.user_id,
      key: r.idem_key,
      requestHash: r.request_hash,
      status: Number(r.status),
      body: JSON.parse(r.body) as unknown,
      createdAt: Number(r.created_at),
    };
  }

  async checkpoints(): Promise<Map<string, number>> {
    const rows = await this.db.all<{ stream: string; seq: Num }>(
      'projection.checkpoints',
      'SELECT stream, seq FROM projection_checkpoints',
    );
    return new Map(rows.map((r) => [r.stream, Number(r.seq)]));
  }

  async dropAnswersBefore(before: number, limit: number): Promise<number> {
    // Oldest first, a bounded batch: one statement never holds the table long (SQLite's DELETE has no LIMIT of its own).
    const sql =
      this.db.dialect.name === 'mysql'
        ? 'DELETE FROM idempotency WHERE created_at < ? ORDER BY created_at LIMIT ?'
        : 'DELETE FROM idempotency WHERE rowid IN (SELECT rowid FROM idempotency WHERE created_at < ? ORDER BY created_at LIMIT ?)';
    const { affectedRows } = await this.db.run('projection.dropAnswersBefore', sql, [before, limit]);
    return affectedRows;
  }

  async checkpoint(stream: string): Promise<number> {
    const rows = await this.db.all<{ seq: Num }>('projection.checkpoint', 'SELECT seq FROM projection_checkpoints WHERE stream = ?', [stream]);
    return rows.length === 0 ? 0 : Number(rows[0]!.seq);
  }

  async streamsWithReservations(): Promise<string[]> {
    const rows = await this.db.all<{ stream: string }>(
      'projection.streamsWithReservations',
      'SELECT stream FROM projection_checkpoints WHERE live_reservations > 0 ORDER BY stream',
    );
    return rows.map((r) => r.stream);
  }

  async unvisitedDelivered(beforeDate: string, limit: number, afterOrderId = ''): Promise<OrderRow[]> {
    const rows = await this.db.all<OrderDbRow>(
      'projection.unvisitedDelivered',
      `SELECT ${order_columns.join(', ')} FROM orders WHERE status = 'delivered' AND visit IS NULL AND date < ? AND date <> 'open' AND order_id > ? ORDER BY order_id LIMIT ?`,
      [beforeDate, afterOrderId, Math.max(1, Math.min(10_000, Math.floor(limit)))],
    );
    return rows.map(toOrder);
  }

  async ordersByStatus(status: OrderStatusRow, limit: number, afterOrderId = ''): Promise<OrderRow[]> {
    const rows = await this.db.all<OrderDbRow>(
      'projection.ordersByStatus',
      `SELECT ${order_columns.join(', ')} FROM orders WHERE status = ? AND order_id > ? ORDER BY order_id LIMIT ?`,
      [status, afterOrderId, Math.max(1, Math.min(10_000, Math.floor(limit)))],
    );
    return rows.map(toOrder);
  }

  async unitsBySkuStatus(skuId: string): Promise<Partial<Record<OrderStatusRow, number>>> {
    const rows = await this.db.all<{ status: string; units: Num | null }>(
      'projection.unitsBySkuStatus',
      'SELECT status, SUM(qty) AS units FROM orders WHERE sku_id = ? GROUP BY status',
      [skuId],
    );
    const out: Partial<Record<OrderStatusRow, number>> = {};
    for (const r of rows) out[r.status as OrderStatusRow] = Number(r.units ?? 0);
    return out;
  }

  async countByStatus(stream: string): Promise<Record<string, { orders: number; units: number }>> {
    // Naming every status lets the (status, stream) index answer it as six small ranges.
    const rows = await this.db.all<{ status: string; orders: Num; units: Num | null }>(
      'projection.countByStatus',
      `SELECT status, COUNT(*) AS orders, SUM(qty) AS units FROM orders` +
        ` WHERE status IN (${all_statuses.map(() => '?').join(', ')}) AND stream = ? GROUP BY status`,
      [...all_statuses, stream],
    );
    const out: Record<string, { orders: number; units: number }> = {};
    for (const r of rows) out[r.status] = { orders: Number(r.orders), units: Number(r.units ?? 0) };
    return out;
  }

  async ordersOfStream(stream: string, limit: number, afterOrderId = ''): Promise<OrderRow[]> {
    // Served by orders_stream_order_index (stream, order_id): one range read in key order, no sort.
    const rows = await this.db.all<OrderDbRow>(
      'projection.ordersOfStream',
      `SELECT ${order_columns.join(', ')} FROM orders WHERE stream = ? AND order_id > ? ORDER BY order_id LIMIT ?`,
      [stream, afterOrderId, Math.max(1, Math.min(stream_page_rows_max, Math.floor(limit)))],
    );
    return rows.map(toOrder);
  }

  async deliveriesOf(orderIds: readonly string[]): Promise<Map<string, number>> {
    const out = new Map<string, number>(orderIds.map((id) => [id, 0]));
    // A delivery is the history line of an `order.delivered` event (order-actor.ts): status `delivered`
    // with cause `delivered`. Lines written later on a delivered order (redeemed, no-show, a refund or
    // a payment mismatch) keep status `delivered` under another cause and are not deliveries.
    // Each statement is a range lookup per id on the primary key (order_id, stream, seq).
    for (const part of chunks([...out.keys()], deliveries_ids_per_statement_max)) {
      const rows = await this.db.all<{ order_id: string; deliveries: Num }>(
        'projection.deliveriesOf',
        `SELECT order_id, COUNT(*) AS deliveries FROM order_history` +
          ` WHERE order_id IN (${part.map(() => '?').join(', ')}) AND status = 'delivered' AND cause = 'delivered'` +
          ` GROUP BY order_id`,
        part,
      );
      for (const r of rows) out.set(r.order_id, Number(r.deliveries));
    }
    return out;
  }

  /** Adds to `out` the multi-row statements that write `items` (bounded in rows and in bytes: rowStatements). */
  private each<T>(
    out: SqlStatement[],
    items: readonly T[],
    statement: (rows: number) => string,
    params: (item: T) => unknown[],
  ): void {
    for (const st of rowStatements(items, statement, params)) out.push(st);
  }
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function toOrder(r: OrderDbRow): OrderRow {
  return {
    orderId: r.order_id,
    stream: r.stream,
    userId: r.user_id,
    skuId: r.sku_id,
    date: r.date,
    qty: Number(r.qty),
    amountCents: Number(r.amount_cents),
    status: r.status as OrderStatusRow,
    createdAt: Number(r.created_at),
    expiresAt: Number(r.expires_at),
    updatedAt: Number(r.updated_at),
    seq: Number(r.seq),
    paymentId: r.payment_id ?? null,
    delivery: r.delivery === null || r.delivery === undefined ? null : (JSON.parse(r.delivery) as OrderRow['delivery']),
    visit: r.visit ? { kind: r.visit as 'redeemed' | 'no_show', at: Number(r.visit_at) } : null,
  };
}
