// Starting a worker thread that opens its own better-sqlite3 connection to the node's SQLite file
// (the WAL checkpointer, the writer): the one start protocol they share. The worker is handed the
// better-sqlite3 module's path and its own data, answers a first message that says whether its
// connection opened, and must do so within a deadline; an error event or an exit, at start or later,
// is the component's to handle.
import { createRequire } from 'node:module';
import { Worker, type ResourceLimits } from 'node:worker_threads';

export interface SqliteWorkerSpec<M> {
  /** Names the component at the start of every error's message ("SQLite writer"). */
  label: string;
  /** The worker's code (run with `eval`). */
  source: string;
  /** The worker's data, besides `module` (better-sqlite3's path). */
  data: Record<string, unknown>;
  resourceLimits: ResourceLimits;
  deadline_ms: number;
  /** What a message says of the connection: open, failed (with the worker's text), or neither (then `onMessage`). */
  readiness(message: M): 'ready' | { failed: string; code?: string } | undefined;
  onMessage(message: M): void;
  /** The worker broke: it reported a failure, raised an error or exited (`exited`), at start or later. */
  onBroken(error: Error, exited: boolean): void;
}

/** Spawns the worker (unref'd); `ready` resolves once its connection is open, rejects if it breaks first or the deadline passes. */
export function spawnSqliteWorker<M>(spec: SqliteWorkerSpec<M>): { worker: Worker; ready: Promise<void> } {
  const module = createRequire(import.meta.url).resolve('better-sqlite3');
  const worker = new Worker(spec.source, { eval: true, resourceLimits: spec.resourceLimits, workerData: { module, ...spec.data } });
  worker.unref();
  const ready = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${spec.label}: no connection within ${spec.deadline_ms} ms`)), spec.deadline_ms);
    const settle = (error?: Error) => {
      clearTimeout(timer);
      if (error) reject(error);
      else resolve();
    };
    const broken = (error: Error, exited: boolean) => {
      settle(error);
      spec.onBroken(error, exited);
    };
    worker.on('message', (m: M) => {
      const readiness = spec.readiness(m);
      if (readiness === undefined) spec.onMessage(m);
      else if (readiness === 'ready') settle();
      // The worker's error code (SQLITE_IOERR_FSYNC, ...) kept: a caller tells an I/O error by it.
      else broken(Object.assign(new Error(`${spec.label}: ${readiness.failed}`), readiness.code === undefined ? {} : { code: readiness.code }), false);
    });
    worker.on('error', (error) => broken(error, false));
    worker.on('exit', (code) => broken(new Error(`${spec.label}: the worker exited (code ${code})`), true));
  });
  return { worker, ready };
}
