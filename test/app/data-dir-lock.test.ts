// Proves one node per data folder on the embedded default: a second `stampede serve` on the folder
// of a running one exits with an error before serving (two nodes on one SQLite file each kept their
// own state and broke each other's writes and purchase rules), a killed node's lock goes with its
// process, a stop releases it, and a second node in the same process is refused too; on MySQL the
// same holds per database (a named lock held by the node's own connection) — against the real MariaDB.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { DataDirLockedError, lockDataDir } from '../../app/data-dir-lock.ts';
import { DatabaseLockedError, lockMysqlDatabase } from '../../app/database-lock.ts';
import { freshMysqlDatabase } from '../support/services.ts';
import { startChildEngine, type ChildEngine } from '../support/child-engine.ts';
import { startEngine } from '../support/engine.ts';

describe('the data folder lock', () => {
  const children: ChildEngine[] = [];
  afterEach(async () => {
    for (const c of children.splice(0)) await c.kill('SIGKILL');
  });

  it('stops a second node from starting on the folder of a running one; a killed node\'s lock is taken over', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'stampede-lock-'));
    const first = await startChildEngine({ kind: 'sqlite', dir });
    children.push(first);
    const second = await startChildEngine({ kind: 'sqlite', dir }).then(
      (c) => (children.push(c), 'started'),
      (error: Error) => error.message,
    );
    expect(second).toMatch(/engine exited with 1/);
    expect(second).toMatch(/is used by another Stampede node/);
    await first.kill('SIGKILL');
    // The lock went with the killed process: a new node starts at once.
    const third = await startChildEngine({ kind: 'sqlite', dir });
    children.push(third);
    expect((await fetch(`${third.url}/healthz`)).status).toBe(200);
  });

  it('is released by a stop, and refuses a second node in the same process', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'stampede-lock-'));
    const e = await startEngine({ kind: 'sqlite', dir });
    try {
      expect(() => lockDataDir(dir)).toThrow(DataDirLockedError);
      await expect(startEngine({ kind: 'sqlite', dir })).rejects.toBeInstanceOf(DataDirLockedError);
    } finally {
      await e.stop();
    }
    const release = lockDataDir(dir);
    expect(() => lockDataDir(dir)).toThrow(DataDirLockedError);
    release();
    lockDataDir(dir)();
  });

  it('on MySQL, one node per database: a second is refused while the first runs, a stop releases it, a killed node\'s goes with its process', async () => {
    const url = await freshMysqlDatabase('app_database_lock');
    const e = await startEngine({ kind: 'mysql', url });
    try {
      await expect(startEngine({ kind: 'mysql', url })).rejects.toBeInstanceOf(DatabaseLockedError);
      await expect(lockMysqlDatabase(url)).rejects.toThrow(/is used by another Stampede node/);
    } finally {
      await e.stop();
    }
    // Another database on the same server is another node's to take.
    const other = await lockMysqlDatabase(await freshMysqlDatabase('app_database_lock_other'));
    const child = await startChildEngine({ kind: 'mysql', url });
    children.push(child);
    await expect(lockMysqlDatabase(url)).rejects.toBeInstanceOf(DatabaseLockedError);
    await child.kill('SIGKILL');
    children.splice(children.indexOf(child), 1);
    // The server let go of it with the killed process's connection.
    let release: (() => Promise<void>) | undefined;
    for (let i = 0; i < 50 && !release; i++) {
      release = await lockMysqlDatabase(url).catch(async () => {
        await new Promise((r) => setTimeout(r, 100));
        return undefined;
      });
    }
    expect(release).toBeDefined();
    await release!();
    await other();
  });
});
