// Memory of idle SKU/dates: checks the claim "100,000 SKU/dates touched once and then idle fall back
// to the footprint of the active ones". One node in this process on SQLite (temp dir), with
// STAMPEDE_IDLE_MS=1000 so that passivation happens within the run:
//   1. baseline: ~100 active SKU/dates (each holds one live reservation, so it stays in memory);
//   2. touch 100,000 SKU/dates once (1,000 SKUs x 100 dates, stock set through the order service,
//      not HTTP: each setStock activates that SKU/date's inventory actor), sampling live actors,
//      heap and RSS as it goes;
//   3. wait (bounded) until the actors are back to the active ones, gc, measure again.
// The catalog keeps one small entry per SKU/date in memory on purpose (so the purchase path never
// reads the catalog tables), as do the order service (last known availability) and the projector
// (checkpoint). Their cost is estimated apart, by building the same structures for 100,000
// SKU/dates in isolation, so the figures say what passivated actors leave behind vs what the
// catalog costs by design.
//
// With the real clock, touching 100,000 SKU/dates takes about a minute, so the first ones passivate
// while the last ones are still being touched: the peak of live actors is a few thousand, not
// 100,000. BENCH_HOLD_CLOCK=1 stops the node's clock while touching (nothing becomes idle) and lets
// it jump forward afterwards, so that all 100,000 are live at once and then passivate together.
//
// Run: node --expose-gc --import tsx bench/memory.ts [--write-docs]
// Knobs (environment): BENCH_SKUS (1000), BENCH_DATES (100), BENCH_ACTIVE (100),
// BENCH_SETSTOCK_CONCURRENCY (256), BENCH_PASSIVATION_WAIT_S (120), BENCH_HOLD_CLOCK (0).

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { pino } from 'pino';
import { Catalog } from '../actors/catalog.ts';
import { loadConfig } from '../app/config.ts';
import { StampedeNode } from '../app/node.ts';
import type { Sku, SkuStore, StreamRef, StreamStore } from '../persistence/ports.ts';
import { writeDocsSection } from './docs.ts';

const env = process.env;
const SKUS = Number(env.BENCH_SKUS ?? 1_000);
const DATES = Number(env.BENCH_DATES ?? 100);
const ACTIVE = Number(env.BENCH_ACTIVE ?? 100);
const CONCURRENCY = Number(env.BENCH_SETSTOCK_CONCURRENCY ?? 256);
const PASSIVATION_WAIT_S = Number(env.BENCH_PASSIVATION_WAIT_S ?? 120);
const HOLD_CLOCK = env.BENCH_HOLD_CLOCK === '1';
const IDLE_MS = 1_000;
const TOUCHED = SKUS * DATES;
const MiB = 1024 * 1024;

const gc = (globalThis as { gc?: () => void }).gc;

/** Full collections until heapUsed stops shrinking (weak refs and finalizers need a few rounds). */
async function settledMemory(): Promise<{ heapUsed: number; heapTotal: number; rss: number }> {
  let last = Infinity;
  for (let i = 0; i < 6; i++) {
    gc!();
    await sleep(50);
    const h = process.memoryUsage().heapUsed;
    if (last - h < 64 * 1024) break;
    last = h;
  }
  const m = process.memoryUsage();
  return { heapUsed: m.heapUsed, heapTotal: m.heapTotal, rss: m.rss };
}

function dateOf(i: number): string {
  return new Date(Date.UTC(2027, 0, 1) + i * 86_400_000).toISOString().slice(0, 10);
}

function sku(skuId: string): Sku {
  return {
    skuId, name: skuId, priceCents: 1999, merchantId: 'm1', delivery: 'ticket', attributes: {},
    visibleAt: null, saleStartsAt: null, saleEndsAt: null, updatedAt: new Date().toISOString(),
  };
}

/** Runs `fn` over 0..n-1 with at most `limit` at once. */
async function pool(n: number, limit: number, fn: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: Math.min(limit, n) }, async () => {
    while (next < n) await fn(next++);
  }));
}

/**
 * Bytes per SKU/date of the per-SKU/date state kept on purpose outside the actors, measured in
 * isolation: a real Catalog (over in-memory stores) holding SKUS x DATES streams, plus two
 * Map<stream, number> shaped like the order service's availability and the projector's checkpoints.
 */
async function perStreamStateEstimate(): Promise<{ catalog_bytes: number; maps_bytes: number }> {
  let streamNo = 0;
  const skuStore: SkuStore = { upsert: async () => {}, get: async () => undefined, all: async () => [] };
  const streamStore = {
    ensure: async (skuId: string, date: string): Promise<StreamRef> => ({ streamNo: ++streamNo, skuId, date }),
    all: async () => [],
  } as unknown as StreamStore;
  const before = await settledMemory();
  const catalog = new Catalog(skuStore, streamStore);
  for (let s = 0; s < SKUS; s++) {
    await catalog.upsertSku(sku(`mem-${s}`));
    for (let d = 0; d < DATES; d++) await catalog.ensureStream(`mem-${s}`, dateOf(d));
  }
  const withCatalog = await settledMemory();
  const availability = new Map<string, number>();
  const checkpoints = new Map<string, number>();
  for (let s = 0; s < SKUS; s++) {
    for (let d = 0; d < DATES; d++) {
      // One key string for both maps, built afresh (the real key is the actor's stream name, which
      // both the order service and the projector are handed).
      const stream = `mem-${s}/${dateOf(d)}`;
      availability.set(stream, 1_000 + d);
      checkpoints.set(stream, 2 + d);
    }
  }
  const withMaps = await settledMemory();
  // Keep them reachable until measured.
  if (catalog.skuCount + availability.size + checkpoints.size < 0) console.log('unreachable');
  return {
    catalog_bytes: (withCatalog.heapUsed - before.heapUsed) / TOUCHED,
    maps_bytes: (withMaps.heapUsed - withCatalog.heapUsed) / TOUCHED,
  };
}

/** Size of a private Map of the node's services (read-only, for the report); undefined if absent. */
function privateMapSize(obj: object, field: string): number | undefined {
  const v = (obj as Record<string, unknown>)[field];
  return v instanceof Map ? v.size : undefined;
}

const mib = (b: number) => (b / MiB).toFixed(1);

async function main(): Promise<void> {
  if (!gc) {
    console.error('run with --expose-gc: node --expose-gc --import tsx bench/memory.ts');
    process.exit(2);
  }
  const started = performance.now();
  console.log(`bench:memory — ${ACTIVE} active SKU/dates, then ${TOUCHED} (${SKUS} SKUs x ${DATES} dates) touched once; STAMPEDE_IDLE_MS=${IDLE_MS}, SQLite${HOLD_CLOCK ? ', clock held while touching' : ''}`);

  const estimate = await perStreamStateEstimate();
  await settledMemory();
  console.log(`per-SKU/date state kept on purpose (estimated in isolation): catalog ${estimate.catalog_bytes.toFixed(0)} B, availability + projector checkpoint maps ${estimate.maps_bytes.toFixed(0)} B`);

  const dir = mkdtempSync(join(tmpdir(), 'stampede-bench-memory-'));
  const config = loadConfig({
    STAMPEDE_DATA_DIR: dir,
    STAMPEDE_IDLE_MS: String(IDLE_MS),
    STAMPEDE_MAILBOX_MAX: '1000000',
    STAMPEDE_LOG_LEVEL: 'warn',
    STAMPEDE_ADMIN_TOKEN: 'bench-admin-token-000000',
    STAMPEDE_USER_JWT_SECRET: 'bench-user-jwt-secret-0000000000000000',
    STAMPEDE_PAYMENT_SECRET: 'bench-payment-secret-00',
    STAMPEDE_CARD_KEY_SECRET: 'bench-card-key-secret-0000000000000000',
  });
  // The system clock, or while held, the instant it was held at (see BENCH_HOLD_CLOCK above).
  let heldAt: number | undefined;
  const clock = { now: () => heldAt ?? Date.now() };
  const node = new StampedeNode(config, { logger: pino({ level: 'warn' }), clock });
  const actors = () => node.runtime.stats().actors;
  let sampler: NodeJS.Timeout | undefined;
  try {
    await node.start();

    // 1. Baseline: ACTIVE SKU/dates, each holding a live reservation (15 min TTL) so it is never idle.
    await node.catalog.upsertSku(sku('active'));
    for (let d = 0; d < ACTIVE; d++) {
      const set = await node.orders.setStock('active', dateOf(d), 1_000);
      if (!set.ok) throw new Error(`setStock: ${set.message}`);
      const order = await node.orders.placeOrder({ userId: `buyer-${d}`, skuId: 'active', date: dateOf(d), qty: 1 });
      if (order.status !== 201) throw new Error(`placeOrder: ${order.status} ${JSON.stringify(order.body)}`);
    }
    await node.projector.drained();
    await sleep(IDLE_MS * 2); // anything that could passivate has done so
    const baselineActors = actors();
    const baseline = await settledMemory();
    console.log(`baseline:  ${baselineActors} live actors  heap ${mib(baseline.heapUsed)} MiB  rss ${mib(baseline.rss)} MiB`);

    // 2. Touch TOUCHED SKU/dates once, sampling as it goes (samples are before gc: garbage included).
    const peak = { actors: 0, heapUsed: 0, rss: 0 };
    const sample = () => {
      const m = process.memoryUsage();
      peak.actors = Math.max(peak.actors, actors());
      peak.heapUsed = Math.max(peak.heapUsed, m.heapUsed);
      peak.rss = Math.max(peak.rss, m.rss);
    };
    sampler = setInterval(sample, 100);
    const t0 = performance.now();
    if (HOLD_CLOCK) heldAt = Date.now();
    await pool(SKUS, 32, (s) => node.catalog.upsertSku(sku(`sku-${s}`)));
    await pool(TOUCHED, CONCURRENCY, async (i) => {
      const set = await node.orders.setStock(`sku-${Math.floor(i / DATES)}`, dateOf(i % DATES), 100);
      if (!set.ok) throw new Error(`setStock: ${set.message}`);
    });
    const touch_s = (performance.now() - t0) / 1000;
    clearInterval(sampler);
    sampler = undefined;
    sample();
    const endActors = actors();
    const end = await settledMemory();
    heldAt = undefined;
    console.log(
      `touched:   ${TOUCHED} SKU/dates in ${touch_s.toFixed(1)} s; peak ${peak.actors} live actors, heap ${mib(peak.heapUsed)} MiB, rss ${mib(peak.rss)} MiB (sampled, before gc); ` +
        `at the end ${endActors} live actors, heap after gc ${mib(end.heapUsed)} MiB`,
    );

    // 3. Wait until only the active ones are left (bounded), then measure.
    const t1 = performance.now();
    while (actors() > baselineActors && performance.now() - t1 < PASSIVATION_WAIT_S * 1000) await sleep(250);
    const passivation_s = (performance.now() - t1) / 1000;
    const idleActors = actors();
    await node.projector.drained();
    const idle = await settledMemory();
    console.log(
      `idle:      ${idleActors} live actors after ${passivation_s.toFixed(1)} s  heap ${mib(idle.heapUsed)} MiB  rss ${mib(idle.rss)} MiB ` +
        `(V8 heap reserved ${mib(idle.heapTotal)} MiB vs ${mib(baseline.heapTotal)} MiB at baseline)`,
    );

    const leftPerStream = (idle.heapUsed - baseline.heapUsed) / TOUCHED;
    const perActor = endActors > idleActors ? (end.heapUsed - idle.heapUsed) / (endActors - idleActors) : NaN;
    const kept = estimate.catalog_bytes + estimate.maps_bytes;
    console.log(
      `left behind per touched SKU/date: ${leftPerStream.toFixed(0)} B (estimate of what is kept on purpose: catalog ${estimate.catalog_bytes.toFixed(0)} B + maps ${estimate.maps_bytes.toFixed(0)} B = ${kept.toFixed(0)} B); ` +
        `a live idle actor costs ~${perActor.toFixed(0)} B`,
    );
    console.log(
      `entries held: catalog ${Array.from({ length: SKUS }, (_, s) => node.catalog.dates(`sku-${s}`).length).reduce((a, b) => a + b, 0)} streams, order-service availability ${privateMapSize(node.orders, 'availability') ?? '?'}, projector checkpoints ${privateMapSize(node.projector, 'checkpoints') ?? '?'}`,
    );
    const heapRatio = idle.heapUsed / baseline.heapUsed;
    const rssRatio = idle.rss / baseline.rss;
    // What passivated actors leave behind beyond the state kept on purpose (near 0, or negative
    // within the noise of the estimate: nothing).
    const unexplained = leftPerStream - kept;
    console.log(
      `ratio idle/baseline: heap ${heapRatio.toFixed(2)}, rss ${rssRatio.toFixed(2)}; left behind beyond the state kept on purpose: ${unexplained.toFixed(0)} B per SKU/date`,
    );

    const figures = {
      bench: 'memory',
      touched: TOUCHED,
      held_clock: HOLD_CLOCK,
      active: baselineActors,
      baseline_heap_mib: +mib(baseline.heapUsed),
      baseline_rss_mib: +mib(baseline.rss),
      touch_s: +touch_s.toFixed(1),
      peak_actors: peak.actors,
      peak_heap_mib: +mib(peak.heapUsed),
      peak_rss_mib: +mib(peak.rss),
      end_actors: endActors,
      end_heap_after_gc_mib: +mib(end.heapUsed),
      passivation_s: +passivation_s.toFixed(1),
      idle_actors: idleActors,
      idle_heap_mib: +mib(idle.heapUsed),
      idle_rss_mib: +mib(idle.rss),
      heap_ratio: +heapRatio.toFixed(2),
      rss_ratio: +rssRatio.toFixed(2),
      left_bytes_per_sku_date: Math.round(leftPerStream),
      catalog_bytes_per_sku_date: Math.round(estimate.catalog_bytes),
      maps_bytes_per_sku_date: Math.round(estimate.maps_bytes),
      live_actor_bytes: Math.round(perActor),
      unexplained_bytes_per_sku_date: Math.round(unexplained),
      idle_heap_total_mib: +mib(idle.heapTotal),
    };
    console.log(`total ${((performance.now() - started) / 1000).toFixed(0)} s`);
    if (process.argv.includes('--write-docs')) {
      writeDocsSection('bench:memory', [
        `Measured ${new Date().toISOString().slice(0, 10)} on this 2-core machine (SQLite, \`STAMPEDE_IDLE_MS=${IDLE_MS}\`${HOLD_CLOCK ? ', node clock held while touching so that all are live at once' : ', real clock'}): ${baselineActors} active SKU/dates, then ${TOUCHED} SKU/dates (${SKUS} SKUs × ${DATES} dates) touched once by setting their stock, then idle.`,
        '',
        '| moment | live actors | heap MiB | RSS MiB |',
        '|---|---|---|---|',
        `| baseline (after gc) | ${baselineActors} | ${mib(baseline.heapUsed)} | ${mib(baseline.rss)} |`,
        `| peak while touching (sampled, before gc) | ${peak.actors} | ${mib(peak.heapUsed)} | ${mib(peak.rss)} |`,
        `| end of touching (after gc) | ${endActors} | ${mib(end.heapUsed)} | — |`,
        `| idle, ${passivation_s.toFixed(1)} s later (after gc) | ${idleActors} | ${mib(idle.heapUsed)} | ${mib(idle.rss)} |`,
        '',
        `Idle / baseline: heap ${figures.heap_ratio}, RSS ${figures.rss_ratio}. Left behind per touched SKU/date: ${figures.left_bytes_per_sku_date} B, ` +
          `of which kept on purpose (estimated in isolation): catalog ${figures.catalog_bytes_per_sku_date} B, order-service availability + projector checkpoint ${figures.maps_bytes_per_sku_date} B. ` +
          `Beyond that: ${figures.unexplained_bytes_per_sku_date} B (the estimate's noise; passivated actors leave nothing else). A live idle actor costs about ${figures.live_actor_bytes} B. ` +
          `RSS stays up because V8 keeps the heap it grew (${figures.idle_heap_total_mib} MiB reserved when idle).`,
        ...(HOLD_CLOCK
          ? []
          : [
              '',
              `With the real clock the first SKU/dates passivate while the last are still being touched (${touch_s.toFixed(0)} s for all), hence the peak of ${peak.actors} live actors; ` +
                '`BENCH_HOLD_CLOCK=1` holds the node clock while touching so that all are live at once.',
            ]),
        '',
        '```json',
        JSON.stringify(figures),
        '```',
      ]);
    }
    console.log(JSON.stringify(figures));
  } finally {
    if (sampler) clearInterval(sampler);
    await node.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
