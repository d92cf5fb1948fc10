// `npm run bench:sim`: how fast the simulator drives the engine in process, and how long a large
// synthetic flash sale takes end to end, on the embedded default.
//
// (1) Replay rate. The same recorded flash sale (BENCH_SIM_REPLAY_BUYERS buyers, written by the
//     generator) is replayed at --speed max twice in this run: into a trivial handler that answers
//     every request 200 at once (the baseline: what the replayer and the transport cost alone), and
//     into a real engine started in process. Printed: requests/s of each, and the ratio.
// (2) A flash sale of BENCH_SIM_BUYERS buyers (default 100,000) end to end, as `stampede sim
//     flash-sale` runs it: generate, start the engine, send, settle (deliveries, expiries), judge.
//     Printed: the time of each phase, requests/s, and the verdict.
//
// Both run in this one process on a 2-core machine: the engine's thread is also the replayer's.
// `--write-docs` replaces the bench:sim section of docs/performance.md with the figures.
// Knobs: BENCH_SIM_REPLAY_BUYERS (20000), BENCH_SIM_BUYERS (100000), BENCH_SIM_CONCURRENCY (256),
// BENCH_SIM_STOCK (buyers / 10 per SKU/date).
import { loadavg } from 'node:os';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { FLASH_SALE_DEFAULTS, generateFlashSale } from '../sim/flash-sale/generator.ts';
import { Credentials } from '../sim/replay/credentials.ts';
import { replay } from '../sim/replay/replayer.ts';
import { InjectTransport } from '../sim/replay/transport.ts';
import { startInProcessEngine } from '../sim/run/in-process-engine.ts';
import { runSimulation } from '../sim/run/simulation.ts';
import { writeDocsSection } from './docs.ts';
import { cpuReferenceMs } from './machine.ts';

const REPLAY_BUYERS = Number(process.env.BENCH_SIM_REPLAY_BUYERS ?? 20_000);
const SALE_BUYERS = Number(process.env.BENCH_SIM_BUYERS ?? 100_000);
const CONCURRENCY = Number(process.env.BENCH_SIM_CONCURRENCY ?? 256);

function sale(buyers: number, seed: number) {
  const stock = Number(process.env.BENCH_SIM_STOCK ?? Math.max(100, Math.round(buyers / 10)));
  // Buyers arrive over a span that scales with their number, as a real sale's would.
  return generateFlashSale({ ...FLASH_SALE_DEFAULTS, seed, buyers, stock, duration_ms: Math.max(2_000, buyers / 10) });
}

const trivial = (_req: IncomingMessage, res: ServerResponse) => {
  res.setHeader('content-type', 'application/json');
  res.statusCode = 200;
  res.end('{"orderId":"o","status":"ok","skuId":"s","date":"open","qty":1,"amountCents":1,"expiresAt":"2030-01-01T00:00:00.000Z"}');
};

async function replayRate(): Promise<{ lines: number; baseline_rps: number; baseline_answers: number; engine_rps: number; engine_answers: number }> {
  const lines = sale(REPLAY_BUYERS, 1);
  const secrets = { adminToken: 'bench-admin-token-0123456789', userJwtSecret: 'bench-jwt-secret-0123456789abcdef0123456789', paymentSecret: 'bench-payment-secret-0123' };
  const base = await replay(lines, new InjectTransport(trivial), new Credentials(secrets), { speed: 'max', concurrency_max: CONCURRENCY });
  const baseline_rps = base.results.length / (base.finished_ms / 1000);
  const engine = await startInProcessEngine({ env: { STAMPEDE_RESERVATION_TTL_MS: '600000' } });
  try {
    const log = await replay(lines, engine.transport, new Credentials(engine.secrets), { speed: 'max', concurrency_max: CONCURRENCY });
    return { lines: lines.length, baseline_rps, baseline_answers: base.results.length, engine_rps: log.results.length / (log.finished_ms / 1000), engine_answers: log.results.length };
  } finally {
    await engine.stop();
  }
}

async function flashSale() {
  const t0 = performance.now();
  const lines = sale(SALE_BUYERS, 2);
  const generated_s = (performance.now() - t0) / 1000;
  const engine = await startInProcessEngine();
  const started_s = (performance.now() - t0) / 1000;
  let settling_at = 0;
  try {
    const outcome = await runSimulation({
      title: 'bench',
      lines,
      engine,
      speed: 'max',
      concurrency_max: CONCURRENCY,
      waitForExpiries: true,
      settle_timeout_ms: 120_000,
      options: {},
      onSettling: (what) => {
        if (settling_at === 0) settling_at = performance.now();
        console.log(`  ${what}`);
      },
    });
    const total_s = (performance.now() - t0) / 1000;
    return {
      lines: lines.length,
      requests: outcome.log.results.length,
      generated_s,
      started_s,
      sent_s: outcome.log.finished_ms / 1000,
      settled_and_judged_s: (performance.now() - settling_at) / 1000,
      total_s,
      rps: outcome.log.results.length / (outcome.log.finished_ms / 1000),
      passed: outcome.record.verdict?.passed === true,
      failed: outcome.record.verdict?.checks.filter((c) => !c.passed).map((c) => `${c.name}: ${c.detail}; ${c.violations.slice(0, 3).join('; ')}`) ?? [],
      skipped: outcome.log.skipped,
    };
  } finally {
    await engine.stop();
  }
}

async function main(): Promise<void> {
  const cpuReference = cpuReferenceMs();
  console.log(`bench:sim — load average ${loadavg().map((l) => l.toFixed(2)).join(' ')} on 2 cores, CPU reference ${cpuReference.toFixed(0)} ms (bench/machine.ts: ~620-700 on a quiet hour); concurrency ${CONCURRENCY}`);
  const r = await replayRate();
  console.log(`replay of a ${REPLAY_BUYERS}-buyer sale (${r.lines} lines) at --speed max:`);
  console.log(`  baseline (trivial handler): ${r.baseline_rps.toFixed(0)} requests/s`);
  console.log(`  in-process engine:          ${r.engine_rps.toFixed(0)} requests/s (${r.engine_answers} answered); engine / baseline ${(r.engine_rps / r.baseline_rps).toFixed(2)}`);
  const f = await flashSale();
  console.log(`flash sale of ${SALE_BUYERS} buyers (${f.lines} lines, ${f.requests} requests, ${f.skipped} skipped): generated ${f.generated_s.toFixed(1)} s, engine up at ${f.started_s.toFixed(1)} s, ` +
    `traffic sent in ${f.sent_s.toFixed(1)} s (${f.rps.toFixed(0)} requests/s), settled and judged in ${f.settled_and_judged_s.toFixed(1)} s; end to end ${f.total_s.toFixed(1)} s; verdict ${f.passed ? 'PASS' : `FAIL (${f.failed.join(', ')})`}`);
  const json = {
    bench: 'sim',
    cpu_reference_ms: Math.round(cpuReference),
    replay_buyers: REPLAY_BUYERS,
    replay_baseline_rps: Math.round(r.baseline_rps),
    replay_engine_rps: Math.round(r.engine_rps),
    ratio_engine_baseline: Number((r.engine_rps / r.baseline_rps).toFixed(3)),
    sale_buyers: SALE_BUYERS,
    sale_requests: f.requests,
    sale_sent_s: Number(f.sent_s.toFixed(1)),
    sale_total_s: Number(f.total_s.toFixed(1)),
    sale_rps: Math.round(f.rps),
    sale_verdict: f.passed ? 'PASS' : 'FAIL',
  };
  console.log(JSON.stringify(json));
  if (!process.argv.includes('--write-docs')) return;
  writeDocsSection('bench:sim', [
    `Measured ${new Date().toISOString().slice(0, 10)} on this 2-core machine (load average at start ${loadavg()[0]!.toFixed(2)}, CPU reference ${cpuReference.toFixed(0)} ms), embedded SQLite, concurrency ${CONCURRENCY}.`,
    '',
    '| run | requests | requests/s | notes |',
    '|---|---|---|---|',
    `| replay, trivial handler (baseline) | ${r.baseline_answers} | ${r.baseline_rps.toFixed(0)} | the replayer and the in-process transport alone |`,
    `| replay, in-process engine | ${r.engine_answers} | ${r.engine_rps.toFixed(0)} | engine / baseline ${(r.engine_rps / r.baseline_rps).toFixed(2)} (${(r.lines - r.engine_answers).toLocaleString('en')} lines skipped: they acted on orders refused as sold out) |`,
    `| flash sale, ${SALE_BUYERS.toLocaleString('en')} buyers | ${f.requests} | ${f.rps.toFixed(0)} | sent in ${f.sent_s.toFixed(1)} s; end to end ${f.total_s.toFixed(1)} s (settle and verdict ${f.settled_and_judged_s.toFixed(1)} s); verdict ${f.passed ? 'PASS' : 'FAIL'} |`,
    '',
    '```',
    JSON.stringify(json),
    '```',
  ]);
}

await main();
