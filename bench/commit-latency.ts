// `node --import tsx bench/commit-latency.ts`: the floor a durable answer stands on. A reservation is
// answered once the journal write holding it has committed (fsync'd) in MariaDB, and one that arrives
// while its SKU/date's write is in flight waits for that write and then its own: two commits. So the
// latency of one commit, on this machine, bounds issue 2's "p99 of a durable reservation ≤ 10 ms"
// from below — and the engine itself is not the only thing that moves it: MariaDB shares the
// machine's 2 cores with the engine's thread, its GC helpers, NATS and the load, and a commit waits
// for CPU as much as for the disk.
//
// This script measures that floor alone, with no engine: one connection appending the hot SKU/date's
// journal records through the engine's own JournalStore (one single-row INSERT of BENCH_EVENTS
// reservation events each, the size of a write of the hot actor at ~120,000 reservations/s), one
// after another as the group commit writes them. The baseline is the machine as it is (nothing else
// started); then the same with 1 and 2 other processes spinning (CPU-bound, no I/O: what the engine
// at full load is to MariaDB). The conditions alternate, BENCH_ROUNDS times; each prints the commit
// latency's p50/p99/p99.9/max and the share over 5 and 10 ms, and the median round's p99 against the
// baseline's. Figures only; nothing is asserted.
//
// Knobs (environment): BENCH_WRITES (3000 per condition and round), BENCH_EVENTS (120 events per
// write), BENCH_ROUNDS (3), BENCH_MYSQL_URL (mysql://root@127.0.0.1:3306).

import { spawn, type ChildProcess } from 'node:child_process';
import { loadavg } from 'node:os';
import { performance } from 'node:perf_hooks';
import { openSqlStores, type SqlStores } from '../persistence/sql/open.ts';
import { median, percentile } from './baselines.ts';
import { freshDatabase } from './database.ts';
import { cpuReferenceMs } from './machine.ts';

const WRITES = Number(process.env.BENCH_WRITES ?? 3_000);
const EVENTS = Number(process.env.BENCH_EVENTS ?? 120);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const MYSQL_URL = process.env.BENCH_MYSQL_URL ?? 'mysql://root@127.0.0.1:3306';
/** Other processes spinning while the commits run: the baseline (none), then one, then two. */
const SPINNERS = [0, 1, 2];
const STREAM = 'bench-commit/2026-01-01';

interface Round {
  spinners: number;
  per_s: number;
  p50_ms: number;
  p99_ms: number;
  p999_ms: number;
  max_ms: number;
  over_5ms: number;
  over_10ms: number;
}

/** Spinners alive, killed also if this process is stopped or fails mid-round. */
const spinning = new Set<ChildProcess>();
process.on('exit', () => {
  for (const child of spinning) child.kill('SIGKILL');
});
// Stopped by a signal: exit as its default action would (128 + its number), the spinners killed on exit.
process.once('SIGINT', () => process.exit(130));
process.once('SIGTERM', () => process.exit(143));

/** A process that keeps one core busy until killed (no I/O, no memory to speak of). */
function spinner(): ChildProcess {
  const child = spawn(process.execPath, ['-e', 'for (;;) {}'], { stdio: 'ignore' });
  spinning.add(child);
  child.once('exit', () => spinning.delete(child));
  return child;
}

async function stopped(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  await new Promise<void>((resolve) => {
    child.once('exit', () => resolve());
    child.kill('SIGKILL');
  });
}

let seq = 0;
let orderSeq = 0;

/** `EVENTS` reservations as the inventory actor encodes them in its journal (actors/inventory-codec.ts). */
function reservations(at: number): unknown[] {
  const events: unknown[] = [];
  for (let i = 0; i < EVENTS; i++) {
    const n = ++orderSeq;
    events.push(['r', `01JBENCH${String(n).padStart(18, '0')}`, `u${n % 100_000}`, 1, 1999, at, 900_000]);
  }
  return events;
}

/** The stream's next journal record (seqs contiguous from 1). */
function record(at: number): { stream: string; seq: number; lastSeq: number; at: number; events: unknown[] } {
  const events = reservations(at);
  const first = seq + 1;
  seq += EVENTS;
  return { stream: STREAM, seq: first, lastSeq: seq, at, events };
}

async function run(stores: SqlStores, spinners: number): Promise<Round> {
  const children = Array.from({ length: spinners }, spinner);
  try {
    // Let the spinners get going before the first commit is timed.
    await new Promise((resolve) => setTimeout(resolve, 200));
    const latencies: number[] = [];
    const started = performance.now();
    for (let w = 0; w < WRITES; w++) {
      const r = record(Date.now());
      const t0 = performance.now();
      await stores.journal.append([r]);
      latencies.push(performance.now() - t0);
    }
    const seconds = (performance.now() - started) / 1_000;
    latencies.sort((a, b) => a - b);
    return {
      spinners,
      per_s: WRITES / seconds,
      p50_ms: percentile(latencies, 50),
      p99_ms: percentile(latencies, 99),
      p999_ms: percentile(latencies, 99.9),
      max_ms: latencies[latencies.length - 1]!,
      over_5ms: latencies.filter((l) => l > 5).length / WRITES,
      over_10ms: latencies.filter((l) => l > 10).length / WRITES,
    };
  } finally {
    await Promise.all(children.map(stopped));
  }
}

function label(spinners: number): string {
  return spinners === 0 ? 'nothing else started  ' : `${spinners} process${spinners > 1 ? 'es' : ''} spinning${spinners > 1 ? '' : '  '}   `;
}

async function main(): Promise<void> {
  const url = await freshDatabase(MYSQL_URL, 'stampede_bench_commit');
  const stores = await openSqlStores({ mysqlUrl: url });
  try {
    const bytes = Buffer.byteLength(JSON.stringify(reservations(Date.now())));
    console.log(
      `bench:commit-latency — MariaDB, one connection, ${WRITES} journal writes per condition and round of ${EVENTS} reservation events (${bytes} B of JSON) one after another, ${ROUNDS} rounds alternating; load average ${loadavg()[0]!.toFixed(2)} on 2 cores; CPU reference ${Math.round(cpuReferenceMs())} ms (bench/machine.ts)`,
    );
    // Warm-up (the connection, the table's pages), not counted.
    await run(stores, 0);
    const rounds: Round[] = [];
    for (let r = 0; r < ROUNDS; r++) {
      for (const spinners of r % 2 === 0 ? SPINNERS : [...SPINNERS].reverse()) {
        const result = await run(stores, spinners);
        rounds.push(result);
        console.log(
          `  ${label(spinners)}${result.per_s.toFixed(0).padStart(6)} commits/s  p50 ${result.p50_ms.toFixed(2)}  p99 ${result.p99_ms.toFixed(2)}  p99.9 ${result.p999_ms.toFixed(2)}  max ${result.max_ms.toFixed(1)} ms  over 5 ms ${(100 * result.over_5ms).toFixed(2)}%  over 10 ms ${(100 * result.over_10ms).toFixed(2)}%`,
        );
      }
    }
    const summary: Record<string, number> = {};
    const baseP99 = median(rounds.filter((r) => r.spinners === 0).map((r) => r.p99_ms));
    for (const spinners of SPINNERS) {
      const of = rounds.filter((r) => r.spinners === spinners);
      const p50 = median(of.map((r) => r.p50_ms));
      const p99 = median(of.map((r) => r.p99_ms));
      const p999 = median(of.map((r) => r.p999_ms));
      const over10 = median(of.map((r) => r.over_10ms));
      console.log(
        `${label(spinners).trim()}, median of ${ROUNDS}: p50 ${p50.toFixed(2)} ms, p99 ${p99.toFixed(2)} ms, p99.9 ${p999.toFixed(2)} ms, over 10 ms ${(100 * over10).toFixed(2)}%; p99 against nothing else started ×${(p99 / baseP99).toFixed(2)}`,
      );
      Object.assign(summary, {
        [`spinning_${spinners}_p50_ms`]: Number(p50.toFixed(3)),
        [`spinning_${spinners}_p99_ms`]: Number(p99.toFixed(3)),
        [`spinning_${spinners}_p999_ms`]: Number(p999.toFixed(3)),
        [`spinning_${spinners}_over_10ms`]: Number(over10.toFixed(5)),
        [`ratio_p99_spinning_${spinners}`]: Number((p99 / baseP99).toFixed(3)),
      });
    }
    console.log(JSON.stringify({ bench: 'commit-latency', writes: WRITES, events: EVENTS, rounds: ROUNDS, ...summary }));
  } finally {
    await stores.close();
  }
}

main().catch((error) => {
  console.error(error);
  process.exitCode = 1;
});
