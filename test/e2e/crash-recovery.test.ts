// Proves a 201 is durable: the engine runs as a child process on MariaDB + Redis, is SIGKILLed in
// the middle of a stream of reservations, and after a restart every order that got a 201 exists
// and the inventory's reserved + sold equals the live orders, never above the total. It also
// proves recovery does not need Redis: flushed, down, or holding a snapshot of another database.
// The same SIGKILL on the embedded SQLite default (its writes made by a worker thread, its WAL synced
// before a 201 leaves), read back from the file afterwards.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import mysql from 'mysql2/promise';
import { createHash } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { startChildEngine, type ChildEngine } from '../support/child-engine.ts';
import { Client } from '../support/engine.ts';
import { freshMysqlDatabase, REDIS_URL } from '../support/services.ts';
import { emptyInventory, evolve, type InventoryState } from '../../engine/index.ts';
import { decodeEvent } from '../../actors/inventory-codec.ts';

type JournalRows = { seq: number; last_seq: number; events: Buffer }[];

/** The inventory state the durable journal describes, folded with the engine's own evolve. */
async function foldJournal(dbUrl: string, stream: string): Promise<InventoryState> {
  const conn = await mysql.createConnection(dbUrl);
  try {
    const [rows] = await conn.query('SELECT seq, last_seq, events FROM journal WHERE stream = ? ORDER BY seq', [stream]);
    return fold(rows as JournalRows);
  } finally {
    await conn.end();
  }
}

function fold(rows: JournalRows): InventoryState {
  const state = emptyInventory();
  let seq = 0;
  for (const row of rows) {
    expect(Number(row.seq)).toBe(seq + 1);
    const events = JSON.parse(row.events.toString('utf8')) as unknown[];
    for (const e of events) evolve(state, decodeEvent(e));
    seq = Number(row.last_seq);
  }
  return state;
}

const REDIS_DB_URL = `${REDIS_URL}/7`;
const TOTAL = 5_000;

/** Reservations of 200 concurrent buyers until about `answers` were answered, then SIGKILL: the orders that got a 201, by id. */
async function reserveThenKill(engine: ChildEngine, answers: number): Promise<Map<string, string>> {
  const c = new Client(engine.url);
  await c.sku('crash', '2026-12-24', TOTAL);
  const created = new Map<string, string>(); // orderId -> user
  let stop = false;
  let answered = 0;
  const workers = Array.from({ length: 200 }, async (_, w) => {
    for (let i = 0; !stop; i++) {
      const user = `w${w}-${i}`;
      try {
        const a = await c.buyer(user, 'POST', '/v1/orders', { skuId: 'crash', date: '2026-12-24', qty: 1 + (i % 3) });
        answered++;
        if (a.status === 201) created.set(a.body.orderId, user);
      } catch {
        return; // the connection died with the process
      }
    }
  });
  const killAt = Date.now() + 15_000;
  while (answered < answers && Date.now() < killAt) await new Promise((r) => setTimeout(r, 10));
  await engine.kill('SIGKILL');
  stop = true;
  await Promise.all(workers);
  return created;
}

/** After the restart: every 201 is a reserved order, and the live inventory is what the durable journal says. */
async function expectEvery201Kept(c: Client, created: Map<string, string>, journal: InventoryState, label: string) {
  const inv = await c.admin('GET', '/ops/inventory/crash/2026-12-24');
  expect(inv.status, label).toBe(200);
  const ids = [...created.keys()];
  for (let i = 0; i < ids.length; i += 100) {
    const slice = ids.slice(i, i + 100);
    const got = await Promise.all(slice.map((id) => c.buyer(created.get(id)!, 'GET', `/v1/orders/${id}`)));
    for (const g of got) expect([label, g.status, g.body.status]).toEqual([label, 200, 'reserved']);
  }
  // reserved + sold equals the live orders in the durable journal, never above the total.
  const liveUnits = [...journal.reservations.values()].reduce((n, r) => n + r.qty, 0);
  expect(inv.body.reserved, label).toBe(liveUnits);
  expect(inv.body.sold, label).toBe(journal.sold);
  expect(inv.body.reserved + inv.body.sold, label).toBeLessThanOrEqual(TOTAL);
  for (const id of created.keys()) expect(journal.reservations.has(id), label).toBe(true);
  return inv.body as { total: number; reserved: number; sold: number; journalSeq: number; snapshotSeq: number };
}

describe('crash and recovery on MariaDB + Redis', () => {
  let engine: ChildEngine | undefined;
  afterAll(async () => engine?.kill());

  it('keeps every 201 across a SIGKILL, and recovers the same state with Redis flushed, down, or foreign', async () => {
    const dbUrl = await freshMysqlDatabase('e2e_crash');
    const redis = new Redis(REDIS_DB_URL);
    let conn: mysql.Connection | undefined;
    try {
      await redis.flushdb();
      const backend = { kind: 'mysql' as const, url: dbUrl, redisUrl: REDIS_DB_URL };
      // Small snapshot interval so recovery really starts from snapshots.
      const env = { STAMPEDE_SNAPSHOT_EVERY_EVENTS: '200', STAMPEDE_SNAPSHOT_EVERY_MS: '100' };
      engine = await startChildEngine(backend, env);
      const created = await reserveThenKill(engine, 1_500);
      expect(created.size).toBeGreaterThan(300);

      const check = async (label: string) => {
        engine = await startChildEngine(backend, env);
        const inv = await expectEvery201Kept(new Client(engine.url), created, await foldJournal(dbUrl, 'crash/2026-12-24'), label);
        const state = { total: inv.total, reserved: inv.reserved, sold: inv.sold };
        await engine.kill('SIGTERM');
        return { state, journalSeq: inv.journalSeq, snapshotSeq: inv.snapshotSeq };
      };

      const afterCrash = await check('after SIGKILL');
      // Every start recovers the SKU/date (it has live reservations) and, on MySQL, fences its journal
      // first: a write of the process before may still be running in the server. One record each.
      const fencedOnce = async (label: string, seq: number) => {
        const next = await check(label);
        expect(next.journalSeq, label).toBe(seq + 1);
        return next;
      };
      // Redis held snapshots; now flush it: the same state comes from MySQL.
      expect(await redis.dbsize()).toBeGreaterThan(0);
      await redis.flushdb();
      const flushed = await fencedOnce('Redis flushed', afterCrash.journalSeq);
      expect(flushed.state).toEqual(afterCrash.state);
      // Intact snapshots (their checksum right, a real state with 1,000 more stock) under this database's
      // own key that this journal cannot have made are ignored: (a) at a seq it never had (a Redis kept
      // while the database was restored from an older backup), (b) at a seq where a record of this
      // journal does end, but of another history of the stream (written at another time). (Another
      // database's snapshots live under another key altogether.)
      const db = (conn = await mysql.createConnection(dbUrl));
      const [ids] = await db.query("SELECT value FROM store_identity WHERE name = 'instance'");
      const [snaps] = await db.query("SELECT state FROM snapshots WHERE stream = 'crash/2026-12-24'");
      const journalHead = async () => {
        const [heads] = await db.query("SELECT last_seq, at FROM journal WHERE stream = 'crash/2026-12-24' ORDER BY seq DESC LIMIT 1");
        return (heads as { last_seq: number; at: number }[])[0]!;
      };
      const instance = (ids as { value: string }[])[0]!.value;
      let head = await journalHead();
      const sqlState = (snaps as { state: Buffer | string }[])[0]!.state;
      const foreignState = { ...(JSON.parse(sqlState.toString()) as { total: number }), total: afterCrash.state.total + 1_000 };
      const intact = (seq: number, at: number) => {
        const record = { stream: 'crash/2026-12-24', seq, at, state: foreignState };
        return JSON.stringify({ ...record, check: createHash('sha256').update(JSON.stringify(record)).digest('hex') });
      };
      await redis.set(`stampede:snap:${instance}:crash/2026-12-24`, intact(Number(head.last_seq) + 1_000, Number(head.at)));
      const ahead = await fencedOnce('Redis snapshot ahead of the journal', flushed.journalSeq);
      expect(ahead.state).toEqual(afterCrash.state);
      // Recovery dropped it (kept, it would have refused every save until the journal passed its seq).
      const left = await redis.get(`stampede:snap:${instance}:crash/2026-12-24`);
      expect(left === null ? null : (JSON.parse(left) as { seq: number }).seq).not.toBe(Number(head.last_seq) + 1_000);
      head = await journalHead();
      await redis.set(`stampede:snap:${instance}:crash/2026-12-24`, intact(Number(head.last_seq), Number(head.at) + 1));
      const foreignHistory = await fencedOnce('Redis snapshot of another history', ahead.journalSeq);
      expect(foreignHistory.state).toEqual(afterCrash.state);
      conn = undefined;
      await db.end();
      // Redis down (nothing listens on that port): recovery from MySQL alone, and the engine is ready.
      const down = { ...backend, redisUrl: 'redis://127.0.0.1:6390' };
      engine = await startChildEngine(down, env);
      const c = new Client(engine.url);
      const inv = await c.admin('GET', '/ops/inventory/crash/2026-12-24');
      expect({ total: inv.body.total, reserved: inv.body.reserved, sold: inv.body.sold }).toEqual(afterCrash.state);
      expect(inv.body.journalSeq).toBe(foreignHistory.journalSeq + 1);
      expect((await c.request('GET', '/readyz')).status).toBe(200);
      await engine.kill('SIGTERM');
      engine = undefined;
    } finally {
      // Closed whether the test passed or not.
      await conn?.end();
      redis.disconnect();
    }
  }, 180_000);
});

describe('crash and recovery on the embedded SQLite default', () => {
  let engine: ChildEngine | undefined;
  const dir = mkdtempSync(join(tmpdir(), 'stampede-crash-sqlite-'));
  afterAll(async () => {
    await engine?.kill();
    rmSync(dir, { recursive: true, force: true });
  });

  it('keeps every 201 across a SIGKILL: the file read back after it holds them, and the restarted engine answers for them', async () => {
    const backend = { kind: 'sqlite' as const, dir };
    const env = { STAMPEDE_SNAPSHOT_EVERY_EVENTS: '200', STAMPEDE_SNAPSHOT_EVERY_MS: '100' };
    engine = await startChildEngine(backend, env);
    const created = await reserveThenKill(engine, 1_500);
    expect(created.size).toBeGreaterThan(300);
    // The file as the killed process left it (its WAL included), read by a connection of our own.
    const db = new Database(join(dir, 'stampede.sqlite'), { readonly: true, fileMustExist: true });
    const rows = db.prepare('SELECT seq, last_seq, events FROM journal WHERE stream = ? ORDER BY seq').all('crash/2026-12-24') as JournalRows;
    db.close();
    const journal = fold(rows);
    for (const id of created.keys()) expect(journal.reservations.has(id)).toBe(true);
    engine = await startChildEngine(backend, env);
    await expectEvery201Kept(new Client(engine.url), created, journal, 'after SIGKILL');
    await engine.kill('SIGTERM');
    engine = undefined;
  }, 120_000);
});
