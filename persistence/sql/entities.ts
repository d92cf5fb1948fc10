// The SQL schema, declared once for both MySQL/MariaDB and SQLite so MikroORM can create or migrate
// the tables at start (openSqlStores). EntitySchema, not decorators: the code runs under tsx/esbuild,
// which emits no decorator metadata. The stores never persist entities; they write raw multi-row
// statements (dialect.ts), so these rows describe columns, and the column names are the SQL names.
import { EntitySchema } from '@mikro-orm/core';

/**
 * MariaDB reports the default of a nullable varchar as the string 'NULL' to MikroORM's MySQL driver,
 * so without this every start would ALTER those columns again.
 */
const nullDefault: ('default')[] = ['default'];

/** One group-commit record of one stream; `events` is the JSON text of the array. */
export interface JournalEntity {
  stream: string;
  seq: number;
  last_seq: number;
  at: number;
  events: Buffer;
}

export const Journal = new EntitySchema<JournalEntity>({
  name: 'JournalEntity',
  tableName: 'journal',
  properties: {
    stream: { type: 'string', length: 100, primary: true },
    seq: { type: 'bigint', primary: true },
    last_seq: { type: 'bigint' },
    at: { type: 'bigint' },
    // JSON bytes, stored as a blob: no character-set work for the server on the hottest write.
    events: { type: 'blob', columnType: 'longblob' },
  },
});

export interface SnapshotEntity {
  stream: string;
  seq: number;
  at: number;
  state: Buffer;
}

export const Snapshot = new EntitySchema<SnapshotEntity>({
  name: 'SnapshotEntity',
  tableName: 'snapshots',
  properties: {
    stream: { type: 'string', length: 100, primary: true },
    seq: { type: 'bigint' },
    at: { type: 'bigint' },
    state: { type: 'blob', columnType: 'longblob' },
  },
});

export interface StreamEntity {
  stream_no: number;
  sku_id: string;
  date: string;
}

export const Stream = new EntitySchema<StreamEntity>({
  name: 'StreamEntity',
  tableName: 'streams',
  properties: {
    stream_no: { type: 'integer', primary: true, autoincrement: true },
    sku_id: { type: 'string', length: 64 },
    date: { type: 'string', length: 10 },
  },
  uniques: [{ name: 'streams_sku_date_unique', properties: ['sku_id', 'date'] }],
});

export interface SkuEntity {
  sku_id: string;
  name: string;
  price_cents: number;
  merchant_id: string;
  delivery: string;
  /** JSON text of a string -> string map. */
  attributes: string;
  visible_at: string | null;
  sale_starts_at: string | null;
  sale_ends_at: string | null;
  updated_at: string;
}

export const SkuTable = new EntitySchema<SkuEntity>({
  name: 'SkuEntity',
  tableName: 'skus',
  properties: {
    sku_id: { type: 'string', length: 64, primary: true },
    name: { type: 'string', length: 255 },
    price_cents: { type: 'bigint' },
    merchant_id: { type: 'string', length: 64 },
    delivery: { type: 'string', length: 20 },
    attributes: { type: 'text' },
    visible_at: { type: 'string', length: 40, nullable: true, ignoreSchemaChanges: nullDefault },
    sale_starts_at: { type: 'string', length: 40, nullable: true, ignoreSchemaChanges: nullDefault },
    sale_ends_at: { type: 'string', length: 40, nullable: true, ignoreSchemaChanges: nullDefault },
    updated_at: { type: 'string', length: 40 },
  },
});

/** A purchase rule; `rule` is its JSON text exactly as the admin PUT stored it (normalised). */
export interface LimitRuleEntity {
  rule_id: string;
  rule: string;
}

export const LimitRuleTable = new EntitySchema<LimitRuleEntity>({
  name: 'LimitRuleEntity',
  tableName: 'limit_rules',
  properties: {
    rule_id: { type: 'string', length: 64, primary: true },
    // A rule with 1,000 SKU ids is ~70 KB: more than MySQL's `text` (64 KB).
    rule: { type: 'text', columnType: 'mediumtext' },
  },
});

/**
 * The rule book's own state, one row (`book`): since when it has been empty (null once the orders
 * placed meanwhile were adopted by the first rule; see actors/rule-book.ts).
 */
export interface RuleBookStateEntity {
  name: string;
  empty_since: number | null;
}

export const RuleBookStateTable = new EntitySchema<RuleBookStateEntity>({
  name: 'RuleBookStateEntity',
  tableName: 'limit_rule_book',
  properties: {
    name: { type: 'string', length: 16, primary: true },
    empty_since: { type: 'bigint', nullable: true },
  },
});

/**
 * The order read model. `status_rank` orders the statuses along the lifecycle (ports.ts OrderRow):
 * an upsert only replaces a row of a lower rank, whichever stream it comes from.
 */
export interface OrderEntity {
  order_id: string;
  stream: string;
  user_id: string;
  sku_id: string;
  date: string;
  qty: number;
  amount_cents: number;
  status: string;
  created_at: number;
  expires_at: number;
  updated_at: number;
  seq: number;
  status_rank: number;
  /** redeemed | no_show (delivered ticket orders), with its time. */
  visit: string | null;
  visit_at: number | null;
  payment_id: string | null;
  /** JSON text of the delivery (key ids, ticket codes or the merchant's payload). */
  delivery: string | null;
}

export const Order = new EntitySchema<OrderEntity>({
  name: 'OrderEntity',
  tableName: 'orders',
  properties: {
    order_id: { type: 'string', length: 64, primary: true },
    stream: { type: 'string', length: 100 },
    user_id: { type: 'string', length: 64 },
    sku_id: { type: 'string', length: 64 },
    date: { type: 'string', length: 10 },
    qty: { type: 'integer' },
    amount_cents: { type: 'bigint' },
    status: { type: 'string', length: 20 },
    created_at: { type: 'bigint' },
    expires_at: { type: 'bigint' },
    updated_at: { type: 'bigint' },
    seq: { type: 'bigint' },
    status_rank: { type: 'integer', default: 0 },
    visit: { type: 'string', length: 16, nullable: true, ignoreSchemaChanges: nullDefault },
    visit_at: { type: 'bigint', nullable: true },
    payment_id: { type: 'string', length: 128, nullable: true, ignoreSchemaChanges: nullDefault },
    delivery: { type: 'text', nullable: true },
  },
  indexes: [
    { name: 'orders_status_stream_index', properties: ['status', 'stream'] },
    { name: 'orders_status_order_index', properties: ['status', 'order_id'] },
    // A SKU/date's orders in id order (the ops listing); created on an existing database at start.
    { name: 'orders_stream_order_index', properties: ['stream', 'order_id'] },
    { name: 'orders_sku_status_index', properties: ['sku_id', 'status'] },
    // The no-show sweep's pages (delivered, no visit, in id order), read in index order with the visit
    // and the date in the index (a skipped order costs no row read) (a page of 500 out of 300,000 delivered orders: 0.56 ms against 0.82 ms on SQLite by
    // (status, order_id), which skips visited orders row by row). Replaces (status, visit, date), which
    // neither SQLite nor MariaDB chose for it (its pages are in id order), at start.
    { name: 'orders_status_visit_order_index', properties: ['status', 'visit', 'order_id', 'date'] },
  ],
});

export interface OrderHistoryEntity {
  order_id: string;
  seq: number;
  status: string;
  stream: string;
  at: number;
  cause: string;
}

export const OrderHistory = new EntitySchema<OrderHistoryEntity>({
  name: 'OrderHistoryEntity',
  tableName: 'order_history',
  properties: {
    // One line per journal event; an order's lines come from its SKU/date's stream and its own.
    order_id: { type: 'string', length: 64, primary: true },
    stream: { type: 'string', length: 100, primary: true },
    seq: { type: 'bigint', primary: true },
    status: { type: 'string', length: 20 },
    at: { type: 'bigint' },
    cause: { type: 'string', length: 255 },
  },
});

/** The first answer given to (user, Idempotency-Key); `body` is its JSON text. */
export interface IdempotencyEntity {
  user_id: string;
  idem_key: string;
  request_hash: string;
  status: number;
  body: string;
  created_at: number;
}

export const Idempotency = new EntitySchema<IdempotencyEntity>({
  name: 'IdempotencyEntity',
  tableName: 'idempotency',
  properties: {
    user_id: { type: 'string', length: 64, primary: true },
    idem_key: { type: 'string', length: 64, primary: true },
    request_hash: { type: 'string', length: 64 },
    status: { type: 'integer' },
    body: { type: 'text', columnType: 'longtext' },
    created_at: { type: 'bigint' },
  },
  // The daily pruning of answers past their 24 hours reads them by age.
  indexes: [{ name: 'idempotency_created_at', properties: ['created_at'] }],
});

export interface ProjectionCheckpointEntity {
  stream: string;
  seq: number;
  live_reservations: number;
}

export const ProjectionCheckpoint = new EntitySchema<ProjectionCheckpointEntity>({
  name: 'ProjectionCheckpointEntity',
  tableName: 'projection_checkpoints',
  properties: {
    stream: { type: 'string', length: 100, primary: true },
    seq: { type: 'bigint' },
    /** Live reservations of the stream as of `seq`: streams with some are woken after a restart. */
    live_reservations: { type: 'integer', default: 0 },
  },
});

/**
 * A card key of a SKU, encrypted; `key_hash` dedupes uploads, `order_id` and `assigned_at` are set once,
 * when it is assigned (card-key-store.ts: a conditional UPDATE on `order_id IS NULL`).
 */
export interface CardKeyEntity {
  id: number;
  sku_id: string;
  key_hash: string;
  ciphertext: string;
  order_id: string | null;
  assigned_at: number | null;
}

export const CardKey = new EntitySchema<CardKeyEntity>({
  name: 'CardKeyEntity',
  tableName: 'card_keys',
  properties: {
    // SQLite can only auto-increment an `integer` primary key (it is 64-bit there); without this the
    // schema diff would rebuild the table at every start.
    id: { type: 'bigint', primary: true, autoincrement: true, ignoreSchemaChanges: ['type'] },
    sku_id: { type: 'string', length: 64 },
    key_hash: { type: 'string', columnType: 'char(64)' },
    ciphertext: { type: 'text' },
    order_id: { type: 'string', length: 64, nullable: true, ignoreSchemaChanges: nullDefault },
    assigned_at: { type: 'bigint', nullable: true },
  },
  uniques: [{ name: 'card_keys_sku_hash_unique', properties: ['sku_id', 'key_hash'] }],
  indexes: [
    // A SKU's unassigned keys in id order (`order_id IS NULL`, then the row id both engines append).
    { name: 'card_keys_sku_order_index', properties: ['sku_id', 'order_id'] },
    // The keys of one order (CardKeyStore.assignedTo).
    { name: 'card_keys_order_index', properties: ['order_id'] },
  ],
});

/**
 * One row per order that received card keys, written in the assignment's transaction: its primary
 * key makes a second key set for the order fail on the unique key (as the journal's (stream, seq)
 * does for a second writer), also against an earlier assignment still committing, with no locking read.
 */
export interface CardKeySetEntity {
  order_id: string;
  sku_id: string;
  assigned_at: number;
}

export const CardKeySet = new EntitySchema<CardKeySetEntity>({
  name: 'CardKeySetEntity',
  tableName: 'card_key_sets',
  properties: {
    order_id: { type: 'string', length: 64, primary: true },
    sku_id: { type: 'string', length: 64 },
    assigned_at: { type: 'bigint' },
  },
});

/**
 * Events for the outside world, written by the projector in the read model's transaction (outbox-store.ts).
 * `id` grows in commit order; `event_id` (`<stream>:<seq>`) dedupes a re-projected event.
 */
export interface OutboxEntity {
  id: number;
  event_id: string;
  subject: string;
  /** JSON text of the event body. */
  body: string;
  at: number;
}

export const Outbox = new EntitySchema<OutboxEntity>({
  name: 'OutboxEntity',
  tableName: 'outbox',
  properties: {
    // As for card_keys: SQLite auto-increments only an `integer` primary key.
    id: { type: 'bigint', primary: true, autoincrement: true, ignoreSchemaChanges: ['type'] },
    event_id: { type: 'string', length: 200 },
    subject: { type: 'string', length: 255 },
    body: { type: 'text', columnType: 'longtext' },
    at: { type: 'bigint' },
  },
  uniques: [{ name: 'outbox_event_id_unique', properties: ['event_id'] }],
});

/** How far each outbox reader got: `relay:nats`, `bus:<durable>`; every row with id <= `id` is done. */
export interface OutboxCursorEntity {
  name: string;
  id: number;
}

export const OutboxCursor = new EntitySchema<OutboxCursorEntity>({
  name: 'OutboxCursorEntity',
  tableName: 'outbox_cursors',
  properties: {
    name: { type: 'string', length: 200, primary: true },
    id: { type: 'bigint' },
  },
});

/** Every table of the SQL stores, for MikroORM's discovery and schema generator. */
/**
 * Facts about this database itself. `instance`: a random id made when the database was first
 * opened. Caches outside the database (Redis snapshots) are keyed by it, so a database created afresh
 * (a test run, a new environment on a shared Redis) never reads another database's snapshots.
 * `write_probe`: when /readyz last made a durable write here (SqlDatabase.pingWrite).
 */
export interface StoreIdentityEntity {
  name: string;
  value: string;
}

export const StoreIdentity = new EntitySchema<StoreIdentityEntity>({
  name: 'StoreIdentityEntity',
  tableName: 'store_identity',
  properties: {
    name: { type: 'string', length: 64, primary: true },
    value: { type: 'string', length: 64 },
  },
});

export const entities = [
  CardKeySet,
  StoreIdentity,
  Journal,
  Snapshot,
  Stream,
  SkuTable,
  LimitRuleTable,
  RuleBookStateTable,
  Order,
  OrderHistory,
  Idempotency,
  ProjectionCheckpoint,
  CardKey,
  Outbox,
  OutboxCursor,
];
