// Opens the SQL-backed stores on MariaDB/MySQL or on an embedded SQLite file, with the schema created
// or migrated at start, and the connection settings that make each backend bounded and durable:
// a small pool and a connect timeout on MySQL; WAL on SQLite with every durable commit's WAL frames
// synced before it resolves (off the event loop: wal-sync.ts), because a reply is only sent after its
// events are durably committed.
import { randomUUID } from 'node:crypto';
import { mkdirSync, realpathSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { DatabaseObjectExistsException, ExceptionConverter } from '@mikro-orm/core';
import { MikroORM as SqliteMikroORM, BetterSqliteDriver } from '@mikro-orm/better-sqlite';
import type { AbstractSqlConnection } from '@mikro-orm/knex';
import { MikroORM as MySqlMikroORM, MySqlDriver } from '@mikro-orm/mysql';
import { format as mysqlFormat } from 'mysql2';
import { StoreUnavailableError } from '../errors.ts';
import { SqliteWriter } from './sqlite-writer.ts';
import { WalCheckpointer } from './wal-checkpointer.ts';
import { WalSync } from './wal-sync.ts';
import type { SnapshotStore, Stores } from '../ports.ts';
import { SqlCardKeyStore } from './card-key-store.ts';
import { SqlDatabase, statement_timeout_ms, withDeadline } from './database.ts';
import { SqlDialect, type DialectName } from './dialect.ts';
import { entities } from './entities.ts';
import { SqlJournalStore } from './journal-store.ts';
import { mapSqlError } from './map-error.ts';
import { SqlOutboxStore } from './outbox-store.ts';
import { SqlProjectionStore } from './projection-store.ts';
import { SqlRuleStore } from './rule-store.ts';
import { SqlSkuStore } from './sku-store.ts';
import { SqlSnapshotStore } from './snapshot-store.ts';
import { SqlStreamStore } from './stream-store.ts';

/** Connections to MySQL: the journal's group commit needs few; more would only queue inside the server. */
export const mysql_pool_connections_max = 8;
/** Time to establish one MySQL connection, and to wait for a free one in the pool. */
export const mysql_connect_timeout_ms = 5_000;
/** How long SQLite waits for another process's write lock before failing the statement. */
export const sqlite_busy_timeout_ms = 5_000;
/** Opens tried when other processes keep creating the same schema at the same time. */
export const schema_attempts_max = 3;
/** Longest a starting node waits for another one to finish migrating the schema. */
export const schema_lock_wait_s = 60;
/** The database used when a MySQL URL names none. */
export const default_mysql_database = 'stampede';

/** The database a MySQL URL names (its path), or the default. */
export function mysqlDatabaseName(url: string): string {
  return decodeURIComponent(new URL(url).pathname.replace(/^\//, '')) || default_mysql_database;
}

export interface SqlStoresOptions {
  /** e.g. mysql://root@127.0.0.1:3306/stampede; wins over sqlitePath. */
  mysqlUrl?: string;
  /** The SQLite file, e.g. ./data/stampede.db; its folder is created. */
  sqlitePath?: string;
  /** Where MikroORM's own warnings and errors go (its query log stays off); silent when absent. */
  logger?: (message: string) => void;
  /** Longest one store call may take (default statement_timeout_ms). */
  statementTimeout_ms?: number;
  /** Longest opening may take: connecting, creating or migrating the schema (default open_timeout_ms). */
  openTimeout_ms?: number;
}

/**
 * Longest opening the stores may take. A database that accepts the login and then answers nothing
 * (a frozen disk, an overloaded server) must fail the start, not hang it.
 */
export const open_timeout_ms = 120_000;
/** Longest closing may wait for the pool's connections (a statement stuck on a silent database). */
export const close_timeout_ms = 10_000;

/** The parts of `Stores` that live in SQL (one snapshot store; `ping` answers `{ mysql }` or `{ sqlite }`). */
export interface SqlStores extends Omit<Stores, 'snapshots'> {
  backend: DialectName;
  snapshots: SnapshotStore;
  /** SQLite: what makes a commit durable (the WAL's fdatasync, shared by the commits made before it). */
  walSync?: WalSync;
  /** SQLite: the worker thread that checkpoints the WAL (absent when it could not start). */
  walCheckpointer?: WalCheckpointer;
  /** SQLite: the worker thread that makes the writes (absent when it could not start). */
  sqliteWriter?: SqliteWriter;
  /** This database's identity: a random id made the first time it was opened, the same ever after. */
  instanceId: string;
}

type AnyOrm = Awaited<ReturnType<typeof MySqlMikroORM.init>> | Awaited<ReturnType<typeof SqliteMikroORM.init>>;

/**
 * Opens the SQL stores. Rejects with StoreUnavailableError when the database cannot be reached
 * (within about mysql_connect_timeout_ms), never hangs.
 */
export async function openSqlStores(opts: SqlStoresOptions): Promise<SqlStores> {
  const logger = opts.logger ?? (() => {});
  const timeout_ms = opts.statementTimeout_ms ?? statement_timeout_ms;
  let opening: Promise<SqlStores>;
  if (opts.mysqlUrl) opening = open('mysql', () => initMySql(opts.mysqlUrl as string, logger), timeout_ms, undefined, logger);
  else if (opts.sqlitePath) {
    const file = resolve(opts.sqlitePath);
    opening = open('sqlite', () => initSqlite(file, logger), timeout_ms, { file, logger });
  } else throw new Error('openSqlStores: give mysqlUrl or sqlitePath');
  const open_ms = opts.openTimeout_ms ?? open_timeout_ms;
  try {
    return await withDeadline(opening, open_ms, 'opening the database');
  } catch (error) {
    // Opened after all, too late: closed, not leaked.
    // (A close that fails then has no one to tell: caught, not an unhandled rejection.)
    if (error instanceof StoreUnavailableError) void opening.then((stores) => stores.close(), () => undefined).catch(() => undefined);
    throw error;
  }
}

/** How often the WAL checkpointer copies the WAL into the database file. */
export const wal_checkpoint_interval_ms = 200;
/** The WAL is restarted from its beginning once it holds this many frames (4 KiB pages: ~32 MiB). */
export const wal_restart_frames = 8_192;
/**
 * How long a RESTART checkpoint waits for the writer (and for readers of older snapshots) while it
 * holds new writes back: the writer's transactions take milliseconds; a reader elsewhere (a backup)
 * may hold its snapshot for minutes, and writes must not wait for it (see WalCheckpointerOptions).
 */
export const wal_restart_wait_ms = 250;
/** SQLite's own default: checkpoint from a commit once the WAL holds this many pages (the fallback). */
const sqlite_autocheckpoint_pages = 1_000;

interface SqliteFile {
  file: string;
  logger: (message: string) => void;
}

async function open(backend: DialectName, init: () => Promise<AnyOrm>, timeout_ms: number, given?: SqliteFile, logger: (message: string) => void = () => {}): Promise<SqlStores> {
  let prepared = await prepare(backend, init);
  for (let attempt = 1; prepared === 'raced'; attempt += 1) {
    if (attempt >= schema_attempts_max) throw new Error(`open ${backend}: the schema kept changing under us`);
    prepared = await prepare(backend, init);
  }
  // The file SQLite writes, symlinks resolved (it exists now): its WAL is next to it, not to a link.
  const sqlite = given ? { ...given, file: realpathSync(given.file) } : undefined;
  const walSync = sqlite ? new WalSync(`${sqlite.file}-wal`) : undefined;
  const orm = prepared;
  const converter = orm.em.getPlatform().getExceptionConverter();
  const connection = orm.em.getConnection() as unknown as AbstractSqlConnection;
  const db = new SqlDatabase(connection, converter, new SqlDialect(backend), walSync, timeout_ms);
  let instanceId: string;
  let walCheckpointer: WalCheckpointer | undefined;
  let sqliteWriter: SqliteWriter | undefined;
  try {
    instanceId = await databaseInstanceId(db);
    if (backend === 'mysql') await checkMysqlServer(db, logger);
    if (sqlite) {
      sqliteWriter = await startWriter(db, sqlite, timeout_ms);
      walCheckpointer = await startCheckpointer(db, sqlite, sqliteWriter, walSync);
    }
  } catch (error) {
    await sqliteWriter?.stop();
    await orm.close(true);
    throw error;
  }
  return {
    backend,
    instanceId,
    journal: new SqlJournalStore(db),
    snapshots: new SqlSnapshotStore(db),
    streams: new SqlStreamStore(db),
    skus: new SqlSkuStore(db),
    rules: new SqlRuleStore(db),
    projection: new SqlProjectionStore(db),
    cardKeys: new SqlCardKeyStore(db),
    outbox: new SqlOutboxStore(db),
    ping: async () => ({ [backend]: await db.ping() }),
    pingWrite: () => db.pingWrite(),
    close: async () => {
      walSync?.close();
      await sqliteWriter?.stop();
      await walCheckpointer?.stop();
      // The pool waits for its connections in use: bounded, a stuck statement must not hold the stop.
      await withDeadline(orm.close(true), close_timeout_ms, 'closing the database').catch((error: unknown) => {
        if (!(error instanceof StoreUnavailableError)) throw error;
      });
    },
    ...(walSync ? { walSync } : {}),
    ...(walCheckpointer ? { walCheckpointer } : {}),
    ...(sqliteWriter ? { sqliteWriter } : {}),
  };
}

/**
 * Moves SQLite's writes off the engine's thread (sqlite-writer.ts). If the worker cannot start, or
 * fails later, the engine's own connection makes them, as before.
 */
async function startWriter(db: SqlDatabase, sqlite: SqliteFile, timeout_ms: number): Promise<SqliteWriter | undefined> {
  const writer = new SqliteWriter(sqlite.file, {
    busy_timeout_ms: sqlite_busy_timeout_ms,
    autocheckpoint_pages: sqlite_autocheckpoint_pages,
    // The callers' own deadline (SqlDatabase's): a write queued past it is not made (sqlite-writer.ts).
    deadline_ms: timeout_ms,
    onFailure: (error) => sqlite.logger(`${error.message}; SQLite writes on the engine's thread again`),
  });
  try {
    await writer.start();
  } catch (error) {
    sqlite.logger(`${(error as Error).message}; SQLite writes on the engine's thread`);
    return undefined;
  }
  db.useWriter(writer);
  return writer;
}

/**
 * Moves the WAL's checkpoints off the engine's thread (wal-checkpointer.ts). If the worker cannot
 * start, or fails later, the connection checkpoints on its commits again, as SQLite does by default.
 */
async function startCheckpointer(db: SqlDatabase, sqlite: SqliteFile, writer: SqliteWriter | undefined, walSync: WalSync | undefined): Promise<WalCheckpointer | undefined> {
  // A commit checkpoints on the connection that made it: set on both (the writer's, and this one,
  // which writes again if the writer fails).
  const automatic = async (pages: number) => {
    await db.all('sqlite.wal_autocheckpoint', `PRAGMA wal_autocheckpoint = ${pages}`);
    if (writer?.running) await writer.exec(`PRAGMA wal_autocheckpoint = ${pages}`);
  };
  const checkpointer = new WalCheckpointer(sqlite.file, {
    interval_ms: wal_checkpoint_interval_ms,
    restart_frames: wal_restart_frames,
    restart_wait_ms: wal_restart_wait_ms,
    deadline_ms: sqlite_busy_timeout_ms,
    onFailure: (error) => {
      // An I/O error on the WAL or the database file (the checkpointer syncs the WAL before copying
      // it): the kernel may have dropped pages, so no write is vouched for any more (wal-sync.ts).
      if (/^SQLITE_IOERR/.test(String((error as { code?: unknown }).code ?? ''))) walSync?.markFailed(error);
      sqlite.logger(`${error.message}; SQLite checkpoints on commits again`);
      automatic(sqlite_autocheckpoint_pages).catch((e: unknown) => sqlite.logger(`could not turn SQLite's checkpoints back on: ${(e as Error).message}`));
    },
  });
  await automatic(0);
  try {
    await checkpointer.start();
    return checkpointer;
  } catch (error) {
    sqlite.logger(`${(error as Error).message}; SQLite checkpoints on commits`);
    await automatic(sqlite_autocheckpoint_pages);
    return undefined;
  }
}

/**
 * Inits MikroORM, creates the database if missing and brings the schema up to date. 'raced' when
 * another process (a second node starting at the same moment) created the same database or table
 * first: the caller then starts over, and finds it there.
 */
async function prepare(backend: DialectName, init: () => Promise<AnyOrm>): Promise<AnyOrm | 'raced'> {
  let orm: AnyOrm;
  try {
    orm = await init();
  } catch (error) {
    throw mapSqlError(error, new ExceptionConverter(), `open ${backend}`);
  }
  try {
    // Additive only: a column or table this version no longer knows is left alone, never dropped.
    const update = () => orm.schema.updateSchema({ safe: true, dropTables: false });
    if (backend === 'mysql') {
      await orm.schema.ensureDatabase();
      await withSchemaLock(orm, update);
    } else {
      await update();
    }
    return orm;
  } catch (error) {
    await orm.close(true).catch(() => {});
    const mapped = mapSqlError(error, orm.em.getPlatform().getExceptionConverter(), `open ${backend}`);
    if (isSchemaRace(mapped)) return 'raced';
    throw mapped;
  }
}

/**
 * Runs `work` holding a MySQL named lock per database, so nodes starting together migrate the schema
 * one after the other (each diffing what the previous one left) instead of racing on CREATE TABLE.
 * The lock lives on one pooled connection, held by a transaction; `work` uses the others.
 */
async function withSchemaLock(orm: AnyOrm, work: () => Promise<void>): Promise<void> {
  const connection = orm.em.getConnection() as unknown as AbstractSqlConnection;
  const name = `stampede.schema.${orm.config.get('dbName')}`.slice(0, 64);
  const holder = await connection.begin();
  try {
    const rows = await connection.execute<{ locked: number | null }[]>(
      'SELECT GET_LOCK(?, ?) AS locked',
      [name, schema_lock_wait_s],
      'all',
      holder,
    );
    if (Number(rows[0]?.locked) !== 1) {
      throw new StoreUnavailableError(`open mysql: schema lock ${name} not granted within ${schema_lock_wait_s} s`);
    }
    await work();
  } finally {
    await connection.execute('SELECT RELEASE_LOCK(?)', [name], 'all', holder).catch(() => {});
    await connection.commit(holder).catch(() => {});
  }
}

/** Database exists (1007), table exists (1050), duplicate index name (1061), or SQLite's "already exists". */
function isSchemaRace(error: Error): boolean {
  if (error instanceof DatabaseObjectExistsException) return true;
  const errno = (error as { errno?: unknown }).errno;
  return errno === 1007 || errno === 1050 || errno === 1061 || /already exists/i.test(error.message);
}

/** The database's instance id: made once (the first opener's insert wins), read by every open. */
async function databaseInstanceId(db: SqlDatabase): Promise<string> {
  await db.run('identity.ensure', db.dialect.insertIgnore('store_identity', ['name', 'value'], 1), ['instance', randomUUID()]);
  const rows = await db.all<{ value: string }>('identity.read', 'SELECT value FROM store_identity WHERE name = ?', ['instance']);
  const id = rows[0]?.value;
  if (!id) throw new StoreUnavailableError('open: the database has no instance id');
  return id;
}

/**
 * mysql2's statement formatting. MikroORM inlines every value itself and hands mysql2 the finished
 * text with no values, which mysql2 would still scan from end to end for placeholders (skipping
 * quoted strings character by character): for a group commit's multi-row INSERT of hundreds of KiB
 * that scan cost ~3% of a reservation with purchase rules. Text without values goes as it is.
 */
export function formatMysqlQuery(sql: string, values: unknown, timezone?: string): string {
  if (values === undefined || values === null || (Array.isArray(values) && values.length === 0)) return sql;
  return mysqlFormat(sql, values as Parameters<typeof mysqlFormat>[1], false, timezone as never);
}

/** A group commit's write is at most ~8 MiB of SQL text per packet (database.ts); the server must take 16. */
export const mysql_packet_bytes_required = 16 * 1024 * 1024;

/**
 * The server settings a durable answer rests on. Refused: a max_allowed_packet under 16 MiB (a flash
 * sale's group commit would be refused mid-sale, each time), and sessions that start with autocommit
 * off (a single-statement write answered OK, its 201 sent, would sit uncommitted on its pooled
 * connection until something else committed or dropped it). Warned: a redo log not flushed at each
 * commit (innodb_flush_log_at_trx_commit other than 1), which loses the last second of answered
 * writes if the database host crashes (API.md: a 201 survives a crash of any process), and a binary log
 * not synced at each commit (log_bin on, sync_binlog other than 1: crash recovery rolls back the
 * transactions the binlog lost, answered ones among them). Refused too: sessions in the
 * NO_BACKSLASH_ESCAPES SQL mode — batched writes inline their values with mysql2's backslash
 * escaping, which that mode reads otherwise: a quote in a buyer's Idempotency-Key would end its string
 * and run what follows as SQL.
 */
export async function checkMysqlServer(db: Pick<SqlDatabase, 'all'>, logger: (message: string) => void): Promise<void> {
  const rows = await db.all<{ packet: Num; flush: Num; autocommit: Num; mode: string | null; logBin: Num; syncBinlog: Num }>(
    'open.server_settings',
    'SELECT @@max_allowed_packet AS packet, @@innodb_flush_log_at_trx_commit AS flush, @@session.autocommit AS autocommit, @@session.sql_mode AS mode, @@log_bin AS logBin, @@sync_binlog AS syncBinlog',
  );
  const packet = Number(rows[0]?.packet ?? 0);
  const flush = Number(rows[0]?.flush ?? 1);
  if (Number(rows[0]?.autocommit ?? 1) !== 1) {
    throw new Error('open mysql: sessions start with autocommit off (the server\'s autocommit or init_connect): Stampede\'s single-statement writes would stay uncommitted; set autocommit = 1');
  }
  if (String(rows[0]?.mode ?? '').toUpperCase().split(',').includes('NO_BACKSLASH_ESCAPES')) {
    throw new Error('open mysql: sessions run in the NO_BACKSLASH_ESCAPES SQL mode (the server\'s sql_mode or init_connect): Stampede\'s batched writes escape values with backslashes; remove NO_BACKSLASH_ESCAPES from sql_mode');
  }
  if (Number(rows[0]?.logBin ?? 0) === 1 && Number(rows[0]?.syncBinlog ?? 1) !== 1) {
    logger(`the server writes a binary log not synced at each commit (log_bin on, sync_binlog = ${String(rows[0]?.syncBinlog)}): a crash of the database host can roll back writes already answered (201s); set sync_binlog = 1 for the durability API.md promises`);
  }
  if (packet < mysql_packet_bytes_required) {
    throw new Error(`open mysql: the server's max_allowed_packet is ${packet} bytes; Stampede needs at least ${mysql_packet_bytes_required} (16 MiB) for its group commits: raise it (SET GLOBAL max_allowed_packet = 67108864, and in the server's configuration)`);
  }
  if (flush !== 1) {
    logger(`the server runs with innodb_flush_log_at_trx_commit = ${flush}: a crash of the database host can lose writes already answered (201s); set it to 1 for the durability API.md promises`);
  }
}

type Num = number | string | bigint;

async function initMySql(url: string, logger: (message: string) => void) {
  const dbName = mysqlDatabaseName(url);
  return MySqlMikroORM.init({
    driver: MySqlDriver,
    clientUrl: url,
    dbName,
    entities,
    // Connect lazily: the first statement is ensureDatabase, whose failure is ours to map and report.
    connect: false,
    ensureDatabase: false,
    allowGlobalContext: true,
    discovery: { warnWhenNoEntities: false },
    logger,
    charset: 'utf8mb4',
    // Ids are case-sensitive in the API (and in SQLite): compare them byte for byte here too.
    collate: 'utf8mb4_bin',
    pool: { min: 0, max: mysql_pool_connections_max },
    driverOptions: {
      acquireConnectionTimeout: mysql_connect_timeout_ms,
      connection: {
        connectTimeout: mysql_connect_timeout_ms,
        // Affected rows then count only rows really changed: an insert-ignore (dialect.ts) that met a
        // duplicate reports 0, so card-key uploads can say how many keys were new.
        flags: ['-FOUND_ROWS'],
        queryFormat: formatMysqlQuery,
        // A write batch goes as one query, `START TRANSACTION; ...; COMMIT` (database.ts, mysqlBatch).
        // Every value in our statements is inlined by mysql2's escaping or bound: no text of a client
        // is ever spliced in, so a second statement cannot be smuggled into one.
        multipleStatements: true,
      },
    },
  });
}

async function initSqlite(path: string, logger: (message: string) => void) {
  const file = resolve(path);
  mkdirSync(dirname(file), { recursive: true });
  return SqliteMikroORM.init({
    driver: BetterSqliteDriver,
    dbName: file,
    entities,
    ensureDatabase: false,
    allowGlobalContext: true,
    discovery: { warnWhenNoEntities: false },
    logger,
    pool: {
      // knex gives SQLite a single connection; set the durability pragmas on it (and on any
      // replacement) before it runs a statement.
      afterCreate: (conn: { pragma(sql: string): unknown }, done: (err: Error | null, conn: unknown) => void) => {
        try {
          // WAL, synchronous=NORMAL: a commit does not fsync on the event loop; a durable write
          // then syncs the WAL off it (wal-sync.ts). Without WAL that would not be durable: refuse.
          const mode = conn.pragma('journal_mode = WAL') as { journal_mode?: string }[];
          if (mode[0]?.journal_mode !== 'wal') throw new Error(`SQLite refused WAL mode (journal_mode is ${mode[0]?.journal_mode})`);
          conn.pragma('synchronous = NORMAL');
          conn.pragma(`busy_timeout = ${sqlite_busy_timeout_ms}`);
          done(null, conn);
        } catch (error) {
          done(error as Error, conn);
        }
      },
    },
    driverOptions: { acquireConnectionTimeout: sqlite_busy_timeout_ms * 2 },
  });
}
