// Proves the embedded SQLite default writes on a worker thread without changing what a write means:
// the writes go to the worker and the engine's connection reads them back at once; a transaction is
// all or nothing and no other write lands inside it, whatever the interleaving; a batch that fails
// leaves nothing; the journal's writes go before queued read-model writes; when the worker dies, what waited on it fails as "unavailable", the failure is
// reported once, and the next writes are made on the engine's connection, where a read issued while a
// transaction is open runs after it (never inside it); a writer that cannot open
// its file refuses to start; stopping lets the queued writes finish; a write that waited its turn
// past its deadline is not made and the queue is bounded; and a node shows the writer in
// /metrics and logs its failure.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../app/config.ts';
import { StampedeNode } from '../../app/node.ts';
import { JournalConflictError, StoreUnavailableError } from '../../persistence/errors.ts';
import type { JournalRecord } from '../../persistence/ports.ts';
import { openSqlStores, type SqlStores } from '../../persistence/sql/open.ts';
import type { SqlDatabase } from '../../persistence/sql/database.ts';
import { SqliteWriter, type SqliteWriterOptions } from '../../persistence/sql/sqlite-writer.ts';
import { testEnv } from '../support/engine.ts';
import { capturingLogger } from '../support/logs.ts';
import { until } from '../support/poll.ts';

const record = (stream: string, seq: number, lastSeq = seq): JournalRecord => ({
  stream,
  seq,
  lastSeq,
  at: 1_000,
  events: Array.from({ length: lastSeq - seq + 1 }, (_, i) => ({ type: 'e', n: seq + i })),
});

/** A started writer on a new WAL database file holding one table `t (x)`. */
async function writerOnNewTable(file: string, options: Partial<SqliteWriterOptions> = {}): Promise<{ file: string; writer: SqliteWriter }> {
  const db = new Database(file);
  db.pragma('journal_mode = WAL');
  db.exec('CREATE TABLE t (x)');
  db.close();
  // The short deadlines some tests give their writes are not the worker's start's: a thread starting
  // on a busy machine took over 300 ms in CI.
  const writer = new SqliteWriter(file, { busy_timeout_ms: 1_000, autocheckpoint_pages: 1_000, deadline_ms: 5_000, start_deadline_ms: 10_000, onFailure: () => {}, ...options });
  await writer.start();
  return { file, writer };
}

const INSERT_JOURNAL = 'INSERT INTO journal (stream, seq, last_seq, at, events) VALUES (?, ?, ?, ?, ?)';

/** A transaction on `t` that writes 'running' and holds the writer until `release()`. */
function runningUntilReleased(writer: SqliteWriter): { running: Promise<void>; release: () => void } {
  let release!: () => void;
  const gate = new Promise<void>((resolve) => (release = resolve));
  const running = writer.transaction(async (trx) => {
    await writer.inTransaction(trx, 'run', 'INSERT INTO t (x) VALUES (?)', ['running']);
    await gate;
  });
  return { running, release };
}

/**
 * An interactive transaction that writes `stream`'s record 1, waits until `release`, writes record 2
 * and (with `thenThrow`) throws: it holds the writer meanwhile.
 */
function holdingTransaction(writer: SqliteWriter, stream: string, thenThrow?: string): { done: Promise<void>; release: () => void } {
  let release!: () => void;
  const gate = new Promise<void>((resolve) => (release = resolve));
  const done = writer.transaction(async (trx) => {
    await writer.inTransaction(trx, 'run', INSERT_JOURNAL, [stream, 1, 1, 1, Buffer.from('[1]')]);
    await gate;
    await writer.inTransaction(trx, 'run', INSERT_JOURNAL, [stream, 2, 2, 1, Buffer.from('[2]')]);
    if (thenThrow !== undefined) throw new Error(thenThrow);
  });
  return { done, release };
}

/** The worker of a writer (to end it as a crash would). */
const workerOf = (writer: SqliteWriter) => (writer as unknown as { worker: { terminate(): Promise<number> } }).worker;

describe('SQLite writes on a worker thread', () => {
  let dir: string;
  let stores: SqlStores;
  const logged: string[] = [];
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'stampede-writer-'));
    stores = await openSqlStores({ sqlitePath: join(dir, 'w.sqlite'), logger: (m) => logged.push(m) });
  });
  afterAll(async () => {
    await stores?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('makes the writes on the worker, and the engine reads them back at once', async () => {
    const writer = stores.sqliteWriter!;
    expect(writer.running).toBe(true);
    const before = writer.statements;
    // One record (one statement, autocommit), then two streams in one call.
    await stores.journal.append([record('w:a', 1)]);
    await stores.journal.append([record('w:a', 2, 3), record('w:b', 1)]);
    expect(writer.statements).toBeGreaterThan(before);
    expect((await stores.journal.readAfter('w:a', 0)).map((r) => [r.seq, r.lastSeq])).toEqual([
      [1, 1],
      [2, 3],
    ]);
    expect((await stores.journal.readAfter('w:b', 0)).map((r) => r.events)).toEqual([[{ type: 'e', n: 1 }]]);
    expect(logged).toEqual([]);
  });

  it('keeps a failed write all or nothing: a duplicate (stream, seq) is a conflict and leaves nothing of its call', async () => {
    // Enough records for several statements in one transaction: the last one conflicts.
    const many = Array.from({ length: 1_500 }, (_, i) => record('w:many', i + 1));
    await expect(stores.journal.append([...many, record('w:a', 2)])).rejects.toBeInstanceOf(JournalConflictError);
    expect(await stores.journal.readAfter('w:many', 0)).toEqual([]);
    await stores.journal.append(many);
    expect((await stores.journal.readAfter('w:many', 0)).length).toBe(1_500);
  });

  it('lets no write land inside another caller\'s transaction, and rolls a thrown one back whole', async () => {
    const writer = stores.sqliteWriter!;
    // An interactive transaction that writes, waits, writes and throws; writes of other callers are
    // issued while it is open.
    const { done: failing, release } = holdingTransaction(writer, 'w:tx', 'the work failed');
    const others = [stores.journal.append([record('w:other', 1)]), stores.journal.append([record('w:other', 2)])];
    await new Promise((resolve) => setTimeout(resolve, 50));
    // The other writes wait for the transaction: they are not in the database yet.
    expect(await stores.journal.readAfter('w:other', 0)).toEqual([]);
    release();
    await expect(failing).rejects.toThrow('the work failed');
    await Promise.all(others);
    expect(await stores.journal.readAfter('w:tx', 0)).toEqual([]);
    expect((await stores.journal.readAfter('w:other', 0)).map((r) => r.seq)).toEqual([1, 2]);
  });

  it('when the worker dies: waiting writes fail as unavailable, the failure is reported once, and the engine writes again', async () => {
    const writer = stores.sqliteWriter!;
    // A transaction holds the writer; a write queues behind it; then the worker dies.
    const { done: holding, release } = holdingTransaction(writer, 'w:dead');
    const queued = stores.journal.append([record('w:queued', 1)]);
    await new Promise((resolve) => setTimeout(resolve, 20));
    await workerOf(writer).terminate();
    release();
    await expect(holding).rejects.toBeInstanceOf(StoreUnavailableError);
    await expect(queued).rejects.toBeInstanceOf(StoreUnavailableError);
    await until('the failure reported', async () => logged.length, (n) => n > 0, 5_000);
    expect(logged).toHaveLength(1);
    expect(logged[0]).toMatch(/SQLite writer: the worker exited.*writes on the engine's thread again/);
    expect(writer.running).toBe(false);
    // Nothing of the dead transaction was committed, and the engine's connection writes now.
    expect(await stores.journal.readAfter('w:dead', 0)).toEqual([]);
    const statements = writer.statements;
    await stores.journal.append([record('w:queued', 1)]);
    await stores.journal.append([record('w:after', 1, 2), record('w:after2', 1)]);
    expect(writer.statements).toBe(statements);
    expect((await stores.journal.readAfter('w:queued', 0)).length).toBe(1);
    expect((await stores.journal.readAfter('w:after', 0)).map((r) => r.lastSeq)).toEqual([2]);
  });

  it('on the engine\'s connection (the worker dead), runs a read issued while a transaction is open after it: never inside it', async () => {
    expect(stores.sqliteWriter!.running).toBe(false);
    const db = (stores.journal as unknown as { db: SqlDatabase }).db;
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    let wrote!: () => void;
    const written = new Promise<void>((resolve) => (wrote = resolve));
    const failing = db.transaction('test.hold', async (trx) => {
      await db.run('test.insert', INSERT_JOURNAL, ['w:open', 1, 1, 1, Buffer.from('[1]')], trx);
      wrote();
      await gate;
      throw new Error('rolled back');
    });
    await written;
    // Issued while the transaction is open: it must not see (or later miss) the uncommitted row.
    const read = stores.journal.readAfter('w:open', 0);
    await new Promise((resolve) => setTimeout(resolve, 20));
    release();
    await expect(failing).rejects.toThrow('rolled back');
    expect(await read).toEqual([]);
    // With no transaction open, reads and writes go on at once.
    await stores.journal.append([record('w:open', 1)]);
    expect((await stores.journal.readAfter('w:open', 0)).map((r) => r.seq)).toEqual([1]);
  });

  it('reads back everything written by both connections after a reopen, with a new writer', async () => {
    await stores.close();
    stores = await openSqlStores({ sqlitePath: join(dir, 'w.sqlite') });
    expect(stores.sqliteWriter?.running).toBe(true);
    expect((await stores.journal.readAfter('w:many', 0)).length).toBe(1_500);
    expect((await stores.journal.readAfter('w:after2', 0)).length).toBe(1);
    expect((await stores.journal.readAfter('w:other', 0)).length).toBe(2);
  });

  it('lets the writes queued before stop finish, and fails the ones after it', async () => {
    const { file, writer } = await writerOnNewTable(join(dir, 'stop.sqlite'));
    const writes = Array.from({ length: 200 }, (_, i) => writer.run('INSERT INTO t (x) VALUES (?)', [i]));
    await writer.stop();
    expect((await Promise.all(writes)).every((r) => r.changes === 1)).toBe(true);
    await expect(writer.run('INSERT INTO t (x) VALUES (?)', [1])).rejects.toBeInstanceOf(StoreUnavailableError);
    const check = new Database(file);
    expect(check.prepare('SELECT COUNT(*) AS n FROM t').get()).toEqual({ n: 200 });
    check.close();
  });

  it('lets a write a reply waits for (urgent) go before the queued writes nobody waits for, never ahead of the running one', async () => {
    const { file, writer } = await writerOnNewTable(join(dir, 'urgent.sqlite'));
    try {
      const { running, release } = runningUntilReleased(writer);
      const writes = [
        writer.run('INSERT INTO t (x) VALUES (?)', ['normal 1']),
        writer.batch([{ sql: 'INSERT INTO t (x) VALUES (?)', params: ['normal 2'] }]),
        writer.run('INSERT INTO t (x) VALUES (?)', ['urgent 1'], true),
        writer.batch([{ sql: 'INSERT INTO t (x) VALUES (?)', params: ['urgent 2'] }], true),
      ];
      release();
      await Promise.all([running, ...writes]);
      const check = new Database(file, { readonly: true });
      const order = (check.prepare('SELECT x FROM t ORDER BY rowid').all() as { x: string }[]).map((r) => r.x);
      check.close();
      expect(order).toEqual(['running', 'urgent 1', 'urgent 2', 'normal 1', 'normal 2']);
    } finally {
      await writer.stop();
    }
  });

  it('does not make a write that waited its turn past its deadline (its caller is told it failed), and bounds the queue', async () => {
    const { file, writer } = await writerOnNewTable(join(dir, 'late.sqlite'), { deadline_ms: 400, queue_max: 3 });
    try {
      const { running, release } = runningUntilReleased(writer);
      const queued = [1, 2, 3].map((i) => writer.run('INSERT INTO t (x) VALUES (?)', [`late ${i}`]).then(() => 'made', (e: unknown) => e));
      // Past the queue's bound: refused at once.
      await expect(writer.run('INSERT INTO t (x) VALUES (?)', ['one too many'])).rejects.toBeInstanceOf(StoreUnavailableError);
      await new Promise((resolve) => setTimeout(resolve, 500));
      release();
      await running;
      for (const outcome of await Promise.all(queued)) expect(outcome).toBeInstanceOf(StoreUnavailableError);
      // A write queued now is made as usual.
      expect((await writer.run('INSERT INTO t (x) VALUES (?)', ['fresh'])).changes).toBe(1);
      const check = new Database(file, { readonly: true });
      expect((check.prepare('SELECT x FROM t ORDER BY rowid').all() as { x: string }[]).map((r) => r.x)).toEqual(['running', 'fresh']);
      check.close();
    } finally {
      await writer.stop();
    }
    // Thousands of them skipped at once (a long stall): one after the other, not one inside the other.
    const many = new SqliteWriter(file, { busy_timeout_ms: 1_000, autocheckpoint_pages: 1_000, deadline_ms: 300, start_deadline_ms: 10_000, onFailure: () => {} });
    await many.start();
    try {
      let release!: () => void;
      const gate = new Promise<void>((resolve) => (release = resolve));
      const running = many.transaction(async () => gate);
      const stale = Array.from({ length: 20_000 }, (_, i) => many.run('INSERT INTO t (x) VALUES (?)', [`stale ${i}`]).then(() => 'made', () => 'not made'));
      await new Promise((resolve) => setTimeout(resolve, 350));
      release();
      await running;
      expect(new Set(await Promise.all(stale))).toEqual(new Set(['not made']));
      expect((await many.run('INSERT INTO t (x) VALUES (?)', ['after the stall'])).changes).toBe(1);
    } finally {
      await many.stop();
    }
  });

  it('when a write gets no answer while the worker is stuck in SQLite (a disk stall, a lock), says it still holds on until its thread exits', async () => {
    const { file, writer } = await writerOnNewTable(join(dir, 'stuck.sqlite'), { deadline_ms: 300, busy_timeout_ms: 3_000 });
    // Another connection holds the write lock: the worker's write waits inside SQLite's busy handler,
    // where terminating the thread cannot reach it.
    const other = new Database(file);
    other.exec('BEGIN IMMEDIATE');
    try {
      const write = writer.run('INSERT INTO t (x) VALUES (?)', ['stuck']);
      await expect(write).rejects.toBeInstanceOf(StoreUnavailableError);
      expect([writer.running, writer.failedAndHolding]).toEqual([false, true]);
      // The lock let go: the busy wait returns, the thread ends, and writes may go elsewhere.
      other.exec('ROLLBACK');
      await until('the stuck thread gone', async () => writer.failedAndHolding, (holding) => !holding, 10_000);
    } finally {
      if (other.inTransaction) other.exec('ROLLBACK');
      other.close();
      await writer.stop();
    }
  });

  it('refuses to start on a file that does not exist, without calling its failure hook', async () => {
    const failures: Error[] = [];
    const writer = new SqliteWriter(join(dir, 'absent.sqlite'), { busy_timeout_ms: 100, autocheckpoint_pages: 1_000, deadline_ms: 5_000, onFailure: (e) => failures.push(e) });
    await expect(writer.start()).rejects.toThrow(/SQLite writer/);
    expect(writer.running).toBe(false);
    await writer.stop();
    expect(failures).toEqual([]);
  });
});

describe('the SQLite writer of a node on the embedded default', () => {
  it('shows in /metrics, and a failed one is logged as a warning, shown as down, and the node goes on writing', async () => {
    const { log, lines } = capturingLogger('warn');
    const node = new StampedeNode(loadConfig(testEnv({ kind: 'sqlite' })), { logger: log });
    await node.start();
    try {
      const scrape = () => node.metrics.registry.metrics();
      expect(await scrape()).toMatch(/^stampede_sqlite_writer_up 1$/m);
      const writer = node.stores.sqliteWriter!;
      await node.stores.journal.append([record('node:w', 1)]);
      expect(await scrape()).toMatch(new RegExp(`^stampede_sqlite_writer_statements_total ${writer.statements}$`, 'm'));

      await workerOf(writer).terminate();
      await until('the warning', async () => lines.join(''), (text) => text.includes("writes on the engine's thread again"), 5_000);
      expect(JSON.parse(lines.find((l) => l.includes('SQLite writer'))!)).toMatchObject({ level: 40, component: 'store' });
      expect(await scrape()).toMatch(/^stampede_sqlite_writer_up 0$/m);
      await node.stores.journal.append([record('node:w', 2)]);
      expect((await node.stores.journal.readAfter('node:w', 0)).length).toBe(2);
    } finally {
      await node.stop();
    }
  });
});
