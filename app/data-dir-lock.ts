// One node per data folder on the embedded default: two processes on one SQLite file each keep their
// own copy of the state in memory (catalog, rules, actors), so each one's writes break the other's
// (journal conflicts answered 503, a purchase rule put on one not enforced by the other). The node
// takes `<dataDir>/stampede.lock` (its pid) at start and removes it at stop. A lock left by a process
// that is gone (killed) is taken over; one held by a live process stops the start.
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export const DATA_DIR_LOCK_FILE = 'stampede.lock';

export class DataDirLockedError extends Error {
  override name = 'DataDirLockedError';
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: the process exists (another user's).
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Takes the data folder for this process; returns the release function. */
export function lockDataDir(dataDir: string): () => void {
  mkdirSync(dataDir, { recursive: true });
  const path = join(dataDir, DATA_DIR_LOCK_FILE);
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      writeFileSync(path, `${process.pid}\n`, { flag: 'wx' });
      let released = false;
      return () => {
        if (released) return;
        released = true;
        rmSync(path, { force: true });
      };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
    let holder = Number.NaN;
    try {
      holder = Number.parseInt(readFileSync(path, 'utf8'), 10);
    } catch {
      // removed meanwhile: try again
    }
    if (Number.isSafeInteger(holder) && holder !== process.pid && alive(holder)) {
      throw new DataDirLockedError(`${dataDir} is used by another Stampede node (pid ${holder}, ${path}): one node per data folder`);
    }
    // Left by a process that is gone (or unreadable): take it over.
    rmSync(path, { force: true });
  }
  throw new DataDirLockedError(`${dataDir}: could not take ${path}`);
}
