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
import mysql from 'mysql2/promise';
import { DatabaseLockedError, lockMysqlDatabase, type DatabaseLock } from '../../app/database-lock.ts';
import { waitFor } from '../support/journal-faults.ts';
import { MYSQL_BASE_URL, freshMysqlDatabase } from '../support/services.ts';
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

  it('a stop whose step fails still closes the stores and lets the folder go, and a second stop() gets the same stop', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'stampede-stop-fails-'));
    const e = await startEngine({ kind: 'sqlite', dir });
    // A step of the stop that fails (here the bus's close; any step before the stores close).
    e.node.bus.close = async () => {
      throw new Error('injected: the bus would not close');
    };
    const first = e.node.stop();
    const second = e.node.stop();
    expect(second).toBe(first);
    await expect(first).rejects.toThrow(/the bus would not close/);
    // The folder's lock is free: another node (here, its lock alone) may take it.
    const release = lockDataDir(dir);
    release();
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
    let lock: DatabaseLock | undefined;
    try {
      expect(other.held).toBe(true);
      const child = await startChildEngine({ kind: 'mysql', url });
      children.push(child);
      await expect(lockMysqlDatabase(url)).rejects.toBeInstanceOf(DatabaseLockedError);
      await child.kill('SIGKILL');
      children.splice(children.indexOf(child), 1);
      // The server let go of it with the killed process's connection.
      for (let i = 0; i < 50 && !lock; i++) {
        lock = await lockMysqlDatabase(url).catch(async () => {
          await new Promise((r) => setTimeout(r, 100));
          return undefined;
        });
      }
      expect(lock).toBeDefined();
    } finally {
      // Their connections closed whether the test passed or not.
      await lock?.release();
      await other.release();
    }
  });

  it('on MySQL, a released lock is free the moment release() returns: taken again at once, time after time (a restart)', async () => {
    const url = await freshMysqlDatabase('app_database_lock_release');
    const name = `stampede.node.${new URL(url).pathname.slice(1)}`.slice(0, 64);
    const admin = await mysql.createConnection({ uri: `${MYSQL_BASE_URL}/` });
    try {
      for (let i = 0; i < 30; i++) {
        const lock = await lockMysqlDatabase(url);
        await lock.release();
        expect(Number(((await admin.query('SELECT IS_FREE_LOCK(?) AS free', [name]))[0] as { free: number }[])[0]!.free)).toBe(1);
      }
    } finally {
      await admin.end();
    }
  });

  it('on MySQL, a node whose lock connection the server ended answers /readyz 503 (databaseLock) while it cannot hold the lock again, and 200 once it does', async () => {
    const url = await freshMysqlDatabase('app_database_lock_ready');
    const e = await startEngine({ kind: 'mysql', url });
    let admin: mysql.Connection | undefined;
    let other: mysql.Connection | undefined;
    try {
      admin = await mysql.createConnection({ uri: `${MYSQL_BASE_URL}/` });
      other = await mysql.createConnection({ uri: `${MYSQL_BASE_URL}/` });
      expect((await e.client.request('GET', '/readyz')).status).toBe(200);
      const name = `stampede.node.${new URL(url).pathname.slice(1)}`.slice(0, 64);
      const [rows] = await admin.query('SELECT IS_USED_LOCK(?) AS id', [name]);
      // The server ends the node's lock connection, and another connection takes the lock at once.
      await killAndTakeLock(admin, other, name, Number((rows as { id: number }[])[0]!.id));
      await waitFor(async () => (await e.client.request('GET', '/readyz')).status === 503, 10_000, '/readyz 503');
      expect(JSON.stringify((await e.client.request('GET', '/readyz')).body)).toContain('databaseLock');
      expect(e.node.databaseLock!.held).toBe(false);
      // The other lets go: the node takes it again within a second or so, and is ready.
      await other.query('SELECT RELEASE_LOCK(?)', [name]);
      await waitFor(async () => (await e.client.request('GET', '/readyz')).status === 200, 10_000, '/readyz 200 again');
      expect(e.node.databaseLock!.held).toBe(true);
    } finally {
      await Promise.all([admin?.end(), other?.end()]);
      await e.stop();
    }
  });

  it('on MySQL, a lock whose connection the server ended is taken again at the next check; one another node took meanwhile is said so', async () => {
    const url = await freshMysqlDatabase('app_database_lock_lost');
    const events: string[] = [];
    const lock = await lockMysqlDatabase(url, { lost: () => events.push('lost'), regained: () => events.push('regained'), taken: () => events.push('taken') }, 100);
    const admin = await mysql.createConnection({ uri: `${MYSQL_BASE_URL}/` });
    let other: mysql.Connection | undefined;
    try {
      const name = `stampede.node.${new URL(url).pathname.slice(1)}`.slice(0, 64);
      const holder = async () => Number(((await admin.query('SELECT IS_USED_LOCK(?) AS id', [name]))[0] as { id: number | null }[])[0]!.id);
      // The server ends the lock's connection (its idle timeout, a restart): the lock goes with it.
      await admin.query(`KILL CONNECTION ${await holder()}`);
      await waitFor(() => events.includes('lost') && events.includes('regained'), 10_000, 'the lock taken again');
      expect(lock.held).toBe(true);
      const id = await holder();
      expect(id).toBeGreaterThan(0);
      // Lost again, and another node takes it first: said so, not held.
      other = await mysql.createConnection({ uri: `${MYSQL_BASE_URL}/` });
      await killAndTakeLock(admin, other, name, id);
      await waitFor(() => events.includes('taken'), 10_000, 'the lock found taken');
      expect(lock.held).toBe(false);
      // Freed: taken again.
      const freed = other;
      other = undefined;
      await freed.end();
      await waitFor(() => lock.held, 10_000, 'the lock taken again after the other let go');
    } finally {
      await other?.end();
      await lock.release();
      await admin.end();
    }
  });
});

/**
 * The server ends the lock's connection `holder`, and `other` takes the lock as it is freed: `other`
 * waits for the lock before the kill, so the server hands it over at once (taking it after the kill
 * raced the lock's own next check, which may take it back first, and then `other` never got it).
 */
async function killAndTakeLock(admin: mysql.Connection, other: mysql.Connection, name: string, holder: number): Promise<void> {
  const taking = other.query('SELECT GET_LOCK(?, 30) AS ok', [name]);
  const waiting = async () => Number(((await admin.query("SELECT COUNT(*) AS n FROM information_schema.PROCESSLIST WHERE ID = ? AND INFO LIKE 'SELECT GET_LOCK%'", [other.threadId]))[0] as { n: number }[])[0]!.n) === 1;
  await waitFor(waiting, 5_000, 'the other waiting for the lock');
  await admin.query(`KILL CONNECTION ${holder}`);
  expect(Number(((await taking)[0] as { ok: number }[])[0]!.ok)).toBe(1);
}
