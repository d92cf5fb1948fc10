// How fast this machine's CPU is right now, printed by the benchmarks next to their figures: the
// host's speed has varied by a factor of 2-3 within one session (docs/performance.md, "Session 24"),
// which no ratio inside one run shows, and an absolute target (a p99 in ms) depends on it.

import { performance } from 'node:perf_hooks';

/**
 * Milliseconds of a fixed single-threaded workload (3,000,000 Map sets and gets on 100,000 string
 * keys, the kind of work the engine's thread does), the best of three: ~620-700 ms on a quiet hour of
 * this machine, 1,100-2,100 ms on a slow one.
 */
export function cpuReferenceMs(): number {
  let best = Number.POSITIVE_INFINITY;
  for (let round = 0; round < 3; round++) {
    const started = performance.now();
    const m = new Map<string, number>();
    let x = 0;
    for (let i = 0; i < 3_000_000; i++) {
      m.set(`k${i % 100_000}`, i);
      x += m.get(`k${(i * 7) % 100_000}`) ?? 0;
    }
    if (x < 0) throw new Error('unreachable');
    best = Math.min(best, performance.now() - started);
  }
  return best;
}
