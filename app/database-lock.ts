// One node per MySQL database, as there is one per data folder on the embedded default
// (app/data-dir-lock.ts, for the same reasons: each node keeps its own catalog, rules and actors in
// memory, so two on one database break each other's writes and purchase rules). The node holds the
// named lock `stampede.node.<database>` on a connection of its own from start to stop. MySQL releases
// a named lock when its connection ends, so a node that dies however it dies lets go of it at once.
//
// The same holds for a connection the server ends while the node lives: its idle timeout
// (`wait_timeout`, 8 hours by default, raised to a year on this connection), a restart of the server,
// a failover. So the lock is looked at every `check_ms`: still ours (IS_USED_LOCK is this connection),
// else taken again on a new connection — and once lost, tried again every `retry_ms` (a second) until
// it is taken. Until it is, `held` is false (the node's /readyz answers 503
// with `databaseLock` down); if another node took it meanwhile, `onTaken` says so — two nodes now run
// on one database, which an operator must end.
import mysql from 'mysql2/promise';
import { StoreUnavailableError } from '../persistence/errors.ts';
import { mysqlDatabaseName } from '../persistence/sql/open.ts';

/** How long taking or checking the lock may wait for the server to answer at all. */
const LOCK_CONNECT_TIMEOUT_MS = 10_000;
/** How often a held lock is checked. */
export const LOCK_CHECK_MS = 30_000;
/** How often a lost lock is tried again. */
const LOCK_RETRY_MS = 1_000;
/** wait_timeout of the lock's connection: it is idle between checks, and must outlive any of them. */
const LOCK_CONNECTION_WAIT_TIMEOUT_S = 31_536_000;

export class DatabaseLockedError extends Error {
  override name = 'DatabaseLockedError';
}

export interface DatabaseLockEvents {
  /** The lock's connection ended (its lock with it): taken again at the next check, if free. */
  lost?(error: Error): void;
  /** Taken again after a loss. */
  regained?(): void;
  /** Another node holds it now (it took it while this one had lost it). */
  taken?(error: DatabaseLockedError): void;
}

export interface DatabaseLock {
  /** Whether this node holds the lock as of the last check (or loss). */
  readonly held: boolean;
  release(): Promise<void>;
}

/**
 * Takes the database for this node. DatabaseLockedError when another node holds it,
 * StoreUnavailableError when the server cannot be reached (or does not answer in time).
 */
export async function lockMysqlDatabase(url: string, events: DatabaseLockEvents = {}, check_ms = LOCK_CHECK_MS): Promise<DatabaseLock> {
  const parsed = new URL(url);
  const database = mysqlDatabaseName(url);
  // The lock is the server's, not a database's: connect without one (it may not exist yet).
  parsed.pathname = '/';
  const name = `stampede.node.${database}`.slice(0, 64);
  const lock = new MysqlNodeLock(parsed.toString(), parsed.host, database, name, events, check_ms);
  await lock.take();
  lock.watch();
  return lock;
}

class MysqlNodeLock implements DatabaseLock {
  held = false;
  private connection: mysql.Connection | undefined;
  private timer: NodeJS.Timeout | undefined;
  private checking: Promise<void> | undefined;
  private released = false;

  constructor(
    private readonly uri: string,
    private readonly host: string,
    private readonly database: string,
    private readonly name: string,
    private readonly events: DatabaseLockEvents,
    private readonly check_ms: number,
  ) {}

  /** Takes the lock on a new connection; throws DatabaseLockedError or StoreUnavailableError. */
  async take(): Promise<void> {
    let connection: mysql.Connection;
    try {
      connection = await mysql.createConnection({ uri: this.uri, connectTimeout: LOCK_CONNECT_TIMEOUT_MS });
    } catch (error) {
      throw new StoreUnavailableError(`MySQL at ${this.host} cannot be reached to take the node's lock`, { cause: error });
    }
    // A lost connection (the server restarted, or ended it) loses the lock with it: said, not thrown.
    connection.on('error', (error: Error) => this.lose(connection, error));
    try {
      const [rows] = await connection.query({ sql: 'SELECT GET_LOCK(?, 0) AS locked', timeout: LOCK_CONNECT_TIMEOUT_MS }, [this.name]);
      if (Number((rows as { locked: number | string | null }[])[0]?.locked) !== 1) {
        throw new DatabaseLockedError(`database ${this.database} is used by another Stampede node (the named lock ${this.name} is held): one node per database`);
      }
      await connection.query({ sql: `SET SESSION wait_timeout = ${LOCK_CONNECTION_WAIT_TIMEOUT_S}`, timeout: LOCK_CONNECT_TIMEOUT_MS });
    } catch (error) {
      await connection.end().catch(() => connection.destroy());
      if (error instanceof DatabaseLockedError) throw error;
      throw new StoreUnavailableError(`MySQL at ${this.host} did not answer taking the node's lock`, { cause: error });
    }
    this.connection = connection;
    this.held = true;
  }

  watch(): void {
    let checkedAt = Date.now();
    this.timer = setInterval(
      () => {
        // Held: looked at every check_ms. Lost: tried again at every tick.
        if (this.held && Date.now() - checkedAt < this.check_ms) return;
        checkedAt = Date.now();
        void this.check();
      },
      Math.min(this.check_ms, LOCK_RETRY_MS),
    );
    this.timer.unref();
  }

  /** One look at the lock (never two at once); taken again when lost. */
  check(): Promise<void> {
    this.checking ??= this.checkOnce().finally(() => (this.checking = undefined));
    return this.checking;
  }

  private async checkOnce(): Promise<void> {
    if (this.released) return;
    const connection = this.connection;
    if (connection) {
      try {
        const [rows] = await connection.query({ sql: 'SELECT IS_USED_LOCK(?) = CONNECTION_ID() AS mine', timeout: LOCK_CONNECT_TIMEOUT_MS }, [this.name]);
        if (Number((rows as { mine: number | string | null }[])[0]?.mine) === 1) return;
        this.lose(connection, new Error(`the named lock ${this.name} is no longer held by this node's connection`));
      } catch (error) {
        this.lose(connection, error instanceof Error ? error : new Error(String(error)));
      }
    }
    if (this.released) return;
    try {
      await this.take();
      if (this.released) {
        await this.drop();
        return;
      }
      this.events.regained?.();
    } catch (error) {
      if (error instanceof DatabaseLockedError) this.events.taken?.(error);
      // Unreachable: tried again at the next check.
    }
  }

  private lose(connection: mysql.Connection, error: Error): void {
    if (this.connection !== connection) return;
    this.connection = undefined;
    this.held = false;
    connection.destroy();
    if (!this.released) this.events.lost?.(error);
  }

  /**
   * Lets go of the lock, then of its connection. RELEASE_LOCK first, answered before the connection
   * ends: the server frees a session's locks when it cleans the session up, which may come after the
   * client saw its connection close, and a node started right after this one's stop (a restart) was
   * refused with DatabaseLockedError in that moment (seen in CI).
   */
  private async drop(): Promise<void> {
    const connection = this.connection;
    this.connection = undefined;
    const held = this.held;
    this.held = false;
    if (!connection) return;
    if (held) await connection.query({ sql: 'SELECT RELEASE_LOCK(?) AS released', timeout: LOCK_CONNECT_TIMEOUT_MS }, [this.name]).catch(() => undefined);
    await connection.end().catch(() => connection.destroy());
  }

  async release(): Promise<void> {
    if (this.released) return;
    this.released = true;
    if (this.timer) clearInterval(this.timer);
    await this.checking?.catch(() => undefined);
    await this.drop();
  }
}
