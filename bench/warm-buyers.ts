// `node --import tsx bench/warm-buyers.ts`: the cost of the passivated buyers' states kept for their
// next limit actor (actors/warm-buyers.ts), aged by generation, against the same cache as it was
// before (each put evicting aged entries one by one from the oldest, loaded from git), both in this
// run, alternating:
//
// - returning buyers: BENCH_WARM buyers kept, each taken back and put again in the order they were
//   put (a buyer's actor activated, then passivated again), as in a sale whose buyers come back;
// - new buyers: each put once and never taken, on a clock that moves 1 ms per put with an age bound of
//   BENCH_AGE_MS, so entries keep ageing out (a sale of a million buyers, each passivated once).
//
// Knobs (environment): BENCH_WARM (100000), BENCH_OPS (500000), BENCH_AGE_MS (60000), BENCH_ROUNDS (3).

import { WarmBuyers, type WarmBuyer } from '../actors/warm-buyers.ts';
import { emptyBuyer } from '../engine/buyer.ts';
import { median } from './baselines.ts';
import { importFromGit } from './from-git.ts';

const WARM = Number(process.env.BENCH_WARM ?? 100_000);
const OPS = Number(process.env.BENCH_OPS ?? 500_000);
const AGE_MS = Number(process.env.BENCH_AGE_MS ?? 60_000);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
/** The commit whose actors/warm-buyers.ts is the baseline (the last before aging by generation). */
const BASELINE_COMMIT = '051e9d4';

interface Cache {
  put(userId: string, entry: WarmBuyer): void;
  take(userId: string): WarmBuyer | undefined;
  readonly size: number;
}
type Make = (bytes_max: number, age_max_ms: number, now: () => number) => Cache;

/** The cache before the change, from git (it imports only types). */
async function baseline(): Promise<{ make: Make; done: () => void }> {
  const { module, done } = await importFromGit<{ WarmBuyers: new (b: number, a: number, n: () => number) => Cache }>(BASELINE_COMMIT, 'actors/warm-buyers.ts');
  return { make: (b, a, n) => new module.WarmBuyers(b, a, n), done };
}

const users = Array.from({ length: WARM }, (_, i) => `u${i}`);
const entries: WarmBuyer[] = users.map(() => ({ state: emptyBuyer(), seq: 1, compactedSeq: 0, compactRetrySeq: 0, loadedAt: 0 }));

/** ns per take and put of a returning buyer, WARM of them kept. */
function returning(make: Make): number {
  const now = 0;
  const cache = make(1 << 30, AGE_MS, () => now);
  for (let i = 0; i < WARM; i++) cache.put(users[i]!, entries[i]!);
  const started = process.hrtime.bigint();
  for (let k = 0; k < OPS; k++) {
    const i = k % WARM;
    cache.put(users[i]!, cache.take(users[i]!) ?? entries[i]!);
  }
  const ns = Number(process.hrtime.bigint() - started) / OPS;
  if (cache.size !== WARM) throw new Error(`returning: ${cache.size} kept of ${WARM}`);
  return ns;
}

/** ns per put of a new buyer, entries ageing out all along. */
function arriving(make: Make): number {
  let now = 0;
  const cache = make(1 << 30, AGE_MS, () => now);
  const started = process.hrtime.bigint();
  for (let k = 0; k < OPS; k++) {
    now++;
    cache.put(`n${k}`, entries[k % WARM]!);
  }
  const ns = Number(process.hrtime.bigint() - started) / OPS;
  if (cache.size > AGE_MS) throw new Error(`arriving: ${cache.size} kept past the age bound`);
  return ns;
}

const old = await baseline();
try {
  const designs: [string, Make][] = [
    ['by generation (now)', (b, a, n) => new WarmBuyers(b, a, n)],
    [`one by one (${BASELINE_COMMIT})`, old.make],
  ];
  const figures = new Map<string, { returning: number[]; arriving: number[] }>(designs.map(([name]) => [name, { returning: [], arriving: [] }]));
  for (let round = 0; round < ROUNDS; round++) {
    for (const [name, make] of designs) {
      const f = figures.get(name)!;
      f.returning.push(returning(make));
      f.arriving.push(arriving(make));
    }
  }
  console.log(`warm buyers — ${WARM} kept, ${OPS} operations, age bound ${AGE_MS} ms, median of ${ROUNDS} alternating rounds`);
  const now = figures.get(designs[0]![0])!;
  const before = figures.get(designs[1]![0])!;
  for (const [name] of designs) {
    const f = figures.get(name)!;
    console.log(`  ${name.padEnd(26)} returning buyer (take + put) ${median(f.returning).toFixed(0)} ns, new buyer (put) ${median(f.arriving).toFixed(0)} ns`);
  }
  const ratio = (a: number[], b: number[]) => median(a) / median(b);
  console.log(`ratios (now / before): returning ${ratio(now.returning, before.returning).toFixed(3)}, new ${ratio(now.arriving, before.arriving).toFixed(3)}`);
  console.log(
    JSON.stringify({
      bench: 'warm-buyers',
      warm: WARM,
      ops: OPS,
      returning_ns: Math.round(median(now.returning)),
      returning_baseline_ns: Math.round(median(before.returning)),
      arriving_ns: Math.round(median(now.arriving)),
      arriving_baseline_ns: Math.round(median(before.arriving)),
    }),
  );
} finally {
  old.done();
}
