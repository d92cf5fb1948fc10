// One node per data folder on the embedded default: two processes on one SQLite file each keep their
// own copy of the state in memory (catalog, rules, actors), so each one's writes break the other's
// (journal conflicts answered 503, a purchase rule put on one not enforced by the other). The node
// holds an exclusive lock on `<dataDir>/stampede.lock` from start to stop: a small SQLite file in
// `locking_mode=EXCLUSIVE`, so the lock is the operating system's (fcntl), held by the open
// connection — released when the node stops or its process dies however it dies, never confused by
// a reused pid, and refused to any other connection, in this process or another.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';

export const DATA_DIR_LOCK_FILE = 'stampede.lock';

export class DataDirLockedError extends Error {
  override name = 'DataDirLockedError';
}

/** Takes the data folder for this node; returns the release function. */
export function lockDataDir(dataDir: string): () => void {
  mkdirSync(dataDir, { recursive: true });
  const path = join(dataDir, DATA_DIR_LOCK_FILE);
  // timeout 0: a lock held elsewhere is refused at once (SQLITE_BUSY), not waited for.
  const db = new Database(path, { timeout: 0 });
  try {
    db.pragma('locking_mode = EXCLUSIVE');
    // The first write takes the exclusive lock; in this mode it is kept after the commit.
    db.exec(`BEGIN EXCLUSIVE; CREATE TABLE IF NOT EXISTS holder (pid INTEGER, since TEXT); DELETE FROM holder;
             INSERT INTO holder VALUES (${process.pid}, '${new Date().toISOString()}'); COMMIT`);
  } catch (error) {
    db.close();
    if ((error as { code?: string }).code === 'SQLITE_BUSY') {
      throw new DataDirLockedError(`${dataDir} is used by another Stampede node (${path} is locked): one node per data folder`);
    }
    throw error;
  }
  let released = false;
  return () => {
    if (released) return;
    released = true;
    db.close();
  };
}
