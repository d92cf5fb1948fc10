// One Stampede node: opens the stores, starts the actor runtime, the group committer and the
// projector, loads the catalog, wakes every SKU/date that has work left from a previous run
// (reservations to expire, events the read model lacks), and serves HTTP. `stop()` undoes it all.

import { randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { pino, type Logger } from 'pino';
import type { Clock, RandomSource } from '../engine/index.ts';
import { Catalog } from '../actors/catalog.ts';
import { GroupCommitter } from '../actors/group-commit.ts';
import { InventoryActor, type InventoryMessage } from '../actors/inventory-actor.ts';
import { OrderService } from '../actors/order-service.ts';
import { Projector } from '../actors/projector.ts';
import { ActorRuntime, type ActorKind } from '../actors/runtime/index.ts';
import { Semaphore } from '../actors/semaphore.ts';
import { CardKeyCipher } from '../persistence/card-key-cipher.ts';
import { openStores } from '../persistence/index.ts';
import type { OpenedStores } from '../persistence/index.ts';
import { createHttpApp } from '../http/app.ts';
import { Metrics } from '../http/metrics.ts';
import type { Config } from './config.ts';
import { serializeError } from './log-errors.ts';
import { join } from 'node:path';

export const systemClock: Clock = { now: () => Date.now() };

/** How long a stopping node waits for requests in flight before closing their connections. */
const SHUTDOWN_DRAIN_MS = 5_000;
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
  stores!: OpenedStores;
  runtime!: ActorRuntime;
  inventory!: ActorKind<InventoryMessage>;
  orders!: OrderService;
  catalog!: Catalog;
  projector!: Projector;
  committer!: GroupCommitter;
  server: Server | undefined;
  readonly clock: Clock;
  readonly random: RandomSource;
  readonly log: Logger;
  private recovered = false;
  private stopping = false;

  constructor(readonly config: Config, options: NodeOptions = {}) {
    this.clock = options.clock ?? systemClock;
    this.random = options.random ?? new BufferedCryptoRandom();
    this.log = (options.logger ?? pino({ level: config.logLevel })).child({}, { serializers: { err: serializeError } });
  }

  /** Opens everything; resolves once recovered (ready), without listening. */
  async start(): Promise<void> {
    const c = this.config;
    this.stores = await openStores(
      c.mysqlUrl ? { mysqlUrl: c.mysqlUrl, redisUrl: c.redisUrl } : { sqlitePath: join(c.dataDir, 'stampede.sqlite'), redisUrl: c.redisUrl },
    );
    this.runtime = new ActorRuntime({
      shards: c.shards,
      mailboxMax: c.mailbox_max,
      idleMs: c.idle_ms,
      askTimeoutMs: c.ask_timeout_ms,
      nodeId: c.nodeId,
      now: () => this.clock.now(),
    });
    const m = this.metrics;
    this.committer = new GroupCommitter(
      this.stores.journal,
      { writes_in_flight_max: c.writes_in_flight_max, batch_records_max: 1_000, batch_events_max: c.commit_events_max },
      {
        committed: (events, ms) => {
          m.groupCommitBatchEvents.observe(events);
          m.groupCommitLatencyMs.observe(ms);
        },
        failed: (error) => this.log.error({ err: error }, 'journal write failed'),
      },
    );
    this.projector = new Projector(
      this.stores.projection,
      { batch_events_max: 20_000, linger_ms: 5, retry_backoff_ms_max: 5_000 },
      // Only a live actor needs to hear it (a passivated one kept nothing unprojected).
      (stream, seq) => {
        if (this.inventory.has(stream)) this.inventory.tell(stream, { type: '$projected', seq });
      },
      (error) => this.log.warn({ err: error }, 'projection write failed; retrying'),
    );
    await this.projector.start();
    this.catalog = new Catalog(this.stores.skus, this.stores.streams);
    await this.catalog.load();
    const recoveries = new Semaphore(c.recovery_concurrency);
    const reservationCounters = new Map<string, { inc(): void }>();
    const snapshots = this.stores.snapshots.map((store, i) => ({ name: this.stores.snapshotNames[i] ?? `store-${i}`, store }));
    this.inventory = this.runtime.define<InventoryMessage>(
      'inventory',
      (stream) =>
        new InventoryActor(stream, {
          journal: this.stores.journal,
          snapshots,
          committer: this.committer,
          projector: this.projector,
          recoveries,
          now: () => this.clock.now(),
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
            // A counter child per outcome, bound once: labelled inc() hashes its labels on every call.
            reservation: (outcome) => {
              let child = reservationCounters.get(outcome);
              if (!child) reservationCounters.set(outcome, (child = m.reservations.labels(outcome)));
              child.inc();
            },
            recovered: (_stream, ms) => m.recoveryMs.observe(ms),
            snapshotFailed: (store, error) => {
              m.snapshotFailures.inc({ store });
              this.log.warn({ err: error, store }, 'snapshot write failed');
            },
            availability: (stream, available) => this.orders.noteAvailability(stream, available),
          },
        }),
    );
    this.orders = new OrderService(this.inventory, this.catalog, this.stores.projection, this.clock, this.random, {
      reservation_ttl_ms: c.reservation_ttl_ms,
    }, this.stores.cardKeys, new CardKeyCipher(c.secrets.cardKeySecret));
    m.setMailboxDepthSource(() => this.runtime.stats().shards.reduce((n, s) => n + s.mailbox, 0));
    m.setActorCountSource(() => this.runtime.stats().byKind);
    await this.wakeStreamsWithWork();
    this.recovered = true;
  }

  /** After a restart: every SKU/date with live reservations or unprojected events recovers now. */
  private async wakeStreamsWithWork(): Promise<void> {
    const started = performance.now();
    const streams = new Set(await this.stores.projection.streamsWithReservations());
    for (const [stream, head] of await this.stores.journal.heads()) {
      if (head > this.projector.checkpoint(stream)) streams.add(stream);
    }
    await Promise.all([...streams].map((stream) => this.inventory.ask(stream, { type: 'inspect' }, 120_000)));
    await this.projector.drained();
    if (streams.size > 0) {
      this.log.info({ streams: streams.size, ms: Math.round(performance.now() - started) }, 'recovered SKU/dates with pending work');
    }
  }

  get ready(): boolean {
    return this.recovered && !this.stopping;
  }

  async listen(): Promise<string> {
    const app = createHttpApp(this);
    const server = app.listen(this.config.http.port, this.config.http.host);
    this.server = server;
    server.keepAliveTimeout = 65_000;
    await new Promise<void>((resolve, reject) => {
      server.once('listening', resolve);
      server.once('error', reject);
    });
    const { port } = server.address() as AddressInfo;
    const host = this.config.http.host === '0.0.0.0' ? '127.0.0.1' : this.config.http.host;
    return `http://${host}:${port}`;
  }

  async stop(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
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
    }
    await this.runtime?.stop();
    // Writes already handed to the database finish before it is closed.
    await this.committer?.drained();
    this.committer?.close();
    await this.projector?.close();
    await this.stores?.close();
  }
}
