// `node --import tsx bench/aged-map.ts`: what a SKU/date's memory of Idempotency-Key answers costs per
// projection of its journal (the inventory actor's `projectedIdempotency`, kept 10 s after the read
// model took each answer in) when every order of a sale is keyed, at three rates of keyed orders on one
// SKU/date, both forms in this run, alternating, median of BENCH_ROUNDS:
//
// - baseline: the actor's form before engine/aged-map.ts — one Map in the order the answers were
//   projected, trimmed on each projection from its start up to the first answer younger than 10 s
//   (each trim walks past the slots of every answer trimmed since the Map's table was last rebuilt);
// - AgedMap: two generations by time, the older let go whole, nothing walked.
//
// Each projection takes in the answers of one journal write (one every 2 ms: rate × 2 ms answers)
// and reads back one answer, as a retry would. Printed: µs per projection and the share of the thread
// at one projection every 2 ms, for each form, and their ratio. Measured after 12 s of simulated clock
// (the window full). Knobs (environment): BENCH_ROUNDS (3), BENCH_SECONDS (30 simulated seconds).

import { performance } from 'node:perf_hooks';
import { AgedMap } from '../engine/aged-map.ts';
import { median } from './baselines.ts';
import { cpuReferenceMs } from './machine.ts';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 30);
const KEEP_MS = 10_000;
const STEP_MS = 2;
const RATES = [2_000, 20_000, 50_000];

interface Memory {
  take(key: string, row: { createdAt: number }, now: number): void;
  read(key: string, now: number): unknown;
}

/** The inventory actor's form before: a Map trimmed from its start on each projection. */
function trimmedMap(): Memory {
  const m = new Map<string, { row: { createdAt: number }; at: number }>();
  return {
    take(key, row, now) {
      m.delete(key);
      m.set(key, { row, at: now });
    },
    read(key, now) {
      for (const [k, p] of m) {
        if (p.at > now - KEEP_MS) break;
        m.delete(k);
      }
      const p = m.get(key);
      return p && p.at > now - KEEP_MS ? p.row : undefined;
    },
  };
}

function agedMap(): Memory {
  const m = new AgedMap<string, { createdAt: number }>(KEEP_MS);
  return {
    take: (key, row, now) => m.set(key, row, now),
    read: (key, now) => m.get(key, now),
  };
}

/** µs per projection once the window is full. */
function run(make: () => Memory, rate: number): number {
  const memory = make();
  const perStep = (rate * STEP_MS) / 1000;
  let n = 0;
  let measured = 0;
  let steps = 0;
  let sink = 0;
  for (let now = 0; now < SECONDS * 1000; now += STEP_MS) {
    const t0 = performance.now();
    for (let i = 0; i < perStep; i++, n++) memory.take(`u${n}\u0000key-${n}`, { createdAt: now }, now);
    if (memory.read(`u${n - 1}\u0000key-${n - 1}`, now) !== undefined) sink++;
    if (now >= KEEP_MS + 2_000) {
      measured += performance.now() - t0;
      steps++;
    }
  }
  if (sink === 0) throw new Error('no answer read back');
  return (1000 * measured) / steps;
}

function main(): void {
  console.log(`bench:aged-map — keyed answers kept ${KEEP_MS / 1000} s after projection, a projection every ${STEP_MS} ms, ${SECONDS} s simulated, median of ${ROUNDS}; CPU reference ${cpuReferenceMs().toFixed(0)} ms (bench/machine.ts)`);
  const figures: Record<string, number> = {};
  for (const rate of RATES) {
    const before: number[] = [];
    const after: number[] = [];
    for (let r = 0; r < ROUNDS; r++) {
      before.push(run(trimmedMap, rate));
      after.push(run(agedMap, rate));
    }
    const b = median(before);
    const a = median(after);
    const share = (us: number) => `${((100 * us) / (STEP_MS * 1000)).toFixed(1)}%`;
    console.log(`${String(rate).padStart(6)} keyed orders/s (${(rate * KEEP_MS) / 1000} answers kept): Map trimmed from its start ${b.toFixed(1)} µs per projection (${share(b)} of the thread), AgedMap ${a.toFixed(1)} µs (${share(a)}); ratio ${(a / b).toFixed(3)}`);
    figures[`trimmed_us_${rate}`] = +b.toFixed(2);
    figures[`aged_us_${rate}`] = +a.toFixed(2);
  }
  console.log(JSON.stringify({ bench: 'aged-map', ...figures }));
}

main();
