// One Stampede node: opens the stores, starts the actor runtime, the group committer and the
// projector, loads the catalog, wakes every SKU/date that has work left from a previous run
// (reservations to expire, events the read model lacks), and serves HTTP. `stop()` undoes it all.

import { randomBytes } from 'node:crypto';
import { isIPv6, type AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { answerClientError } from '../http/client-error.ts';
import { pino, type Logger } from 'pino';
import { inventoryStream, type Clock, type RandomSource } from '../engine/index.ts';
import { Catalog } from '../actors/catalog.ts';
import { GroupCommitter } from '../actors/group-commit.ts';
import { DELIVERY_STREAM_PREFIX, DeliveryActor, type DeliveryDeps, type DeliveryMessage } from '../actors/delivery-actor.ts';
import { InventoryActor, type InventoryDeps, type InventoryMessage } from '../actors/inventory-actor.ts';
import { InDoubtStreams } from '../actors/in-doubt-streams.ts';
import { OrderActor, ORDER_STREAM_PREFIX, type OrderActorDeps, type OrderMessage } from '../actors/order-actor.ts';
import { OrderService, type DeliverOutcome, type Result } from '../actors/order-service.ts';
import { WarmBuyers } from '../actors/warm-buyers.ts';
import { AnswerKeys } from '../actors/answer-keys.ts';
import { BUYER_STREAM_PREFIX, LimitActor, type LimitDeps, type LimitMessage } from '../actors/limit-actor.ts';
import { Projector } from '../actors/projector.ts';
import { BuyerStreams } from '../actors/buyer-streams.ts';
import { Reconciler } from '../actors/reconciler.ts';
import { NoShowSweeper } from '../actors/no-show-sweeper.ts';
import { adoptOrdersPlacedWithoutRules, type AdoptionDeps } from '../actors/rule-adoption.ts';
import { RuleBook } from '../actors/rule-book.ts';
import { JournalOutbox, outboxLagRows } from '../actors/journal-outbox.ts';
import { ActorRuntime, OverloadedError, type ActorKind } from '../actors/runtime/index.ts';
import { Semaphore } from '../actors/semaphore.ts';
import { inParallel } from '../actors/in-parallel.ts';
import type { InventoryInspection } from '../actors/inventory-actor.ts';
import { CardKeyCipher } from '../persistence/card-key-cipher.ts';
import { lockMysqlDatabase, type DatabaseLock } from './database-lock.ts';
import { checkCardKeySecret, keepGeneratedCardKeySecret, type KeptSecret } from './card-key-secret.ts';
import { LivePublisher, NatsBus, OutboxBus, OutboxRelay, type EventBus, type Subscription } from '../persistence/bus/index.ts';
import { messagingServicesOf, startMessaging, type Messaging } from '../messaging/index.ts';
import { JournalConflictError } from '../persistence/errors.ts';
import { RedisSnapshotStore } from '../persistence/redis/redis-snapshot-store.ts';
import { openStores } from '../persistence/index.ts';
import type { OpenedStores } from '../persistence/index.ts';
import { IDEMPOTENCY_ANSWER_MS } from '../persistence/ports.ts';
import { createHttpApp } from '../http/app.ts';
import { Recorder, RECORDER_DEFAULTS } from '../sim/recording/index.ts';
import { Metrics } from '../http/metrics.ts';
import type { Config } from './config.ts';
import { serializeError } from './log-errors.ts';
import { LogSampler } from './log-sampler.ts';
import { Rewaker } from '../actors/rewaker.ts';
import { WriteProbe } from './write-probe.ts';
import { lockDataDir } from './data-dir-lock.ts';
import { withDeadline } from '../persistence/sql/database.ts';
import { join } from 'node:path';

/** A start cut short by stop(): not a failure of its own. */
export class StoppedWhileStartingError extends Error {
  override name = 'StoppedWhileStartingError';
  constructor() {
    super('the node was stopped while it started');
  }
}

export const systemClock: Clock = { now: () => Date.now() };

/** Idle time of order actors (numerous, cheap to load again) at most. */
const QUICK_IDLE_MS = 10_000;
/**
 * Idle time of limit actors at most: one per buyer, usually asked once (the hold) and again when
 * the order is paid or ends. Measured with 1,000,000 buyers (bench/buyers-memory.ts): 3 s keeps
 * ~10,000 live instead of ~40,000 and the peak RSS at 1,655 MiB instead of 2,060 (default flags).
 */
const LIMIT_IDLE_MS = 3_000;
/**
 * Passivated buyers' states kept for their next incarnation (actors/warm-buyers.ts): bytes at most (as
 * estimated from what the states hold: ~100,000 buyers of one or two orders each), and for this long.
 */
const WARM_BUYERS_BYTES_MAX = 64 * 1024 * 1024;
const WARM_BUYERS_AGE_MAX_MS = 60_000;

/** Pending connections the kernel may queue for accept(). */
const HTTP_BACKLOG = 4_096;

/** The durable bus consumer that delivers paid orders. */
export const DELIVERY_CONSUMER = 'stampede-delivery';

/** Headers, and a whole request, must arrive within these (see listen). */
const HTTP_HEADERS_TIMEOUT_MS = 20_000;
const HTTP_REQUEST_TIMEOUT_MS = 30_000;

/** In-process deliveries without a bus event behind them (deliverRetrying) are tried this many times more. */
const DELIVERY_RETRIES = 4;

/**
 * How long after the start a journal write of a previous process may still commit in a MySQL server:
 * InnoDB's default lock wait (50 s), twice, and a slow flush.
 */
const MYSQL_ORPHAN_WRITE_MS = 120_000;

/** Stored answers' keys read a page at a time at start (see readAnswerKeys). */
const ANSWER_KEYS_PAGE = 10_000;
/** Deliveries failing in a row that stop the start's re-drive of paid orders (see redrivePaidOrders). */
const REDRIVE_FAILED_IN_A_ROW_MAX = 48;

/** What the start's re-drive of paid orders did so far (see redrivePaidOrders). */
interface RedrivePass {
  asked: number;
  failedInARow: number;
  /** SKUs whose delivery answered busy: skipped for the rest of the pass. */
  busy: Set<string>;
}

/** How often expired Idempotency-Key answers are deleted (see pruneAnswers). */
const ANSWER_PRUNE_INTERVAL_MS = 60_000;
/** Expired Idempotency-Key answers deleted per statement, and per run at most (see pruneAnswers). */
const ANSWER_PRUNE_BATCH_ROWS = 5_000;
const ANSWER_PRUNE_ROWS_PER_RUN = 100_000;

/** How long a stopping node waits for requests in flight before closing their connections. */
const SHUTDOWN_DRAIN_MS = 5_000;
/** A stop's drain of the SKU/dates (drainInventory): asks in flight at most, and the pause between looks. */
const DRAIN_ASKS_IN_FLIGHT = 32;
const DRAIN_POLL_MS = 10;
/** Longest a start waits for the read model to take in what the recovered SKU/dates handed it. */
const START_PROJECTION_MS = 120_000;
/** Cryptographic randomness, drawn 64 KiB at a time: one syscall per ~6,500 order ids, not one each. */
export class BufferedCryptoRandom implements RandomSource {
  private pool = Buffer.alloc(0);
  private offset = 0;
  bytes(n: number): Uint8Array {
    if (this.offset + n > this.pool.length) {
      this.pool = randomBytes(Math.max(65_536, n));
      this.offset = 0;
    }
    const out = this.pool.subarray(this.offset, this.offset + n);
    this.offset += n;
    return out;
  }
}

export interface NodeOptions {
  clock?: Clock;
  random?: RandomSource;
  logger?: Logger;
}

export class StampedeNode {
  readonly metrics = new Metrics();
  /** /readyz's `databaseWrites`: recent journal commits, else a durable write probe (app/write-probe.ts). */
  readonly writeProbe = new WriteProbe(() => this.stores.pingWrite());
  stores!: OpenedStores;
  runtime!: ActorRuntime;
  inventory!: ActorKind<InventoryMessage>;
  /** Cancels owed by SKU/dates to callers told 503, for their next incarnation to make (InventoryDeps.unanswered). */
  private readonly unansweredCancels = new Map<string, { orderId: string; userId: string }[]>();
  orderActors!: ActorKind<OrderMessage>;
  deliveryActors!: ActorKind<DeliveryMessage>;
  limitActors!: ActorKind<LimitMessage>;
  orders!: OrderService;
  catalog!: Catalog;
  rules!: RuleBook;
  projector!: Projector;
  committer!: GroupCommitter;
  reconciler!: Reconciler;
  noShows!: NoShowSweeper;
  /** NATS JetStream when STAMPEDE_NATS_URL is set, else the outbox bus (in-process, over the SQL outbox). */
  bus!: EventBus;
  relay: OutboxRelay | undefined;
  /** Which Idempotency-Keys may have a stored answer (actors/answer-keys.ts). */
  readonly answerKeys: AnswerKeys;
  /** Passivated buyers' states, for their next incarnation (actors/warm-buyers.ts). */
  readonly warmBuyers = new WarmBuyers(WARM_BUYERS_BYTES_MAX, WARM_BUYERS_AGE_MAX_MS);
  /** Which buyers have a limit journal (their actors skip the read otherwise). */
  readonly buyerStreams = new BuyerStreams();
  /** Publishes durable events at once, ahead of the relay (with NATS). */
  live: LivePublisher | undefined;
  messaging: Messaging | undefined;
  private deliveryConsumer: Subscription | undefined;
  private reconcileTimer: NodeJS.Timeout | undefined;
  private pruneTimer: NodeJS.Timeout | undefined;
  /** A pass of pruneAnswers in progress (one at a time, however slow the database). */
  private pruning: Promise<number> | undefined;
  /** Where the card-key secret came from when none was configured (embedded default), for `serve` to say. */
  keptCardKeySecret: KeptSecret;
  /** Releases the data folder (embedded default): one node per SQLite file. */
  /** Releases this node's hold on its data folder (SQLite) or database (MySQL named lock). */
  private releaseStorageLock: (() => void | Promise<void>) | undefined;
  /** MySQL: this node's lock on its database (held: /readyz's `databaseLock`). */
  databaseLock: DatabaseLock | undefined;
  server: Server | undefined;
  /** The traffic recording, when STAMPEDE_RECORD names a file. */
  recorder: Recorder | undefined;
  readonly clock: Clock;
  readonly random: RandomSource;
  readonly log: Logger;
  private recovered = false;
  private stopping = false;
  /** SKU/dates discarded with work, woken again until they recover (see InventoryObserver.discardedWithWork). */
  readonly wakes = new Rewaker((stream) => {
    if (!this.stopping) this.inventory.tellAlways(stream, { type: '$wake' });
  });

  constructor(readonly config: Config, options: NodeOptions = {}) {
    this.clock = options.clock ?? systemClock;
    this.answerKeys = new AnswerKeys(() => this.clock.now());
    this.random = options.random ?? new BufferedCryptoRandom();
    this.log = (options.logger ?? pino({ level: config.logLevel })).child({}, { serializers: { err: serializeError } });
    this.metrics.setReadySource(() => this.ready);
  }

  /**
   * Opens everything; resolves once recovered (ready). A start that fails stops what it had opened
   * (the data folder's lock and the HTTP server included) before it rejects.
   *
   * With `listen`, the HTTP server listens as soon as the storage is this node's (its lock taken),
   * before the stores open and the SKU/dates recover: `/healthz` answers during a long recovery (a
   * liveness probe does not kill the node it is waiting for), `/readyz` answers 503 "recovering",
   * `/metrics` shows the recovery, and every other route answers 503 `unavailable` with Retry-After
   * until the node is ready. A port that is taken fails the start before any recovery. `url` is
   * then the address it listens on.
   */
  async start(options: { listen?: boolean } = {}): Promise<void> {
    if (this.opening) throw new Error('the node was started already');
    // Stopped before it started: nothing to open (a lock taken now would never be released).
    if (this.stopping) throw new StoppedWhileStartingError();
    const opening = this.open(options.listen === true);
    this.opening = opening;
    try {
      await opening;
    } catch (error) {
      // A stop() during the start is that same stop (it waited for this open to end).
      await this.stop().catch(() => undefined);
      throw error;
    }
  }

  /** The start's opening of everything: a stop() waits for it to end (it ends at its next step). */
  private opening: Promise<void> | undefined;

  /** Between the start's steps: a stop() has begun, so the start goes no further. */
  private throwIfStopping(): void {
    if (this.stopping) throw new StoppedWhileStartingError();
  }

  /** Where the node listens (set by listen(), cleared once stop() has closed the server). */
  url: string | undefined;

  private async open(listen: boolean): Promise<void> {
    const c = this.config;
    if (c.unknownVariables.length > 0) {
      this.log.warn({ variables: c.unknownVariables }, 'unknown STAMPEDE_* variables set: ignored (a misspelt one leaves its setting at the default; see the README\'s configuration table)');
    }
    for (const warning of c.warnings) this.log.warn(warning);
    if (!c.mysqlUrl) this.releaseStorageLock = lockDataDir(c.dataDir);
    else {
      const lock = await lockMysqlDatabase(c.mysqlUrl, {
        lost: (error) => this.log.warn({ err: error }, 'the connection holding this node\'s database lock was lost; taking it again'),
        regained: () => this.log.info('this node holds its database lock again'),
        taken: (error) => this.log.error({ err: error }, 'another node took this node\'s database lock while it was lost: two nodes run on one database; stop one'),
      });
      this.databaseLock = lock;
      this.releaseStorageLock = () => lock.release();
    }
    this.throwIfStopping();
    // A generated card-key secret is kept with the keys it seals (embedded default), once the folder is ours.
    this.keptCardKeySecret = keepGeneratedCardKeySecret(c);
    if (c.recordFile) {
      const m = this.metrics;
      this.recorder = await Recorder.open(c.recordFile, this.log.child({ component: 'recorder' }), {
        written: (lines) => m.recordLines.inc(lines),
        dropped: (reason, lines) => m.recordDropped.inc({ reason }, lines),
        skipped: (reason) => m.recordSkipped.inc({ reason }),
      }, { ...RECORDER_DEFAULTS, file_bytes_max: c.record_file_bytes_max });
    }
    this.throwIfStopping();
    if (listen) {
      await this.listen();
      this.log.info({ url: this.url }, 'listening; not ready until the stores are open and the SKU/dates recovered');
    }
    this.throwIfStopping();
    // The database layer's own warnings (MikroORM's; on SQLite, a WAL checkpointer or writer thread that failed).
    const storeLog = (message: string) => this.log.warn({ component: 'store' }, message);
    this.stores = await openStores(
      c.mysqlUrl
        ? { mysqlUrl: c.mysqlUrl, redisUrl: c.redisUrl, logger: storeLog }
        : { sqlitePath: join(c.dataDir, 'stampede.sqlite'), redisUrl: c.redisUrl, logger: storeLog },
    );
    // Keys sealed under another secret could be neither shown nor deduplicated: refuse to start.
    this.throwIfStopping();
    await checkCardKeySecret(this.stores.cardKeys, new CardKeyCipher(c.secrets.cardKeySecret));
    const checkpointer = this.stores.walCheckpointer;
    if (checkpointer) this.metrics.setWalCheckpointerSource(() => checkpointer);
    const writer = this.stores.sqliteWriter;
    if (writer) this.metrics.setSqliteWriterSource(() => writer);
    const redis = this.stores.snapshots.find((s) => s instanceof RedisSnapshotStore);
    if (redis) this.metrics.setRedisSnapshotSource(() => redis);
    this.runtime = new ActorRuntime({
      shards: c.shards,
      mailboxMax: c.mailbox_max,
      idleMs: c.idle_ms,
      askTimeoutMs: c.ask_timeout_ms,
      nodeId: c.nodeId,
      now: () => this.clock.now(),
      // Ask deadlines in real elapsed time, whatever the node's clock does.
      askNow: () => performance.now(),
    });
    const m = this.metrics;
    this.committer = new GroupCommitter(
      this.stores.journal,
      {
        writes_in_flight_max: c.writes_in_flight_max,
        batch_records_max: 1_000,
        batch_events_max: c.commit_events_max,
        // SQLite writes on this thread, so a write started at once ends before the next record
        // arrives: gather the event loop's turn first (measured: a flash sale made 12,575 journal
        // writes of ~1 record each without, 502 with).
        gather_turn: !c.mysqlUrl,
      },
      {
        committed: (events, ms) => {
          m.groupCommitBatchEvents.observe(events);
          m.groupCommitLatencyMs.observe(ms);
          this.writeProbe.written();
        },
        failed: (error) => {
          // A write the database refused or lost says nothing more holds for writes (a stale writer's seq does).
          if (!(error instanceof JournalConflictError)) this.writeProbe.failed();
          this.log.error({ err: error }, 'journal write failed');
        },
        ridersRefused: (record, riders) => {
          m.writesWithoutRiders.inc({ write: 'sale' });
          this.log.warn({ stream: record.stream, riders: riders.length, first: riders.slice(0, 5).map((r) => r.stream) }, 'order records refused for a taken seq (at least one of them stale): the sale was written without them, each order writes its own');
        },
      },
    );
    this.projector = new Projector(
      this.stores.projection,
      // 8,000 changes: at most ~8 MiB of SQL (a delivered order's row, history and outbox row are
      // ~1 KiB), half of MariaDB's default max_allowed_packet.
      // The checkpoints of order streams (one per order ever paid, refunded or mismatched) are kept in
      // memory for the most recent 65,536 only (~6 MiB): an order's actor reads its own from the store.
      { batch_events_max: 8_000, linger_ms: 5, retry_backoff_ms_max: 5_000, answerKeys: this.answerKeys, transient: { matches: (stream) => stream.startsWith(ORDER_STREAM_PREFIX), max: 65_536 } },
      // Only a live actor needs to hear it (a passivated one kept nothing unprojected).
      (stream, seq) => this.tellProjected(stream, seq),
      (error) => this.log.warn({ err: error }, 'projection write failed; retrying'),
      // New outbox rows: the relay (NATS) or the outbox bus reads them at once instead of on its poll.
      () => this.nudgeOutbox(),
    );
    const startCheckpoints = await this.projector.start();
    this.throwIfStopping();
    await this.openBus();
    this.throwIfStopping();
    this.catalog = new Catalog(this.stores.skus, this.stores.streams);
    await this.catalog.load();
    this.rules = new RuleBook(this.stores.rules, () => this.clock.now());
    await this.rules.load();
    this.throwIfStopping();
    const recoveries = new Semaphore(c.recovery_concurrency);
    const snapshots = this.stores.snapshots.map((store, i) => ({ name: this.stores.snapshotNames[i] ?? `store-${i}`, store }));
    // One deps object per kind, shared by all its actors: an activation allocates no closures.
    const inventoryDeps: InventoryDeps = {
      journal: this.stores.journal,
      snapshots,
      committer: this.committer,
      projector: this.projector,
      live: this.live,
      recoveries,
      // A journal INSERT of a process killed just before this one started may still be running in the
      // MySQL server (InnoDB waits 50 s for a lock by default): each SKU/date recovered until it cannot
      // fences its journal once. SQLite's writer died with that process.
      inDoubt: new InDoubtStreams(c.mysqlUrl ? performance.now() + MYSQL_ORPHAN_WRITE_MS : 0, () => performance.now()),
      unanswered: this.unansweredCancels,
      now: () => this.clock.now(),
      merchantOf: (skuId) => this.catalog.sku(skuId)?.merchantId ?? 'unknown',
      limits: {
        pending_events_max: c.pending_events_max,
        snapshot_every_events: c.snapshot_every_events,
        snapshot_every_ms: c.snapshot_every_ms,
        snapshot_reservations_max: 20_000,
        expire_batch_max: 10_000,
        expiry_delay_min_ms: 20,
        expiry_check_ms_max: 1_000,
      },
      observer: {
        reservation: (outcome) => m.countReservation(outcome),
        recovered: (_stream, ms) => m.recoveryMs.observe(ms),
        discardedWithWork: (stream) => this.wakes.wake(stream),
        recoveryFailed: (stream) => this.wakes.failed(stream),
        committed: (stream) => this.wakes.settled(stream),
        recoveredIdle: (stream) => this.wakes.settled(stream),
        snapshotFailed: (store, error) => {
          m.snapshotFailures.inc({ store });
          this.log.warn({ err: error, store }, 'snapshot write failed');
        },
        availability: (stream, available) => this.orders.noteAvailability(stream, available),
        // Expired or cancelled: the buyer's usage is freed at once (a tell lost in a crash is resolved when
        // the limit actor next loads from the journal; a passivated one takes it as its next incarnation's message).
        limitedReleased: (userId, orderId, reason) => this.limitActors.tellAlways(userId, { type: 'release', orderId, reason }),
        limitedSold: (userId, orderId) => this.limitActors.tellAlways(userId, { type: 'confirm', orderId }),
        limitedInDoubt: (userId, orderId) => this.limitActors.tellAlways(userId, { type: 'resolve', orderId }),
      },
    };
    this.inventory = this.runtime.define<InventoryMessage>('inventory', (stream) => new InventoryActor(stream, inventoryDeps));
    const orderDeps: OrderActorDeps = {
      journal: this.stores.journal,
      committer: this.committer,
      projector: this.projector,
      live: this.live,
      now: () => this.clock.now(),
      random: this.random,
      lookup: (id) => this.orders.lookup(id),
      freshReservation: (id) => this.orders.freshReservation(id),
      noteWrittenWhileReserved: (id) => this.orders.noteWrittenWhileReserved(id),
      confirmSold: (id, paymentId, record) => this.orders.confirmSold(id, paymentId, record),
      release: (id, userId) => this.orders.release(id, userId),
      assignKeys: (skuId, id, qty, fresh, record) => this.orders.assignKeys(skuId, id, qty, fresh, record),
      sku: (skuId) => this.catalog.sku(skuId),
      recordNoShow: (order, at) => this.orders.recordBuyerNoShow(order, at),
      inventoryStreamOf: (o) => inventoryStream(o.skuId, o.date),
      deliversAfterPayment: () => this.orders.deliversAfterPayment,
      deliveredAfterPayment: (id, result) => this.orders.deliveredAfterPayment(id, result),
      observer: {
        delivered: (ms) => m.paidToDeliveredMs.observe(ms),
        conflict: (orderId, message) => {
          m.orderConflicts.inc();
          this.log.error({ orderId, message }, 'order settlement conflict; left unchanged');
        },
      },
    };
    this.orderActors = this.runtime.define<OrderMessage>(
      'order',
      (orderId) => new OrderActor(orderId, orderDeps),
      // Many and cheap to load again (one short journal read): they go soon after their last message.
      { idleMs: Math.min(c.idle_ms, QUICK_IDLE_MS), hosted: true },
    );
    const deliveryDeps: DeliveryDeps = {
      cardKeys: this.stores.cardKeys,
      journal: this.stores.journal,
      committer: this.committer,
      projector: this.projector,
      merchantOf: (id) => this.catalog.sku(id)?.merchantId ?? 'unknown',
      now: () => this.clock.now(),
      // Keys were assigned to a parked order (its bus event was acked while it waited): nothing else
      // asks for its delivery, so a failed attempt is tried again (then reconciliation repairs it).
      onAssigned: (orderId) => void this.deliverRetrying(orderId),
      onRidersRefused: (riders) => {
        m.writesWithoutRiders.inc({ write: 'delivery' });
        this.log.warn({ riders: riders.length, first: riders.slice(0, 5).map((r) => r.stream) }, 'order records refused for a taken seq (at least one of them stale): the card keys were assigned without them, each order writes its own');
      },
      // A failed write dropped the parked orders: ask for them again shortly, in order.
      onParkedDropped: (orderIds) => {
        setTimeout(() => void (async () => {
          for (const id of orderIds) await this.deliverRetrying(id);
        })(), 1_000).unref();
      },
    };
    this.deliveryActors = this.runtime.define<DeliveryMessage>('delivery', (skuId) => new DeliveryActor(skuId, deliveryDeps));
    const limitDeps: LimitDeps = {
      journal: this.stores.journal,
      committer: this.committer,
      now: () => this.clock.now(),
      rules: () => this.rules.current(),
      fateOf: (orderId) => this.orders.fateOf(orderId),
      streams: this.buyerStreams,
      warm: this.warmBuyers,
      compactionSkipped: (userId, bytes, max) => {
        this.metrics.buyerCompactionsSkipped.inc();
        this.log.warn({ userId, bytes, max }, "a buyer's limit state is too large for one compaction record: its journal is kept whole (it still loads from it) and compacted once it has grown as much again");
      },
    };
    this.limitActors = this.runtime.define<LimitMessage>(
      'limits',
      (userId) => new LimitActor(userId, limitDeps),
      // One per buyer: a sale of 10^6 buyers keeps only the recent ones in memory.
      { idleMs: Math.min(c.idle_ms, LIMIT_IDLE_MS), hosted: true },
    );
    this.orders = new OrderService({ inventory: this.inventory, orders: this.orderActors, delivery: this.deliveryActors, limits: this.limitActors }, this.catalog, this.stores.projection, this.clock, this.random, {
      reservation_ttl_ms: c.reservation_ttl_ms,
      answerKeys: this.answerKeys,
      limitsActive: () => this.rules.limitsActive(),
      // Delivery right after a free order's sale is durable, without waiting for the bus (its consumer
      // is the safety net); a paid order's starts in its order actor right after the payment's answer.
      paid: (orderId) => void this.deliver(orderId),
      deliveryAttempted: (orderId, result) => void this.noteDelivery(orderId, result),
      // Counted with the SKU/dates' own outcomes: every attempt decided has one.
      refused: (error) => this.metrics.countReservation(error),
      waking: (stream) => this.wakes.has(stream),
    }, this.stores.cardKeys, new CardKeyCipher(c.secrets.cardKeySecret));
    this.reconciler = new Reconciler({
      inventory: this.inventory,
      catalog: this.catalog,
      projection: this.stores.projection,
      cardKeys: this.stores.cardKeys,
      deliverPaid: (orderId) => this.orders.deliverPaid(orderId),
      keysCounted: (skuId) => this.orders.keysCounted(skuId),
      projectedSeq: (stream) => this.projector.checkpoint(stream),
      projectionCaughtUp: () => this.projector.caughtUp(),
      now: () => this.clock.now(),
      onFinding: (f) => {
        m.reconciliation.inc({ finding: f.kind, action: f.action });
        this.log.warn({ finding: f.kind, id: f.id, action: f.action, detail: f.detail }, 'reconciliation finding');
      },
      onPass: (report, duration_ms) => {
        const result = report.stopped ? 'stopped' : report.findings.some((f) => f.kind === 'check_failed') ? 'check_failed' : report.findings.length > 0 ? 'findings' : 'clean';
        m.reconciliationPasses.inc({ result });
        m.reconciliationLastPassEnd.set(Date.now() / 1000);
        m.reconciliationLastPassSeconds.set(duration_ms / 1000);
        // A clean pass every minute is no news (the metrics show the job is alive).
        const line = { result, checked: report.checked, repaired: report.repaired, reported: report.reported, duration_ms: Math.round(duration_ms) };
        if (result === 'clean') this.log.debug(line, 'reconciliation pass');
        else this.log.info(line, 'reconciliation pass');
      },
      limits: {
        delivery_grace_ms: c.delivery_grace_ms,
        expiry_grace_ms: 60_000,
        paid_orders_per_run_max: 10_000,
        streams_per_run_max: 1_000,
      },
    });
    this.noShows = new NoShowSweeper({
      projection: this.stores.projection,
      catalog: this.catalog,
      orders: this.orders,
      now: () => this.clock.now(),
      orders_per_run_max: 10_000,
    });
    m.setMailboxDepthSource(() => this.runtime.stats().shards.reduce((n, s) => n + s.mailbox, 0));
    m.setActorCountSource(() => this.runtime.stats().byKind);
    this.throwIfStopping();
    await this.wakeStreamsWithWork(startCheckpoints);
    this.throwIfStopping();
    // Paid orders reach delivery over the bus (at least once; delivery is idempotent).
    this.deliveryConsumer = await this.bus.consume({
      durable: DELIVERY_CONSUMER,
      filter: 'stampede.evt.*.order.paid',
      concurrency: 256,
      handler: async (event, delivery) => {
        const { orderId } = JSON.parse(Buffer.from(event.data).toString('utf8')) as { orderId?: unknown };
        if (typeof orderId !== 'string') return; // not an order event of ours: nothing to deliver
        let r;
        try {
          r = await this.orders.deliverPaid(orderId);
        } catch (error) {
          // Not acked: the bus delivers it again, with a growing backoff, for ever. Counted, and an
          // order still failing from its 5th attempt on is logged (a line a second at most for all of
          // them, with how many were not logged since: an outage fails every paid order at once).
          const busy = error instanceof OverloadedError;
          this.metrics.deliveries.inc({ outcome: busy ? 'overloaded' : 'failed' });
          if (!busy && delivery.deliveryCount >= 5) this.logDeliveryFailing(error, orderId, delivery.deliveryCount);
          throw error;
        }
        this.metrics.deliveries.inc({ outcome: r.ok ? r.value : r.error });
        // Overloaded: not acked, so the bus delivers it again later.
        if (!r.ok && r.error === 'overloaded') throw new Error(`delivery of ${orderId} overloaded`);
      },
    });
    if (this.bus instanceof NatsBus) this.messaging = await startMessaging(this.bus.connection, messagingServicesOf(this), this.log.child({ component: 'messaging' }));
    // The first rule counts the orders placed with none (actors/rule-adoption.ts); one left pending
    // by an earlier run is run now, in the background (its rules stay out of force until it is done).
    this.throwIfStopping();
    this.rules.start(
      async (emptySince, rules) => {
        let report;
        try {
          report = await adoptOrdersPlacedWithoutRules(this.adoptionDeps(), emptySince, rules);
        } catch (error) {
          m.ruleAdoptions.inc({ outcome: 'failed' });
          throw error;
        }
        m.ruleAdoptions.inc({ outcome: 'done' });
        for (const status of ['held', 'counted', 'skipped'] as const) m.ruleAdoptedOrders.inc({ status }, report[status]);
        this.log.info({ ...report, from_ms: Number.isFinite(report.from_ms) ? report.from_ms : null }, 'orders placed without purchase rules adopted');
      },
      (error) => this.log.warn({ err: error }, 'adopting the orders placed without purchase rules failed'),
    );
    m.setRuleBookSource(() => this.rules.state());
    this.throwIfStopping();
    this.recovered = true;
    // Parked orders (awaiting card keys) live in memory only: park them again, in order. In the
    // background: the node serves meanwhile, and delivery is idempotent.
    void this.redrivePaidOrders();
    // Until every stored answer's key is in, each new key is looked up in the store (as before). On
    // MySQL a refusal's answer written by a process killed just before this one may still commit for a
    // while (MYSQL_ORPHAN_WRITE_MS): read after that, or the key of such a late row would be missed
    // for its 24 hours.
    void this.sleepUnlessStopping(c.mysqlUrl ? MYSQL_ORPHAN_WRITE_MS : 0)
      .then(() => this.readAnswerKeys())
      .catch((error: unknown) => this.log.warn({ err: error }, 'reading the stored answers\' keys stopped; every Idempotency-Key is looked up'));
    if (c.reconcile_interval_ms > 0) {
      this.reconcileTimer = setInterval(() => {
        this.reconciler.run().catch((error: unknown) => this.log.warn({ err: error }, 'reconciliation failed'));
        this.noShows.run().catch((error: unknown) => this.log.warn({ err: error }, 'no-show sweep failed'));
      }, c.reconcile_interval_ms);
      this.reconcileTimer.unref();
    }
    this.pruneTimer = setInterval(() => {
      this.pruning ??= this.pruneAnswers()
        .catch((error: unknown) => {
          this.log.warn({ err: error }, 'pruning expired Idempotency-Key answers failed');
          return 0;
        })
        .finally(() => (this.pruning = undefined));
    }, ANSWER_PRUNE_INTERVAL_MS);
    this.pruneTimer.unref();
  }

  /**
   * Deletes the first answers of Idempotency-Keys past their 24 hours (API.md: a key is answered the
   * same for 24 h; after that it is a new key), in bounded batches: at most ANSWER_PRUNE_ROWS_PER_RUN
   * rows a run, so a backlog (the first run after an upgrade) is worked off over several runs. Without
   * it every keyed order and refusal left a row for ever. Returns how many went.
   */
  async pruneAnswers(): Promise<number> {
    const before = this.clock.now() - IDEMPOTENCY_ANSWER_MS;
    let dropped = 0;
    while (dropped < ANSWER_PRUNE_ROWS_PER_RUN) {
      const n = await this.stores.projection.dropAnswersBefore(before, ANSWER_PRUNE_BATCH_ROWS);
      dropped += n;
      if (n < ANSWER_PRUNE_BATCH_ROWS) break;
    }
    if (dropped > 0) this.log.info({ dropped }, 'expired Idempotency-Key answers deleted');
    return dropped;
  }

  private adoptionDeps(): AdoptionDeps {
    return {
      activeStreams: () => this.orders.activeStreams(),
      // Bounded: a read model that cannot catch up (its database failing) fails the PUT with 503.
      projected: () => withDeadline(this.projector.caughtUp(), 3 * this.config.ask_timeout_ms, 'the read model catching up'),
      streamsWithReservations: () => this.stores.projection.streamsWithReservations(),
      limitReservations: (stream, from_ms) => this.orders.limitReservations(stream, from_ms),
      ordersByStatus: (status, limit, after) => this.stores.projection.ordersByStatus(status, limit, after),
      sku: (skuId) => this.catalog.sku(skuId),
      adopt: (userId, order, status) => this.orders.adopt(userId, order, status),
      now: () => this.clock.now(),
    };
  }

  /** Tells a live actor the read model has its events up to `seq` (a notice: a full mailbox does not drop it; its state is pruned by it). */
  private tellProjected(stream: string, seq: number): void {
    if (stream.startsWith(ORDER_STREAM_PREFIX)) this.orderActors.notify(stream.slice(ORDER_STREAM_PREFIX.length), { type: '$projected', seq });
    else if (stream.startsWith(DELIVERY_STREAM_PREFIX)) this.deliveryActors.notify(stream.slice(DELIVERY_STREAM_PREFIX.length), { type: '$projected', seq });
    else this.inventory.notify(stream, { type: '$projected', seq });
  }

  private async openBus(): Promise<void> {
    const c = this.config;
    const onError = (what: string) => (error: unknown) => {
      this.metrics.busFailures.inc({ what });
      this.log.warn({ err: error }, `bus ${what} failed; retrying`);
    };
    // The journal is the outbox: this reader makes the events of SKU/date journal ranges on demand.
    const outbox = new JournalOutbox(this.stores.outbox, this.stores.journal);
    if (c.natsUrl) {
      const bus = await NatsBus.open(c.natsUrl, {
        onError: onError('consume'),
        ...(c.natsUser ? { user: c.natsUser } : {}),
        ...(c.natsPassword ? { pass: c.natsPassword } : {}),
      });
      this.bus = bus;
      const live = new LivePublisher(bus, {
        onError: (error) => {
          onError('publish')(error);
          // Its rows are the relay's now.
          this.relay?.nudge();
        },
        onPublished: (n) => this.metrics.eventsPublished.inc({ path: 'live' }, n),
      });
      this.live = live;
      this.relay = new OutboxRelay({
        outbox,
        publisher: bus,
        onError: onError('publish'),
        published: (rowId) => live.published(rowId),
        onPublished: (n) => this.metrics.eventsPublished.inc({ path: 'relay' }, n),
      }).start();
      // Rows behind (a row is one event, or one journal write's events of a SKU/date).
      this.metrics.setOutboxLagSource(async () => outboxLagRows((await this.relay?.lag()) ?? 0));
    } else {
      this.bus = new OutboxBus(outbox, { durables: [DELIVERY_CONSUMER], onError: onError('consume') });
    }
  }

  private nudgeOutbox(): void {
    // While the live publisher takes the events at their commit, the relay only polls for what it missed.
    if (this.relay) {
      if (!this.live?.active) this.relay.nudge();
    }
    else if (this.bus instanceof OutboxBus) this.bus.nudge();
  }

  /**
   * Every paid order of a card_key or ticket SKU is asked to deliver again (after a restart): ticket
   * orders (and any of a SKU the catalog lacks) as the pages of paid orders come, 16 at a time; card-key
   * orders after the last page, one at a time, in the order they were paid (a paid order's `updatedAt`
   * in the read model), so that those waiting for keys park again in the order they had parked in
   * (FIFO), not in the order they were created (a pass in id order served an order created earlier but
   * paid later first).
   */
  async redrivePaidOrders(): Promise<void> {
    const pass: RedrivePass = { asked: 0, failedInARow: 0, busy: new Set() };
    const cardKeyOrders: { orderId: string; skuId: string; paidAt: number }[] = [];
    try {
      let after: string | undefined;
      for (;;) {
        const page = await this.stores.projection.ordersByStatus('paid', 500, after);
        if (page.length === 0 || this.stopping) break;
        after = page[page.length - 1]!.orderId;
        const others: { orderId: string; skuId: string }[] = [];
        for (const o of page) {
          const delivery = this.catalog.sku(o.skuId)?.delivery;
          if (delivery === 'card_key') cardKeyOrders.push({ orderId: o.orderId, skuId: o.skuId, paidAt: o.updatedAt });
          else if (delivery !== 'manual') others.push(o);
        }
        if (!(await this.redriveInGroups(others, 16, pass))) return;
      }
      cardKeyOrders.sort((a, b) => a.paidAt - b.paidAt || (a.orderId < b.orderId ? -1 : a.orderId > b.orderId ? 1 : 0));
      if (!(await this.redriveInGroups(cardKeyOrders, 1, pass))) return;
      if (pass.asked > 0) this.log.info({ orders: pass.asked, ...(pass.busy.size > 0 ? { busySkus: [...pass.busy].slice(0, 20) } : {}) }, 'paid orders asked to deliver after start');
    } catch (error) {
      this.log.warn({ err: error }, 'redelivery of paid orders after start failed; reconciliation will retry');
    }
  }

  /**
   * Asks `due` to deliver, `span` orders at a time, in order. False when the pass must stop: the node is
   * stopping, or deliveries keep failing (a dependency down: every order would wait its ask's deadline
   * in turn, hours for a big backlog; reconciliation repairs them once it is back).
   */
  private async redriveInGroups(due: readonly { orderId: string; skuId: string }[], span: number, pass: RedrivePass): Promise<boolean> {
    for (let i = 0; i < due.length; ) {
      if (this.stopping) return false;
      // A SKU whose delivery answered busy (more orders parked for its keys than it keeps) is skipped
      // for the rest of the pass, and is no dependency down: the other SKUs' orders still go
      // (reconciliation gives the busy one's the time it needs).
      if (pass.busy.has(due[i]!.skuId)) {
        i++;
        continue;
      }
      const group = due.slice(i, i + span).filter((o) => !pass.busy.has(o.skuId));
      i = Math.min(i + span, due.length);
      const outcomes = await Promise.all(group.map((o) => this.deliverOutcome(o.orderId)));
      pass.asked += group.length;
      group.forEach((o, k) => {
        if (outcomes[k] === 'busy') pass.busy.add(o.skuId);
      });
      if (outcomes.includes('delivered')) pass.failedInARow = 0;
      else pass.failedInARow += outcomes.filter((o) => o === 'failed').length;
      if (pass.failedInARow >= REDRIVE_FAILED_IN_A_ROW_MAX) {
        this.log.warn({ failedInARow: pass.failedInARow, orders: pass.asked }, 'redelivery of paid orders after start stopped: deliveries keep failing; reconciliation will repair the rest');
        return false;
      }
    }
    return true;
  }

  /**
   * Adds the key of every answer the store holds to `answerKeys`, `page` at a time, then marks it
   * complete; a failed page is read again after a growing pause (up to 30 s), for as long as the node
   * runs. Run once in the background at start.
   */
  async readAnswerKeys(page = ANSWER_KEYS_PAGE): Promise<void> {
    if (this.stopping) return;
    const started = performance.now();
    let after: readonly [string, string] | undefined;
    let keys = 0;
    for (let pause = 1_000; !this.stopping; ) {
      let rows: [string, string][];
      try {
        rows = await this.stores.projection.answerKeys(after, page);
      } catch (error) {
        if (this.stopping) return;
        this.log.warn({ err: error, keys }, 'reading the stored answers\' keys failed; trying again (meanwhile every Idempotency-Key is looked up)');
        await this.sleepUnlessStopping(pause);
        pause = Math.min(pause * 2, 30_000);
        continue;
      }
      for (const [userId, key] of rows) this.answerKeys.add(userId, key);
      keys += rows.length;
      if (rows.length < page) break;
      after = rows[rows.length - 1];
    }
    if (this.stopping) return;
    this.answerKeys.markComplete();
    this.log.info({ keys, ms: Math.round(performance.now() - started) }, 'stored answers\' keys read');
  }

  /** Resolves after `ms`, or at once once the node is stopping (the timer does not hold the process). */
  private async sleepUnlessStopping(ms: number): Promise<void> {
    const until = performance.now() + ms;
    while (!this.stopping && performance.now() < until) {
      await new Promise((resolve) => setTimeout(resolve, Math.min(1_000, until - performance.now())).unref());
    }
  }

  /** Paid orders whose delivery from the bus keeps failing: a warning a second at most. */
  private readonly deliveryFailing = new LogSampler(1_000);

  private logDeliveryFailing(error: unknown, orderId: string, deliveries: number): void {
    const unlogged = this.deliveryFailing.take('delivery');
    if (unlogged !== undefined) this.log.warn({ err: error, orderId, deliveries, unloggedSinceLast: unlogged }, 'deliveries of paid orders keep failing; the bus will try them again');
  }

  /** Delivers a paid order; failures are logged and left to the bus's redelivery and the reconciler. Resolves false if it failed. */
  async deliver(orderId: string): Promise<boolean> {
    return (await this.deliverOutcome(orderId)) === 'delivered';
  }

  /** `deliver`, telling a delivery actor too busy to take it (overloaded: tried again later) from a failure. */
  private async deliverOutcome(orderId: string): Promise<'delivered' | 'busy' | 'failed'> {
    let result: Result<DeliverOutcome> | { thrown: unknown };
    try {
      result = await this.orders.deliverPaid(orderId);
    } catch (error) {
      result = { thrown: error };
    }
    return this.noteDelivery(orderId, result);
  }

  /** Counts a delivery attempt by its outcome; a failure is logged (the bus's redelivery and the reconciler try again). */
  private noteDelivery(orderId: string, result: Result<DeliverOutcome> | { thrown: unknown }): 'delivered' | 'busy' | 'failed' {
    if (!('thrown' in result)) {
      this.metrics.deliveries.inc({ outcome: result.ok ? result.value : result.error });
      return 'delivered';
    }
    const error = result.thrown;
    if (error instanceof OverloadedError) {
      this.metrics.deliveries.inc({ outcome: 'overloaded' });
      this.log.debug({ err: error, orderId }, 'delivery busy; will be retried');
      return 'busy';
    }
    this.metrics.deliveries.inc({ outcome: 'failed' });
    // While stopping, a delivery cut short is no incident: the next start re-drives paid orders.
    if (this.stopping) this.log.debug({ err: error, orderId }, 'delivery cut short by the stop');
    else this.log.warn({ err: error, orderId }, 'delivery failed; will be retried');
    return 'failed';
  }

  /**
   * `deliver`, tried again after 1, 2, 4 and 8 s while it fails (an ask timing out, a database blip),
   * for deliveries no bus event stands behind; then reconciliation's pass repairs it.
   */
  private async deliverRetrying(orderId: string): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      if (this.stopping || (await this.deliver(orderId))) return;
      if (attempt >= DELIVERY_RETRIES) return;
      await new Promise((resolve) => setTimeout(resolve, 1_000 * 2 ** attempt).unref());
    }
  }

  /** Loads an order or delivery stream's actor (which hands its unprojected events to the projector). */
  private loadStream(stream: string): Promise<unknown> {
    return stream.startsWith(ORDER_STREAM_PREFIX)
      ? this.orderActors.ask(stream.slice(ORDER_STREAM_PREFIX.length), { type: 'get' }, 120_000)
      : this.deliveryActors.ask(stream.slice(DELIVERY_STREAM_PREFIX.length), { type: 'inspect' }, 120_000);
  }

  /** loadStream again after a failure, with backoff (1 s doubling to a minute), until it loads or the node stops. */
  private async loadStreamRetrying(stream: string): Promise<void> {
    for (let attempt = 0; !this.stopping; attempt++) {
      await new Promise((resolve) => setTimeout(resolve, Math.min(60_000, 1_000 * 2 ** attempt)).unref());
      if (this.stopping) return;
      try {
        await this.loadStream(stream);
        return;
      } catch (error) {
        if (attempt % 5 === 4) this.log.warn({ err: error, stream, attempts: attempt + 2 }, 'a stream with unprojected events still cannot be loaded');
      }
    }
  }

  /** After a restart: every SKU/date with live reservations or unprojected events recovers now. */
  private async wakeStreamsWithWork(checkpoints: ReadonlyMap<string, number>): Promise<void> {
    const started = performance.now();
    const streams = new Set(await this.stores.projection.streamsWithReservations());
    const others: { stream: string; loaded: Promise<unknown> }[] = [];
    for (const [stream, head] of await this.stores.journal.heads()) {
      // A buyer's limit stream is not projected: its actor loads it when next asked (and only if it exists).
      if (stream.startsWith(BUYER_STREAM_PREFIX)) {
        this.buyerStreams.add(stream);
        continue;
      }
      if (head <= (checkpoints.get(stream) ?? 0)) continue;
      // Waking an order or delivery actor hands its unprojected events to the projector again.
      if (stream.startsWith(ORDER_STREAM_PREFIX) || stream.startsWith(DELIVERY_STREAM_PREFIX)) others.push({ stream, loaded: this.loadStream(stream) });
      else streams.add(stream);
    }
    this.buyerStreams.markComplete();
    // Settled from now on: one of them failing while the SKU/dates recover is no unhandled rejection.
    const woken = Promise.allSettled(others.map((o) => o.loaded));
    // Every SKU/date with work must recover before the node is ready (a failure fails the start).
    await Promise.all([...streams].map((stream) => this.inventory.ask(stream, { type: 'inspect' }, 120_000)));
    // An order or delivery actor that cannot load now is loaded again, with backoff, until it is: its
    // unprojected events may be the only trace of an event for the outside world (a refund_required
    // whose order nothing else ever touches again), and passivated it would never be asked again.
    const results = await woken;
    results.forEach((r, i) => {
      if (r.status !== 'rejected') return;
      this.log.warn({ err: r.reason, stream: others[i]!.stream }, 'a stream with unprojected events could not be loaded at start; loading it again');
      void this.loadStreamRetrying(others[i]!.stream);
    });
    // A stop meanwhile ends the start here (each wait of the start has its own deadline of 2 minutes).
    this.throwIfStopping();
    // Bounded: a read model that cannot be written fails the start instead of hanging it.
    await withDeadline(this.projector.drained(), START_PROJECTION_MS, 'projecting what the SKU/dates recovered');
    if (streams.size > 0) {
      this.log.info({ streams: streams.size, ms: Math.round(performance.now() - started) }, 'recovered SKU/dates with pending work');
    }
  }

  /** stop() has begun: requests still arriving are turned away (503, Connection: close). */
  get isStopping(): boolean {
    return this.stopping;
  }

  get ready(): boolean {
    return this.recovered && !this.stopping;
  }

  /** The start finished: the node recovered (it may be stopping since). */
  get isStarted(): boolean {
    return this.recovered;
  }

  /** The start has not finished (the node may listen meanwhile: see start()). */
  get isStarting(): boolean {
    return !this.recovered && !this.stopping;
  }

  async listen(): Promise<string> {
    if (this.server) throw new Error('the node listens already');
    const app = createHttpApp(this);
    // A flash sale opens thousands of connections in the same second: a deep accept queue keeps the
    // kernel from resetting them while the event loop is busy (capped by net.core.somaxconn).
    const server = app.listen({ port: this.config.http.port, host: this.config.http.host, backlog: HTTP_BACKLOG });
    this.server = server;
    server.keepAliveTimeout = 65_000;
    // A request must arrive whole within these (Node's defaults, 60 s and 5 min, let slow senders hold
    // connections and body buffers for minutes).
    server.headersTimeout = HTTP_HEADERS_TIMEOUT_MS;
    server.requestTimeout = HTTP_REQUEST_TIMEOUT_MS;
    // What Node refuses before koa sees it (a header too large, a malformed request, a timeout) gets
    // the contract's error body too, not Node's bare status line.
    server.on('clientError', answerClientError);
    await new Promise<void>((resolve, reject) => {
      server.once('listening', resolve);
      server.once('error', (error) => {
        // Not listening (the port is taken): a later listen() may try again.
        this.server = undefined;
        reject(error);
      });
    });
    server.removeAllListeners('error');
    // Once listening, an error of the server (accept failing: EMFILE) is logged; without a listener the
    // second one would have crashed the process.
    server.on('error', (err) => this.log.error({ err }, 'HTTP server error'));
    const { port } = server.address() as AddressInfo;
    const configured = this.config.http.host;
    const host = configured === '0.0.0.0' ? '127.0.0.1' : configured === '::' ? '[::1]' : isIPv6(configured) ? `[${configured}]` : configured;
    this.url = `http://${host}:${port}`;
    return this.url;
  }

  /**
   * Stops the node. A second call gets the same stop (it resolves when the whole stop has). A step that
   * fails still lets the stores close and the storage lock go (a node stopped, for an embedder such as
   * the in-process simulator, must not keep a pool, a worker or the lock); its error is rethrown after.
   */
  stop(): Promise<void> {
    this.stopped ??= this.stopNow();
    return this.stopped;
  }

  private stopped: Promise<void> | undefined;

  private async stopNow(): Promise<void> {
    this.stopping = true;
    // A start still opening ends at its next step (throwIfStopping): what it opened is closed below,
    // and the storage lock is released only once nothing of it runs any more.
    await this.opening?.catch(() => undefined);
    try {
      await this.stopServing();
    } finally {
      try {
        await this.stores?.close();
      } finally {
        await this.releaseStorageLock?.();
      }
    }
  }

  /**
   * Before the actors stop: each SKU/date in memory writes what it has decided, and one that owes
   * cancels (of reservations whose callers were told 503, an earlier incarnation's write having failed)
   * recovers and makes them — kept only in memory, they were lost with the process, and each such
   * reservation held its stock and its buyer's usage for a whole reservation TTL after the restart.
   * Bounded by SHUTDOWN_DRAIN_MS: a database that does not answer leaves them to that expiry.
   */
  private async drainInventory(): Promise<void> {
    const deadline = performance.now() + SHUTDOWN_DRAIN_MS;
    let streams = new Set([...this.inventory.keys(), ...this.unansweredCancels.keys()]);
    while (streams.size > 0 && performance.now() < deadline) {
      const busy = new Set<string>(this.unansweredCancels.keys());
      await inParallel([...streams], DRAIN_ASKS_IN_FLIGHT, async (stream) => {
        const left = deadline - performance.now();
        if (left <= 0) return;
        try {
          const i = await this.inventory.ask<InventoryInspection>(stream, { type: 'inspect' }, Math.max(1, Math.ceil(left)));
          if (i.pendingEvents > 0 || i.writeInFlight) busy.add(stream);
        } catch {
          busy.add(stream);
        }
      });
      streams = busy;
      if (streams.size > 0) await new Promise((resolve) => setTimeout(resolve, DRAIN_POLL_MS));
    }
    if (streams.size > 0) this.log.warn({ streams: [...streams].slice(0, 20), count: streams.size }, 'stopping with SKU/dates whose writes or owed cancels did not finish in time: their reservations expire after their TTL');
  }

  /** Everything of stop() before the stores close. */
  private async stopServing(): Promise<void> {
    this.wakes.stop();
    // The background passes stop first (no new one; the one in flight ends at its next order or
    // SKU/date) and are waited for below, before the actors and stores they use stop.
    if (this.reconcileTimer) clearInterval(this.reconcileTimer);
    const passes = Promise.all([this.reconciler?.stop(), this.noShows?.stop()]);
    if (this.server) {
      // Stop accepting, let requests in flight get their answers (bounded), then cut what is left.
      const server = this.server;
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      const drained = await Promise.race([closed.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), SHUTDOWN_DRAIN_MS).unref())]);
      if (!drained) {
        server.closeAllConnections();
        await closed;
      }
      this.url = undefined;
    }
    // Every request is answered: its line is in the recorder's buffer. Written before the stores close.
    await this.recorder?.close();
    await passes;
    if (this.pruneTimer) clearInterval(this.pruneTimer);
    await this.pruning;
    this.rules?.stop();
    await this.messaging?.stop();
    await this.deliveryConsumer?.stop();
    if (this.inventory) await this.drainInventory();
    await this.runtime?.stop();
    // Writes already handed to the database finish before it is closed.
    await this.committer?.drained();
    this.committer?.close();
    await this.projector?.close();
    await this.live?.close();
    await this.relay?.stop();
    await this.bus?.close();
  }
}
