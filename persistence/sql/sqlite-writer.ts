// Why: on the embedded SQLite default every write ran on the engine's one thread, and better-sqlite3
// is synchronous: the journal's INSERTs, the read model's upserts and every COMMIT's WAL writes held
// the event loop. Measured in a simulated 30,000-buyer sale: SQLite statements were 22% of the run's
// wall time, two thirds of it writes (COMMIT ~660 µs, a read-model batch ~1 ms, a journal INSERT
// ~340 µs). So a worker thread with its own connection to the same file makes every write, and the
// engine's thread only hands it the statement and awaits the answer; on two cores the writes then run
// next to the actors instead of between them. Reads stay on the engine's connection: WAL lets them
// run beside the writer, each sees what was committed when it started, and a round trip to a worker
// would cost more than a small indexed read.
//
// Order and atomicity: the worker runs messages one at a time in the order they were posted, on one
// connection. A transaction holds the writer for its whole length (BEGIN IMMEDIATE ... COMMIT), and a
// write outside a transaction waits for the one before it, so nothing slips into another's transaction.
// Writes a reply waits for (the journal's) go before the queued ones nobody waits for (the read
// model's batches), never ahead of the one running: without that, a buyer's answer waited behind a
// read-model batch of a few milliseconds.
// Durability is unchanged: a durable write resolves after the WAL is synced (wal-sync.ts), which
// syncs the file whichever connection wrote it.
//
// If the worker cannot start, start() rejects and the caller writes on its own connection as before.
// If it dies or stops answering later, everything waiting on it fails with StoreUnavailableError
// (the callers' "unknown outcome": their actors recover from the journal) and `onFailure` is called
// once; the caller then writes on its own connection again.
import type { Worker } from 'node:worker_threads';
import { StoreUnavailableError } from '../errors.ts';
import type { SqlStatement } from './database.ts';
import { spawnSqliteWorker } from './sqlite-worker.ts';

/** A queued write: false when it was not run (past its deadline), true once it is running. */
type Job = () => boolean;

/** Writes waiting their turn at most, by default (see SqliteWriterOptions.queue_max). */
export const WRITER_QUEUE_MAX = 100_000;
/** A queued write that starts later than this share of the deadline after it was queued is not made. */
const WRITER_QUEUE_DEADLINE_SHARE = 0.9;

export interface SqliteWriterOptions {
  /** Busy timeout of the worker's connection (another process holding the write lock). */
  busy_timeout_ms: number;
  /** SQLite's automatic checkpoint threshold for the worker's connection (0: off, see wal-checkpointer.ts). */
  autocheckpoint_pages: number;
  /**
   * Longest wait for the worker to open its connection, and for any one answer of it. Also the
   * callers' deadline (database.ts: statement_timeout_ms): a write still queued at 90% of it is not
   * run at all (its caller is about to be told it failed, so it must change nothing).
   */
  deadline_ms: number;
  /** Longest wait for the worker to open its connection, if not deadline_ms (a thread's start on a busy machine). */
  start_deadline_ms?: number;
  /** Writes waiting their turn at most (default WRITER_QUEUE_MAX); past it a write fails at once. */
  queue_max?: number;
  /** The worker failed (once): the caller writes on its own connection again. */
  onFailure: (error: Error) => void;
}

/** What a write returned: the rows it changed, and the last row id it inserted. */
export interface WriterRunResult {
  changes: number;
  lastInsertRowid: number;
}

/** A transaction held on the worker's connection, until it ends (the handle stores pass back). */
export class WriterTransaction {
  closed = false;
}

type Kind = 'run' | 'all' | 'rollback' | 'batch';

type Reply = { id: number; ok: true; result: unknown } | { id: number; ok: false; error: { message: string; code?: string } };

// The worker, as plain JavaScript (a worker thread does not load the TypeScript sources): better-sqlite3
// is required by the absolute path the engine resolved, so it is the same build wherever the process runs.
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const Database = require(workerData.module);
let db;
try {
  db = new Database(workerData.file, { fileMustExist: true });
  // The engine's connection set WAL (a property of the file); the rest is per connection.
  const mode = db.pragma('journal_mode = WAL')[0];
  if (!mode || mode.journal_mode !== 'wal') throw new Error('SQLite refused WAL mode');
  db.pragma('synchronous = NORMAL');
  db.pragma('busy_timeout = ' + workerData.busy_timeout_ms);
  db.pragma('wal_autocheckpoint = ' + workerData.autocheckpoint_pages);
} catch (error) {
  parentPort.postMessage({ ready: false, message: String(error && error.message || error) });
  process.exit(1);
}
const rollback = () => {
  if (db.inTransaction) db.exec('ROLLBACK');
};
const counts = (r) => ({ changes: r.changes, lastInsertRowid: Number(r.lastInsertRowid) });
const cache = new Map();
const statement = (sql) => {
  let s = cache.get(sql);
  if (s === undefined) {
    if (cache.size >= 256) cache.clear();
    s = db.prepare(sql);
    cache.set(sql, s);
  }
  return s;
};
parentPort.on('message', (m) => {
  if (m === 'stop') {
    rollback();
    db.close();
    parentPort.close();
    return;
  }
  try {
    let result = null;
    if (m.kind === 'run') result = counts(statement(m.sql).run(...m.params));
    else if (m.kind === 'all') result = statement(m.sql).all(...m.params);
    else if (m.kind === 'rollback') rollback();
    else if (m.kind === 'batch') {
      statement('BEGIN IMMEDIATE').run();
      try {
        result = m.steps.map((step) => counts(statement(step.sql).run(...step.params)));
        statement('COMMIT').run();
      } catch (error) {
        rollback();
        throw error;
      }
    }
    parentPort.postMessage({ id: m.id, ok: true, result });
  } catch (error) {
    parentPort.postMessage({ id: m.id, ok: false, error: { message: String(error && error.message || error), code: error && error.code } });
  }
});
parentPort.postMessage({ ready: true });
`;

export class SqliteWriter {
  private worker: Worker | undefined;
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void; timer: NodeJS.Timeout }>();
  /** Uses waiting for the writer, urgent ones first (see exclusive); whether one holds it now. */
  private readonly urgent: Job[] = [];
  private readonly normal: Job[] = [];
  private busy = false;
  /** Resolves when nothing holds or waits for the writer (stop). */
  private idleWaiters: (() => void)[] = [];
  private failure: Error | undefined;
  /** The worker thread has exited (after a failure, a stop, or on its own). */
  private exited = false;
  private stopping = false;
  private started = false;
  /** Statements the worker ran (tests, metrics). */
  statements = 0;

  constructor(
    readonly file: string,
    private readonly options: SqliteWriterOptions,
  ) {}

  /** True while writes go to the worker (started, not failed, not stopped). */
  get running(): boolean {
    return this.started && this.failure === undefined && !this.stopping;
  }

  /**
   * Failed, but its thread has not exited yet: a worker stuck in a native call (a disk stall) cannot be
   * terminated until it returns, and it may hold the database's write lock until then. A write on the
   * engine's connection meanwhile would wait out SQLite's busy timeout (5 s) on the event loop, each:
   * writes fail at once instead (503) until the thread is gone.
   */
  get failedAndHolding(): boolean {
    return this.failure !== undefined && !this.exited;
  }

  /** Starts the worker; resolves once its connection is open (rejects, and stops it, if it cannot be). */
  async start(): Promise<void> {
    const { busy_timeout_ms, autocheckpoint_pages } = this.options;
    const { worker, ready } = spawnSqliteWorker<Reply | { ready: boolean; message?: string }>({
      label: 'SQLite writer',
      source: WORKER_SOURCE,
      data: { file: this.file, busy_timeout_ms, autocheckpoint_pages },
      // The worker holds prepared statements and one message at a time, but a message can be a read
      // model batch of 20,000 orders (tens of MiB once cloned): room for that, used only when needed.
      resourceLimits: { maxOldGenerationSizeMb: 256, maxYoungGenerationSizeMb: 16, codeRangeSizeMb: 4 },
      deadline_ms: this.options.start_deadline_ms ?? this.options.deadline_ms,
      readiness: (m) => ('ready' in m ? (m.ready ? 'ready' : { failed: String(m.message) }) : undefined),
      onMessage: (m) => this.answer(m as Reply),
      onBroken: (error, exited) => {
        if (exited) this.exited = true;
        this.fail(error);
      },
    });
    this.worker = worker;
    await ready.catch(async (error: unknown) => {
      await this.stop();
      throw error;
    });
    this.started = true;
  }

  /**
   * Runs `use` with the writer to itself: statements of other callers wait until it settles. Every
   * write outside a transaction goes through here too, so none lands inside someone's transaction.
   * Waiting uses start in order, except that urgent ones (writes a reply waits for: the journal's)
   * go before the others (the read model's batches, which nobody waits for).
   */
  exclusive<T>(use: () => Promise<T>, urgent = false, always = false): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const queuedAt = performance.now();
      const job: Job = () => {
        // Waited so long that its caller gives up (or has): not run, so that it changes nothing (`next`
        // takes the following job: a loop, not a recursion, however many are skipped).
        if (!always && performance.now() - queuedAt >= this.options.deadline_ms * WRITER_QUEUE_DEADLINE_SHARE) {
          reject(new StoreUnavailableError(`SQLite writer: a write waited its turn past its deadline (${this.options.deadline_ms} ms) and was not made`));
          return false;
        }
        let running: Promise<T>;
        try {
          running = use();
        } catch (error) {
          running = Promise.reject(error);
        }
        running.then(resolve, reject).finally(() => this.next());
        return true;
      };
      if (!this.busy) {
        this.busy = true;
        if (!job()) this.next();
        return;
      }
      if (this.urgent.length + this.normal.length >= (this.options.queue_max ?? WRITER_QUEUE_MAX)) {
        reject(new StoreUnavailableError(`SQLite writer: ${this.urgent.length + this.normal.length} writes already wait their turn`));
        return;
      }
      (urgent ? this.urgent : this.normal).push(job);
    });
  }

  /** The writer is free: the next urgent use, else the next in order, else idle. */
  private next(): void {
    for (let job = this.urgent.shift() ?? this.normal.shift(); job; job = this.urgent.shift() ?? this.normal.shift()) {
      if (job()) return;
    }
    this.busy = false;
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const w of waiters) w();
  }

  /**
   * One statement outside any transaction (autocommit). `urgent`: ahead of the writes waiting that are
   * not (never ahead of one already running): a reply waits for it.
   */
  run(sql: string, params: readonly unknown[], urgent = false): Promise<WriterRunResult> {
    return this.exclusive(() => this.post<WriterRunResult>('run', sql, params), urgent);
  }

  /**
   * Writes that need no answer between them, as one transaction in one message: the writer is held
   * only while the worker runs them, not across round trips to this thread (which, busy deciding,
   * may answer late: an interactive transaction then keeps every other write waiting).
   */
  batch(steps: readonly SqlStatement[], urgent = false): Promise<WriterRunResult[]> {
    return this.exclusive(() => this.post<WriterRunResult[]>('batch', '', [], steps), urgent);
  }

  /**
   * BEGIN IMMEDIATE, `work`, COMMIT (ROLLBACK when it throws), holding the writer throughout: one round
   * trip per statement, for work that must see a statement's answer before the next (see batch).
   */
  transaction<T>(work: (trx: WriterTransaction) => Promise<T>): Promise<T> {
    return this.exclusive(async () => {
      const trx = new WriterTransaction();
      await this.post('run', 'BEGIN IMMEDIATE', []);
      try {
        const result = await work(trx);
        await this.post('run', 'COMMIT', []);
        return result;
      } catch (error) {
        // A failed COMMIT or statement leaves the transaction open or rolled back: end it either way.
        await this.post('rollback', '', []).catch(() => undefined);
        throw error;
      } finally {
        trx.closed = true;
      }
    });
  }

  /** A statement inside `trx` (it holds the writer already). */
  inTransaction<T>(trx: WriterTransaction, kind: 'run' | 'all', sql: string, params: readonly unknown[]): Promise<T> {
    if (trx.closed) return Promise.reject(new Error('a SQLite statement was given a transaction that is not open'));
    return this.post<T>(kind, sql, params);
  }

  /** A statement for the worker's connection alone, in turn (e.g. a PRAGMA); made however long it waited (no caller gives up on it). */
  exec(sql: string): Promise<void> {
    return this.exclusive(() => this.post<WriterRunResult>('run', sql, []), false, true).then(() => undefined);
  }

  /** Lets the writes queued so far finish, then closes the worker's connection (bounded by the deadline). */
  async stop(): Promise<void> {
    const worker = this.worker;
    if (!worker || this.stopping) return;
    this.stopping = true;
    const idle = this.busy ? new Promise<void>((resolve) => this.idleWaiters.push(resolve)) : Promise.resolve();
    await Promise.race([idle, new Promise((r) => setTimeout(r, this.options.deadline_ms).unref())]);
    const exited = new Promise<void>((resolve) => {
      if (this.failure) resolve();
      else worker.once('exit', () => resolve());
    });
    worker.postMessage('stop');
    const timer = setTimeout(() => void worker.terminate(), this.options.deadline_ms);
    await exited;
    clearTimeout(timer);
    this.failAll(new StoreUnavailableError('SQLite writer: stopped'));
  }

  private post<T>(kind: Kind, sql: string, params: readonly unknown[], steps?: readonly SqlStatement[]): Promise<T> {
    if (this.failure) return Promise.reject(new StoreUnavailableError(`SQLite writer: ${this.failure.message}`, { cause: this.failure }));
    const worker = this.worker;
    if (!worker) return Promise.reject(new StoreUnavailableError('SQLite writer: not started'));
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      // An answer that never comes is a stuck worker: fail it, so nothing waits behind it for ever.
      const timer = setTimeout(() => this.fail(new Error(`no answer within ${this.options.deadline_ms} ms`)), this.options.deadline_ms);
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject, timer });
      this.statements += steps ? steps.length : 1;
      worker.postMessage(steps ? { id, kind, steps } : { id, kind, sql, params });
    });
  }

  private answer(m: Reply): void {
    const p = this.pending.get(m.id);
    if (!p) return;
    this.pending.delete(m.id);
    clearTimeout(p.timer);
    if (m.ok) p.resolve(m.result);
    else p.reject(Object.assign(new Error(m.error.message), { name: 'SqliteError', code: m.error.code }));
  }

  private fail(error: Error): void {
    if (this.failure) return;
    this.failure = error;
    void this.worker?.terminate();
    this.failAll(new StoreUnavailableError(`SQLite writer: ${error.message}`, { cause: error }));
    if (this.started && !this.stopping) this.options.onFailure(error);
  }

  private failAll(error: Error): void {
    for (const [id, p] of this.pending) {
      clearTimeout(p.timer);
      this.pending.delete(id);
      p.reject(error);
    }
  }
}
