// `node --import tsx bench/card-key-assign.ts`: a delivery write's card-key assignment on MariaDB
// (CardKeyStore.assign: the keys updated from unassigned, each order's key-set row, each order's
// count checked, all in one transaction) as it goes now, in one round trip with its checks as guard
// statements before the COMMIT (SqlDatabase.guardedBatch), against the same statements with the
// checks read before a second round trip's COMMIT (SqlDatabase.checkedBatch, the path before), both
// in this run on the same database, alternating. Writes go one after the other, as a SKU's delivery
// actor makes them; each assigns one key to each of BENCH_ORDERS_PER_WRITE new orders.
//
// Each design runs twice: on an idle thread, and on a thread kept busy in turns of BENCH_TURN_MS
// (2 ms) of work with the I/O between them, as the engine's thread is under a payment load (80–95%
// busy in bench:payments, turns of up to 15 ms): an answer from the database then waits for the turn
// in progress before the next statement can go, once per round trip.
//
// Knobs (environment): BENCH_WRITES (1000 per design and round), BENCH_ORDERS_PER_WRITE (1 and 20),
// BENCH_ROUNDS (3), BENCH_TURN_MS (2), BENCH_MYSQL_URL (mysql://root@127.0.0.1:3306).

import { createHash } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import type { SqlDatabase } from '../persistence/sql/database.ts';
import { openSqlStores, type SqlStores } from '../persistence/sql/open.ts';
import { median, percentile } from './baselines.ts';
import { freshDatabase } from './database.ts';
import { cpuReferenceMs } from './machine.ts';

const WRITES = Number(process.env.BENCH_WRITES ?? 1_000);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const ORDERS_PER_WRITE = (process.env.BENCH_ORDERS_PER_WRITE ?? '1,20').split(',').map(Number);
const MYSQL_URL = process.env.BENCH_MYSQL_URL ?? 'mysql://root@127.0.0.1:3306';
const TURN_MS = Number(process.env.BENCH_TURN_MS ?? 2);

/** Keeps this thread busy in turns of TURN_MS until the returned function is called. */
function busyThread(): () => void {
  let on = true;
  const turn = () => {
    if (!on) return;
    const end = performance.now() + TURN_MS;
    while (performance.now() < end);
    setImmediate(turn);
  };
  setImmediate(turn);
  return () => {
    on = false;
  };
}

type Design = 'guarded' | 'checked';

interface Run {
  design: Design;
  busy: boolean;
  orders: number;
  per_s: number;
  p50_ms: number;
  p99_ms: number;
}

let orderSeq = 0;

/** WRITES assignments of `orders` orders each on `skuId`, one after the other; the database's path chosen by `design`. */
async function run(stores: SqlStores, skuId: string, design: Design, orders: number, busy: boolean): Promise<Run> {
  const db = (stores.cardKeys as unknown as { db: SqlDatabase }).db;
  const guarded = db.guardedBatch;
  // The path before: the same statements, their checks read before the COMMIT.
  if (design === 'checked') db.guardedBatch = (operation, statements, decide, duplicate) => db.checkedBatch(operation, statements, decide, duplicate);
  let idle: (() => void) | undefined;
  try {
    const ids: number[] = [];
    while (ids.length < WRITES * orders) {
      const next = await stores.cardKeys.unassigned(skuId, ids.at(-1) ?? 0, Math.min(10_000, WRITES * orders - ids.length));
      if (next.length === 0) throw new Error(`${skuId}: ${ids.length} keys left, ${WRITES * orders} needed`);
      ids.push(...next);
    }
    const latencies: number[] = [];
    if (busy) idle = busyThread();
    const started = performance.now();
    for (let w = 0; w < WRITES; w++) {
      const assignments = ids.slice(w * orders, (w + 1) * orders).map((id) => ({ skuId, orderId: `bench-order-${++orderSeq}`, keyIds: [id] }));
      const t0 = performance.now();
      await stores.cardKeys.assign(assignments, Date.now());
      latencies.push(performance.now() - t0);
    }
    const seconds = (performance.now() - started) / 1_000;
    latencies.sort((a, b) => a - b);
    return { design, busy, orders, per_s: WRITES / seconds, p50_ms: percentile(latencies, 50), p99_ms: percentile(latencies, 99) };
  } finally {
    idle?.();
    db.guardedBatch = guarded;
  }
}

async function main(): Promise<void> {
  const url = await freshDatabase(MYSQL_URL, 'stampede_bench_card_keys');
  const stores = await openSqlStores({ mysqlUrl: url });
  try {
    console.log(`bench:card-key-assign — MariaDB, ${WRITES} writes per design and round, one after the other, ${ORDERS_PER_WRITE.join(' and ')} orders of one key per write, ${ROUNDS} rounds alternating; CPU reference ${Math.round(cpuReferenceMs())} ms (bench/machine.ts)`);
    const results: Run[] = [];
    for (const orders of ORDERS_PER_WRITE) {
      const skuId = `bench-keys-${orders}`;
      const needed = WRITES * orders * 2 * (2 * ROUNDS + 1);
      for (let from = 0; from < needed; from += 10_000) {
        const n = Math.min(10_000, needed - from);
        const keys = Array.from({ length: n }, (_, i) => {
          const plain = `${skuId}-${from + i}`;
          return { hash: createHash('sha256').update(plain).digest('hex'), ciphertext: `enc(${plain})` };
        });
        await stores.cardKeys.add(skuId, keys);
      }
      // Warm-up (connections, the server's caches), not counted.
      await run(stores, skuId, 'guarded', orders, false);
      await run(stores, skuId, 'checked', orders, false);
      for (const busy of [false, true]) {
        for (let r = 0; r < ROUNDS; r++) {
          for (const design of (r % 2 === 0 ? ['guarded', 'checked'] : ['checked', 'guarded']) as Design[]) {
            const result = await run(stores, skuId, design, orders, busy);
            results.push(result);
            console.log(
              `  ${orders} order(s)/write  ${busy ? `thread busy (${TURN_MS} ms turns)` : 'thread idle            '}  ${design === 'guarded' ? 'one round trip (guards)  ' : 'checks read, then COMMIT'}  ${result.per_s.toFixed(0).padStart(6)} writes/s  p50 ${result.p50_ms.toFixed(2)} ms  p99 ${result.p99_ms.toFixed(2)} ms`,
            );
          }
        }
      }
    }
    const summary: Record<string, number> = {};
    for (const orders of ORDERS_PER_WRITE) {
      for (const busy of [false, true]) {
        const of = (d: Design) => results.filter((r) => r.orders === orders && r.busy === busy && r.design === d);
        const g = of('guarded');
        const c = of('checked');
        const gp50 = median(g.map((r) => r.p50_ms));
        const cp50 = median(c.map((r) => r.p50_ms));
        const gps = median(g.map((r) => r.per_s));
        const cps = median(c.map((r) => r.per_s));
        const label = `${orders}_${busy ? 'busy' : 'idle'}`;
        console.log(
          `${orders} order(s) per write, thread ${busy ? 'busy' : 'idle'}, median of ${ROUNDS}: one round trip ${gps.toFixed(0)} writes/s, p50 ${gp50.toFixed(2)} ms; checks read then COMMIT ${cps.toFixed(0)} writes/s, p50 ${cp50.toFixed(2)} ms; p50 ratio (one round trip / before) ${(gp50 / cp50).toFixed(2)}`,
        );
        Object.assign(summary, {
          [`guarded_${label}_per_s`]: Math.round(gps),
          [`guarded_${label}_p50_ms`]: Number(gp50.toFixed(3)),
          [`checked_${label}_per_s`]: Math.round(cps),
          [`checked_${label}_p50_ms`]: Number(cp50.toFixed(3)),
          [`ratio_${label}_p50`]: Number((gp50 / cp50).toFixed(3)),
        });
      }
    }
    console.log(JSON.stringify({ bench: 'card-key-assign', writes: WRITES, rounds: ROUNDS, ...summary }));
  } finally {
    await stores.close();
  }
}

main().catch((error) => {
  console.error(error);
  process.exitCode = 1;
});
