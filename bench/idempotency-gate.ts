// `node --import tsx bench/idempotency-gate.ts`: the cost of one keyed request in the HTTP idempotency
// gate (http/idempotency.ts) once it holds BENCH_KEYS keys and old ones leave as new ones come (a sale
// of keyed orders running longer than the gate's 10 minutes of memory, or one that fills it), against
// the gate as it was before (walking its Map from the start, past every slot deleted since the Map's
// table was last rebuilt; loaded from git), both in this run, alternating. And the same with only a
// few thousand keys, where the walk was short.
//
// Knobs (environment): BENCH_KEYS (200000), BENCH_OPS (100000), BENCH_ROUNDS (3).

import { performance } from 'node:perf_hooks';
import type { IdempotencyGate as Gate, IdempotencyGateOptions } from '../http/idempotency.ts';
import { IdempotencyGate } from '../http/idempotency.ts';
import { median } from './baselines.ts';
import { importFromGit } from './from-git.ts';

const KEYS = Number(process.env.BENCH_KEYS ?? 200_000);
const OPS = Number(process.env.BENCH_OPS ?? 100_000);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
/** The commit whose http/idempotency.ts is the baseline (the last before the gate's eviction queue). */
const BASELINE_COMMIT = 'df283cd';

type Make = (o: IdempotencyGateOptions) => Pick<Gate, 'run' | 'size'>;

const answer = { status: 201, body: { ok: true } };
const stored = async () => undefined;
const execute = async () => answer;

/**
 * µs per keyed request in steady state: the gate filled with `keys` keys one clock ms apart, then
 * OPS new keys, the clock moving so that as many old ones pass the gate's memory as new ones come
 * (each request trims its oldest), over 1,000 buyers.
 */
async function steady(make: Make, keys: number): Promise<number> {
  let now = 0;
  const retain_ms = keys;
  const gate = make({ entries_max: keys * 2, keep_min_ms: 1, retain_ms, per_user_max: keys, now: () => now });
  let k = 0;
  for (; k < keys; k++) {
    now++;
    await gate.run(`u${k % 1_000}`, `key-${k}`, 'h', stored, execute);
  }
  const started = performance.now();
  for (let i = 0; i < OPS; i++, k++) {
    now++;
    await gate.run(`u${k % 1_000}`, `key-${k}`, 'h', stored, execute);
  }
  const us = ((performance.now() - started) * 1000) / OPS;
  if (gate.size > keys + 64) throw new Error(`the gate kept ${gate.size} keys of ${keys}`);
  return us;
}

async function main(): Promise<void> {
  const { module, done } = await importFromGit<{ IdempotencyGate: new (o: IdempotencyGateOptions) => Gate }>(BASELINE_COMMIT, 'http/idempotency.ts');
  const before: Make = (o) => new module.IdempotencyGate(o);
  const now: Make = (o) => new IdempotencyGate(o);
  try {
    console.log(`bench:idempotency-gate — ${OPS} keyed requests after ${KEYS} (and 2,000) keys, old keys leaving as new ones come, ${ROUNDS} rounds`);
    await steady(now, 2_000); // warm-up (JIT)
    await steady(before, 2_000);
    const rows: { label: string; keys: number; before: number[]; now: number[] }[] = [
      { label: `${KEYS.toLocaleString('en')} keys`, keys: KEYS, before: [], now: [] },
      { label: '2,000 keys', keys: 2_000, before: [], now: [] },
    ];
    for (let round = 0; round < ROUNDS; round++) {
      for (const row of rows) {
        row.before.push(await steady(before, row.keys));
        row.now.push(await steady(now, row.keys));
      }
    }
    console.log('| gate holding | before µs per request | now µs per request | now / before |');
    console.log('|---|---|---|---|');
    for (const row of rows) console.log(`| ${row.label} | ${median(row.before).toFixed(2)} | ${median(row.now).toFixed(2)} | ${(median(row.now) / median(row.before)).toFixed(3)} |`);
    console.log(JSON.stringify({ bench: 'idempotency-gate', keys: KEYS, ops: OPS, ...Object.fromEntries(rows.flatMap((r) => [[`before_us_${r.keys}`, +median(r.before).toFixed(2)], [`now_us_${r.keys}`, +median(r.now).toFixed(2)]])) }));
  } finally {
    done();
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
