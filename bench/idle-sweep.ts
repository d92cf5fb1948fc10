// `node --import tsx bench/idle-sweep.ts`: the stall of the idle sweep that passivates BENCH_ACTORS
// idle actors of a hosted kind (one per buyer, as limit actors), swept in turns of the runtime's
// default IDLE_SWEEP_PER_TURN against the whole sweep in one turn (as before: idleSweepPerTurn set
// past the number of actors), both in this run, alternating BENCH_ROUNDS times. Prints the longest
// turn of the event loop while the sweep runs (what every request queued behind it waits) and the
// time until every actor is passivated, as medians, and their ratios.
//
// Knobs (environment): BENCH_ACTORS (100000), BENCH_ROUNDS (3).

import { performance } from 'node:perf_hooks';
import { ActorRuntime, IDLE_SWEEP_PER_TURN } from '../actors/runtime/actor-runtime.ts';
import { median } from './baselines.ts';

const ACTORS = Number(process.env.BENCH_ACTORS ?? 100_000);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const IDLE_MS = 20;

interface Figures {
  longestTurnMs: number;
  allPassivatedMs: number;
}

async function sweepOnce(perTurn: number): Promise<Figures> {
  let now = 0;
  const rt = new ActorRuntime({ shards: 64, mailboxMax: 1_000, idleMs: IDLE_MS, askTimeoutMs: 10_000, nodeId: 'bench', now: () => now, idleSweepPerTurn: perTurn });
  const kind = rt.define<{ n: number }>('buyer', () => ({ receive: (batch, ctx) => batch.forEach((e) => ctx.reply(e, e.msg.n)) }), { hosted: true });
  for (let i = 0; i < ACTORS; i += 10_000) {
    await Promise.all(Array.from({ length: Math.min(10_000, ACTORS - i) }, (_, j) => kind.ask(`u${i + j}`, { n: j })));
  }
  if (rt.stats().actors !== ACTORS) throw new Error(`expected ${ACTORS} live actors, got ${rt.stats().actors}`);
  // Every actor idle from here; the next idle timer tick (every IDLE_MS / 2) starts the sweep. The
  // loop's turns are timed by an immediate chain: the gap between two of them is one turn.
  let longest = 0;
  let last = performance.now();
  let turning = true;
  const turn = () => {
    const t = performance.now();
    longest = Math.max(longest, t - last);
    last = t;
    if (turning) setImmediate(turn);
  };
  setImmediate(turn);
  const started = performance.now();
  now += IDLE_MS + 1;
  while (rt.stats().actors > 0) await new Promise((r) => setImmediate(r));
  const allPassivatedMs = performance.now() - started;
  turning = false;
  await rt.stop();
  return { longestTurnMs: longest, allPassivatedMs };
}

async function main(): Promise<void> {
  console.log(`bench:idle-sweep — ${ACTORS} idle actors of a hosted kind passivated by one sweep, ${ROUNDS} rounds`);
  await sweepOnce(IDLE_SWEEP_PER_TURN); // warm-up (JIT)
  const inTurns: Figures[] = [];
  const atOnce: Figures[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    atOnce.push(await sweepOnce(Number.MAX_SAFE_INTEGER));
    inTurns.push(await sweepOnce(IDLE_SWEEP_PER_TURN));
  }
  const m = (runs: Figures[], k: keyof Figures) => median(runs.map((r) => r[k]));
  const rows: [string, Figures[]][] = [
    ['whole sweep in one turn (before)', atOnce],
    [`in turns of ${IDLE_SWEEP_PER_TURN} (now)`, inTurns],
  ];
  console.log('| sweep | longest turn ms | all passivated ms |');
  console.log('|---|---|---|');
  for (const [name, runs] of rows) console.log(`| ${name} | ${m(runs, 'longestTurnMs').toFixed(2)} | ${m(runs, 'allPassivatedMs').toFixed(1)} |`);
  const turnRatio = m(inTurns, 'longestTurnMs') / m(atOnce, 'longestTurnMs');
  const totalRatio = m(inTurns, 'allPassivatedMs') / m(atOnce, 'allPassivatedMs');
  console.log(`longest turn: now / before = ${turnRatio.toFixed(3)}; time to passivate all: now / before = ${totalRatio.toFixed(2)}`);
  console.log(JSON.stringify({ bench: 'idle-sweep', actors: ACTORS, per_turn: IDLE_SWEEP_PER_TURN, longest_turn_ms_before: +m(atOnce, 'longestTurnMs').toFixed(2), longest_turn_ms_now: +m(inTurns, 'longestTurnMs').toFixed(2), all_passivated_ms_before: +m(atOnce, 'allPassivatedMs').toFixed(1), all_passivated_ms_now: +m(inTurns, 'allPassivatedMs').toFixed(1), ratio_longest_turn: +turnRatio.toFixed(3), ratio_all_passivated: +totalRatio.toFixed(2) }));
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
