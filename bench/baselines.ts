// The two contenders `npm run bench:hot` runs next to Stampede's own actor, on one hot SKU/date with
// the same buyers, stock and closed-loop load, so the comparison is against the designs people
// actually deploy for a flash sale:
//   - runRedisLua:     an atomic Lua check-and-DECRBY in Redis answers at once; the order rows reach
//                      MariaDB later through a batching flusher (fast, NOT durable when answered);
//   - runMysqlRowLock: one InnoDB transaction per reservation on the hot stock row (durable when
//                      answered, serialised on the row lock).
// Each run creates/resets its own tables (database `stampede_bench` unless the URL names one; tables
// prefixed `baseline_` so they never collide with Stampede's schema) and Redis keys (`bench:`),
// verifies the outcome against the stores afterwards, and closes everything it opened.

import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import mysql from 'mysql2/promise';
import type { Pool, ResultSetHeader, RowDataPacket } from 'mysql2/promise';

export interface HotRunOptions {
  reservations: number;
  stock: number;
  concurrency: number;
  buyers: number;
}

export interface HotRunResult {
  name: string;
  attempts: number;
  reserved: number;
  soldOut: number;
  errors: number;
  elapsed_ms: number;
  rps: number;
  p50_ms: number;
  p99_ms: number;
  oversold: boolean;
  durable_when_answered: boolean;
  notes: string;
}

/** Optional on both runs: the wall-clock cap of the load loop (new requests stop being issued). */
export interface HotRunCap {
  capMs?: number;
}

/** Default wall-clock cap of one load loop; what was done until then is reported. */
export const DEFAULT_CAP_MS = 60_000;
/** The one hot SKU/date both baselines sell. */
export const HOT_SKU = 'bench-hot';
export const HOT_DATE = '2026-01-01';
/** The database used when the MySQL URL names none. */
export const BENCH_DATABASE = 'stampede_bench';
/** The Redis flusher's largest multi-row INSERT. */
const FLUSH_BATCH_MAX = 1000;
/** Consecutive failures of one flush batch before its rows are given up (and counted as lost). */
const FLUSH_ATTEMPTS_MAX = 5;

/**
 * Nearest-rank percentile of ascending latencies; `p` in 0..100 (e.g. 99).
 * NaN for an empty array (nothing was measured).
 */
/** The middle value of `xs` (the upper one of an even count), without changing `xs`. */
export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[s.length >> 1]!;
}

export function percentile(sortedMs: number[], p: number): number {
  const n = sortedMs.length;
  if (n === 0) return Number.NaN;
  const rank = Math.ceil((Math.min(Math.max(p, 0), 100) / 100) * n);
  return sortedMs[Math.min(Math.max(rank - 1, 0), n - 1)]!;
}

// ---------------------------------------------------------------------------------------------
// Closed-loop load, shared by both baselines
// ---------------------------------------------------------------------------------------------

interface LoopOutcome {
  attempts: number;
  reserved: number;
  soldOut: number;
  errors: number;
  elapsedMs: number;
  /** Ascending latency of every attempt, errors included (an error is an answer too). */
  latencies: number[];
  capped: boolean;
  firstError: string | undefined;
}

/**
 * `concurrency` workers share `reservations` attempts; each issues one reservation for buyer
 * `u<i % buyers>`, awaits its answer (true = reserved, false = sold out, throw = error), records
 * its latency, then issues the next. After `capMs` no new attempt starts; in-flight ones finish.
 */
async function closedLoop(
  opts: HotRunOptions,
  capMs: number,
  reserve: (userId: string) => Promise<boolean>,
): Promise<LoopOutcome> {
  const total = Math.max(0, Math.floor(opts.reservations));
  const buyers = Math.max(1, Math.floor(opts.buyers));
  const latency = new Float64Array(total);
  let next = 0;
  let reserved = 0;
  let soldOut = 0;
  let errors = 0;
  let capped = false;
  let firstError: string | undefined;

  const start = performance.now();
  const deadline = start + capMs;
  const worker = async (): Promise<void> => {
    while (next < total) {
      if (performance.now() >= deadline) {
        capped = true;
        return;
      }
      const i = next++;
      const t0 = performance.now();
      try {
        if (await reserve(`u${i % buyers}`)) reserved++;
        else soldOut++;
      } catch (err) {
        errors++;
        firstError ??= err instanceof Error ? err.message : String(err);
      }
      latency[i] = performance.now() - t0;
    }
  };
  const workers = Math.max(1, Math.min(Math.floor(opts.concurrency), total));
  await Promise.all(Array.from({ length: workers }, worker));
  const elapsedMs = performance.now() - start;

  // Attempts 0..next-1 were all issued and awaited, so that prefix of `latency` is filled.
  const latencies = Array.from(latency.subarray(0, next).sort());
  return { attempts: next, reserved, soldOut, errors, elapsedMs, latencies, capped, firstError };
}

function toResult(
  name: string,
  loop: LoopOutcome,
  oversold: boolean,
  durable: boolean,
  notes: string[],
): HotRunResult {
  if (loop.capped) notes.push(`CAPPED by the wall-clock limit after ${loop.attempts} attempts`);
  if (loop.firstError !== undefined) notes.push(`first error: ${loop.firstError}`);
  return {
    name,
    attempts: loop.attempts,
    reserved: loop.reserved,
    soldOut: loop.soldOut,
    errors: loop.errors,
    elapsed_ms: round(loop.elapsedMs),
    rps: loop.elapsedMs > 0 ? Math.round(loop.attempts / (loop.elapsedMs / 1000)) : 0,
    p50_ms: round(percentile(loop.latencies, 50)),
    p99_ms: round(percentile(loop.latencies, 99)),
    oversold,
    durable_when_answered: durable,
    notes: notes.join('; '),
  };
}

const round = (ms: number): number => Math.round(ms * 1000) / 1000;

// ---------------------------------------------------------------------------------------------
// MariaDB helpers
// ---------------------------------------------------------------------------------------------

/**
 * A pool on the bench database: the URL's database if it names one, else `stampede_bench`
 * (created if missing). Credentials and host come from the URL.
 */
async function openBenchPool(mysqlUrl: string, connections: number): Promise<Pool> {
  const url = new URL(mysqlUrl);
  const database = decodeURIComponent(url.pathname.slice(1)) || BENCH_DATABASE;
  url.pathname = '';
  const uri = url.toString();

  const admin = await mysql.createConnection({ uri });
  try {
    await admin.query(`CREATE DATABASE IF NOT EXISTS \`${database.replaceAll('`', '``')}\``);
  } finally {
    await admin.end();
  }
  const pool = mysql.createPool({
    uri,
    database,
    connectionLimit: connections,
    waitForConnections: true,
    queueLimit: 0,
    connectTimeout: 5_000,
  });
  // Open every connection before the clock starts, so connecting is not measured as latency.
  const held = await Promise.all(Array.from({ length: connections }, () => pool.getConnection()));
  for (const conn of held) conn.release();
  return pool;
}

/** The orders schema both baselines write; only the table name differs. */
function ordersDdl(table: string): string {
  return `CREATE TABLE ${table} (
    order_id   BIGINT      NOT NULL PRIMARY KEY,
    user_id    VARCHAR(32) NOT NULL,
    sku        VARCHAR(64) NOT NULL,
    date       DATE        NOT NULL,
    qty        INT         NOT NULL,
    created_at DATETIME(3) NOT NULL
  ) ENGINE=InnoDB`;
}

async function countOrders(pool: Pool, table: string): Promise<{ rows: number; qty: number }> {
  const [rows] = await pool.query<RowDataPacket[]>(
    `SELECT COUNT(*) AS n, COALESCE(SUM(qty), 0) AS q FROM ${table}`,
  );
  return { rows: Number(rows[0]?.n ?? 0), qty: Number(rows[0]?.q ?? 0) };
}

/** 1 means InnoDB fsyncs its log at every COMMIT, i.e. a committed answer survives a crash. */
async function flushLogAtCommit(pool: Pool): Promise<number> {
  const [rows] = await pool.query<RowDataPacket[]>('SELECT @@innodb_flush_log_at_trx_commit AS f');
  return Number(rows[0]?.f);
}

// ---------------------------------------------------------------------------------------------
// (ii) Redis + Lua, with a write-behind flusher to MariaDB
// ---------------------------------------------------------------------------------------------

/** Reserve ARGV[1] units of KEYS[1] if that many remain: 1 = reserved, 0 = sold out. Atomic in Redis. */
const RESERVE_LUA = `
local left = tonumber(redis.call('GET', KEYS[1]) or '0')
local qty = tonumber(ARGV[1])
if left >= qty then
  redis.call('DECRBY', KEYS[1], qty)
  return 1
end
return 0
`;

const LUA_ORDERS = 'baseline_lua_orders';

interface PendingOrder {
  orderId: number;
  userId: string;
  qty: number;
  /** performance.now() when the caller was answered. */
  answeredAt: number;
}

/**
 * Write-behind: answered orders are queued in memory and written by one loop, one multi-row INSERT
 * (≤ FLUSH_BATCH_MAX rows, autocommit) at a time, concurrently with the load. While the load is
 * faster than the inserts, batches grow to the maximum. No timers: the loop sleeps on a promise
 * that `push` resolves.
 */
class OrderFlusher {
  private queue: PendingOrder[] = [];
  private wake: (() => void) | null = null;
  private closing = false;
  private readonly done: Promise<void>;
  rowsWritten = 0;
  rowsLost = 0;
  batches = 0;
  failures = 0;
  /** Longest time between answering a caller and its row being committed. */
  maxLagMs = 0;
  lastError: string | undefined;

  constructor(
    private readonly pool: Pool,
    private readonly table: string,
  ) {
    this.done = this.run();
  }

  push(order: PendingOrder): void {
    this.queue.push(order);
    this.wakeUp();
  }

  /** Stops waiting for new orders and resolves once every queued one is written (or given up). */
  async drain(): Promise<void> {
    this.closing = true;
    this.wakeUp();
    await this.done;
  }

  private wakeUp(): void {
    const wake = this.wake;
    this.wake = null;
    wake?.();
  }

  private take(): PendingOrder[] {
    if (this.queue.length <= FLUSH_BATCH_MAX) {
      const all = this.queue;
      this.queue = [];
      return all;
    }
    return this.queue.splice(0, FLUSH_BATCH_MAX);
  }

  private async run(): Promise<void> {
    let attempt = 0;
    for (;;) {
      if (this.queue.length === 0) {
        if (this.closing) return;
        await new Promise<void>((resolve) => (this.wake = resolve));
        continue;
      }
      const batch = this.take();
      try {
        await this.pool.query(
          `INSERT INTO ${this.table} (order_id, user_id, sku, date, qty, created_at) VALUES ?`,
          [
            batch.map((o) => [
              o.orderId,
              o.userId,
              HOT_SKU,
              HOT_DATE,
              o.qty,
              new Date(performance.timeOrigin + o.answeredAt),
            ]),
          ],
        );
        const committedAt = performance.now();
        this.maxLagMs = Math.max(this.maxLagMs, committedAt - batch[0]!.answeredAt);
        this.rowsWritten += batch.length;
        this.batches++;
        attempt = 0;
      } catch (err) {
        this.failures++;
        this.lastError = err instanceof Error ? err.message : String(err);
        if (++attempt >= FLUSH_ATTEMPTS_MAX) {
          this.rowsLost += batch.length; // what a crash would lose too: answered, never stored
          attempt = 0;
        } else {
          this.queue.unshift(...batch);
          await sleep(50 * attempt);
        }
      }
    }
  }
}

export async function runRedisLua(
  opts: HotRunOptions & HotRunCap & { redisUrl: string; mysqlUrl: string },
): Promise<HotRunResult> {
  const name = 'redis-lua';
  const stockKey = `bench:hot:${HOT_SKU}:${HOT_DATE}:stock`;
  const pool = await openBenchPool(opts.mysqlUrl, 1);
  // One connection: Node is one thread anyway, and auto-pipelining packs every command issued in
  // the same tick into one write, which is what a well-tuned client does.
  const redis = new Redis(opts.redisUrl, { enableAutoPipelining: true, maxRetriesPerRequest: 2 });
  try {
    await pool.query(`DROP TABLE IF EXISTS ${LUA_ORDERS}`);
    await pool.query(ordersDdl(LUA_ORDERS));
    await redis.set(stockKey, opts.stock);
    const sha = (await redis.script('LOAD', RESERVE_LUA)) as string;

    const flusher = new OrderFlusher(pool, LUA_ORDERS);
    let orderSeq = 0;
    const loop = await closedLoop(opts, opts.capMs ?? DEFAULT_CAP_MS, async (userId) => {
      const reserved = (await redis.evalsha(sha, 1, stockKey, 1)) === 1;
      // The caller is answered now; its row is only queued for the flusher.
      if (reserved) flusher.push({ orderId: ++orderSeq, userId, qty: 1, answeredAt: performance.now() });
      return reserved;
    });

    const drainStart = performance.now();
    await flusher.drain();
    const drainMs = performance.now() - drainStart;

    // Verify: rows in MariaDB == reserved == stock - what Redis has left.
    const remaining = Number(await redis.get(stockKey));
    const stored = await countOrders(pool, LUA_ORDERS);
    const consistent = stored.qty === loop.reserved && loop.reserved === opts.stock - remaining;
    const oversold = loop.reserved > opts.stock || stored.qty > opts.stock || remaining < 0;
    const notes = [
      '1 ioredis connection (auto-pipelining), EVALSHA of a check+DECRBY Lua script',
      `write-behind: 1 flusher on 1 MariaDB connection, ${flusher.batches} multi-row INSERTs (≤${FLUSH_BATCH_MAX} rows)`,
      `drain after load ${round(drainMs)} ms, max answer→commit lag ${round(flusher.maxLagMs)} ms`,
      `${consistent ? 'verify OK' : 'VERIFY MISMATCH'}: db rows=${stored.rows} qty=${stored.qty}, reserved=${loop.reserved}, redis left=${remaining}`,
    ];
    if (flusher.failures > 0) notes.push(`flush failures=${flusher.failures} lost rows=${flusher.rowsLost} (${flusher.lastError})`);
    await redis.del(stockKey);
    return toResult(name, loop, oversold, false, notes);
  } finally {
    await redis.quit().catch(() => redis.disconnect());
    await pool.end();
  }
}

// ---------------------------------------------------------------------------------------------
// (iii) MariaDB row lock: one transaction per reservation on the hot stock row
// ---------------------------------------------------------------------------------------------

const ROWLOCK_STOCK = 'baseline_stock';
const ROWLOCK_ORDERS = 'baseline_orders';

export async function runMysqlRowLock(
  opts: HotRunOptions & HotRunCap & { mysqlUrl: string; pool: number },
): Promise<HotRunResult> {
  const name = 'mysql-row-lock';
  const pool = await openBenchPool(opts.mysqlUrl, opts.pool);
  try {
    await pool.query(`DROP TABLE IF EXISTS ${ROWLOCK_STOCK}, ${ROWLOCK_ORDERS}`);
    await pool.query(`CREATE TABLE ${ROWLOCK_STOCK} (
      sku  VARCHAR(64) NOT NULL,
      date DATE        NOT NULL,
      n    INT         NOT NULL,
      PRIMARY KEY (sku, date)
    ) ENGINE=InnoDB`);
    await pool.query(ordersDdl(ROWLOCK_ORDERS));
    await pool.query(`INSERT INTO ${ROWLOCK_STOCK} (sku, date, n) VALUES (?, ?, ?)`, [
      HOT_SKU,
      HOT_DATE,
      opts.stock,
    ]);
    const flushLog = await flushLogAtCommit(pool);

    let orderSeq = 0;
    const loop = await closedLoop(opts, opts.capMs ?? DEFAULT_CAP_MS, async (userId) => {
      // Waiting for a free pool connection is part of the latency, as it is in a real service.
      const conn = await pool.getConnection();
      try {
        await conn.query('START TRANSACTION');
        const [upd] = await conn.execute<ResultSetHeader>(
          `UPDATE ${ROWLOCK_STOCK} SET n = n - ? WHERE sku = ? AND date = ? AND n >= ?`,
          [1, HOT_SKU, HOT_DATE, 1],
        );
        if (upd.affectedRows !== 1) {
          await conn.query('ROLLBACK');
          return false;
        }
        await conn.execute(
          `INSERT INTO ${ROWLOCK_ORDERS} (order_id, user_id, sku, date, qty, created_at)
           VALUES (?, ?, ?, ?, ?, NOW(3))`,
          [++orderSeq, userId, HOT_SKU, HOT_DATE, 1],
        );
        await conn.query('COMMIT'); // answered only after the commit (fsync'd when flushLog = 1)
        return true;
      } catch (err) {
        await conn.query('ROLLBACK').catch(() => undefined);
        throw err;
      } finally {
        conn.release();
      }
    });

    // Verify: orders rows == reserved, n == stock - reserved.
    const stored = await countOrders(pool, ROWLOCK_ORDERS);
    const [stockRows] = await pool.query<RowDataPacket[]>(
      `SELECT n FROM ${ROWLOCK_STOCK} WHERE sku = ? AND date = ?`,
      [HOT_SKU, HOT_DATE],
    );
    const left = Number(stockRows[0]?.n);
    const consistent = stored.qty === loop.reserved && left === opts.stock - loop.reserved;
    const oversold = loop.reserved > opts.stock || stored.qty > opts.stock || left < 0;
    const notes = [
      `pool of ${opts.pool} connections (${opts.concurrency} workers queue for them)`,
      'one transaction per reservation: START, guarded UPDATE of the hot row, INSERT order, COMMIT (else ROLLBACK)',
      `innodb_flush_log_at_trx_commit=${flushLog}`,
      `${consistent ? 'verify OK' : 'VERIFY MISMATCH'}: db rows=${stored.rows} qty=${stored.qty}, reserved=${loop.reserved}, stock left=${left}`,
    ];
    // Durable when answered only if each COMMIT reaches the disk before the reply.
    return toResult(name, loop, oversold, flushLog === 1, notes);
  } finally {
    await pool.end();
  }
}
