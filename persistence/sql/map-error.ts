// SQL driver errors are mapped here, once, into the failures the engine reasons about (errors.ts):
// a duplicate journal (stream, seq) is JournalConflictError, another duplicate key is DuplicateKeyError,
// a database that cannot be reached, dropped the connection or timed out is StoreUnavailableError.
// Anything else (a syntax error is a programmer mistake) goes on as MikroORM's converted exception.
import {
  ConnectionException,
  DeadlockException,
  DriverException,
  LockWaitTimeoutException,
  ReadOnlyException,
  UniqueConstraintViolationException,
  type ExceptionConverter,
} from '@mikro-orm/core';
import { CardKeyConflictError, DuplicateKeyError, JournalConflictError, StoreUnavailableError } from '../errors.ts';

/** What a duplicate key means for the statement that failed. */
export type DuplicateMeaning = 'journal_conflict' | 'duplicate_key';

/** Socket and client codes (mysql2, Node, knex, better-sqlite3) that mean "the database is not there now". */
const unavailable_codes = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
  'PROTOCOL_CONNECTION_LOST',
  'PROTOCOL_SEQUENCE_TIMEOUT',
  'PROTOCOL_ENQUEUE_AFTER_FATAL_ERROR',
  'PROTOCOL_ENQUEUE_AFTER_QUIT',
  'ER_CON_COUNT_ERROR',
  'ER_SERVER_SHUTDOWN',
  'ER_LOCK_WAIT_TIMEOUT',
  'ER_QUERY_TIMEOUT',
  'SQLITE_BUSY',
  'SQLITE_LOCKED',
  'SQLITE_CANTOPEN',
  'SQLITE_IOERR',
  'SQLITE_FULL',
]);

/** MySQL/MariaDB server and client error numbers with the same meaning. */
const unavailable_errnos = new Set([
  1040, // too many connections
  1053, // server shutdown in progress
  1205, // lock wait timeout
  1927, // connection was killed (MariaDB)
  1969, // max_statement_time exceeded (MariaDB)
  2002, // can't connect through socket
  2003, // can't connect to server
  2006, // server has gone away
  2013, // lost connection during query
  3024, // max_execution_time exceeded (MySQL)
  // Access denied, unknown database: the store cannot be used either (MikroORM calls these ConnectionException).
  1044,
  1045,
  1049,
  // Transient or the server's state, not the statement's: a retry later may pass (a 503, not a 500).
  1213, // deadlock: the transaction was rolled back
  1290, // read-only (--read-only: a replica promoted late, a failover in progress)
  1836, // read-only mode (MariaDB)
  1114, // table full (disk)
  1153, // packet larger than max_allowed_packet
  1317, // query execution interrupted
]);

/** SQLite's extended codes of the same meaning (SQLITE_IOERR_WRITE, SQLITE_BUSY_SNAPSHOT, SQLITE_READONLY_DBMOVED, ...). */
const unavailable_code_prefixes = ['SQLITE_IOERR', 'SQLITE_BUSY', 'SQLITE_LOCKED', 'SQLITE_READONLY', 'SQLITE_CANTOPEN', 'SQLITE_FULL'];

function codeOf(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

function errnoOf(error: unknown): number | undefined {
  const errno = (error as { errno?: unknown } | null)?.errno;
  return typeof errno === 'number' ? errno : undefined;
}

function isUnavailable(error: unknown): boolean {
  if (error instanceof ConnectionException || error instanceof LockWaitTimeoutException || error instanceof DeadlockException || error instanceof ReadOnlyException) return true;
  if (error instanceof StoreUnavailableError) return true;
  const code = codeOf(error);
  if (code !== undefined && (unavailable_codes.has(code) || unavailable_code_prefixes.some((p) => code.startsWith(p)))) return true;
  const errno = errnoOf(error);
  if (errno !== undefined && unavailable_errnos.has(errno)) return true;
  if (error instanceof Error) {
    // knex: the pool could not hand out a connection in time, or is already destroyed (closed store).
    if (error.name === 'KnexTimeoutError') return true;
    if (error.message.startsWith('Unable to acquire a connection')) return true;
    if (error.message.includes('database is locked')) return true;
  }
  return false;
}

/**
 * Maps a failure of a SQL statement. `operation` names what was being done, for the message;
 * `duplicate` says what a unique-key violation means there.
 */
export function mapSqlError(
  error: unknown,
  converter: ExceptionConverter,
  operation: string,
  duplicate: DuplicateMeaning = 'duplicate_key',
): Error {
  if (
    error instanceof JournalConflictError ||
    error instanceof DuplicateKeyError ||
    error instanceof StoreUnavailableError ||
    error instanceof CardKeyConflictError ||
    // A store's own check thrown inside a transaction (a programmer mistake), not the driver's.
    error instanceof RangeError ||
    error instanceof TypeError
  ) {
    return error;
  }
  let converted: unknown = error;
  if (error instanceof Error && !(error instanceof DriverException)) {
    try {
      converted = converter.convertException(error);
    } catch {
      converted = error; // the converter only reads the message and codes; never let it hide the error
    }
  }
  if (converted instanceof UniqueConstraintViolationException) {
    const message = `${operation}: ${converted.message}`;
    return duplicate === 'journal_conflict'
      ? new JournalConflictError(message, { cause: converted })
      : new DuplicateKeyError(message, { cause: converted });
  }
  if (isUnavailable(error) || isUnavailable(converted)) {
    const message = error instanceof Error ? error.message : String(error);
    return new StoreUnavailableError(`${operation}: database unavailable: ${message}`, { cause: error });
  }
  return converted instanceof Error ? converted : new Error(`${operation}: ${String(converted)}`, { cause: error });
}
