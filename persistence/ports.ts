// The stores the actors and routes need, as ports. Adapters: SQL through MikroORM (MariaDB/MySQL,
// and SQLite for the embedded default) in sql/, Redis for snapshots in redis/.
// Every adapter maps its driver's errors once (errors.ts): a duplicate (stream, seq) becomes
// JournalConflictError, anything unreachable or timed out becomes StoreUnavailableError.
import type { OrderDelivery } from '../engine/order.ts';
import type { Rule } from '../engine/rules.ts';

/** One group-commit write of one stream: the events with seq `seq` .. `lastSeq`, in order. */
export interface JournalRecord {
  stream: string;
  /** Seq of the first event in `events` (1-based, contiguous per stream). Unique per stream. */
  seq: number;
  lastSeq: number;
  at: number;
  events: unknown[];
}

export interface JournalStore {
  /**
   * Appends the records in one transaction, one multi-row INSERT. All or nothing.
   * Throws JournalConflictError when a (stream, seq) exists already (another writer won),
   * StoreUnavailableError when the database cannot be reached or times out.
   */
  append(records: readonly JournalRecord[]): Promise<void>;
  /** The records of a stream whose first seq is greater than `afterSeq`, in order. */
  readAfter(stream: string, afterSeq: number): Promise<JournalRecord[]>;
  /** The records of a stream holding any event with seq in fromSeq..toSeq, in order. */
  readRange(stream: string, fromSeq: number, toSeq: number): Promise<JournalRecord[]>;
  /**
   * Whether a record ends exactly at `lastSeq` — and, with `at`, was written at that time (to
   * validate a snapshot: see SnapshotRecord.at).
   */
  endsAt(stream: string, lastSeq: number, at?: number): Promise<boolean>;
  /** Each stream and the last seq written to it. */
  heads(): Promise<Map<string, number>>;
  /**
   * Deletes the stream's records that start before `seq` (a compaction: the record at `seq` holds
   * everything they did); returns how many went. Only for streams whose records nothing else reads
   * by range (buyer limit streams), never for SKU/date streams.
   */
  dropBefore(stream: string, seq: number): Promise<number>;
}

export interface SnapshotRecord {
  stream: string;
  /** The last event seq folded into `state`. */
  seq: number;
  /**
   * The `at` of the journal record ending at `seq`. With the seq it names that record, so a snapshot
   * of another history of the stream (Redis kept while the database was restored from a backup, then
   * written past that seq again) is not taken for one of this journal's.
   */
  at: number;
  state: unknown;
}

export interface SnapshotStore {
  /** Replaces the stream's snapshot if `seq` is newer than the stored one. */
  save(record: SnapshotRecord): Promise<void>;
  load(stream: string): Promise<SnapshotRecord | undefined>;
  /**
   * Optional: the snapshot `load` returned is not of this journal (recovery found no record ending at
   * its seq and time); remove it if it is still the stored one, so newer saves are not refused.
   */
  discard?(record: Pick<SnapshotRecord, 'stream' | 'seq' | 'at'>): Promise<void>;
}

/** SKU/date streams get a small number when first created, so order ids can name their stream. */
export interface StreamRef {
  streamNo: number;
  skuId: string;
  date: string;
}

export interface StreamStore {
  /** The number of the SKU/date, created on first use (admin path only). */
  ensure(skuId: string, date: string): Promise<StreamRef>;
  byNo(streamNo: number): Promise<StreamRef | undefined>;
  byKey(skuId: string, date: string): Promise<StreamRef | undefined>;
  listForSku(skuId: string): Promise<StreamRef[]>;
  all(): Promise<StreamRef[]>;
}

export type Delivery = 'card_key' | 'ticket' | 'manual';

export interface Sku {
  skuId: string;
  name: string;
  priceCents: number;
  merchantId: string;
  delivery: Delivery;
  attributes: Record<string, string>;
  visibleAt: string | null;
  saleStartsAt: string | null;
  saleEndsAt: string | null;
  updatedAt: string;
}

export interface SkuStore {
  upsert(sku: Sku): Promise<void>;
  get(skuId: string): Promise<Sku | undefined>;
  all(): Promise<Sku[]>;
}

/** Purchase rules (API.md "Purchase rules"), one row per rule id, the rule as JSON text. */
export interface RuleStore {
  /** Inserts or replaces the rule with `rule.id`. */
  upsert(rule: Rule): Promise<void>;
  /** Deletes the rule; true if there was one (deleting an unknown id is not an error). */
  delete(ruleId: string): Promise<boolean>;
  get(ruleId: string): Promise<Rule | undefined>;
  /** Every rule, by id (byte order, which is code-unit order for identifiers). */
  all(): Promise<Rule[]>;
  /**
   * Since when the rule book has been empty (ms; orders created since then were placed with no rule
   * and are adopted when the first rule arrives: actors/rule-adoption.ts); null when they were
   * adopted; undefined when never written (a new database).
   */
  emptySince(): Promise<number | null | undefined>;
  setEmptySince(at_ms: number | null): Promise<void>;
}

export type OrderStatusRow = 'reserved' | 'paid' | 'delivered' | 'cancelled' | 'expired' | 'refund_required';

/**
 * How far along the lifecycle a status is: of two views of one order, the one of the higher rank
 * is the newer (the read model keeps it; the ops listing prefers it over a live actor's).
 */
/** How long an Idempotency-Key's first answer stands (API.md: honoured for 24 h). */
export const IDEMPOTENCY_ANSWER_MS = 24 * 3_600_000;

export const STATUS_RANK: Readonly<Record<OrderStatusRow, number>> = {
  reserved: 0,
  paid: 1,
  cancelled: 1,
  expired: 1,
  delivered: 2,
  refund_required: 2,
};

/**
 * The order read model, kept by the projector from the journal (it lags the journal by milliseconds).
 * It holds settled orders; a live reservation is answered by its inventory actor, which stays
 * active while it has any, so a flash sale writes no order row per reservation.
 */
/**
 * Rows come from two streams (the SKU/date's and the order's own), so an upsert keeps the row whose
 * status is further along the lifecycle: reserved < paid | cancelled | expired < delivered |
 * refund_required. Every allowed transition moves forward, so the newest state always wins.
 */
export interface OrderRow {
  orderId: string;
  stream: string;
  userId: string;
  skuId: string;
  date: string;
  qty: number;
  amountCents: number;
  status: OrderStatusRow;
  createdAt: number;
  expiresAt: number;
  updatedAt: number;
  /** The journal seq (of `stream`) of the last event applied. */
  seq: number;
  /** The payment that paid the order (`free` for an amount of 0). */
  paymentId: string | null;
  /** What a delivered order received (key ids, ticket codes or the merchant's payload; never a key). */
  delivery: OrderDelivery | null;
  /** A delivered ticket order: redeemed, or a no-show once its date ended; null otherwise. */
  visit?: { kind: 'redeemed' | 'no_show'; at: number } | null;
}

export interface OrderHistoryRow {
  orderId: string;
  stream: string;
  /** The journal seq of the event that made this change. */
  seq: number;
  status: OrderStatusRow;
  at: number;
  cause: string;
}

export interface IdempotencyRow {
  userId: string;
  key: string;
  requestHash: string;
  status: number;
  body: unknown;
  createdAt: number;
}

/** One projector write: applied in one transaction, idempotent (replaying it changes nothing). */
export interface ProjectionBatch {
  orders: OrderRow[];
  history: OrderHistoryRow[];
  idempotency: IdempotencyRow[];
  /** stream -> last seq projected, after this batch. */
  checkpoints: Map<string, number>;
  /** stream -> live reservations as of its checkpoint (a stream with some is woken after a restart). */
  live: Map<string, number>;
  /** Events for the outside world: inserted into the outbox, ignored if their eventId is there already. */
  outbox: OutboxEvent[];
}

export interface ProjectionStore {
  apply(batch: ProjectionBatch): Promise<void>;
  order(orderId: string): Promise<OrderRow | undefined>;
  history(orderId: string): Promise<OrderHistoryRow[]>;
  idempotency(userId: string, key: string): Promise<IdempotencyRow | undefined>;
  /**
   * The (buyer, key) pairs of the stored answers after `after`, in that order, `limit` at most: the
   * node reads them all at start (actors/answer-keys.ts), a page at a time.
   */
  answerKeys(after: readonly [string, string] | undefined, limit: number): Promise<[string, string][]>;
  /**
   * Durable first answers of keys that no journal holds (refusals decided before any SKU/date: 404,
   * not_on_sale, limit_exceeded), in one transaction; a key's unexpired answer is kept.
   */
  saveAnswers(rows: readonly IdempotencyRow[]): Promise<void>;
  /** Deletes at most `limit` first answers made before `before` (past their 24 hours), oldest first; returns how many. */
  dropAnswersBefore(before: number, limit: number): Promise<number>;
  checkpoints(): Promise<Map<string, number>>;
  /** One stream's checkpoint (0: none). */
  checkpoint(stream: string): Promise<number>;
  /** Streams that had live reservations at their checkpoint (woken after a restart to expire them). */
  streamsWithReservations(): Promise<string[]>;
  /** Delivered orders with no visit recorded whose date is before `beforeDate` (YYYY-MM-DD), by order id. */
  unvisitedDelivered(beforeDate: string, limit: number, afterOrderId?: string): Promise<OrderRow[]>;
  /** Orders in a status, by order id (which grows with creation time), after `afterOrderId`, at most `limit`. */
  ordersByStatus(status: OrderStatusRow, limit: number, afterOrderId?: string): Promise<OrderRow[]>;
  /** Units (sum of qty) of the SKU's orders by status, over all its dates (reconciliation). */
  unitsBySkuStatus(skuId: string): Promise<Partial<Record<OrderStatusRow, number>>>;
  /** Counts of orders by status for a stream (ops, tests). */
  countByStatus(stream: string): Promise<Record<string, { orders: number; units: number }>>;
  /**
   * The orders filed under a SKU/date stream (every row is, whichever stream last wrote it), by order
   * id, after `afterOrderId`, at most `limit` (ops listing). Live reservations have no row (see above).
   */
  ordersOfStream(stream: string, limit: number, afterOrderId?: string): Promise<OrderRow[]>;
  /**
   * For each order id asked, how many times its history records a delivery (an `order.delivered`
   * event); 0 for an order never delivered or unknown. One grouped read, however many ids.
   */
  deliveriesOf(orderIds: readonly string[]): Promise<Map<string, number>>;
}

export interface CardKeyAssignment {
  skuId: string;
  orderId: string;
  /** Ids of keys of `skuId`, each to be assigned to `orderId`. */
  keyIds: number[];
}

export interface CardKeyStore {
  /** Stores the keys (ciphertexts with their dedupe hashes); returns how many were new. */
  add(skuId: string, keys: readonly { hash: string; ciphertext: string }[]): Promise<number>;
  count(skuId: string): Promise<number>;
  /** Ids of keys of the SKU not assigned to any order, with id > afterId, ascending, at most `limit`. */
  unassigned(skuId: string, afterId: number, limit: number): Promise<number[]>;
  /**
   * Records the assignments in one transaction, all or nothing. A key row can be assigned once:
   * throws CardKeyConflictError (and records nothing) if any key is already assigned, or is not a
   * key of that SKU. `journal`: records appended to the journal in the same transaction (the
   * orders' `delivered`, decided on these keys): the keys and the records are durable together or
   * not at all; a record whose (stream, seq) exists fails the whole call (JournalConflictError).
   */
  assign(assignments: readonly CardKeyAssignment[], at: number, journal?: readonly JournalRecord[]): Promise<void>;
  /** The ids of the keys assigned to the order, ascending (empty if none). */
  assignedTo(orderId: string): Promise<number[]>;
  /** The same for many orders at once (a delivery actor's batch): every asked order is in the map, with [] if it has none. */
  assignedToMany(orderIds: readonly string[]): Promise<Map<string, number[]>>;
  /** The ciphertexts of those keys of the SKU assigned to `orderId` (for the owning buyer's GET), in the order asked. */
  reveal(skuId: string, orderId: string, keyIds: readonly number[]): Promise<{ id: number; ciphertext: string }[]>;
  /** Keys of the SKU not yet assigned (ops, reconciliation). */
  countUnassigned(skuId: string): Promise<number>;
  /** Keys of the SKU given to an order (one statement: an upload meanwhile does not skew it). */
  countAssigned(skuId: string): Promise<number>;
  /** The first and the last key stored (of any SKU), sealed; none when no key is stored (the start's secret check). */
  oldestAndNewest(): Promise<{ skuId: string; ciphertext: string }[]>;
}

/** One event for the outside world, as the projector writes it to the outbox. */
export interface OutboxEvent {
  /** `<stream>:<seq>` of the journal event: unique; the bus's `Nats-Msg-Id`. */
  eventId: string;
  subject: string;
  /** JSON text of the event body. */
  body: string;
  at: number;
}

export interface OutboxRow extends OutboxEvent {
  /** Autoincrement: grows in commit order (the projector writes one batch at a time). */
  id: number;
}

/** The subject of a position a reader passes over without an event (see OutboxStore.readAfter). */
export const OUTBOX_SKIP_SUBJECT = '$skip';

/**
 * Whether a row's events were published already (by persistence/bus/live-publisher.ts), named by the
 * row's eventId: a range row's for a SKU/date journal write, the event's own otherwise.
 */
export type PublishedRows = (rowEventId: string) => boolean | Promise<boolean>;

/**
 * Takes the events of one outbox row the moment they are durable, to publish them ahead of the
 * relay (persistence/bus/live-publisher.ts). `size` bounds the row's events; `events` is called
 * only if the row is taken.
 */
export interface LiveEvents {
  offer(rowEventId: string, size: number, events: () => readonly OutboxEvent[]): void;
}

/** The outbox table, read by the relay (NATS) or by the in-process bus (embedded). */
export interface OutboxStore {
  /**
   * Rows with id > afterId, ascending, at most `limit`. `filter` (a NATS subject filter) is a hint:
   * a reader that can tell some rows cannot match may return a row with subject `$skip` in their
   * place, which the caller passes over (it only moves the caller's position). So may a reader for
   * a row `published` says is published already.
   */
  readAfter(afterId: number, limit: number, filter?: string, published?: PublishedRows): Promise<OutboxRow[]>;
  /** The last id the named reader has finished with (0 if none). */
  cursor(name: string): Promise<number>;
  /** Moves the named cursor forward (never back). */
  saveCursor(name: string, id: number): Promise<void>;
  /** Deletes the rows every one of the named cursors has passed; returns how many. */
  trim(cursorNames: readonly string[]): Promise<number>;
  /** The highest id written so far (0 if none). */
  head(): Promise<number>;
}

/** Everything the engine persists, opened and closed together. */
export interface Stores {
  journal: JournalStore;
  snapshots: SnapshotStore[];
  streams: StreamStore;
  skus: SkuStore;
  rules: RuleStore;
  projection: ProjectionStore;
  cardKeys: CardKeyStore;
  outbox: OutboxStore;
  /** Liveness of each dependency for /readyz. */
  ping(): Promise<Record<string, boolean>>;
  /** True when the database makes a durable write within a short deadline (/readyz: app/write-probe.ts). */
  pingWrite(): Promise<boolean>;
  close(): Promise<void>;
}
