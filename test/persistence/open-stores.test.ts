// Proves openStores picks and wires the configured backends (MySQL over SQLite, Redis snapshots first),
// keeps data across a restart with the schema already in place, and fails fast with
// StoreUnavailableError when MySQL is unreachable, using the real MariaDB, Redis and SQLite.
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { openStores } from '../../persistence/index.ts';
import { checkMysqlServer, openSqlStores } from '../../persistence/sql/open.ts';
import { StoreUnavailableError } from '../../persistence/errors.ts';
import { RedisSnapshotStore } from '../../persistence/redis/redis-snapshot-store.ts';
import { MYSQL_BASE_URL, REDIS_URL, freshMysqlDatabase } from '../support/services.ts';

const dirs: string[] = [];
function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'stampede-open-'));
  dirs.push(dir);
  return dir;
}
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe('openStores', () => {
  it('refuses a MySQL server whose max_allowed_packet is under 16 MiB, whose sessions start without autocommit or escape no backslashes, and warns when its redo log or binary log is not flushed at each commit', async () => {
    const server = (packet: number, flush: number, autocommit = 1, mode = 'STRICT_TRANS_TABLES', logBin = 0, syncBinlog = 0) => ({
      all: async <T,>() => [{ packet, flush, autocommit, mode, logBin, syncBinlog }] as T[],
    });
    const warned: string[] = [];
    await expect(checkMysqlServer(server(4 * 1024 * 1024, 1), (m) => warned.push(m))).rejects.toThrow(/max_allowed_packet is 4194304 bytes/);
    await checkMysqlServer(server(16 * 1024 * 1024, 1), (m) => warned.push(m));
    expect(warned).toEqual([]);
    await checkMysqlServer(server(64 * 1024 * 1024, 2), (m) => warned.push(m));
    expect(warned).toEqual([expect.stringContaining('innodb_flush_log_at_trx_commit = 2')]);
    // Sessions that start with autocommit off: a single-statement write answered OK would stay uncommitted.
    await expect(checkMysqlServer(server(64 * 1024 * 1024, 1, 0), () => undefined)).rejects.toThrow(/autocommit off/);
    // Values inlined with backslash escaping would be read otherwise: a quote in a key would end its string.
    await expect(checkMysqlServer(server(64 * 1024 * 1024, 1, 1, 'STRICT_TRANS_TABLES,no_backslash_escapes'), () => undefined)).rejects.toThrow(/NO_BACKSLASH_ESCAPES/);
    // A binary log not synced at each commit: crash recovery can roll back answered writes.
    const binlog: string[] = [];
    await checkMysqlServer(server(64 * 1024 * 1024, 1, 1, '', 1, 0), (m) => binlog.push(m));
    await checkMysqlServer(server(64 * 1024 * 1024, 1, 1, '', 1, 1), (m) => binlog.push(m));
    await checkMysqlServer(server(64 * 1024 * 1024, 1, 1, '', 0, 0), (m) => binlog.push(m));
    expect(binlog).toEqual([expect.stringContaining('sync_binlog = 0')]);
    // The real server here passes.
    const stores = await openSqlStores({ mysqlUrl: await freshMysqlDatabase('persist_open_settings') });
    await stores.close();
  });

  it('rejects with StoreUnavailableError on the refused connection itself when MySQL is unreachable', async () => {
    // Nothing listens on 3399: the first refusal fails the open (not a retry loop or a timeout; the
    // test's timeout is the hang guard), with the driver's error as its cause.
    const error = await openStores({ mysqlUrl: 'mysql://root@127.0.0.1:3399/x' }).then(() => undefined, (e: unknown) => e);
    expect(error).toBeInstanceOf(StoreUnavailableError);
    expect(((error as Error).cause as { code?: string } | undefined)?.code).toBe('ECONNREFUSED');
  });

  it('creates a missing MySQL database and keeps its data across a reopen', async () => {
    const url = await freshMysqlDatabase('persist_open');
    const missing = `${url}_created`;
    const first = await openStores({ mysqlUrl: missing });
    try {
      expect(await first.ping()).toEqual({ mysql: true });
      // A durable write goes through (the write_probe row of store_identity).
      expect(await first.pingWrite()).toBe(true);
      await first.journal.append([{ stream: 'open:a', seq: 1, lastSeq: 1, at: 1, events: ['e1'] }]);
    } finally {
      await first.close();
    }
    const second = await openStores({ mysqlUrl: missing });
    try {
      expect(await second.journal.readAfter('open:a', 0)).toEqual([{ stream: 'open:a', seq: 1, lastSeq: 1, at: 1, events: ['e1'] }]);
    } finally {
      await second.close();
    }
    const mysql = await import('mysql2/promise');
    const conn = await mysql.createConnection(url);
    await conn.query(`DROP DATABASE IF EXISTS \`${new URL(missing).pathname.slice(1)}\``);
    await conn.end();
  });

  it('lets several nodes open the same new MySQL database at the same moment', async () => {
    const url = `${await freshMysqlDatabase('persist_open_race')}_new`;
    const opened = await Promise.all([1, 2, 3].map(() => openStores({ mysqlUrl: url })));
    try {
      await opened[0]?.journal.append([{ stream: 'race:a', seq: 1, lastSeq: 1, at: 1, events: [1] }]);
      expect((await opened[2]?.journal.heads())?.get('race:a')).toBe(1);
    } finally {
      await Promise.all(opened.map((s) => s.close()));
    }
    const mysql = await import('mysql2/promise');
    const conn = await mysql.createConnection(MYSQL_BASE_URL);
    await conn.query(`DROP DATABASE IF EXISTS \`${new URL(url).pathname.slice(1)}\``);
    await conn.end();
  });

  it('uses MySQL when both MySQL and SQLite are given, and puts Redis snapshots first', async () => {
    const dir = tempDir();
    const stores = await openStores({
      mysqlUrl: await freshMysqlDatabase('persist_open_both'),
      sqlitePath: join(dir, 'unused.sqlite'),
      redisUrl: `${REDIS_URL}/5`,
    });
    try {
      expect(await stores.ping()).toEqual({ mysql: true, redis: true });
      expect(stores.snapshots).toHaveLength(2);
      expect(stores.snapshots[0]).toBeInstanceOf(RedisSnapshotStore);
      expect(stores.snapshotNames).toEqual(['redis', 'mysql']);
    } finally {
      await stores.close();
    }
  });

  it('keys Redis snapshots by the database: another database on the same Redis never reads them, the same one reopened does', async () => {
    const urlA = await freshMysqlDatabase('persist_identity_a');
    const a = await openStores({ mysqlUrl: urlA, redisUrl: REDIS_URL });
    const b = await openStores({ mysqlUrl: await freshMysqlDatabase('persist_identity_b'), redisUrl: REDIS_URL });
    const stream = `identity:${Date.now()}`;
    try {
      await a.snapshots[0]!.save({ stream, seq: 3, at: 1, state: { from: 'a' } });
      expect(await a.snapshots[0]!.load(stream)).toMatchObject({ seq: 3, state: { from: 'a' } });
      expect(await b.snapshots[0]!.load(stream)).toBeUndefined();
      await b.snapshots[0]!.save({ stream, seq: 2, at: 1, state: { from: 'b' } });
      expect(await b.snapshots[0]!.load(stream)).toMatchObject({ seq: 2, state: { from: 'b' } });
      expect(await a.snapshots[0]!.load(stream)).toMatchObject({ seq: 3, state: { from: 'a' } });
    } finally {
      await a.close();
      await b.close();
    }
    // The same database, opened again (its identity is stored in it): its snapshot is still found.
    const again = await openStores({ mysqlUrl: urlA, redisUrl: REDIS_URL });
    try {
      expect(await again.snapshots[0]!.load(stream)).toMatchObject({ seq: 3, state: { from: 'a' } });
    } finally {
      await again.close();
    }
  });

  it('opens SQLite in WAL mode, with its folder created, and without Redis when none is given', async () => {
    const dir = tempDir();
    const file = join(dir, 'nested', 'data', 'stampede.sqlite');
    const stores = await openStores({ sqlitePath: file });
    try {
      expect(await stores.ping()).toEqual({ sqlite: true });
      expect(await stores.pingWrite()).toBe(true);
      expect(stores.snapshots).toHaveLength(1);
      await stores.journal.append([{ stream: 'wal:a', seq: 1, lastSeq: 1, at: 1, events: [1] }]);
      // In WAL mode a commit goes to the write-ahead log beside the file (rollback mode makes none).
      expect(existsSync(`${file}-wal`)).toBe(true);
    } finally {
      await stores.close();
    }
  });

  it('still opens when Redis is down, and reports it in ping', async () => {
    const dir = tempDir();
    const stores = await openStores({ sqlitePath: join(dir, 'x.sqlite'), redisUrl: 'redis://127.0.0.1:6390' });
    try {
      expect(await stores.ping()).toEqual({ sqlite: true, redis: false });
      expect(await stores.snapshots[0]?.load('any')).toBeUndefined();
    } finally {
      await stores.close();
    }
  });
});
