// Why: SQLite in WAL mode copies the WAL back into the database file (a checkpoint) from inside a
// COMMIT once the WAL passes 1,000 pages, and a checkpoint syncs the database file: the engine's one
// thread then waits for the disk. Measured in a simulated 50,000-buyer sale: 5% of commits took over
// 5 ms (up to 55 ms), 2.2 s of the event loop in all. So the engine's connection turns its automatic
// checkpoints off and a worker thread with its own connection to the same file runs a PASSIVE
// checkpoint every `interval_ms` (it never blocks the writer or a reader), and restarts the WAL when it
// has grown to `restart_frames` (see there).
//
// If the worker cannot start, start() rejects; if it later fails a checkpoint or dies, `onFailure` is
// called once. Either way the caller turns automatic checkpoints back on: the WAL never grows without
// bound. Stopping waits for the worker's last checkpoint and its connection to close.
import type { Worker } from 'node:worker_threads';
import { spawnSqliteWorker } from './sqlite-worker.ts';

export interface WalCheckpointerOptions {
  /** How often the worker checkpoints. */
  interval_ms: number;
  /**
   * A WAL holding this many frames is restarted, once per generation: a passive checkpoint copies
   * what it can while the engine goes on writing, so under steady writes the WAL is never wholly
   * copied at a quiet moment and would only grow. Then the worker checkpoints once more in RESTART mode, which holds the writer
   * back while it copies the few frames left (the way SQLite's own checkpoint in COMMIT would, but for
   * a remainder instead of a thousand pages) and makes the next write start the WAL from its beginning.
   */
  restart_frames: number;
  /**
   * How long the RESTART checkpoint waits for the writer to finish a transaction (and for readers of
   * older snapshots): new writers wait meanwhile, so it is short; one that could not finish is tried
   * again after a backoff (RESTART_BACKOFF_MIN_MS, doubling).
   */
  restart_wait_ms: number;
  /** Longest wait for the worker to open its connection, and to stop. */
  deadline_ms: number;
  /** The worker failed (once): the caller falls back to SQLite's own checkpoints. */
  onFailure: (error: Error) => void;
}

/** After a RESTART checkpoint that could not finish, the next waits this long (doubling, up to the max). */
export const RESTART_BACKOFF_MIN_MS = 1_000;
export const RESTART_BACKOFF_MAX_MS = 30_000;

type WorkerMessage = { type: 'ready' } | { type: 'checkpointed'; frames: number; restarted: boolean } | { type: 'restart_refused' } | { type: 'error'; message: string; code?: string };

// The worker, as plain JavaScript (a worker thread does not load the TypeScript sources): better-sqlite3
// is required by the absolute path the engine resolved, so it is the same build wherever the process runs.
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const fs = require('node:fs');
const Database = require(workerData.module);
let db;
try {
  db = new Database(workerData.file, { fileMustExist: true });
  db.pragma('busy_timeout = ' + workerData.restart_wait_ms);
  // A checkpoint copies pages from the WAL to the file: it needs no page cache to speak of.
  db.pragma('cache_size = -256');
} catch (error) {
  parentPort.postMessage({ type: 'error', message: String(error && error.message || error) });
  process.exit(1);
}
parentPort.postMessage({ type: 'ready' });
// The WAL header's checkpoint sequence number: it changes when the WAL starts again from its beginning.
const header = Buffer.alloc(4);
const generation = () => {
  let fd;
  try {
    fd = fs.openSync(workerData.file + '-wal', 'r');
    return fs.readSync(fd, header, 0, 4, 12) === 4 ? header.readUInt32BE(0) : -1;
  } catch {
    return -1;
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
};
// SQLite reports how many frames of the WAL are in the database file so far, not what one pass
// copied: what this pass copied is the growth since the last pass, within one generation of the WAL.
let seen = { generation: -1, backfilled: 0 };
/** The generation of the WAL this worker last restarted (it is a new one after the next commit). */
let restartedGeneration = -2;
// A RESTART that could not finish (a reader elsewhere holds an old snapshot: a backup, a browser of the
// file) held new writers back for its whole wait: the next is not tried before a backoff, doubling.
let restartNotBefore = 0;
let restartBackoff = ${RESTART_BACKOFF_MIN_MS};
const backOff = () => {
  restartNotBefore = Date.now() + restartBackoff;
  restartBackoff = Math.min(restartBackoff * 2, ${RESTART_BACKOFF_MAX_MS});
  parentPort.postMessage({ type: 'restart_refused' });
};
const copiedBy = (row, gen) => {
  const copied = gen === seen.generation ? row.checkpointed - seen.backfilled : row.checkpointed;
  seen = { generation: gen, backfilled: row.checkpointed };
  return Math.max(0, copied);
};
const checkpoint = () => {
  try {
    const passive = db.pragma('wal_checkpoint(PASSIVE)')[0];
    const gen = generation();
    let frames = copiedBy(passive, gen);
    let restarted = false;
    // Once per generation of the WAL: after a RESTART the next commit starts the WAL again (a new
    // generation), and until one comes an idle WAL has nothing left to restart. Only the frames
    // written since the passive pass are left to copy; the writer waits for that.
    if (passive.log >= workerData.restart_frames && gen !== restartedGeneration && Date.now() >= restartNotBefore) {
      let restart;
      try {
        restart = db.pragma('wal_checkpoint(RESTART)')[0];
      } catch (error) {
        if (error && error.code === 'SQLITE_BUSY') backOff();
        throw error;
      }
      frames += copiedBy(restart, gen);
      restarted = restart.busy === 0;
      if (restarted) {
        restartedGeneration = gen;
        restartNotBefore = 0;
        restartBackoff = ${RESTART_BACKOFF_MIN_MS};
      } else {
        backOff();
      }
    }
    if (frames > 0 || restarted) parentPort.postMessage({ type: 'checkpointed', frames, restarted });
  } catch (error) {
    // SQLITE_BUSY: the writer held on longer than restart_wait_ms; try again next time.
    if (error && error.code === 'SQLITE_BUSY') return;
    clearInterval(timer);
    parentPort.postMessage({ type: 'error', message: String(error && error.message || error), code: error && typeof error.code === 'string' ? error.code : undefined });
  }
};
const timer = setInterval(checkpoint, workerData.interval_ms);
parentPort.on('message', (message) => {
  if (message !== 'stop') return;
  clearInterval(timer);
  checkpoint();
  db.close();
  parentPort.close();
});
`;

export class WalCheckpointer {
  /** Frames copied into the database file so far (tests). */
  framesCheckpointed = 0;
  /** Checkpoint passes that copied frames (metrics). */
  checkpoints = 0;
  /** Times the WAL was made to start again from its beginning. */
  restarts = 0;
  /** RESTARTs tried that could not finish (a reader held an old snapshot), each followed by a backoff (tests). */
  restartsRefused = 0;
  private worker: Worker | undefined;
  private failed = false;
  private stopping = false;
  private exited = false;
  private started = false;

  constructor(
    readonly file: string,
    private readonly options: WalCheckpointerOptions,
  ) {}

  /** Starts the worker; resolves once its connection is open (rejects, and stops it, if it cannot be). */
  async start(): Promise<void> {
    const { interval_ms, restart_frames, restart_wait_ms } = this.options;
    const { worker, ready } = spawnSqliteWorker<WorkerMessage>({
      label: 'WAL checkpointer',
      source: WORKER_SOURCE,
      data: { file: this.file, interval_ms, restart_frames, restart_wait_ms },
      // A small isolate: the worker allocates next to nothing (every MiB counts in a million-buyer sale).
      resourceLimits: { maxOldGenerationSizeMb: 16, maxYoungGenerationSizeMb: 2, codeRangeSizeMb: 4 },
      deadline_ms: this.options.deadline_ms,
      readiness: (m) => (m.type === 'ready' ? 'ready' : m.type === 'error' ? { failed: m.message, ...(m.code === undefined ? {} : { code: m.code }) } : undefined),
      onMessage: (m) => {
        if (m.type === 'restart_refused') this.restartsRefused++;
        if (m.type !== 'checkpointed') return;
        this.checkpoints++;
        this.framesCheckpointed += m.frames;
        if (m.restarted) this.restarts++;
      },
      onBroken: (error, exited) => {
        if (exited) this.exited = true;
        if (!exited || !this.stopping) this.fail(error);
      },
    });
    this.worker = worker;
    await ready.catch(async (error: unknown) => {
      await this.stop();
      throw error;
    });
    this.started = true;
  }

  /** True while the worker checkpoints (started, not failed, not stopped). */
  get running(): boolean {
    return this.worker !== undefined && !this.failed && !this.stopping;
  }

  /** Stops the worker after one last checkpoint; bounded by the deadline (then it is terminated). */
  async stop(): Promise<void> {
    const worker = this.worker;
    if (!worker || this.stopping) return;
    this.stopping = true;
    if (this.exited) return;
    const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
    worker.postMessage('stop');
    const timer = setTimeout(() => void worker.terminate(), this.options.deadline_ms);
    await exited;
    clearTimeout(timer);
  }

  private fail(error: Error): void {
    if (this.failed || this.stopping) return;
    this.failed = true;
    void this.worker?.terminate();
    // A failure while starting rejects start() instead.
    if (this.started) this.options.onFailure(error);
  }
}
