// Why: on the embedded SQLite default a reply leaves only once its write is on disk, but an fsync
// inside COMMIT (synchronous=FULL) holds the event loop for the whole flush: measured in a 20,000-buyer
// simulated sale, ~17% of the engine's single thread was better-sqlite3 waiting for the disk. So the
// connection runs synchronous=NORMAL in WAL mode (a commit writes its frames to the WAL file and
// returns; checkpoints still sync) and a durable write then awaits `sync()`: an fdatasync of the WAL
// file on libuv's thread pool, shared by every commit made before it started (a group fsync). When
// `sync()` resolves, every commit made before the call is on disk, as synchronous=FULL would have
// made it; the event loop meanwhile decides the next commands.
//
// A reader may see a commit whose sync is still in flight (its writer's reply waits for it); only an
// OS crash or power loss inside that window can lose it, never a crash of the process.
//
// A failed fdatasync is final: the kernel reports a write-back error once and may drop the failed
// pages, so a later sync that succeeds would vouch for a WAL with a hole in it (SQLite's recovery
// stops at the first broken frame, taking every later commit with it). After one failure every
// sync fails (the writes answer 503, /readyz says the database is down) until the node is restarted
// and SQLite recovers from what is really on disk.
import { open } from 'node:fs/promises';
import { StoreUnavailableError } from '../errors.ts';

export class WalSync {
  private inFlight: Promise<void> | null = null;
  private next: Promise<void> | null = null;
  /** The first failed fdatasync, after which nothing can be made durable any more. */
  private failure: Error | undefined;
  /** The connections closed (their last one checkpointed the WAL into the database file and deleted it). */
  private closed = false;
  /** fdatasyncs done (metrics, tests). */
  syncs = 0;

  /**
   * `walPath`: the database file's real name (symlinks resolved: SQLite puts the WAL next to the file
   * a link points at) followed by `-wal`.
   */
  constructor(
    readonly walPath: string,
    /** Opens the WAL file (tests inject failures here). */
    private readonly openFile: (path: string, flags: string) => Promise<{ datasync(): Promise<void>; close(): Promise<void> }> = open,
  ) {}

  /** Whether a sync has failed (see above): the database cannot make writes durable any more. */
  get failed(): boolean {
    return this.failure !== undefined;
  }

  /** The stores are closing: a WAL file gone from now on was checkpointed and deleted, not lost. */
  close(): void {
    this.closed = true;
  }

  /** Resolves once everything committed before this call is on disk; rejects if the sync failed. */
  sync(): Promise<void> {
    if (this.failure) return Promise.reject(this.lost());
    if (!this.inFlight) {
      this.inFlight = this.flush().finally(() => {
        this.inFlight = null;
      });
      return this.inFlight;
    }
    // The running sync may have started before the caller's commit: wait for the next one, which
    // every caller in the meantime shares.
    this.next ??= this.inFlight.then(
      () => this.startNext(),
      () => this.startNext(),
    );
    return this.next;
  }

  private startNext(): Promise<void> {
    this.next = null;
    return this.sync();
  }

  private lost(): StoreUnavailableError {
    return new StoreUnavailableError(`an fsync of ${this.walPath} failed (${this.failure?.message}); no write can be made durable until the node restarts`, { cause: this.failure });
  }

  private async flush(): Promise<void> {
    let handle;
    try {
      // Opened per sync, by name: the file the connection writes now, even after SQLite replaced it.
      handle = await this.openFile(this.walPath, 'r');
    } catch (error) {
      // No WAL file once the connections closed: the last one checkpointed the WAL into the database
      // file (synced, under synchronous=NORMAL) before deleting it. Nothing is left to sync. While
      // they are open a commit's WAL exists: its absence means this is not the file SQLite writes.
      if ((error as NodeJS.ErrnoException).code === 'ENOENT' && this.closed) return;
      throw error;
    }
    try {
      await handle.datasync();
      this.syncs++;
    } catch (error) {
      this.failure ??= error as Error;
      throw this.lost();
    } finally {
      await handle.close();
    }
  }
}
