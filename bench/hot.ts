// `npm run bench:hot`: one hot SKU/date, the same buyers, stock and closed-loop load, three designs
// in one process and one run: (i) Stampede's inventory actor with durable group commit to MariaDB,
// (ii) Redis Lua check-and-DECRBY answered at once with order rows batched to MariaDB afterwards
// (not durable when answered), (iii) a MariaDB row-lock transaction per reservation (pool 32).
// Prints reservations/s, p50/p99, the ratios, an oversell check, and one JSON line of the figures.
// With --write-docs it also updates the figures in docs/performance.md.
//
// A closed loop (each of 1,000 callers waits for its answer before its next order) never offers
// more than the engine answers, so a stall holds back only the 1,000 orders in flight: it hides
// stalls from p99. So (i) also runs open loop at the target's load: order k is due at
// t0 + k/BENCH_OPEN_RATE whatever the answers do, and its latency counts from that due time
// (coordinated omission corrected), with stock for all of them (every attempt a durable
// reservation). Its journal writes slower than 10 ms are counted: what a database stall costs.
//
// Knobs (environment): BENCH_RESERVATIONS (300000), BENCH_STOCK (200000), BENCH_CONCURRENCY (1000),
// BENCH_BUYERS (100000), BENCH_WARMUP (50000 reservations per design before measuring), BENCH_ROUNDS (3),
// BENCH_OPEN_RATE (150000 orders/s offered), BENCH_OPEN_RESERVATIONS (600000),
// BENCH_MYSQL_URL (mysql://root@127.0.0.1:3306), BENCH_REDIS_URL, BENCH_TIMELINE (0; 1 lists each
// open-loop run's 50 ms windows of due time holding an answer over 10 ms, each with the GC pauses,
// long turns and slow journal writes around it: bench/timeline.ts), BENCH_CPU_PROFILE (a file: a CPU
// profile of the first open-loop run only, bench/cpu-profile.ts), BENCH_HEAP_PROFILE (a file: a sampling
// heap profile of the first open-loop run only, and its heaviest allocation sites: bench/heap-profile.ts).

import { performance } from 'node:perf_hooks';
import mysql from 'mysql2/promise';
import { pino } from 'pino';
import { loadConfig } from '../app/config.ts';
import { StampedeNode } from '../app/node.ts';
import type { Rule } from '../engine/index.ts';
import { percentile, runMysqlRowLock, runRedisLua, type HotRunOptions, type HotRunResult } from './baselines.ts';
import { freshDatabase } from './database.ts';
import { writeDocsSection } from './docs.ts';
import { profileThread } from './cpu-profile.ts';
import { profileHeap } from './heap-profile.ts';
import { cpuReferenceMs } from './machine.ts';
import { slowWindows, TimelineMarks } from './timeline.ts';

const env = process.env;
const opts: HotRunOptions = {
  reservations: Number(env.BENCH_RESERVATIONS ?? 300_000),
  stock: Number(env.BENCH_STOCK ?? 200_000),
  concurrency: Number(env.BENCH_CONCURRENCY ?? 1_000),
  buyers: Number(env.BENCH_BUYERS ?? 100_000),
};
const MYSQL = env.BENCH_MYSQL_URL ?? 'mysql://root@127.0.0.1:3306';
const REDIS = env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379';
const SKU = 'bench-hot';
/** Reservations made before measuring (each design warms up the same way). */
const WARMUP = Number(env.BENCH_WARMUP ?? 50_000);
/** Alternating runs of (i) and (ii); the median of each is reported. */
const ROUNDS = Number(env.BENCH_ROUNDS ?? 3);
const DATE = '2026-01-01';
/** The open-loop run of (i): offered orders/s (issue 2's target load) and how many. */
const OPEN_RATE = Number(env.BENCH_OPEN_RATE ?? 150_000);
const OPEN_RESERVATIONS = Number(env.BENCH_OPEN_RESERVATIONS ?? 600_000);
const TIMELINE = env.BENCH_TIMELINE === '1';
let cpuProfile = env.BENCH_CPU_PROFILE;
let heapProfile = env.BENCH_HEAP_PROFILE;


/** (i) Stampede: the purchase path below HTTP (order service -> inventory actor -> group commit). */
/**
 * (iv) The rules variant: five purchase rules that all apply to the hot SKU (so every reservation
 * goes through its buyer's limit actor first), generous enough that no buyer is refused by them.
 */
export const BENCH_RULES: Rule[] = [
  { id: 'venue-date', groupBy: ['venue', 'date'], max: { units: 10 } },
  { id: 'region-week', groupBy: ['region'], window: { rollingDays: 7 }, max: { units: 20, distinct: { venue: 3 } } },
  { id: 'sku-orders', groupBy: ['skuId'], max: { orders: 10 } },
  { id: 'merchant-month', groupBy: ['merchantId'], window: { rollingDays: 30 }, max: { units: 50 } },
  { id: 'no-show', window: { from: '2026-01-01T00:00:00Z', to: '2028-01-01T00:00:00Z' }, max: { noShows: 5 } },
];

/** Open-loop figures of a run (latency from each order's due time). */
export interface OpenLoopFigures {
  offered_per_s: number;
  p999_ms: number;
  max_ms: number;
  /** Journal writes slower than 10 ms, and than 25 ms (from the group-commit latency histogram). */
  writes_over_10ms: number;
  writes_over_25ms: number;
}

/**
 * Open loop: attempt k is issued at t0 + k/rate (by a setImmediate pump that issues every attempt
 * due), whatever the answers do; its latency counts from its due time (t0 + k * interval_ms). `attempt`
 * never rejects (it counts its own failures).
 */
async function openLoop(attempts: number, rate_per_s: number, attempt: (k: number) => Promise<void>): Promise<{ latency: Float64Array; t0: number; interval_ms: number }> {
  const latency = new Float64Array(attempts);
  const interval_ms = 1000 / rate_per_s;
  const t0 = performance.now();
  let next = 0;
  let done = 0;
  await new Promise<void>((resolve) => {
    const pump = () => {
      const now = performance.now();
      while (next < attempts && t0 + next * interval_ms <= now) {
        // One closure per attempt (unnamed: tsx would name a named one with a property write per
        // attempt), so that what the loop holds per order in flight is mostly the engine's own.
        const k = next++;
        attempt(k).then(() => {
          latency[k] = performance.now() - (t0 + k * interval_ms);
          if (++done === attempts) resolve();
        });
      }
      if (next < attempts) setImmediate(pump);
    };
    if (attempts === 0) resolve();
    else pump();
  });
  return { latency, t0, interval_ms };
}

export async function runStampede(
  o: HotRunOptions,
  mysqlUrl: string,
  label = 'stampede',
  rules: Rule[] = [],
  open?: { rate_per_s: number },
): Promise<HotRunResult & { open?: OpenLoopFigures }> {
  const config = loadConfig({
    STAMPEDE_MYSQL_URL: mysqlUrl,
    STAMPEDE_LOG_LEVEL: 'warn',
    STAMPEDE_ADMIN_TOKEN: 'bench-admin-token-000000',
    STAMPEDE_USER_JWT_SECRET: 'bench-user-jwt-secret-0000000000000000',
    STAMPEDE_PAYMENT_SECRET: 'bench-payment-secret-00',
    STAMPEDE_CARD_KEY_SECRET: 'bench-card-key-secret-0000000000000000',
  });
  const node = new StampedeNode(config, { logger: pino({ level: 'warn' }) });
  await node.start();
  await node.catalog.upsertSku({
    skuId: SKU, name: SKU, priceCents: 1999, merchantId: 'm1', delivery: 'ticket', attributes: { venue: 'v1', region: 'r1' },
    visibleAt: null, saleStartsAt: null, saleEndsAt: null, updatedAt: new Date().toISOString(),
  });
  for (const rule of rules) {
    const put = await node.rules.put(rule);
    if (!put.ok) throw new Error(`rule ${rule.id}: ${put.error}`);
  }
  const set = await node.orders.setStock(SKU, DATE, o.stock);
  if (!set.ok) throw new Error(`stock: ${set.message}`);
  // Warm-up on another SKU/date of the same node (JIT, pools, caches), so the hot one starts fresh.
  if (WARMUP > 0) {
    await node.catalog.upsertSku({ ...node.catalog.sku(SKU)!, skuId: `${SKU}-warm` });
    await node.orders.setStock(`${SKU}-warm`, DATE, WARMUP);
    let w = 0;
    await Promise.all(
      Array.from({ length: o.concurrency }, async () => {
        while (w < WARMUP) await node.orders.placeOrder({ userId: `w${w++ % o.buyers}`, skuId: `${SKU}-warm`, date: DATE, qty: 1 });
      }),
    );
  }
  let latencies: number[] = [];
  let reserved = 0, soldOut = 0, errors = 0, next = 0;
  let firstError = '';
  const counted = (a: { status: number; body: unknown }): void => {
    if (a.status === 201) reserved++;
    else if (a.status === 409) soldOut++;
    else { errors++; firstError ||= JSON.stringify(a.body); }
  };
  const failed = (error: unknown): void => {
    errors++;
    firstError ||= String(error);
  };
  const order = (i: number) => ({ userId: `u${i % o.buyers}`, skuId: SKU, date: DATE, qty: 1 });
  const place = async (i: number): Promise<void> => {
    try {
      counted(await node.orders.placeOrder(order(i)));
    } catch (error) {
      failed(error);
    }
  };
  // The open loop's attempt: the same order and tally as one promise chain, without an async
  // function's frame and promise of its own (its bookkeeping was half of what survived a scavenge
  // per order in flight: a sampling heap profile of the objects minor collections kept).
  const placeOpen = (i: number): Promise<void> => {
    try {
      return node.orders.placeOrder(order(i)).then(counted, failed);
    } catch (error) {
      failed(error);
      return Promise.resolve();
    }
  };
  await node.metrics.groupCommitLatencyMs.reset();
  const started = performance.now();
  const cpuBefore = process.cpuUsage();
  if (open) {
    const marks = TIMELINE ? new TimelineMarks(node) : undefined;
    const stopProfile = cpuProfile ? await profileThread(cpuProfile) : undefined;
    cpuProfile = undefined;
    const stopHeapProfile = heapProfile ? await profileHeap(heapProfile) : undefined;
    heapProfile = undefined;
    const loop = await openLoop(o.reservations, open.rate_per_s, placeOpen);
    await stopProfile?.();
    await stopHeapProfile?.(o.reservations, 'attempt');
    marks?.stop();
    latencies = Array.from(loop.latency);
    if (TIMELINE) {
      const due = Float64Array.from(loop.latency, (_, k) => loop.t0 + k * loop.interval_ms);
      console.log(slowWindows(loop.t0, due, loop.latency, { windowMs: 50, slowMs: 10, what: 'an answer' }, marks));
    }
  } else {
    await Promise.all(
      Array.from({ length: o.concurrency }, async () => {
        while (next < o.reservations) {
          const t = performance.now();
          await place(next++);
          latencies.push(performance.now() - t);
        }
      }),
    );
  }
  const elapsed_ms = performance.now() - started;
  const cpu = process.cpuUsage(cpuBefore);
  const inv = await node.orders.inspect(SKU, DATE);
  const commit = (await node.metrics.groupCommitLatencyMs.get()).values;
  const sum = commit.find((v) => v.metricName?.endsWith('_sum'))?.value ?? 0;
  const count = commit.find((v) => v.metricName?.endsWith('_count'))?.value ?? 1;
  const within = (le: number) => commit.find((v) => v.metricName?.endsWith('_bucket') && v.labels.le === le)?.value ?? 0;
  await node.projector.drained();
  // Durable truth: the journal's events, read back from MariaDB.
  const conn = await mysql.createConnection(mysqlUrl);
  const [rows] = await conn.query('SELECT COUNT(*) AS records, COALESCE(MAX(last_seq), 0) AS seq FROM journal WHERE stream = ?', [`${SKU}/${DATE}`]);
  const [orders] = await conn.query("SELECT COUNT(*) AS n FROM orders WHERE stream = ? AND status = 'reserved'", [`${SKU}/${DATE}`]);
  await conn.end();
  await node.stop();
  const j = (rows as { records: number; seq: number }[])[0]!;
  const projected = Number((orders as { n: number }[])[0]!.n);
  latencies.sort((a, b) => a - b);
  const live = inv.ok ? inv.value.reserved + inv.value.sold : -1;
  const openFigures: OpenLoopFigures | undefined = open && {
    offered_per_s: open.rate_per_s,
    p999_ms: percentile(latencies, 99.9),
    max_ms: latencies[latencies.length - 1] ?? Number.NaN,
    writes_over_10ms: count - within(10),
    writes_over_25ms: count - within(25),
  };
  return {
    ...(openFigures ? { open: openFigures } : {}),
    name: label,
    attempts: o.reservations,
    reserved,
    soldOut,
    errors,
    elapsed_ms,
    rps: (o.reservations / elapsed_ms) * 1000,
    p50_ms: percentile(latencies, 50),
    p99_ms: percentile(latencies, 99),
    oversold: reserved > o.stock || live > o.stock,
    durable_when_answered: true,
    notes: `this process's CPU ${((cpu.user + cpu.system) / o.reservations).toFixed(1)} µs per attempt (${((100 * (cpu.user + cpu.system)) / 1000 / elapsed_ms).toFixed(0)}% of a core); journal write avg ${(sum / count).toFixed(2)} ms; ${j.records} journal writes for ${j.seq} events (avg ${(Number(j.seq) / Math.max(1, Number(j.records))).toFixed(0)} events/write); actor reserved ${live}; read model has ${projected} reserved orders${firstError ? `; first error: ${firstError}` : ''}`,
  };
}

/** The run with the median throughput (its own latencies and notes go with it). */
function median(runs: HotRunResult[]): HotRunResult {
  const sorted = [...runs].sort((a, b) => a.rps - b.rps);
  const m = sorted[Math.floor(sorted.length / 2)]!;
  return { ...m, oversold: runs.some((r) => r.oversold) };
}

function openLine(f: OpenLoopFigures): string {
  return `p99.9 ${f.p999_ms.toFixed(1)} ms, max ${f.max_ms.toFixed(1)} ms; journal writes slower than 10 ms: ${f.writes_over_10ms} (slower than 25 ms: ${f.writes_over_25ms})`;
}

function line(r: HotRunResult): string {
  return `${r.name.padEnd(16)} ${r.rps.toFixed(0).padStart(9)}/s  p50 ${r.p50_ms.toFixed(2).padStart(7)} ms  p99 ${r.p99_ms.toFixed(2).padStart(7)} ms  reserved ${r.reserved}  sold_out ${r.soldOut}  errors ${r.errors}  oversold ${r.oversold}  durable ${r.durable_when_answered}`;
}

async function main(): Promise<void> {
  const cpuReference = cpuReferenceMs();
  console.log(`bench:hot — ${opts.reservations} reservations, stock ${opts.stock}, ${opts.concurrency} concurrent, ${opts.buyers} buyers, warm-up ${WARMUP}; CPU reference ${cpuReference.toFixed(0)} ms (bench/machine.ts: ~620-700 on a quiet hour)`);
  // This machine's figures move by ±20% from run to run (the database's background flushing, GC
  // timing), so (i) and (ii) alternate ROUNDS times and the median run of each is reported.
  const warm = { ...opts, reservations: WARMUP, stock: WARMUP };
  if (WARMUP > 0) await runRedisLua({ ...warm, redisUrl: REDIS, mysqlUrl: MYSQL });
  const stampedeRuns: HotRunResult[] = [];
  const redisRuns: HotRunResult[] = [];
  const rulesRuns: HotRunResult[] = [];
  const openRuns: (HotRunResult & { open?: OpenLoopFigures })[] = [];
  const openOpts = { ...opts, reservations: OPEN_RESERVATIONS, stock: OPEN_RESERVATIONS };
  for (let round = 0; round < ROUNDS; round++) {
    const s = await runStampede(opts, await freshDatabase(MYSQL, 'stampede_bench_hot'));
    console.log(line(s));
    stampedeRuns.push(s);
    if (OPEN_RESERVATIONS > 0) {
      const openRun = await runStampede(openOpts, await freshDatabase(MYSQL, 'stampede_bench_hot'), 'stampede open', [], { rate_per_s: OPEN_RATE });
      console.log(`${line(openRun)}  ${openLine(openRun.open!)}`);
      openRuns.push(openRun);
    }
    const withRules = await runStampede(opts, await freshDatabase(MYSQL, 'stampede_bench_hot'), 'stampede+5 rules', BENCH_RULES);
    console.log(line(withRules));
    rulesRuns.push(withRules);
    const r = await runRedisLua({ ...opts, redisUrl: REDIS, mysqlUrl: MYSQL });
    console.log(line(r));
    redisRuns.push(r);
  }
  const stampede = median(stampedeRuns);
  const redis = median(redisRuns);
  const ruled = median(rulesRuns);
  // The open-loop round with the median p99 (its throughput is the offered rate when it keeps up).
  const opened = openRuns.length > 0 ? [...openRuns].sort((a, b) => a.p99_ms - b.p99_ms)[Math.floor(openRuns.length / 2)] : undefined;
  console.log(`median of ${ROUNDS}:`);
  console.log(line(stampede));
  console.log(`  ${stampede.notes}`);
  if (opened) console.log(`${line(opened)}  ${openLine(opened.open!)}`);
  console.log(line(redis));
  console.log(`  ${redis.notes}`);
  console.log(line(ruled));
  console.log(`  ${ruled.notes}`);
  if (WARMUP > 0) await runMysqlRowLock({ ...warm, reservations: 2_000, stock: 2_000, mysqlUrl: MYSQL, pool: 32 });
  // Its throughput is steady and low: 20 s of it are enough (what was done is reported).
  const rowlock = await runMysqlRowLock({ ...opts, mysqlUrl: MYSQL, pool: 32, capMs: 20_000 });
  console.log(line(rowlock));
  console.log(`  ${rowlock.notes}`);
  const figures = {
    bench: 'hot',
    reservations: opts.reservations,
    stock: opts.stock,
    concurrency: opts.concurrency,
    cpu_reference_ms: Math.round(cpuReference),
    stampede_rps: Math.round(stampede.rps),
    stampede_p50_ms: +stampede.p50_ms.toFixed(2),
    stampede_p99_ms: +stampede.p99_ms.toFixed(2),
    redis_lua_rps: Math.round(redis.rps),
    redis_lua_p99_ms: +redis.p99_ms.toFixed(2),
    mysql_rowlock_rps: Math.round(rowlock.rps),
    mysql_rowlock_p99_ms: +rowlock.p99_ms.toFixed(2),
    ratio_redis_lua: +(stampede.rps / redis.rps).toFixed(2),
    ratio_mysql_rowlock: +(stampede.rps / rowlock.rps).toFixed(1),
    stampede_rules_rps: Math.round(ruled.rps),
    stampede_rules_p99_ms: +ruled.p99_ms.toFixed(2),
    // The cost of a reservation with 5 rules relative to one without (target ≤ 1.3).
    rules_cost_ratio: +(stampede.rps / ruled.rps).toFixed(2),
    ...(opened
      ? {
          open_offered_per_s: OPEN_RATE,
          open_rps: Math.round(opened.rps),
          open_p50_ms: +opened.p50_ms.toFixed(2),
          open_p99_ms: +opened.p99_ms.toFixed(2),
          open_p999_ms: +opened.open!.p999_ms.toFixed(2),
          open_max_ms: +opened.open!.max_ms.toFixed(2),
          open_p99s_ms: openRuns.map((r) => +r.p99_ms.toFixed(2)),
          open_writes_over_10ms: opened.open!.writes_over_10ms,
        }
      : {}),
    oversold: stampede.oversold || redis.oversold || rowlock.oversold || ruled.oversold,
  };
  console.log(`ratio (i)/(ii) Stampede / Redis Lua: ${figures.ratio_redis_lua}   ratio (i)/(iii) Stampede / MariaDB row lock: ${figures.ratio_mysql_rowlock}`);
  console.log(`cost of 5 rules: (i)/(iv) = ${figures.rules_cost_ratio} (a reservation with 5 rules costs ${figures.rules_cost_ratio}× one without)`);
  if (process.argv.includes('--write-docs')) {
    writeDocsSection('bench:hot', [
      `Measured ${new Date().toISOString().slice(0, 10)} on this 2-core machine (CPU reference ${cpuReference.toFixed(0)} ms, bench/machine.ts; ${opts.reservations} reservations, stock ${opts.stock}, ${opts.concurrency} concurrent, ${opts.buyers} buyers, after a warm-up of ${WARMUP} reservations per design; (i) and (ii): median of ${ROUNDS} alternating runs):`,
      '',
      '| design | reservations/s | p50 ms | p99 ms | durable when answered | oversold |',
      '|---|---|---|---|---|---|',
      ...[stampede, redis, rowlock, ruled].map((r) => `| ${r.name} | ${r.rps.toFixed(0)} | ${r.p50_ms.toFixed(2)} | ${r.p99_ms.toFixed(2)} | ${r.durable_when_answered} | ${r.oversold} |`),
      ...(opened ? [`| stampede, open loop at ${OPEN_RATE}/s offered | ${opened.rps.toFixed(0)} | ${opened.p50_ms.toFixed(2)} | ${opened.p99_ms.toFixed(2)} | true | ${opened.oversold} |`] : []),
      '',
      `Ratios: (i)/(ii) = ${figures.ratio_redis_lua}, (i)/(iii) = ${figures.ratio_mysql_rowlock}; cost of 5 rules (i)/(iv) = ${figures.rules_cost_ratio}. Stampede: ${stampede.notes}. With rules: ${ruled.notes}.`,
      ...(opened
        ? [
            '',
            `Open loop (${OPEN_RESERVATIONS} reservations due at ${OPEN_RATE}/s, stock for all, latency from each one's due time; the round with the median p99 of ${openRuns.length}: ${openRuns.map((r) => r.p99_ms.toFixed(1)).join(', ')} ms; orders answered with an error (neither 201 nor 409) by round: ${openRuns.map((r) => r.errors).join(', ')}): ${openLine(opened.open!)}. ${opened.notes}.`,
          ]
        : []),
      '',
      '```json',
      JSON.stringify(figures),
      '```',
    ]);
  }
  console.log(JSON.stringify(figures));
  if (figures.oversold || opened?.oversold) process.exitCode = 1;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  main().catch((error: unknown) => {
    console.error(error);
    process.exit(1);
  });
}
