// One node per MySQL database, as there is one per data folder on the embedded default
// (app/data-dir-lock.ts, for the same reasons: each node keeps its own catalog, rules and actors in
// memory, so two on one database break each other's writes and purchase rules). The node holds the
// named lock `stampede.node.<database>` on a connection of its own from start to stop. MySQL releases
// a named lock when its connection ends, so a node that dies however it dies lets go of it at once.
import mysql from 'mysql2/promise';
import { StoreUnavailableError } from '../persistence/errors.ts';
import { mysqlDatabaseName } from '../persistence/sql/open.ts';

/** How long taking the lock may wait for the server to answer at all. */
const LOCK_CONNECT_TIMEOUT_MS = 10_000;

export class DatabaseLockedError extends Error {
  override name = 'DatabaseLockedError';
}

/**
 * Takes the database for this node; resolves to the release function. DatabaseLockedError when
 * another node holds it, StoreUnavailableError when the server cannot be reached.
 */
export async function lockMysqlDatabase(url: string, onLost: (error: Error) => void = () => {}): Promise<() => Promise<void>> {
  const parsed = new URL(url);
  const database = mysqlDatabaseName(url);
  // The lock is the server's, not a database's: connect without one (it may not exist yet).
  parsed.pathname = '/';
  let connection: mysql.Connection;
  try {
    connection = await mysql.createConnection({ uri: parsed.toString(), connectTimeout: LOCK_CONNECT_TIMEOUT_MS });
  } catch (error) {
    throw new StoreUnavailableError(`MySQL at ${parsed.host} cannot be reached to take the node's lock`, { cause: error });
  }
  const name = `stampede.node.${database}`.slice(0, 64);
  try {
    const [rows] = await connection.query('SELECT GET_LOCK(?, 0) AS locked', [name]);
    if (Number((rows as { locked: number | string | null }[])[0]?.locked) !== 1) {
      throw new DatabaseLockedError(`database ${database} is used by another Stampede node (the named lock ${name} is held): one node per database`);
    }
  } catch (error) {
    await connection.end().catch(() => connection.destroy());
    throw error;
  }
  // A lost connection (the server restarted) loses the lock with it: said, not thrown.
  connection.on('error', (error: Error) => onLost(error));
  let released = false;
  return async () => {
    if (released) return;
    released = true;
    await connection.end().catch(() => connection.destroy());
  };
}
