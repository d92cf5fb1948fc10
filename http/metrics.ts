// The engine's Prometheus metrics on a private Registry (never the global one, so tests can make many).
// HTTP metrics are labelled with the matched route TEMPLATE (@koa/router's ctx._matchedRoute, e.g.
// "/v1/orders/:orderId"), never the raw path, and "unmatched" when no route matched: bounded cardinality.
import type { Middleware, Context } from 'koa';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export interface MetricsOptions {
  /** The process's default metrics (CPU, memory, GC, event loop) in this node's scrape; default true. */
  defaultMetrics?: boolean;
  /** Sum of the depths of all actor mailboxes, read at scrape time. */
  mailboxDepth?: () => number;
  /** Live actors by kind (e.g. {inventory: 120, buyer: 4000}), read at scrape time. */
  actorCounts?: () => Record<string, number>;
}

export const UNMATCHED_ROUTE = 'unmatched';

let processMetrics: Registry | undefined;

/**
 * The process's own metrics (prom-client's defaults: CPU, memory, GC, event loop), collected once per
 * process on a registry of their own and appended to each node's scrape. Not on a node's registry:
 * prom-client's GC metric observes with a PerformanceObserver it never disconnects, which kept the
 * registry it was given, every metric on it and, through their collect callbacks, the whole node alive
 * after stop() — every engine a test, a benchmark or the simulator started in one process stayed in
 * memory (~100 MB each after bench:hot's rules variant), and the collector marked them all.
 */
function processRegistry(): Registry {
  if (!processMetrics) {
    processMetrics = new Registry();
    collectDefaultMetrics({ register: processMetrics });
  }
  return processMetrics;
}
/** How long a scrape waits for the outbox lag read (stampede_outbox_lag_rows) before it reports the last value. */
const OUTBOX_LAG_READ_MS = 2_000;

/** What the metrics read of the SQLite WAL checkpointer (persistence/sql/wal-checkpointer.ts). */
export interface WalCheckpointerFigures {
  readonly running: boolean;
  readonly checkpoints: number;
  readonly restarts: number;
}

/** What the metrics read of the SQLite writer thread (persistence/sql/sqlite-writer.ts). */
export interface SqliteWriterFigures {
  readonly running: boolean;
  readonly statements: number;
}

/** A counter that follows a running total kept elsewhere: each scrape adds what it grew by. */
function followingCounter(registers: Registry[], name: string, help: string, total: () => number): void {
  let seen = 0;
  new Counter({
    name,
    help,
    registers,
    collect() {
      const n = total();
      if (n > seen) this.inc(n - seen);
      seen = n;
    },
  });
}

/** A gauge of 1 while `up()` holds and 0 otherwise, read at scrape time. */
function upGauge(registers: Registry[], name: string, help: string, up: () => boolean): void {
  new Gauge({
    name,
    help,
    registers,
    collect() {
      this.set(up() ? 1 : 0);
    },
  });
}

/** The route template of a request, or "unmatched". */
export function routeLabel(ctx: Context): string {
  const matched = (ctx as Context & { _matchedRoute?: string | RegExp })._matchedRoute;
  if (typeof matched === 'string' && matched !== '') return matched;
  if (matched instanceof RegExp) return String(matched);
  return UNMATCHED_ROUTE;
}

export class Metrics {
  readonly registry: Registry;
  readonly reservations: Counter<'outcome'>;
  readonly groupCommitBatchEvents: Histogram;
  readonly groupCommitLatencyMs: Histogram;
  readonly mailboxDepth: Gauge;
  readonly recoveryMs: Histogram;
  readonly httpRequests: Counter<'route' | 'status'>;
  readonly httpRequestMs: Histogram<'route'>;
  readonly snapshotFailures: Counter<'store'>;
  readonly actors: Gauge<'kind'>;
  readonly paymentCallbackMs: Histogram;
  readonly paidToDeliveredMs: Histogram;
  readonly deliveries: Counter<'outcome'>;
  readonly outboxLag: Gauge;
  readonly busFailures: Counter<'what'>;
  readonly eventsPublished: Counter<'path'>;
  readonly reconciliation: Counter<'finding' | 'action'>;
  readonly reconciliationPasses: Counter<'result'>;
  readonly reconciliationLastPassEnd: Gauge;
  readonly reconciliationLastPassSeconds: Gauge;
  readonly orderConflicts: Counter;
  readonly writesWithoutRiders: Counter<'write'>;
  readonly recordLines: Counter;
  readonly recordDropped: Counter<'reason'>;
  readonly recordSkipped: Counter<'reason'>;
  readonly ruleAdoptions: Counter<'outcome'>;
  readonly ruleAdoptedOrders: Counter<'status'>;
  readonly buyerCompactionsSkipped: Counter;

  /** Reservations counted since the last scrape, by outcome (see countReservation). */
  private readonly reservationTallies = new Map<string, number>();
  /** The process's metrics (processRegistry), appended to this node's in every scrape; none with defaultMetrics false. */
  private readonly processMetrics: Registry | undefined;
  private mailboxDepthSource: (() => number) | undefined;
  private actorCountSource: (() => Record<string, number>) | undefined;
  private ruleBookSource: (() => { inForce: number; pending: number }) | undefined;

  private outboxLagSource: (() => Promise<number>) | undefined;
  /** Registered once a WAL checkpointer is plugged in: a MySQL node has none of these metrics. */
  private walMetricsRegistered = false;
  private writerMetricsRegistered = false;
  private redisMetricsRegistered = false;

  /**
   * One reservation attempt of `outcome`, on the hot path: a plain tally moved into
   * `stampede_reservations_total` when the registry is read (a prom-client inc hashes its labels on
   * every call, ~0.3 µs, a measurable share of a reservation).
   */
  countReservation(outcome: string): void {
    this.reservationTallies.set(outcome, (this.reservationTallies.get(outcome) ?? 0) + 1);
  }

  constructor(opts: MetricsOptions = {}) {
    this.registry = new Registry();
    const registers = [this.registry];
    if (opts.defaultMetrics !== false) this.processMetrics = processRegistry();
    this.mailboxDepthSource = opts.mailboxDepth;
    this.actorCountSource = opts.actorCounts;

    const tallies = this.reservationTallies;
    this.reservations = new Counter({
      name: 'stampede_reservations_total',
      help: 'Reservation attempts decided, by outcome: reserved, sold_out, invalid_request (by the SKU/date), not_found, not_on_sale, limit_exceeded (before it); attempts turned away as overloaded or unavailable are in stampede_http_requests_total.',
      labelNames: ['outcome'],
      registers,
      collect() {
        for (const [outcome, n] of tallies) if (n > 0) this.inc({ outcome }, n);
        tallies.clear();
      },
    });
    this.groupCommitBatchEvents = new Histogram({
      name: 'stampede_group_commit_batch_events',
      help: 'Events written per group commit.',
      buckets: [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000],
      registers,
    });
    this.groupCommitLatencyMs = new Histogram({
      name: 'stampede_group_commit_latency_ms',
      help: 'Time from the first event of a batch to its durable commit, in ms.',
      buckets: [0.25, 0.5, 1, 2, 5, 10, 25, 50, 100, 250, 500, 1000],
      registers,
    });
    const self = this;
    this.mailboxDepth = new Gauge({
      name: 'stampede_mailbox_depth',
      help: 'Messages waiting in actor mailboxes (sum over actors), read at scrape time.',
      registers,
      collect() {
        const source = self.mailboxDepthSource;
        this.set(source ? source() : 0);
      },
    });
    this.recoveryMs = new Histogram({
      name: 'stampede_recovery_ms',
      help: 'Time to recover an actor (snapshot + journal replay), in ms.',
      buckets: [1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000],
      registers,
    });
    this.httpRequests = new Counter({
      name: 'stampede_http_requests_total',
      help: 'HTTP requests by route template and status.',
      labelNames: ['route', 'status'],
      registers,
    });
    this.httpRequestMs = new Histogram({
      name: 'stampede_http_request_ms',
      help: 'HTTP request handling time by route template, in ms.',
      labelNames: ['route'],
      buckets: [0.5, 1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000],
      registers,
    });
    this.snapshotFailures = new Counter({
      name: 'stampede_snapshot_failures_total',
      help: 'Snapshot writes that failed, by store.',
      labelNames: ['store'],
      registers,
    });
    this.paymentCallbackMs = new Histogram({
      name: 'stampede_payment_callback_ms',
      help: 'Time to apply a verified payment callback durably, in ms.',
      buckets: [0.5, 1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000, 2500],
      registers,
    });
    this.paidToDeliveredMs = new Histogram({
      name: 'stampede_paid_to_delivered_ms',
      help: 'Time from an order becoming paid to its durable delivery, in ms.',
      buckets: [1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000, 5000, 30000, 300000],
      registers,
    });
    this.deliveries = new Counter({
      name: 'stampede_deliveries_total',
      help: 'Delivery attempts of paid orders by outcome: delivered, already_delivered, awaiting_card_keys, awaiting_merchant, overloaded (the actor busy: tried again), failed (a store or actor failed: tried again), or a refusal\'s error code.',
      labelNames: ['outcome'],
      registers,
    });
    this.outboxLag = new Gauge({
      name: 'stampede_outbox_lag_rows',
      help: 'Outbox rows not yet published to NATS (a row is one event, or one journal write of a SKU/date), read at scrape time; 0 without NATS.',
      registers,
      // Awaited (prom-client awaits an async collect): the scrape reports the lag as it is now, not
      // what the scrape before it started reading. A read that fails or takes longer than
      // OUTBOX_LAG_READ_MS (the database down or slow) leaves the last value read.
      async collect() {
        const source = self.outboxLagSource;
        if (!source) return void this.set(0);
        let timer: NodeJS.Timeout | undefined;
        const late = new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), OUTBOX_LAG_READ_MS)));
        try {
          const rows = await Promise.race([source(), late]);
          if (rows !== undefined) this.set(rows);
        } catch {
          // The last value read stays.
        } finally {
          clearTimeout(timer);
        }
      },
    });
    this.busFailures = new Counter({
      name: 'stampede_bus_failures_total',
      help: 'Bus operations that failed and will be retried, by what (publish, consume).',
      labelNames: ['what'],
      registers,
    });
    this.eventsPublished = new Counter({
      name: 'stampede_events_published_total',
      help: 'Events published to NATS and acknowledged, by path: live (at their commit) or relay (read back from the outbox: after a failed live publish, a restart, or rows the live path did not take).',
      labelNames: ['path'],
      registers,
    });
    this.reconciliation = new Counter({
      name: 'stampede_reconciliation_total',
      help: 'Differences found by reconciliation, by finding and the action taken (repaired, reported).',
      labelNames: ['finding', 'action'],
      registers,
    });
    this.reconciliationPasses = new Counter({
      name: 'stampede_reconciliation_passes_total',
      help: 'Reconciliation passes that ended, by result: clean (no finding), findings (some), check_failed (a check could not run: a store down or an actor failing to recover; a read model that has not caught up leaves its comparison for the next pass without a finding), stopped (cut short by the node stopping).',
      labelNames: ['result'],
      registers,
    });
    this.reconciliationLastPassEnd = new Gauge({
      name: 'stampede_reconciliation_last_pass_end_seconds',
      help: 'When the last reconciliation pass ended (Unix time, seconds; 0 until the first pass ends): an alert on its age (when > 0) finds a periodic job that stopped running.',
      registers,
    });
    this.reconciliationLastPassSeconds = new Gauge({
      name: 'stampede_reconciliation_last_pass_duration_seconds',
      help: 'How long the last reconciliation pass took.',
      registers,
    });
    this.writesWithoutRiders = new Counter({
      name: 'stampede_journal_writes_without_riders_total',
      help: "Writes made again without the order records riding in them (write: sale, delivery), one of which was refused for a taken seq (a stale order actor); each of those orders then wrote its own record, and the stale one failed alone.",
      labelNames: ['write'],
      registers,
    });
    this.orderConflicts = new Counter({
      name: 'stampede_order_conflicts_total',
      help: 'Orders whose inventory settlement contradicts their own journal (left unchanged for an operator).',
      registers,
    });
    this.recordLines = new Counter({
      name: 'stampede_record_lines_total',
      help: 'Lines written to the traffic recording (STAMPEDE_RECORD).',
      registers,
    });
    this.recordDropped = new Counter({
      name: 'stampede_record_dropped_total',
      help: 'Recorded requests lost, by reason (buffer_full: the file is slower than the traffic; write_failed: the recording stopped on a write error; file_full: it stopped at STAMPEDE_RECORD_MAX_BYTES; overtaken: still unanswered 60 s after it arrived while the lines of later requests waited for it).',
      labelNames: ['reason'],
      registers,
    });
    this.recordSkipped = new Counter({
      name: 'stampede_record_skipped_total',
      help: 'Served requests the recording leaves out by design, by reason (unreferenced: on an order made before the recording; unrepresentable: the format cannot say it).',
      labelNames: ['reason'],
      registers,
    });
    this.ruleAdoptions = new Counter({
      name: 'stampede_rule_adoptions_total',
      help: 'Adoptions of the orders placed while no purchase rule existed, run for a first rule, by outcome (done, failed).',
      labelNames: ['outcome'],
      registers,
    });
    this.ruleAdoptedOrders = new Counter({
      name: 'stampede_rule_adopted_orders_total',
      help: 'Orders placed while no purchase rule existed, taken in by their buyers for a first rule, by status (held, counted, skipped).',
      labelNames: ['status'],
      registers,
    });
    this.buyerCompactionsSkipped = new Counter({
      name: 'stampede_buyer_compactions_skipped_total',
      help: "Compactions of a buyer's limit journal not written: its state's snapshot was over BUYER_SNAPSHOT_BYTES_MAX (4 MiB). The journal stays whole (the buyer still loads from it, more slowly); tried again once it has grown as much again.",
      registers,
    });
    new Gauge({
      name: 'stampede_purchase_rules',
      help: 'Purchase rules by state, read at scrape time: in_force, or pending (stored, waiting for their adoption to run).',
      labelNames: ['state'],
      registers,
      collect() {
        const source = self.ruleBookSource;
        this.reset();
        if (!source) return;
        const book = source();
        this.set({ state: 'in_force' }, book.inForce);
        this.set({ state: 'pending' }, book.pending);
      },
    });
    this.actors = new Gauge({
      name: 'stampede_actors',
      help: 'Live actors by kind, read at scrape time.',
      labelNames: ['kind'],
      registers,
      collect() {
        const source = self.actorCountSource;
        this.reset();
        if (!source) return;
        for (const [kind, n] of Object.entries(source())) this.set({ kind }, n);
      },
    });
  }

  /**
   * The embedded SQLite default's WAL checkpointer, read at scrape time. Its metrics exist from this
   * call on (once per registry).
   */
  setWalCheckpointerSource(wal: () => WalCheckpointerFigures): void {
    if (this.walMetricsRegistered) throw new Error('Metrics: a WAL checkpointer source is set already');
    this.walMetricsRegistered = true;
    const registers = [this.registry];
    upGauge(
      registers,
      'stampede_sqlite_wal_checkpointer_up',
      'Embedded SQLite: 1 while the worker thread checkpoints the WAL, 0 when it failed and SQLite checkpoints on commits again.',
      () => wal().running,
    );
    const following = (name: string, help: string, total: () => number) => followingCounter(registers, name, help, total);
    following('stampede_sqlite_wal_checkpoints_total', 'Embedded SQLite: checkpoints the worker thread made that copied WAL frames into the database file.', () => wal().checkpoints);
    following(
      'stampede_sqlite_wal_restarts_total',
      'Embedded SQLite: RESTART checkpoints the worker thread made because the WAL had grown past its bound under steady writes.',
      () => wal().restarts,
    );
  }

  /**
   * The embedded SQLite default's writer thread, read at scrape time. Its metrics exist from this call
   * on (once per registry).
   */
  setSqliteWriterSource(writer: () => SqliteWriterFigures): void {
    if (this.writerMetricsRegistered) throw new Error('Metrics: a SQLite writer source is set already');
    this.writerMetricsRegistered = true;
    const registers = [this.registry];
    upGauge(
      registers,
      'stampede_sqlite_writer_up',
      "Embedded SQLite: 1 while a worker thread makes the writes, 0 when it failed and the engine's thread writes again.",
      () => writer().running,
    );
    followingCounter(
      registers,
      'stampede_sqlite_writer_statements_total',
      'Embedded SQLite: statements the writer thread ran (a transaction of several statements counts each).',
      () => writer().statements,
    );
  }

  /**
   * The Redis snapshot store's failures, read at scrape time (it never throws: a failed save leaves the
   * snapshot in SQL only, a failed load falls back to SQL). Its metrics exist from this call on.
   */
  setRedisSnapshotSource(redis: () => { failures: number; loadFailures: number }): void {
    if (this.redisMetricsRegistered) throw new Error('Metrics: a Redis snapshot source is set already');
    this.redisMetricsRegistered = true;
    followingCounter(
      [this.registry],
      'stampede_redis_snapshot_save_failures_total',
      'Snapshot writes (and clean-ups) Redis refused or did not answer within its timeout (down, slow, at maxmemory): those snapshots are in SQL only.',
      () => redis().failures,
    );
    followingCounter(
      [this.registry],
      'stampede_redis_snapshot_load_failures_total',
      'Snapshot reads from Redis that failed (down, slow) or found a corrupt value: recovery read SQL instead.',
      () => redis().loadFailures,
    );
  }

  /** Whether the node is ready (recovered, not stopping), read at scrape time (stampede_ready). */
  setReadySource(ready: () => boolean): void {
    upGauge([this.registry], 'stampede_ready', 'The node: 1 when ready (stores open, SKU/dates recovered, not stopping), 0 while it starts or stops (it listens during a start: see /readyz).', ready);
  }

  /** The outbox rows not yet published to NATS, read at scrape time (no source without NATS: 0). */
  setOutboxLagSource(source: (() => Promise<number>) | undefined): void {
    this.outboxLagSource = source;
  }

  /** The owner of the actors plugs in the scrape-time sources once it exists. */
  setMailboxDepthSource(source: (() => number) | undefined): void {
    this.mailboxDepthSource = source;
  }
  setRuleBookSource(source: (() => { inForce: number; pending: number }) | undefined): void {
    this.ruleBookSource = source;
  }
  setActorCountSource(source: (() => Record<string, number>) | undefined): void {
    this.actorCountSource = source;
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  /** The node's metrics, then the process's (when this registry reports them). */
  async text(): Promise<string> {
    const own = await this.registry.metrics();
    return this.processMetrics ? `${own}${await this.processMetrics.metrics()}` : own;
  }

  /** Records stampede_http_requests_total / stampede_http_request_ms. Mount it first (outside errorMiddleware). */
  middleware(): Middleware {
    return async (ctx, next) => {
      const start = performance.now();
      let status = 500;
      try {
        await next();
        status = ctx.status;
      } finally {
        const route = routeLabel(ctx);
        this.httpRequests.inc({ route, status: String(status) });
        this.httpRequestMs.observe({ route }, performance.now() - start);
      }
    };
  }

  /** A handler for GET /metrics. */
  handler(): Middleware {
    return async (ctx) => {
      const body = await this.text();
      ctx.set('Content-Type', this.contentType);
      ctx.body = body;
    };
  }
}
