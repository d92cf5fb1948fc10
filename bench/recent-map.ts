// `node --import tsx bench/recent-map.ts`: what a bounded cache costs per operation once it is full and
// new keys keep coming (a sale with more buyers, tokens or orders than the bound), in two forms, both in
// this run, alternating, median of BENCH_ROUNDS:
//
// (1) The rate limiter (http/rate-limit.ts) with its default bound of 100,000 buyers, a new buyer per
//     request half the time and a recent one the other half, against the limiter as it was before
//     (one Map evicting its least recently seen key with `keys().next()`; loaded from git).
// (2) The bare patterns at the bounds the engine uses (10,000: verified tokens, a SKU's recent card-key
//     assignments; 65,536: recent order-stream checkpoints; 100,000: rate-limit buckets): a Map that
//     re-inserts a key on use and evicts its oldest with `keys().next()`, against engine/recent-map.ts.
//
// Knobs (environment): BENCH_OPS (200000), BENCH_ROUNDS (3).

import { performance } from 'node:perf_hooks';
import { RecentMap } from '../engine/recent-map.ts';
import { TokenBucketLimiter } from '../http/rate-limit.ts';
import { median } from './baselines.ts';
import { importFromGit } from './from-git.ts';
import { cpuReferenceMs } from './machine.ts';

const OPS = Number(process.env.BENCH_OPS ?? 200_000);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
/** The commit whose http/rate-limit.ts is the baseline (the last before engine/recent-map.ts). */
const BASELINE_COMMIT = 'ab07676';

type Limiter = Pick<TokenBucketLimiter, 'take' | 'size'>;

/** ns per request: the limiter filled to its bound, then OPS requests, every other one a new buyer. */
function limiterNs(make: () => Limiter): number {
  let now = 0;
  const limiter = make();
  const bound = 100_000;
  let k = 0;
  for (; k < bound; k++) limiter.take(`u:buyer-${k}`);
  const started = performance.now();
  for (let i = 0; i < OPS; i++) {
    now++;
    limiter.take(i & 1 ? `u:buyer-${k - 1 - (i % 5_000)}` : `u:buyer-${k++}`);
  }
  const ns = ((performance.now() - started) * 1e6) / OPS;
  if (limiter.size > bound) throw new Error(`the limiter kept ${limiter.size} keys of ${bound}`);
  return ns;
}

interface Cache {
  get(key: string): number | undefined;
  set(key: string, value: number): void;
  readonly size: number;
}

/** The pattern it replaces: re-inserted on use, the oldest evicted with keys().next(). */
class MapEvictingOldest implements Cache {
  private readonly map = new Map<string, number>();
  constructor(private readonly max: number) {}
  get size(): number {
    return this.map.size;
  }
  get(key: string): number | undefined {
    return this.map.get(key);
  }
  set(key: string, value: number): void {
    this.map.delete(key);
    this.map.set(key, value);
    if (this.map.size > this.max) this.map.delete(this.map.keys().next().value!);
  }
}

/** ns per operation: filled to `max`, then OPS operations, each a new key set and a recent key read. */
function cacheNs(make: (max: number) => Cache, max: number): number {
  const cache = make(max);
  let k = 0;
  for (; k < max; k++) cache.set(`@o/order-${k}`, k);
  const started = performance.now();
  for (let i = 0; i < OPS; i++, k++) {
    cache.set(`@o/order-${k}`, k);
    cache.get(`@o/order-${k - 1 - (i % 1_000)}`);
  }
  const ns = ((performance.now() - started) * 1e6) / OPS;
  if (cache.size > max) throw new Error(`the cache kept ${cache.size} keys of ${max}`);
  return ns;
}

async function main(): Promise<void> {
  const { module, done } = await importFromGit<{ TokenBucketLimiter: typeof TokenBucketLimiter }>(BASELINE_COMMIT, 'http/rate-limit.ts');
  try {
    console.log(`bench:recent-map — ${OPS} operations on full caches, ${ROUNDS} rounds alternating; CPU reference ${cpuReferenceMs().toFixed(0)} ms (bench/machine.ts: ~620-700 on a quiet hour)`);
    const before = () => new module.TokenBucketLimiter({ ratePerSec: 100, burst: 20 });
    const now = () => new TokenBucketLimiter({ ratePerSec: 100, burst: 20 });
    const limiter = { before: [] as number[], now: [] as number[] };
    const bounds = [10_000, 65_536, 100_000];
    const caches = bounds.map(() => ({ before: [] as number[], now: [] as number[] }));
    limiterNs(now); // warm-up (JIT)
    limiterNs(before);
    for (let round = 0; round < ROUNDS; round++) {
      limiter.before.push(limiterNs(before));
      limiter.now.push(limiterNs(now));
      bounds.forEach((max, i) => {
        caches[i]!.before.push(cacheNs((m) => new MapEvictingOldest(m), max));
        caches[i]!.now.push(cacheNs((m) => new RecentMap<string, number>(m), max));
      });
    }
    const row = (label: string, r: { before: number[]; now: number[] }) => {
      const b = median(r.before);
      const n = median(r.now);
      console.log(`  ${label.padEnd(58)} before ${b.toFixed(0).padStart(6)} ns  now ${n.toFixed(0).padStart(5)} ns  ratio ${(n / b).toFixed(3)}`);
      return { before_ns: Math.round(b), now_ns: Math.round(n), ratio: +(n / b).toFixed(3) };
    };
    const figures = {
      limiter_100k: row('rate limiter, 100,000 buyers, half of the requests new', limiter),
      ...Object.fromEntries(bounds.map((max, i) => [`cache_${max}`, row(`cache of ${max.toLocaleString('en')}: a new key set, a recent one read`, caches[i]!)])),
    };
    console.log(JSON.stringify({ bench: 'recent-map', ops: OPS, rounds: ROUNDS, ...figures }));
  } finally {
    done();
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
