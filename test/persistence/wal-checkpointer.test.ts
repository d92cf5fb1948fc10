// Proves the embedded SQLite default checkpoints its WAL off the engine's thread and never lets it grow
// without bound: while the engine writes, a worker thread copies the WAL into the database file and
// the WAL is restarted from its beginning (its header's generation grows, its file stays smaller than
// what was written); when the worker dies, the connection checkpoints on its commits again; a
// checkpointer that cannot open its file refuses to start; a reader elsewhere holding an old snapshot
// does not get the writes held back (a RESTART that cannot finish backs off); everything written is
// read back after a reopen; and a node shows the checkpointer in /metrics and logs its failure.
import { closeSync, mkdtempSync, openSync, readSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { JournalRecord } from '../../persistence/ports.ts';
import { openSqlStores, wal_restart_frames, type SqlStores } from '../../persistence/sql/open.ts';
import { WalCheckpointer } from '../../persistence/sql/wal-checkpointer.ts';
import { loadConfig } from '../../app/config.ts';
import { StampedeNode } from '../../app/node.ts';
import { testEnv } from '../support/engine.ts';
import { capturingLogger } from '../support/logs.ts';
import { until } from '../support/poll.ts';

const MIB = 1024 * 1024;
/** One record of about 64 KiB. */
const record = (stream: string, seq: number): JournalRecord => ({ stream, seq, lastSeq: seq, at: 1_000, events: [{ type: 'blob', pad: 'x'.repeat(64 * 1024) }] });

/** The WAL header's checkpoint sequence number: it grows by one each time the WAL starts again from its beginning. */
function walGeneration(file: string): number {
  const fd = openSync(`${file}-wal`, 'r');
  try {
    const header = Buffer.alloc(32);
    readSync(fd, header, 0, 32, 0);
    return header.readUInt32BE(12);
  } finally {
    closeSync(fd);
  }
}

/** Frames in a WAL that was never restarted: its 32-byte header, then frames of a 24-byte header and a 4 KiB page. */
function walFrames(file: string): number {
  return (statSync(`${file}-wal`).size - 32) / (24 + 4096);
}

/** A connection of this thread to a new WAL file holding one table `t (x)`, with no checkpoints of its own. */
function walWriter(path: string): Database.Database {
  const writer = new Database(path);
  writer.pragma('journal_mode = WAL');
  writer.pragma('synchronous = NORMAL');
  writer.pragma('wal_autocheckpoint = 0');
  writer.pragma('busy_timeout = 5000');
  writer.exec('CREATE TABLE t (x BLOB)');
  return writer;
}

/** Writes about `mib` MiB to `stream` in appends of 1 MiB, letting the event loop turn between them. */
async function write(stores: SqlStores, stream: string, mib: number): Promise<void> {
  let seq = 1;
  for (let m = 0; m < mib; m++) {
    await stores.journal.append(Array.from({ length: 16 }, () => record(stream, seq++)));
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

describe('WAL checkpoints on the embedded SQLite default', () => {
  let dir: string;
  let file: string;
  let stores: SqlStores;
  const logged: string[] = [];
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'stampede-walckpt-'));
    file = join(dir, 'db', 'ckpt.sqlite');
    stores = await openSqlStores({ sqlitePath: file, logger: (m) => logged.push(m) });
  });
  afterAll(async () => {
    await stores?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('copies the WAL into the database file from a worker while the engine writes, and restarts it instead of letting it grow', async () => {
    const checkpointer = stores.walCheckpointer!;
    expect(checkpointer.running).toBe(true);
    await write(stores, 'ckpt:a', 1);
    const generation = walGeneration(file);
    // Half as much again as the WAL may hold before it is restarted (64 KiB records span 17 pages).
    const mib = Math.ceil((1.5 * wal_restart_frames * 4096) / MIB);
    await write(stores, 'ckpt:a2', mib);
    await until('checkpoints', async () => checkpointer.framesCheckpointed, (n) => n > wal_restart_frames, 5_000);
    // Automatic checkpoints are off on the engine's connection: only the worker's checkpoints can have
    // let the WAL start again.
    await write(stores, 'ckpt:a3', 1);
    expect(walGeneration(file)).toBeGreaterThan(generation);
    expect(statSync(`${file}-wal`).size).toBeLessThan(mib * MIB);
    expect(logged).toEqual([]);
  });

  it('counts what a pass copied, not what the WAL holds copied: passes over an idle WAL count nothing', async () => {
    // A file and a checkpointer of this test's own, the WAL written before the worker starts: nothing
    // copied it yet, so it was never restarted and its size says how many frames it holds. The worker is
    // then the only one to checkpoint it: what its passes report must add up to those frames exactly,
    // and once they do, nothing is left for a pass to copy (no waiting for "no change for a while").
    const path = join(dir, 'db', 'idle.sqlite');
    const writer = walWriter(path);
    const insert = writer.prepare('INSERT INTO t (x) VALUES (?)');
    for (let i = 0; i < 16; i++) insert.run(Buffer.alloc(64 * 1024));
    const frames = walFrames(path);
    // 16 rows of 64 KiB: a few hundred frames at least.
    expect(frames).toBeGreaterThan(200);
    const failures: Error[] = [];
    const checkpointer = new WalCheckpointer(path, { interval_ms: 20, restart_frames: 1_000_000, restart_wait_ms: 5_000, deadline_ms: 5_000, onFailure: (e) => failures.push(e) });
    await checkpointer.start();
    try {
      // Every frame copied, each counted once: a pass reporting what the WAL holds copied would count some twice.
      await until('the WAL copied', async () => checkpointer.framesCheckpointed, (n) => n >= frames, 10_000);
      expect(checkpointer.framesCheckpointed).toBe(frames);
      const settled = { passes: checkpointer.checkpoints, frames: checkpointer.framesCheckpointed };
      expect(settled.passes).toBeGreaterThan(0);
      // Passes over the idle WAL: those the interval runs meanwhile (not counted on, the machine may be
      // slow; nothing is left to copy, so no report can legitimately come), and for certain stop()'s
      // last pass, whose report would reach this thread before the worker's exit does.
      await new Promise((resolve) => setTimeout(resolve, 200));
      await checkpointer.stop();
      expect({ passes: checkpointer.checkpoints, frames: checkpointer.framesCheckpointed }).toEqual(settled);
      expect(failures).toEqual([]);
    } finally {
      await checkpointer.stop();
      writer.close();
    }
  });

  it('checkpoints on commits again once the worker has died', async () => {
    const checkpointer = stores.walCheckpointer!;
    // The worker dies as a crash would end it.
    await (checkpointer as unknown as { worker: { terminate(): Promise<number> } }).worker.terminate();
    await until('the failure noticed', async () => logged.length, (n) => n > 0, 5_000);
    expect(logged[0]).toMatch(/WAL checkpointer: the worker exited.*checkpoints on commits again/);
    expect(checkpointer.running).toBe(false);
    const generation = walGeneration(file);
    const framesBefore = checkpointer.framesCheckpointed;
    // 8 MiB: twice SQLite's 1,000-page threshold. Its own checkpoint in a commit, then the next write
    // restarts the WAL; with checkpoints left off, nothing could.
    await write(stores, 'ckpt:b', 8);
    expect(walGeneration(file)).toBeGreaterThan(generation);
    expect(checkpointer.framesCheckpointed).toBe(framesBefore);
  });

  it('reads back everything written after a reopen: what the worker restarted the WAL over, and what commits checkpointed once it died', async () => {
    // A file of this test's own, written here (not what the tests before it left).
    const own = join(dir, 'db', 'reopen.sqlite');
    const warnings: string[] = [];
    const first = await openSqlStores({ sqlitePath: own, logger: (m) => warnings.push(m) });
    const mib = Math.ceil((1.5 * wal_restart_frames * 4096) / MIB);
    try {
      const checkpointer = first.walCheckpointer!;
      await write(first, 'reopen:a', 1);
      const generation = walGeneration(own);
      await write(first, 'reopen:a2', mib);
      await until('checkpoints', async () => checkpointer.framesCheckpointed, (n) => n > wal_restart_frames, 5_000);
      // The WAL started again from its beginning over what the worker copied (as in the first test).
      await write(first, 'reopen:a3', 1);
      expect(walGeneration(own)).toBeGreaterThan(generation);
      await (checkpointer as unknown as { worker: { terminate(): Promise<number> } }).worker.terminate();
      await until('the worker gone', async () => checkpointer.running, (running) => !running, 5_000);
      await write(first, 'reopen:b', 8);
    } finally {
      await first.close();
    }
    const reopened = await openSqlStores({ sqlitePath: own });
    try {
      expect(reopened.walCheckpointer?.running).toBe(true);
      expect((await reopened.journal.readAfter('reopen:a', 0)).length).toBe(16);
      expect((await reopened.journal.readAfter('reopen:a2', 0)).length).toBe(mib * 16);
      expect((await reopened.journal.readAfter('reopen:a3', 0)).length).toBe(16);
      expect((await reopened.journal.readAfter('reopen:b', 0)).length).toBe(8 * 16);
    } finally {
      await reopened.close();
    }
    expect(warnings).toEqual([expect.stringMatching(/WAL checkpointer: the worker exited/)]);
  });

  it('restarts a WAL that a writer never lets a passive checkpoint finish', async () => {
    // A writer with no pause at all (a synchronous loop on this thread), as under a long flash sale.
    const path = join(dir, 'busy.sqlite');
    const writer = walWriter(path);
    const failures: Error[] = [];
    const checkpointer = new WalCheckpointer(path, { interval_ms: 20, restart_frames: 2_000, restart_wait_ms: 5_000, deadline_ms: 5_000, onFailure: (e) => failures.push(e) });
    await checkpointer.start();
    try {
      const insert = writer.prepare('INSERT INTO t (x) VALUES (?)');
      const generation = () => walGeneration(path);
      const before = generation();
      const until_ms = Date.now() + 1_500;
      let rows = 0;
      while (Date.now() < until_ms) {
        insert.run(Buffer.alloc(16 * 1024));
        rows++;
      }
      await until('a restart reported', async () => checkpointer.restarts, (n) => n > 0, 5_000);
      insert.run(Buffer.alloc(10));
      expect(generation()).toBeGreaterThan(before);
      expect(writer.prepare('SELECT COUNT(*) AS n FROM t').get()).toEqual({ n: rows + 1 });
      expect(failures).toEqual([]);
    } finally {
      await checkpointer.stop();
      writer.close();
    }
  });

  it('does not hold writes back while a reader elsewhere keeps an old snapshot: a RESTART that cannot finish is tried again after a backoff', async () => {
    const path = join(dir, 'reader.sqlite');
    const writer = walWriter(path);
    // A backup or a browser of the file: a read transaction open on an old snapshot for the whole test.
    const reader = new Database(path);
    reader.exec('BEGIN');
    reader.prepare('SELECT COUNT(*) AS n FROM t').get();
    const failures: Error[] = [];
    const checkpointer = new WalCheckpointer(path, { interval_ms: 20, restart_frames: 200, restart_wait_ms: 300, deadline_ms: 5_000, onFailure: (e) => failures.push(e) });
    await checkpointer.start();
    try {
      const insert = writer.prepare('INSERT INTO t (x) VALUES (?)');
      let rows = 0;
      const until_ms = Date.now() + 2_000;
      while (Date.now() < until_ms) {
        insert.run(Buffer.alloc(8 * 1024));
        // Let the worker run its passes (as the engine's writes leave it room between them).
        if (++rows % 20 === 0) await new Promise((resolve) => setTimeout(resolve, 1));
      }
      // A RESTART holds the writes back for restart_wait_ms each time it is tried. Tried every pass
      // (20 ms), it would be refused some six times in 2 s; backing off (1 s, then 2 s) it is tried
      // at most twice, and it was tried (the reader refused it) at least once.
      expect(checkpointer.restartsRefused).toBeGreaterThanOrEqual(1);
      expect(checkpointer.restartsRefused).toBeLessThanOrEqual(2);
      expect(checkpointer.restarts).toBe(0);
      expect(failures).toEqual([]);
      expect(writer.prepare('SELECT COUNT(*) AS n FROM t').get()).toEqual({ n: rows });
    } finally {
      await checkpointer.stop();
      reader.exec('COMMIT');
      reader.close();
      writer.close();
    }
  });

  it('refuses to start on a file that does not exist, without calling its failure hook', async () => {
    const failures: Error[] = [];
    const checkpointer = new WalCheckpointer(join(dir, 'absent.sqlite'), { interval_ms: 50, restart_frames: 100, restart_wait_ms: 100, deadline_ms: 5_000, onFailure: (e) => failures.push(e) });
    await expect(checkpointer.start()).rejects.toThrow(/WAL checkpointer/);
    expect(checkpointer.running).toBe(false);
    await checkpointer.stop();
    expect(failures).toEqual([]);
  });
});

describe('the WAL checkpointer of a node on the embedded default', () => {
  it('shows in /metrics, and a failed one is logged as a warning and shown as down', async () => {
    const { log, lines } = capturingLogger('warn');
    const node = new StampedeNode(loadConfig(testEnv({ kind: 'sqlite' })), { logger: log });
    await node.start();
    try {
      const scrape = () => node.metrics.registry.metrics();
      expect(await scrape()).toMatch(/^stampede_sqlite_wal_checkpointer_up 1$/m);
      const checkpointer = node.stores.walCheckpointer!;
      await node.stores.journal.append(Array.from({ length: 64 }, (_, i) => record('node:w', i + 1)));
      await until('a checkpoint', async () => checkpointer.checkpoints, (n) => n > 0, 5_000);
      expect(await scrape()).toMatch(new RegExp(`^stampede_sqlite_wal_checkpoints_total ${checkpointer.checkpoints}$`, 'm'));

      await (checkpointer as unknown as { worker: { terminate(): Promise<number> } }).worker.terminate();
      await until('the warning', async () => lines.join(''), (text) => text.includes('checkpoints on commits again'), 5_000);
      expect(JSON.parse(lines.find((l) => l.includes('WAL checkpointer'))!)).toMatchObject({ level: 40, component: 'store' });
      expect(await scrape()).toMatch(/^stampede_sqlite_wal_checkpointer_up 0$/m);
    } finally {
      await node.stop();
    }
  });
});
