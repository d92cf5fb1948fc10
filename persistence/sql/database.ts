// The one door every SQL store uses to reach the database: raw statements (never MikroORM's unit of
// work) on the connections MikroORM opened and pools — on MySQL straight on a pooled mysql2
// connection where the values allow it, transactions included; on SQLite cached prepared statements,
// writes on the writer thread (sqlite-writer.ts) — a time bound on each call, and the error mapping
// of map-error.ts applied to everything that fails. MikroORM owns the schema (open.ts).
import type { ExceptionConverter } from '@mikro-orm/core';
import type { AbstractSqlConnection } from '@mikro-orm/knex';
import { format as mysqlFormat } from 'mysql2';
import { StoreUnavailableError } from '../errors.ts';
import type { SqlDialect } from './dialect.ts';
import { mapSqlError, type DuplicateMeaning } from './map-error.ts';
import { WriterTransaction, type SqliteWriter, type WriterRunResult } from './sqlite-writer.ts';
import type { WalSync } from './wal-sync.ts';

/** Longest a store call may take before the caller is told the database is unavailable. */
export const statement_timeout_ms = 15_000;

/** The transaction handle a store passes back to `all` / `run` inside `transaction`. */
export type SqlTransaction = Parameters<Parameters<AbstractSqlConnection['transactional']>[0]>[0];

/**
 * `flushed`: durable when the transaction resolves (SQLite: the WAL synced after the commit, off the
 * event loop, see wal-sync.ts). `rebuildable`: what the engine can rebuild from the journal (the
 * read model, its outbox rows and checkpoints): on SQLite committed without a sync of its own (it
 * survives a crash of the process, and the next flushed commit syncs it with the WAL; only an OS
 * crash can lose the tail, and the projector then projects that part of the journal again). MySQL
 * ignores it.
 */
export type TransactionDurability = 'flushed' | 'rebuildable';

/** A better-sqlite3 connection, as knex's pool hands it out. */
interface SqliteConnection {
  prepare(sql: string): SqliteStatement;
  readonly inTransaction: boolean;
  readonly open: boolean;
}

/**
 * A transaction on MySQL straight on a pooled mysql2 connection, held until it ends: START
 * TRANSACTION, its statements as text formatted by mysql2, COMMIT. Through MikroORM's `transactional`
 * each statement went through knex's transaction client and runner: ~10% of the engine's thread in
 * bench:payments (the read model's batches, card-key assignments).
 */
class MysqlTransaction {
  closed = false;
  /** START TRANSACTION was sent: it goes in one packet with the first statement (one round trip less). */
  started = false;
  constructor(readonly conn: RawMysqlConnection) {}
}

/** Runs one statement of a transaction; the first carries the START TRANSACTION in the same packet. */
async function inMysqlTransaction<T>(trx: MysqlTransaction, sql: string, params: readonly unknown[]): Promise<T> {
  const conn = openMysql(trx);
  if (trx.started) return rawMysql<T>(conn, sql, params);
  trx.started = true;
  const results = await rawMysql<unknown[]>(conn, `START TRANSACTION;\n${formatted(sql, params)}`, []);
  if (!Array.isArray(results) || results.length !== 2) throw new Error(`START TRANSACTION with a statement answered ${Array.isArray(results) ? results.length : 'one'} result(s)`);
  return results[1] as T;
}

/** A statement's text with its values inlined by mysql2's escaping. */
function formatted(sql: string, params: readonly unknown[]): string {
  return params.length === 0 ? sql : mysqlFormat(sql, params as Parameters<typeof mysqlFormat>[1]);
}

/** The row of `store_identity` that pingWrite() writes (its value: when, in ms since the epoch). */
export const WRITE_PROBE_ROW = 'write_probe';

/** Runs one statement as text on a raw mysql2 connection. */
function rawMysql<T>(conn: RawMysqlConnection, sql: string, params: readonly unknown[]): Promise<T> {
  const text = formatted(sql, params);
  return new Promise<T>((resolve, reject) => conn.query(text, (error, result) => (error ? reject(error) : resolve(result as T))));
}

/** Runs `run` (which opened a transaction on `conn`); if it throws, the transaction is rolled back first. */
export async function rolledBackOnError<T>(conn: RawMysqlConnection, run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (error) {
    // A lost connection rolled back already (and the pool drops it); otherwise undo what was done. A
    // ROLLBACK that fails leaves the connection in doubt (a transaction may still be open on it: the
    // next autocommit statement on it would be answered OK and never committed): it is destroyed, and
    // the pool drops it and opens another.
    await rawMysql(conn, 'ROLLBACK', []).catch(() => {
      conn.stream?.destroy();
      conn.destroy();
    });
    throw error;
  }
}

/** A transaction on SQLite: the connection it holds, until it ends. */
class SqliteTransaction {
  closed = false;
  constructor(readonly db: SqliteConnection) {}
}

/** Prepared statements kept per SQLite connection (statements with IN lists vary; past it, start afresh). */
const SQLITE_STATEMENTS_CACHED_MAX = 256;

/** better-sqlite3 binds numbers, strings, bigints, buffers and null; knex turned booleans into 0/1. */
function sqliteParams(params: readonly unknown[]): unknown[] {
  return params.map((p) => (typeof p === 'boolean' ? (p ? 1 : 0) : p === undefined ? null : p));
}

function runResult(res: { changes: number; lastInsertRowid: number | bigint }): RunResult {
  return { affectedRows: res.changes, insertId: Number(res.lastInsertRowid) };
}

/** A mysql2 OK packet as a RunResult. */
function okPacketResult(res: { affectedRows?: number; insertId?: number }): RunResult {
  return { affectedRows: Number(res.affectedRows ?? 0), insertId: Number(res.insertId ?? 0) };
}

/**
 * Writes a reply waits for (the journal's group commit; /readyz's write probe, which a busy read
 * model must not fail): on SQLite's writer thread they go before the writes nobody waits for (the read
 * model's batches, trims, cursors) that are queued at the time.
 */
const URGENT_WRITES: ReadonlySet<string> = new Set(['journal.append', 'projection.saveAnswers', 'write.probe']);

function isUrgent(operation: string): boolean {
  return URGENT_WRITES.has(operation);
}

/** The connection of an open MySQL transaction (a statement after its end is a programmer mistake). */
function openMysql(trx: MysqlTransaction): RawMysqlConnection {
  if (trx.closed) throw new Error('a MySQL statement was given a transaction that is not open');
  return trx.conn;
}

/** Rows from the writer's thread: a BLOB crosses as a Uint8Array; callers expect Buffers, as on this thread. */
function blobsAsBuffers<T>(rows: T[]): T[] {
  for (const row of rows as Record<string, unknown>[]) {
    for (const k in row) {
      const v = row[k];
      if (v instanceof Uint8Array && !Buffer.isBuffer(v)) row[k] = Buffer.from(v.buffer, v.byteOffset, v.byteLength);
    }
  }
  return rows;
}

/** A prepared better-sqlite3 statement. */
interface SqliteStatement {
  run(...params: unknown[]): { changes: number; lastInsertRowid: number | bigint };
  all(...params: unknown[]): unknown[];
}

/** The callback API of the pooled mysql2 connection under knex. */
export interface RawMysqlConnection {
  execute(sql: string, params: unknown[], callback: (error: Error | null, result: unknown) => void): void;
  query(sql: string, callback: (error: Error | null, result: unknown) => void): void;
  /** Ends the connection (a FIN: the pool drops it); see `stream`. */
  destroy(): void;
  /** Its socket: destroyed at once, pending commands fail. */
  readonly stream?: { destroy(): void };
}

/** Values mysql2's escaping inlines exactly as MikroORM's would: strings, finite numbers, bigints, null, bytes. */
function rawParams(params: readonly unknown[]): boolean {
  for (const p of params) {
    const t = typeof p;
    if (t === 'string' || t === 'bigint' || p === null || (t === 'number' && Number.isFinite(p)) || Buffer.isBuffer(p)) continue;
    return false;
  }
  return true;
}

export interface RunResult {
  affectedRows: number;
  insertId: number;
}

/** One statement of a batch: its SQL and the values of its placeholders. */
export interface SqlStatement {
  sql: string;
  params: readonly unknown[];
}

/** A statement of a checked batch: `rows` for a SELECT (its result is the rows), else a write (a RunResult). */
export interface CheckedStatement extends SqlStatement {
  rows?: true;
  /**
   * What the batch's `decide` checks of this statement's result, as a boolean SQL expression that
   * MySQL evaluates right after the statement in its transaction (`ROW_COUNT()` is then this
   * statement's count) and that is true exactly when `decide` accepts the result (given that the
   * guards before it held). A SELECT with a guard is read for its check only: `guardedBatch` sends
   * the guard in its place.
   */
  guard?: SqlStatement;
}

/**
 * The MySQL statement that fails the batch (error 1242, "Subquery returns more than 1 row") when a
 * guard is false, so that the COMMIT after it in the same packet never runs. DO would not do: it
 * turns the error into a warning. NULL counts as true (the WHERE drops it); guards compare counts.
 */
function guardStatement(guard: SqlStatement): SqlStatement {
  return { sql: `SET @stampede_guard = (SELECT 1 UNION ALL SELECT 1 FROM DUAL WHERE NOT (${guard.sql}))`, params: guard.params };
}

/** MySQL's answer to a guard found false (ER_SUBQUERY_NO_1_ROW). */
const guard_failed_errno = 1242;

export class SqlDatabase {
  /** SQLite: the worker thread that makes the writes (sqlite-writer.ts), while it runs. */
  private writer: SqliteWriter | undefined;

  constructor(
    private readonly connection: AbstractSqlConnection,
    private readonly converter: ExceptionConverter,
    readonly dialect: SqlDialect,
    /** SQLite: makes a commit durable (the connection runs synchronous=NORMAL in WAL mode). */
    private readonly walSync?: WalSync,
    /** Longest a call may take before its caller is told the database is unavailable. */
    private readonly timeout_ms: number = statement_timeout_ms,
  ) {}

  /**
   * SQLite: from now on writes (and transactions) go to `writer` while it runs; reads stay on this
   * connection. When the writer has failed, writes come back here.
   */
  useWriter(writer: SqliteWriter): void {
    this.writer = writer;
  }

  /**
   * The SQLite writer, if writes go to it now; undefined when they go to this connection (no writer, or
   * it failed and its thread is gone). Throws StoreUnavailableError while a failed writer's thread is
   * still stuck (see SqliteWriter.failedAndHolding): a write here would block the event loop.
   */
  private runningWriter(): SqliteWriter | undefined {
    const w = this.writer;
    if (w === undefined) return undefined;
    if (w.running) return w;
    if (w.failedAndHolding) throw new StoreUnavailableError('SQLite writer: failed, and its thread has not let go of the database yet');
    return undefined;
  }

  /** After a durable write on SQLite: its WAL frames on disk. */
  private async synced<T>(result: T): Promise<T> {
    if (this.walSync) await this.walSync.sync();
    return result;
  }

  /** Rows of a SELECT. */
  async all<T>(operation: string, sql: string, params: readonly unknown[] = [], trx?: SqlTransaction): Promise<T[]> {
    // On SQLite: a cached prepared statement, without knex's ~100 µs per call (measured: the
    // idempotency lookup of every keyed order went through here).
    if (this.dialect.name !== 'mysql') {
      if (trx instanceof WriterTransaction) {
        return this.call(operation, async () => blobsAsBuffers(await this.writer!.inTransaction<T[]>(trx, 'all', sql, sqliteParams(params))));
      }
      const free = trx === undefined ? this.freeSqlite() : undefined;
      // No deadline timer: a synchronous call returns before any timer could fire.
      if (free) return this.mapped(operation, async () => this.sqliteStatement(free, sql).all(...sqliteParams(params)) as T[]);
      return this.call(operation, async () => this.onSqlite(trx, sql, (statement) => statement.all(...sqliteParams(params)) as T[]));
    }
    if (trx instanceof MysqlTransaction) return this.call(operation, () => inMysqlTransaction<T[]>(trx, sql, params));
    if (trx === undefined && rawParams(params)) return this.mapped(operation, () => this.mysqlQuery<T[]>(sql, params));
    return this.call(operation, () => this.connection.execute<T[] & object[]>(sql, [...params], 'all', trx));
  }

  /** A statement that writes; returns the affected rows (for insert-ignore: the rows inserted). */
  async run(
    operation: string,
    sql: string,
    params: readonly unknown[] = [],
    trx?: SqlTransaction,
    duplicate: DuplicateMeaning = 'duplicate_key',
  ): Promise<RunResult> {
    if (this.dialect.name !== 'mysql') {
      // Autocommit: durable before it resolves. Inside a transaction: its commit syncs.
      if (trx instanceof WriterTransaction) {
        return this.call(operation, async () => runResult(await this.writer!.inTransaction<WriterRunResult>(trx, 'run', sql, sqliteParams(params))), duplicate);
      }
      const writer = trx === undefined ? this.runningWriter() : undefined;
      if (writer) return this.call(operation, async () => this.synced(runResult(await writer.run(sql, sqliteParams(params), isUrgent(operation)))), duplicate);
      return this.call(operation, async () => {
        const result = await this.onSqlite(trx, sql, (statement) => runResult(statement.run(...sqliteParams(params))));
        return trx === undefined ? this.synced(result) : result;
      }, duplicate);
    }
    if (trx === undefined && rawParams(params)) {
      return this.mapped(operation, async () => okPacketResult(await this.mysqlQuery<{ affectedRows?: number; insertId?: number }>(sql, params)), duplicate);
    }
    return this.call(
      operation,
      async () =>
        okPacketResult(
          trx instanceof MysqlTransaction
            ? await inMysqlTransaction<{ affectedRows?: number; insertId?: number }>(trx, sql, params)
            : await this.connection.execute<{ affectedRows?: number; insertId?: number }>(sql, [...params], 'run', trx),
        ),
      duplicate,
    );
  }

  /**
   * An autocommit statement on MySQL straight on a pooled mysql2 connection: the values inlined by
   * mysql2's own escaping, the text sent as it is. MikroORM's execute and knex's runner around each
   * statement cost ~10% of a purchase with rules (its buyers' journal reads and writes), measured.
   * Values are primitives or bytes only (see rawParams); anything else keeps MikroORM's path.
   */
  private mysqlQuery<T>(sql: string, params: readonly unknown[]): Promise<T> {
    return this.onMysqlConnection((conn) => rawMysql<T>(conn, sql, params));
  }

  /**
   * Runs `use` on a connection of MikroORM's pool, held until `use` settles — or, past the call's
   * deadline, destroyed: a statement that got no answer (a network partition, a database failover
   * behind the same address) would otherwise keep its connection until TCP gives up (two hours),
   * and a few of them empty the pool long after the database is back. The pool drops a destroyed
   * connection and opens a new one. What the statement did is unknown to the caller (it may have
   * committed, as any statement whose answer was lost): StoreUnavailableError says so.
   */
  private async onMysqlConnection<T>(use: (conn: RawMysqlConnection) => Promise<T>, timeout_ms = this.timeout_ms): Promise<T> {
    const client = this.connection.getKnex().client as { acquireConnection(): Promise<RawMysqlConnection>; releaseConnection(c: RawMysqlConnection): Promise<void> };
    // One deadline for the pool wait and the work (the call's only timer: see `mapped`).
    let conn: RawMysqlConnection | undefined;
    let late = false;
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        late = true;
        // The socket itself (mysql2's destroy() only ends it politely, waiting on a silent peer).
        conn?.stream?.destroy();
        conn?.destroy();
        reject(new StoreUnavailableError(`no answer from the database within ${timeout_ms} ms${conn ? ': its connection was closed' : ''}`));
      }, timeout_ms);
    });
    const acquired = client.acquireConnection();
    // Handed over after the deadline: given straight back.
    void acquired.then(
      (c) => {
        if (late && !conn) void client.releaseConnection(c);
      },
      () => undefined,
    );
    try {
      conn = await Promise.race([acquired, deadline]);
      return await Promise.race([use(conn), deadline]);
    } finally {
      clearTimeout(timer);
      if (conn) await client.releaseConnection(conn);
    }
  }

  /**
   * Writes that need no answer between them, in one transaction (in order; all or none). On SQLite
   * with the writer they go to its thread as one message (sqlite-writer.ts); elsewhere it is
   * `transaction` with one statement after the other. Returns each statement's result.
   */
  async batch(
    operation: string,
    statements: readonly SqlStatement[],
    duplicate: DuplicateMeaning = 'duplicate_key',
    durability: TransactionDurability = 'flushed',
  ): Promise<RunResult[]> {
    if (statements.length === 0) return [];
    if (this.dialect.name === 'mysql') return this.mapped(operation, () => this.mysqlBatch(statements), duplicate);
    const writer = this.runningWriter();
    if (writer) {
      return this.call(operation, async () => {
        const steps = statements.map((s) => ({ sql: s.sql, params: sqliteParams(s.params) }));
        const results = (await writer.batch(steps, isUrgent(operation))).map(runResult);
        return durability === 'flushed' ? this.synced(results) : results;
      }, duplicate);
    }
    return this.transaction(
      operation,
      async (trx) => {
        const results: RunResult[] = [];
        for (const s of statements) results.push(await this.run(operation, s.sql, s.params, trx, duplicate));
        return results;
      },
      duplicate,
      durability,
    );
  }

  /**
   * Statements in one transaction whose results `decide` reads before it commits: if it throws, the
   * transaction is rolled back and its error is thrown as it is (not mapped). On MySQL the
   * statements go in one packet with START TRANSACTION, then COMMIT: two round trips however many
   * statements (one at a time each was a round trip, the card-key assignment's four). Elsewhere,
   * `transaction` with one statement after the other.
   */
  async checkedBatch<T>(
    operation: string,
    statements: readonly CheckedStatement[],
    decide: (results: (RunResult | unknown[])[]) => T,
    duplicate: DuplicateMeaning = 'duplicate_key',
  ): Promise<T> {
    // What `decide` throws is its caller's, rethrown as itself once the rollback is done.
    let decided: { error: unknown } | undefined;
    const judged = (results: (RunResult | unknown[])[]): T => {
      try {
        return decide(results);
      } catch (error) {
        decided = { error };
        throw error;
      }
    };
    try {
      if (this.dialect.name !== 'mysql') {
        return await this.transaction(
          operation,
          async (trx) => {
            const results: (RunResult | unknown[])[] = [];
            for (const s of statements) results.push(s.rows ? await this.all(operation, s.sql, s.params, trx) : await this.run(operation, s.sql, s.params, trx, duplicate));
            return judged(results);
          },
          duplicate,
        );
      }
      return await this.mapped(
        operation,
        () =>
          this.onMysqlConnection((conn) =>
            rolledBackOnError(conn, async () => {
              const texts = ['START TRANSACTION', ...statements.map((s) => formatted(s.sql, s.params))];
              const raw: unknown[] = [];
              for (const packet of packets(texts, mysql_packet_bytes_max)) {
                const answered = await rawMysql<unknown>(conn, packet.join(';\n'), []);
                const list = packet.length === 1 ? [answered] : answered;
                if (!Array.isArray(list) || list.length !== packet.length) throw new Error(`a packet of ${packet.length} statements answered ${Array.isArray(list) ? list.length : 'one'} result(s)`);
                raw.push(...list);
              }
              const results = raw.slice(1).map((r, i) => (statements[i]!.rows ? (r as unknown[]) : okPacketResult(r as { affectedRows?: number; insertId?: number })));
              const value = judged(results);
              await rawMysql(conn, 'COMMIT', []);
              return value;
            }),
          ),
        duplicate,
      );
    } catch (error) {
      if (decided) throw decided.error;
      throw error;
    }
  }

  /**
   * `checkedBatch` in one round trip on MySQL: each check of `decide` is a statement's guard, and the
   * packet is `START TRANSACTION; <each statement and its guard>; COMMIT` — a false guard stops the
   * server before the COMMIT and the transaction is rolled back. The checked batch's second round
   * trip (its COMMIT after `decide` read the results) was on the payment path's critical path, once
   * per card-key delivery write. A false guard runs the batch again as `checkedBatch`, so `decide`
   * names what conflicted (it throws its caller's error, as before) — or, if what the guard saw has
   * changed meanwhile, the batch commits then. Elsewhere than MySQL, `checkedBatch` itself. Every
   * statement that `decide` reads must have a guard.
   */
  async guardedBatch(
    operation: string,
    statements: readonly CheckedStatement[],
    decide: (results: (RunResult | unknown[])[]) => void,
    duplicate: DuplicateMeaning = 'duplicate_key',
  ): Promise<void> {
    if (this.dialect.name !== 'mysql') return this.checkedBatch(operation, statements, decide, duplicate);
    const sent: SqlStatement[] = [];
    for (const s of statements) {
      if (!s.rows) sent.push(s);
      if (s.guard) sent.push(guardStatement(s.guard));
    }
    // mysqlBatch: one packet with START TRANSACTION and COMMIT, rolled back when a statement fails.
    const committed = await this.mapped(
      operation,
      () => this.mysqlBatch(sent).then(
        () => true,
        (error: unknown) => {
          if ((error as { errno?: unknown }).errno === guard_failed_errno) return false;
          throw error;
        },
      ),
      duplicate,
    );
    if (!committed) await this.checkedBatch(operation, statements, decide, duplicate);
  }

  /** Runs `work` in one transaction: committed when it resolves, rolled back when it throws. */
  async transaction<T>(
    operation: string,
    work: (trx: SqlTransaction) => Promise<T>,
    duplicate: DuplicateMeaning = 'duplicate_key',
    durability: TransactionDurability = 'flushed',
  ): Promise<T> {
    if (this.dialect.name !== 'mysql') {
      const writer = this.runningWriter();
      if (writer) {
        return this.call(operation, async () => {
          const result = await writer.transaction((trx) => work(trx as unknown as SqlTransaction));
          return durability === 'flushed' ? this.synced(result) : result;
        }, duplicate);
      }
      return this.call(operation, () => this.sqliteTransaction(work, durability), duplicate);
    }
    return this.mapped(operation, () => this.mysqlTransaction(work), duplicate);
  }

  /**
   * A batch on MySQL as ONE query: `START TRANSACTION; <each statement>; COMMIT`, sent in one packet
   * and answered in one round trip (the connection allows multiple statements, open.ts). One
   * statement at a time it was a round trip each, BEGIN and COMMIT included, and every one a socket
   * write: in a CPU profile of bench:payments mysql2's socket writes were ~10% of the engine's thread.
   * A failing statement stops the server there, before the COMMIT: the transaction is rolled back.
   */
  private mysqlBatch(statements: readonly SqlStatement[]): Promise<RunResult[]> {
    return this.onMysqlConnection((conn) =>
      rolledBackOnError(conn, async () => {
        const texts = ['START TRANSACTION', ...statements.map((s) => formatted(s.sql, s.params)), 'COMMIT'];
        const out: RunResult[] = [];
        // Packets within the server's max_allowed_packet (16 MiB by default): one transaction, as
        // few round trips as the size allows (one, nearly always).
        for (const packet of packets(texts, mysql_packet_bytes_max)) {
          const results = await rawMysql<unknown>(conn, packet.join(';\n'), []);
          const list = packet.length === 1 ? [results] : results;
          if (!Array.isArray(list) || list.length !== packet.length) {
            throw new Error(`batch of ${statements.length} statements answered ${Array.isArray(list) ? list.length : 'one'} result(s) to a packet of ${packet.length}`);
          }
          for (const r of list as { affectedRows?: number; insertId?: number }[]) out.push({ affectedRows: Number(r.affectedRows ?? 0), insertId: Number(r.insertId ?? 0) });
        }
        return out.slice(1, -1);
      }),
    );
  }

  /** A transaction on a pooled mysql2 connection held for its whole length (see MysqlTransaction). */
  private mysqlTransaction<T>(work: (trx: SqlTransaction) => Promise<T>): Promise<T> {
    return this.onMysqlConnection((conn) => {
      const trx = new MysqlTransaction(conn);
      return rolledBackOnError(conn, async () => {
        // START TRANSACTION rides with the work's first statement (inMysqlTransaction).
        const result = await work(trx as unknown as SqlTransaction);
        if (trx.started) await rawMysql(conn, 'COMMIT', []);
        return result;
      }).finally(() => {
        trx.closed = true;
      });
    });
  }

  /**
   * A transaction straight on the better-sqlite3 connection, held for its whole length (the pool
   * has one, so other callers wait for it as they would for knex's): BEGIN IMMEDIATE, the work's
   * statements through cached prepared statements, COMMIT; ROLLBACK when the work throws.
   */
  private async sqliteTransaction<T>(work: (trx: SqlTransaction) => Promise<T>, durability: TransactionDurability): Promise<T> {
    const client = this.sqliteClient();
    const db = await client.acquireConnection();
    this.sqliteDb = db;
    const trx = new SqliteTransaction(db);
    let result: T;
    this.sqliteTransactionsOpen++;
    try {
      this.sqliteStatement(db, 'BEGIN IMMEDIATE').run();
      result = await work(trx as unknown as SqlTransaction);
      this.sqliteStatement(db, 'COMMIT').run();
    } catch (error) {
      if (db.inTransaction) this.sqliteStatement(db, 'ROLLBACK').run();
      throw error;
    } finally {
      trx.closed = true;
      this.sqliteTransactionsOpen--;
      await client.releaseConnection(db);
    }
    // The connection is free for the next transaction while this one's WAL frames reach the disk.
    return durability === 'flushed' ? this.synced(result) : result;
  }

  /** True when a trivial query answers within `timeout_ms`. */
  async ping(timeout_ms = 2_000): Promise<boolean> {
    // SQLite after a failed fsync: reachable, but no write can be made durable (wal-sync.ts).
    if (this.walSync?.failed) return false;
    try {
      // On MySQL through the pool with a deadline that closes the connection: a ping that got no
      // answer (a silent database) must not keep its connection taken — a probe every few seconds
      // emptied the pool for every purchase until TCP gave up, long after the database was back.
      if (this.dialect.name === 'mysql') await this.onMysqlConnection((conn) => rawMysql(conn, 'SELECT 1', []), timeout_ms);
      else await withDeadline(this.connection.execute('SELECT 1', [], 'all'), timeout_ms, 'ping');
      return true;
    } catch {
      return false;
    }
  }

  /**
   * True when a durable write answers within `timeout_ms`: one upsert of the `write_probe` row of
   * `store_identity`, made the way every write is (on SQLite through the writer thread and the WAL's
   * sync). A database that answers reads but refuses or holds writes (read-only after a failover, a
   * full disk, a lock held on the table) passes ping() and fails this.
   */
  async pingWrite(timeout_ms = 2_000): Promise<boolean> {
    if (this.walSync?.failed) return false;
    const sql = this.dialect.upsert('store_identity', ['name', 'value'], ['name'], 1);
    const params = [WRITE_PROBE_ROW, String(Date.now())];
    try {
      // On MySQL with a deadline that closes the connection, as ping() (a held write must not keep it).
      if (this.dialect.name === 'mysql') await this.onMysqlConnection((conn) => rawMysql(conn, sql, params), timeout_ms);
      else await withDeadline(this.run('write.probe', sql, params), timeout_ms, 'write probe');
      return true;
    } catch {
      return false;
    }
  }

  /**
   * One autocommit statement with binary parameters, as a prepared statement straight on the driver
   * (the journal's hot write). On MySQL it goes over the binary protocol to a pooled mysql2
   * connection, so a blob travels as bytes, not as hex in the SQL text knex would build; on SQLite
   * it is a cached better-sqlite3 statement, without knex's per-call work.
   */
  async runBinary(operation: string, sql: string, params: readonly unknown[], duplicate: DuplicateMeaning = 'duplicate_key'): Promise<RunResult> {
    if (this.dialect.name !== 'mysql') return this.call(operation, async () => this.synced(await this.runSqlite(operation, sql, params)), duplicate);
    return this.mapped(
      operation,
      () =>
        this.onMysqlConnection(async (conn) => {
          const res = await new Promise<{ affectedRows?: number; insertId?: number }>((resolve, reject) =>
            conn.execute(sql, params as unknown[], (error, result) => (error ? reject(error) : resolve(result as { affectedRows?: number }))),
          );
          return okPacketResult(res);
        }),
      duplicate,
    );
  }

  /** Prepared statements per SQLite connection object (a replaced connection starts afresh). */
  private sqliteStatements = new WeakMap<object, Map<string, SqliteStatement>>();
  /** The pool's one SQLite connection, as last handed out (see freeSqlite). */
  private sqliteDb: SqliteConnection | undefined;
  /** Transactions of this process holding the SQLite connection across awaits (sqliteTransaction). */
  private sqliteTransactionsOpen = 0;

  /**
   * The SQLite connection when no transaction holds it: a statement outside a transaction runs on it
   * at once. better-sqlite3 is synchronous, so nothing interleaves with the statement; the pool's
   * acquire and release (tarn's pending operation, its promises and timers) cost more than a point
   * read, and ~10% of the replay's allocations (docs/performance.md, "Session 16"). A statement while
   * a transaction is open waits for the connection (onSqlite): it must not run inside that transaction.
   */
  private freeSqlite(): SqliteConnection | undefined {
    const db = this.sqliteDb;
    return db !== undefined && this.sqliteTransactionsOpen === 0 && db.open && !db.inTransaction ? db : undefined;
  }

  private async runSqlite(operation: string, sql: string, params: readonly unknown[]): Promise<RunResult> {
    const writer = this.runningWriter();
    if (writer) return runResult(await writer.run(sql, params, isUrgent(operation)));
    return this.onSqlite(undefined, sql, (statement) => runResult(statement.run(...params)));
  }

  private sqliteClient(): { acquireConnection(): Promise<SqliteConnection>; releaseConnection(c: unknown): Promise<void> } {
    return this.connection.getKnex().client as { acquireConnection(): Promise<SqliteConnection>; releaseConnection(c: unknown): Promise<void> };
  }

  /** Runs one statement inside `trx` (its connection is held) or on a connection taken for it. */
  private async onSqlite<R>(trx: SqlTransaction | undefined, sql: string, use: (statement: SqliteStatement) => R): Promise<R> {
    if (trx !== undefined) {
      if (!(trx instanceof SqliteTransaction) || trx.closed) throw new Error('a SQLite statement was given a transaction that is not open');
      return use(this.sqliteStatement(trx.db, sql));
    }
    const free = this.freeSqlite();
    if (free) return use(this.sqliteStatement(free, sql));
    const client = this.sqliteClient();
    const db = await client.acquireConnection();
    this.sqliteDb = db;
    try {
      return use(this.sqliteStatement(db, sql));
    } finally {
      await client.releaseConnection(db);
    }
  }

  private sqliteStatement(db: SqliteConnection, sql: string): SqliteStatement {
    let cache = this.sqliteStatements.get(db);
    if (!cache) this.sqliteStatements.set(db, (cache = new Map()));
    let statement = cache.get(sql);
    if (!statement) {
      if (cache.size >= SQLITE_STATEMENTS_CACHED_MAX) cache.clear();
      statement = db.prepare(sql);
      cache.set(sql, statement);
    }
    return statement;
  }

  /** Runs `fn` within the call's deadline, its errors mapped (map-error.ts). */
  private call<T>(operation: string, fn: () => Promise<T>, duplicate?: DuplicateMeaning): Promise<T> {
    return this.mapped(operation, () => withDeadline(fn(), this.timeout_ms, operation), duplicate);
  }

  /** Runs `fn`, its errors mapped: for work bounded by its own deadline (onMysqlConnection), not two timers a call. */
  private async mapped<T>(operation: string, fn: () => Promise<T>, duplicate?: DuplicateMeaning): Promise<T> {
    try {
      return await fn();
    } catch (error) {
      throw mapSqlError(error, this.converter, operation, duplicate);
    }
  }
}

/** Bytes of SQL text in one packet of a batch, at most (MariaDB's default max_allowed_packet is 16 MiB). */
export const mysql_packet_bytes_max = 8 * 1024 * 1024;

/** `texts` in order, grouped so that each group joined stays within `bytes_max` (a longer text goes alone). */
export function packets(texts: readonly string[], bytes_max: number): string[][] {
  const out: string[][] = [];
  let current: string[] = [];
  let bytes = 0;
  for (const t of texts) {
    const size = Buffer.byteLength(t) + 2;
    if (current.length > 0 && bytes + size > bytes_max) {
      out.push(current);
      current = [];
      bytes = 0;
    }
    current.push(t);
    bytes += size;
  }
  if (current.length > 0) out.push(current);
  return out;
}

/**
 * Rejects with StoreUnavailableError when `promise` has not settled after `ms`. The statement may
 * still complete in the background: to the caller its outcome is unknown, which is what that error means.
 */
export function withDeadline<T>(promise: Promise<T>, ms: number, operation: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new StoreUnavailableError(`${operation}: no answer from the database within ${ms} ms`)),
      ms,
    );
  });
  return Promise.race([promise, deadline]).finally(() => clearTimeout(timer));
}
