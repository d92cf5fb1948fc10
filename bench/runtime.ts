// Messages per second through ActorRuntime.ask(): a closed loop (each reply immediately sends the next
// ask) with a fixed number of asks in flight, for 1 hot key and for 10,000 keys. And what a wide
// failure costs the deadline sweeper: 2,000 incarnations discarded (each failing the asks it holds)
// while 200,000 other asks are pending, against the same discards with none pending. Run:
//   node --import tsx bench/runtime.ts
import { ActorRuntime, type Behavior } from '../actors/runtime/index.ts';
import { DeadlineSweeper, type AskHolder } from '../actors/runtime/deadline-sweeper.ts';

type Msg = { n: number };

function counter(): Behavior<Msg> {
  let total = 0;
  return {
    receive(batch, ctx) {
      for (const env of batch) {
        total += env.msg.n;
        ctx.reply(env, total);
      }
    },
  };
}

async function run(label: string, keys: number, inFlight: number, ms: number): Promise<void> {
  const rt = new ActorRuntime({ shards: 16, mailboxMax: 100_000, idleMs: 60_000, askTimeoutMs: 10_000, nodeId: 'bench' });
  const kind = rt.define('counter', counter);
  const names = Array.from({ length: keys }, (_, i) => `sku-${i}/2025-01-01`);
  let done = 0;
  let failed = 0;
  let stopAt = 0;
  let measuring = false;
  // Warm up (activates every key), then measure.
  const loop = async (worker: number): Promise<void> => {
    let i = worker;
    while (performance.now() < stopAt) {
      try {
        await kind.ask<number>(names[i % keys]!, { n: 1 });
        if (measuring) done++;
      } catch {
        failed++;
      }
      i += inFlight;
    }
  };
  stopAt = performance.now() + 1000;
  await Promise.all(Array.from({ length: inFlight }, (_, w) => loop(w)));
  measuring = true;
  const t0 = performance.now();
  stopAt = t0 + ms;
  await Promise.all(Array.from({ length: inFlight }, (_, w) => loop(w)));
  const secs = (performance.now() - t0) / 1000;
  console.log(
    `${label.padEnd(28)} ${Math.round(done / secs).toLocaleString('en-US').padStart(12)} asks/s` +
      `  (${done.toLocaleString('en-US')} in ${secs.toFixed(2)} s, ${inFlight} in flight, ${rt.stats().actors} actors, ${failed} failed)`,
  );
  await rt.stop();
}

const ms = Number(process.env.BENCH_MS ?? 3000);
console.log(`node ${process.version}, ${ms} ms per case`);
await run('1 hot key', 1, 1_000, ms);
await run('10,000 keys', 10_000, 10_000, ms);

/** ms to fail the asks of `holders` incarnations (one each) while `others` asks of another one are pending. */
function discards(holders: number, others: number): number {
  const sweeper = new DeadlineSweeper(() => 0, 60_000);
  const noop = () => undefined;
  const busy: AskHolder = { heldAsks: 0, heldFirst: null };
  for (let i = 0; i < others; i++) sweeper.hold(sweeper.add('hot', 10_000, noop, noop), busy);
  const discarded: AskHolder[] = [];
  for (let i = 0; i < holders; i++) {
    const h: AskHolder = { heldAsks: 0, heldFirst: null };
    discarded.push(h);
    sweeper.hold(sweeper.add(`k${i}`, 10_000, noop, noop), h);
  }
  const t0 = performance.now();
  for (const h of discarded) for (const p of sweeper.heldBy(h)) sweeper.reject(p, new Error('discarded'));
  const elapsed = performance.now() - t0;
  sweeper.close();
  return elapsed;
}
const alone = discards(2_000, 0);
const crowded = discards(2_000, 200_000);
console.log(`2,000 discards, nothing else pending: ${alone.toFixed(1)} ms; with 200,000 asks pending: ${crowded.toFixed(1)} ms (×${(crowded / alone).toFixed(1)})`);
