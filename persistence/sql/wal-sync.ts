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
import { open } from 'node:fs/promises';

export class WalSync {
  private inFlight: Promise<void> | null = null;
  private next: Promise<void> | null = null;
  /** fdatasyncs done (metrics, tests). */
  syncs = 0;

  /** `walPath`: the database file's name followed by `-wal`. */
  constructor(readonly walPath: string) {}

  /** Resolves once everything committed before this call is on disk; rejects if the sync failed. */
  sync(): Promise<void> {
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

  private async flush(): Promise<void> {
    let handle;
    try {
      // Opened per sync, by name: the file the connection writes now, even after SQLite replaced it.
      handle = await open(this.walPath, 'r');
    } catch (error) {
      // No WAL file: the last connection closed, which checkpoints the WAL into the database file
      // (synced, under synchronous=NORMAL) before deleting it. Nothing is left to sync.
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw error;
    }
    try {
      await handle.datasync();
      this.syncs++;
    } finally {
      await handle.close();
    }
  }
}
