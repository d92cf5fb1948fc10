// `node --import tsx bench/reservation-index-growth.ts`: the stall a SKU/date's reservation index
// (engine/reservation-index.ts) costs when its hash index grows, with its successor made ahead (as
// the engine runs it: pages written a few at a time before the growth) against made at the growth
// (the baseline, `prepare_slots_min` past every size), both measured in this run, alternating.
//
// Reservations are added in blocks of BENCH_BLOCK (a block takes ~1 ms here, about what 150,000
// reservations/s bring in 1 ms); the figures are the slowest block and the extra time of the blocks
// right after the largest growth (to 2,097,152 slots at 524,288 reservations) over the median block:
// the stall an open loop at that rate meets (its orders wait behind it).
//
// Knobs (environment): BENCH_RESERVATIONS (700000), BENCH_BLOCK (1000), BENCH_ROUNDS (3).

import { performance } from 'node:perf_hooks';
import type { Reservation } from '../engine/inventory.ts';
import { ReservationIndex, type ReservationIndexOptions } from '../engine/reservation-index.ts';
import { median } from './baselines.ts';

const N = Number(process.env.BENCH_RESERVATIONS ?? 700_000);
const BLOCK = Number(process.env.BENCH_BLOCK ?? 1_000);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
/** The growth whose stall is reported: the index doubles to 2,097,152 slots when 524,288 are used. */
const GROWTH_AT = 524_288;
/** Blocks after the growth counted in its stall (~10,000 reservations faulted pages before the change). */
const AFTER_BLOCKS = Math.ceil(20_000 / BLOCK);

interface Run {
  worstBlock_ms: number;
  /** Reservations in the index when the slowest block ended. */
  worstAt: number;
  medianBlock_ms: number;
  /** Time of the AFTER_BLOCKS blocks from the growth on, over as many median blocks. */
  growthExtra_ms: number;
  total_ms: number;
}

function reservationOf(i: number): Reservation {
  const orderId = `01JDZ${(i * 7919).toString(32).padStart(11, '0')}-1a`;
  return { orderId, userId: `u${i % 100_000}`, qty: 1, amountCents: 1999, createdAt: 1_796_000_000_000 + i, expiresAt: 1_796_000_900_000 + i };
}

function run(options: ReservationIndexOptions): Run {
  const index = new ReservationIndex(options);
  const blocks: number[] = [];
  const started = performance.now();
  let t = started;
  for (let i = 0; i < N; i++) {
    const r = reservationOf(i);
    index.set(r.orderId, r);
    if ((i + 1) % BLOCK === 0) {
      const now = performance.now();
      blocks.push(now - t);
      t = now;
    }
  }
  const total_ms = performance.now() - started;
  const sorted = [...blocks].sort((a, b) => a - b);
  const middle = sorted[sorted.length >> 1]!;
  const first = Math.floor(GROWTH_AT / BLOCK);
  const around = blocks.slice(first, first + AFTER_BLOCKS);
  const worst = sorted[sorted.length - 1]!;
  return {
    worstBlock_ms: worst,
    worstAt: (blocks.indexOf(worst) + 1) * BLOCK,
    medianBlock_ms: middle,
    growthExtra_ms: around.reduce((a, b) => a + b, 0) - around.length * middle,
    total_ms,
  };
}

function medianOf(runs: Run[], pick: (r: Run) => number): number {
  return median(runs.map(pick));
}

const designs: [string, ReservationIndexOptions][] = [
  ['successor made ahead (the engine)', {}],
  ['successor made at the growth (baseline)', { prepare_slots_min: Number.MAX_SAFE_INTEGER }],
];
const results = new Map<string, Run[]>(designs.map(([name]) => [name, []]));
run({}); // JIT warm-up
for (let round = 0; round < ROUNDS; round++) {
  for (const [name, options] of designs) results.get(name)!.push(run(options));
}
console.log(`reservation index growth — ${N} reservations in blocks of ${BLOCK}, median of ${ROUNDS} alternating rounds`);
const figures: Record<string, number> = {};
for (const [name] of designs) {
  const runs = results.get(name)!;
  const worst = medianOf(runs, (r) => r.worstBlock_ms);
  const extra = medianOf(runs, (r) => r.growthExtra_ms);
  const total = medianOf(runs, (r) => r.total_ms);
  console.log(
    `  ${name.padEnd(42)} slowest block ${worst.toFixed(1)} ms (rounds: ${runs.map((r) => `${r.worstBlock_ms.toFixed(1)} at ${r.worstAt}`).join(', ')}), median block ${medianOf(runs, (r) => r.medianBlock_ms).toFixed(2)} ms, ` +
      `growth at ${GROWTH_AT}: +${extra.toFixed(1)} ms over ${AFTER_BLOCKS} blocks, all ${total.toFixed(0)} ms`,
  );
  const key = name.startsWith('successor made ahead') ? 'prepared' : 'baseline';
  figures[`${key}_worst_block_ms`] = Number(worst.toFixed(2));
  figures[`${key}_growth_extra_ms`] = Number(extra.toFixed(2));
  figures[`${key}_total_ms`] = Number(total.toFixed(0));
}
console.log(
  `ratios (made ahead / baseline): slowest block ${(figures.prepared_worst_block_ms! / figures.baseline_worst_block_ms!).toFixed(2)}, ` +
    `growth's extra time ${(figures.prepared_growth_extra_ms! / figures.baseline_growth_extra_ms!).toFixed(2)}, all ${(figures.prepared_total_ms! / figures.baseline_total_ms!).toFixed(2)}`,
);
console.log(JSON.stringify({ bench: 'reservation-index-growth', reservations: N, block: BLOCK, ...figures }));
