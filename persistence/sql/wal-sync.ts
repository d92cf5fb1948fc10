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
//
// The WAL is synced through one descriptor kept open for the life of the stores (opened again only if
// the file at the path is another one): Linux reports a write-back error to each descriptor that was
// open when it happened, once. The checkpointer's own sync of the WAL may see an error first; a
// descriptor opened per sync after that would then sync clean over the hole. An I/O error the
// checkpointer reports fails the syncs too (`markFailed`).
import { open, stat } from 'node:fs/promises';
import { StoreUnavailableError } from '../errors.ts';

/** The WAL file as it is synced (node's FileHandle; tests inject failures). */
export interface WalFile {
  datasync(): Promise<void>;
  close(): Promise<void>;
}

export class WalSync {
  private inFlight: Promise<void> | null = null;
  private next: Promise<void> | null = null;
  /** The first failed fdatasync, after which nothing can be made durable any more. */
  private failure: Error | undefined;
  /** The connections closed (their last one checkpointed the WAL into the database file and deleted it). */
  private closed = false;
  /** fdatasyncs done (metrics, tests). */
  syncs = 0;
  /** The descriptor every sync goes through, and the file (inode) it is of. */
  private file: { handle: WalFile; ino: number | bigint } | undefined;
  /** Descriptors opened (tests: one for the life of the stores). */
  opened = 0;

  /**
   * `walPath`: the database file's real name (symlinks resolved: SQLite puts the WAL next to the file
   * a link points at) followed by `-wal`.
   */
  constructor(
    readonly walPath: string,
    /** Opens the WAL file (tests inject failures here). */
    private readonly openFile: (path: string, flags: string) => Promise<WalFile> = open,
    /** The inode at a path (tests). */
    private readonly inodeOf: (path: string) => Promise<number | bigint> = async (path) => (await stat(path)).ino,
  ) {}

  /** Whether a sync has failed (see above): the database cannot make writes durable any more. */
  get failed(): boolean {
    return this.failure !== undefined;
  }

  /** The stores are closing: a WAL file gone from now on was checkpointed and deleted, not lost. */
  close(): void {
    this.closed = true;
    // A sync still running keeps its descriptor: it lets go when it ends.
    if (!this.inFlight) void this.release();
  }

  private async release(): Promise<void> {
    const file = this.file;
    this.file = undefined;
    await file?.handle.close().catch(() => undefined);
  }

  /**
   * The WAL's writes failed elsewhere (the checkpointer's sync or copy answered an I/O error): the
   * kernel may have dropped the pages, so nothing is vouched for any more, as after a failed sync here.
   */
  markFailed(error: Error): void {
    this.failure ??= error;
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
    const handle = await this.current();
    if (!handle) return;
    try {
      await handle.datasync();
      this.syncs++;
    } catch (error) {
      this.failure ??= error as Error;
      throw this.lost();
    } finally {
      if (this.closed) await this.release();
    }
  }

  /** The descriptor of the file at the path now (opened once; again only if the file was replaced); undefined when none is left to sync. */
  private async current(): Promise<WalFile | undefined> {
    let ino: number | bigint;
    try {
      ino = await this.inodeOf(this.walPath);
    } catch (error) {
      // No WAL file once the connections closed: the last one checkpointed the WAL into the database
      // file (synced, under synchronous=NORMAL) before deleting it. Nothing is left to sync. While
      // they are open a commit's WAL exists: its absence means this is not the file SQLite writes.
      if ((error as NodeJS.ErrnoException).code === 'ENOENT' && this.closed) return undefined;
      throw error;
    }
    if (this.file && this.file.ino === ino) return this.file.handle;
    const previous = this.file;
    this.file = undefined;
    await previous?.handle.close().catch(() => undefined);
    const handle = await this.openFile(this.walPath, 'r');
    this.opened++;
    this.file = { handle, ino };
    return handle;
  }
}
