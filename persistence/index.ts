// The public face of persistence: opens every store the engine needs from the configured backends
// (MySQL/MariaDB or SQLite, Redis optionally in front of the SQL snapshots) and closes them together.
import type { SnapshotStore, Stores } from './ports.ts';
import { default_snapshot_key_prefix, RedisSnapshotStore } from './redis/redis-snapshot-store.ts';
import { openSqlStores } from './sql/open.ts';
import type { WalCheckpointer } from './sql/wal-checkpointer.ts';
import type { SqliteWriter } from './sql/sqlite-writer.ts';

export * from './errors.ts';
export type * from './ports.ts';
export { RedisSnapshotStore } from './redis/redis-snapshot-store.ts';
export { openSqlStores, type SqlStores, type SqlStoresOptions } from './sql/open.ts';

export interface StoresOptions {
  /** MariaDB/MySQL; used when given, even if sqlitePath is given too. */
  mysqlUrl?: string;
  /** The embedded SQLite file, used when there is no mysqlUrl. */
  sqlitePath?: string;
  /** Redis for snapshots, in front of the SQL ones. */
  redisUrl?: string;
  /** Where MikroORM's own warnings and errors go. */
  logger?: (message: string) => void;
}

/** `Stores`, plus the name of each snapshot store (same order), for metrics and logs. */
export interface OpenedStores extends Stores {
  snapshotNames: string[];
  /** The embedded SQLite default's WAL checkpointer (metrics); absent on MySQL, or when it could not start. */
  walCheckpointer?: WalCheckpointer;
  /** Embedded SQLite: the worker thread that makes the writes (absent when it could not start). */
  sqliteWriter?: SqliteWriter;
}

/**
 * Opens the stores. Rejects with StoreUnavailableError when the SQL database cannot be reached
 * (bounded by its connect timeout). Redis being down does not fail the open: it is an accelerator.
 */
export async function openStores(opts: StoresOptions): Promise<OpenedStores> {
  const sql = await openSqlStores({
    ...(opts.mysqlUrl ? { mysqlUrl: opts.mysqlUrl } : { sqlitePath: opts.sqlitePath }),
    logger: opts.logger,
  });
  let redis: RedisSnapshotStore | undefined;
  try {
    // Keyed by the database's identity: snapshots of another database on the same Redis are never read.
    redis = opts.redisUrl ? await RedisSnapshotStore.open(opts.redisUrl, { keyPrefix: `${default_snapshot_key_prefix}${sql.instanceId}:` }) : undefined;
  } catch (error) {
    await sql.close(); // a malformed Redis URL: leave nothing open behind the error
    throw error;
  }
  // Fastest first: recovery reads them all at once and starts from the newest valid one (Redis on a tie).
  const snapshots: SnapshotStore[] = redis ? [redis, sql.snapshots] : [sql.snapshots];
  const snapshotNames = redis ? ['redis', sql.backend] : [sql.backend];
  return {
    journal: sql.journal,
    snapshots,
    snapshotNames,
    streams: sql.streams,
    skus: sql.skus,
    rules: sql.rules,
    projection: sql.projection,
    cardKeys: sql.cardKeys,
    outbox: sql.outbox,
    ...(sql.walCheckpointer ? { walCheckpointer: sql.walCheckpointer } : {}),
    ...(sql.sqliteWriter ? { sqliteWriter: sql.sqliteWriter } : {}),
    async ping() {
      const [sqlOk, redisOk] = await Promise.all([sql.ping(), redis?.ping()]);
      return redis ? { ...sqlOk, redis: redisOk === true } : sqlOk;
    },
    pingWrite: () => sql.pingWrite(),
    async close() {
      await Promise.allSettled([sql.close(), redis?.close()]);
    },
  };
}
