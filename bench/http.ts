// `npm run bench:http`: what a reservation costs over HTTP, measured against the cheapest thing the
// same server can answer. One Stampede node (in this process, on an ephemeral port) is loaded at
// 1,000 connections by autocannon, first on `GET /healthz` (trivial, no auth) and then on
// `POST /v1/orders` (buyer JWT verified, body parsed and validated, inventory actor, durable group
// commit before the 201), for the same duration. The ratio trivial rps / reservation rps is the
// relative cost of a reservation (target: at most 1.5). Two rows: the embedded default (SQLite in a
// temp dir) and MariaDB (fresh database `stampede_bench_http`, no Redis).
//
// Every reservation carries a different buyer: BENCH_BUYERS JWTs are minted up front and rotated
// per request by autocannon's `setupRequest`. Stock is 10,000,000 so that all of them reserve.
// Non-2xx answers, connection errors and timeouts are counted and printed; the script ends with one
// JSON line of the figures. With --write-docs it also updates docs/performance.md.
//
// Where the load generator runs: in a child process (this same file, forked with --load-child).
// Measured both ways on this 2-core machine (2026-11-22, 10 s runs, 1,000 connections):
//   child  (BENCH_LOAD=child):  trivial 18-28k/s, reserve 4.2-6.3k/s, 0 errors (4 runs); server ~100%
//                               of a core, autocannon 50-70% (trivial) / 20-30% (reserve) of the other.
//   inline (BENCH_LOAD=inline): trivial 11-15k/s, reserve 3.1-5.0k/s, 130-330 timeouts per run and
//                               p99 2.5-4.3 s: server and autocannon share one event loop, so each
//                               request also pays autocannon's work and some connections starve.
// The child gives the server a core of its own, as real clients would, and its figures are the
// server's; inline mostly measures the event loop being shared. `loader` in the output is the load
// generator's CPU in % of one core: well under 100% means the server, not autocannon, is the limit.
//
// Knobs (environment): BENCH_CONNECTIONS (1000), BENCH_DURATION_S (10), BENCH_WARMUP_S (2),
// BENCH_BUYERS (10000), BENCH_MYSQL_URL (mysql://root@127.0.0.1:3306), BENCH_LOAD (child | inline).
//
// `npm run bench:http -- --record`: instead of the rows above, the cost of recording traffic
// (STAMPEDE_RECORD, sim/recording/): the same reservation load on the embedded default, once on a
// node without recording and once on a fresh node recording to a temp file, each after its own
// warm-up. Prints reservations/s and p99 of both and the ratios (recorded / plain), then one JSON
// line. The two runs are sequential on a shared machine: compare ratios over several runs.

import { fork, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';
import { signBuyerToken } from '../http/signing.ts';
import { SECRETS, startEngine, type Backend, type TestEngine } from '../test/support/engine.ts';
import { freshDatabase } from './database.ts';
import { writeDocsSection } from './docs.ts';

const env = process.env;
const CONNECTIONS = Number(env.BENCH_CONNECTIONS ?? 1_000);
const DURATION_S = Number(env.BENCH_DURATION_S ?? 10);
const WARMUP_S = Number(env.BENCH_WARMUP_S ?? 2);
const BUYERS = Number(env.BENCH_BUYERS ?? 10_000);
const MYSQL = env.BENCH_MYSQL_URL ?? 'mysql://root@127.0.0.1:3306';
const LOAD_MODE: 'child' | 'inline' = env.BENCH_LOAD === 'inline' ? 'inline' : 'child';
const STOCK = 10_000_000;
const SKU = 'bench-http';
const DATE = '2026-01-01';
const ORDER_BODY = JSON.stringify({ skuId: SKU, date: DATE, qty: 1 });

// ---- the load generator (runs in the child, or inline) ------------------------------------------

interface LoadJob {
  url: string;
  route: 'trivial' | 'reserve';
  connections: number;
  duration_s: number;
}

interface LoadResult {
  ok2xx: number;
  non2xx: number;
  errors: number;
  timeouts: number;
  statusCodes: Record<string, number>;
  duration_s: number;
  /** 2xx answers per second over the whole run. */
  rps: number;
  p50_ms: number;
  p99_ms: number;
  /** CPU time of the load generator's process during the run, in % of one core. */
  loader_cpu_pct: number;
}

async function runLoad(job: LoadJob, tokens: readonly string[]): Promise<LoadResult> {
  let next = 0;
  const request: autocannon.Request =
    job.route === 'trivial'
      ? { method: 'GET', path: '/healthz' }
      : {
          method: 'POST',
          path: '/v1/orders',
          headers: { 'content-type': 'application/json' },
          body: ORDER_BODY,
          // A different buyer on every request (the tokens are reused only after BUYERS requests).
          setupRequest: (req) => {
            req.headers = { ...req.headers, authorization: `Bearer ${tokens[next++ % tokens.length]}` };
            return req;
          },
        };
  const cpu = process.cpuUsage();
  const r = await autocannon({ url: job.url, connections: job.connections, duration: job.duration_s, requests: [request] });
  const used = process.cpuUsage(cpu);
  const statusCodes: Record<string, number> = {};
  for (const [code, s] of Object.entries(r.statusCodeStats ?? {})) statusCodes[code] = s.count ?? 0;
  return {
    ok2xx: r['2xx'],
    non2xx: r.non2xx,
    errors: r.errors,
    timeouts: r.timeouts,
    statusCodes,
    duration_s: r.duration,
    rps: r['2xx'] / r.duration,
    p50_ms: r.latency.p50,
    p99_ms: r.latency.p99,
    loader_cpu_pct: ((used.user + used.system) / 1e3 / (r.duration * 1e3)) * 100,
  };
}

interface Loader {
  run(job: LoadJob): Promise<LoadResult>;
  close(): void;
}

type ToChild = { type: 'tokens'; tokens: string[] } | { type: 'job'; job: LoadJob };

/** The child side: receives the tokens once, then runs one job per message and sends its result. */
function serveAsLoadChild(): void {
  let tokens: string[] = [];
  process.on('message', (m: ToChild) => {
    if (m.type === 'tokens') tokens = m.tokens;
    else
      runLoad(m.job, tokens).then(
        (result) => process.send!({ ok: true, result }),
        (error: unknown) => process.send!({ ok: false, error: String(error) }),
      );
  });
  // The parent going away (or closing the channel) ends the child.
  process.on('disconnect', () => process.exit(0));
}

function childLoader(tokens: string[]): Loader {
  // Same file, same loader hooks (`--import tsx` is inherited through process.execArgv).
  const child: ChildProcess = fork(fileURLToPath(import.meta.url), ['--load-child'], { stdio: 'inherit' });
  child.send({ type: 'tokens', tokens } satisfies ToChild);
  return {
    run: (job) =>
      new Promise((resolve, reject) => {
        const onExit = (code: number | null) => reject(new Error(`load child exited (${code})`));
        child.once('exit', onExit);
        child.once('message', (m: { ok: true; result: LoadResult } | { ok: false; error: string }) => {
          child.off('exit', onExit);
          if (m.ok) resolve(m.result);
          else reject(new Error(m.error));
        });
        child.send({ type: 'job', job } satisfies ToChild);
      }),
    close: () => {
      if (child.connected) child.disconnect();
    },
  };
}

function inlineLoader(tokens: string[]): Loader {
  return { run: (job) => runLoad(job, tokens), close: () => {} };
}

// ---- the server side ----------------------------------------------------------------------------

interface Row {
  backend: 'sqlite' | 'mysql';
  trivial: LoadResult;
  reserve: LoadResult;
  /** CPU time of the server's process during each run, in % of one core. */
  server_cpu_pct: { trivial: number; reserve: number };
  ratio: number;
  /** The actor's count of reserved units after the run (should equal the 201s, warm-up included). */
  actor_reserved: number;
  /** 201s the server sent (counted by its metrics), including those whose client had already left. */
  server_201: number;
  warmup_reserved: number;
}

/** The server's answers by status once its count has stopped moving (polled, at most 10 s). */
async function settledServerAnswers(engine: TestEngine): Promise<Record<string, number>> {
  const read = async () => {
    const byStatus: Record<string, number> = {};
    for (const v of (await engine.node.metrics.httpRequests.get()).values) {
      const status = String(v.labels.status);
      byStatus[status] = (byStatus[status] ?? 0) + v.value;
    }
    return byStatus;
  };
  const total = (m: Record<string, number>) => Object.values(m).reduce((a, b) => a + b, 0);
  let last = await read();
  for (let stable = 0, i = 0; stable < 3 && i < 50; i++) {
    await new Promise((r) => setTimeout(r, 200));
    const now = await read();
    stable = total(now) === total(last) ? stable + 1 : 0;
    last = now;
  }
  return last;
}


async function measured(job: LoadJob, loader: Loader): Promise<{ result: LoadResult; server_cpu_pct: number }> {
  const cpu = process.cpuUsage();
  const t = performance.now();
  const result = await loader.run(job);
  const used = process.cpuUsage(cpu);
  return { result, server_cpu_pct: ((used.user + used.system) / 1e3 / (performance.now() - t)) * 100 };
}

async function benchBackend(backend: Backend, label: Row['backend'], loader: Loader): Promise<Row> {
  let engine: TestEngine | undefined;
  try {
    engine = await startEngine(backend);
    const { client, url } = engine;
    const put = await client.admin('PUT', `/v1/skus/${SKU}`, { name: SKU, priceCents: 1999, merchantId: 'm1', delivery: 'ticket' });
    if (put.status !== 200) throw new Error(`sku: ${put.status} ${JSON.stringify(put.body)}`);
    const stock = await client.admin('PUT', `/v1/skus/${SKU}/stock/${DATE}`, { total: STOCK });
    if (stock.status !== 200) throw new Error(`stock: ${stock.status} ${JSON.stringify(stock.body)}`);
    // Warm-up: JIT, connection setup paths, the actor and the first journal writes. Not measured.
    await loader.run({ url, route: 'trivial', connections: CONNECTIONS, duration_s: WARMUP_S });
    const warm = await loader.run({ url, route: 'reserve', connections: CONNECTIONS, duration_s: WARMUP_S });
    const trivial = await measured({ url, route: 'trivial', connections: CONNECTIONS, duration_s: DURATION_S }, loader);
    const reserve = await measured({ url, route: 'reserve', connections: CONNECTIONS, duration_s: DURATION_S }, loader);
    // autocannon stops with up to one request per connection still in the server; let those finish
    // (their clients are gone) before reading the actor and stopping the node, or stop() would
    // cut them short with ShuttingDownError.
    const answered = await settledServerAnswers(engine);
    const inv = await engine.node.orders.inspect(SKU, DATE);
    return {
      backend: label,
      trivial: trivial.result,
      reserve: reserve.result,
      server_cpu_pct: { trivial: trivial.server_cpu_pct, reserve: reserve.server_cpu_pct },
      ratio: trivial.result.rps / reserve.result.rps,
      actor_reserved: inv.ok ? inv.value.reserved + inv.value.sold : -1,
      server_201: answered['201'] ?? 0,
      warmup_reserved: warm.ok2xx,
    };
  } finally {
    await engine?.stop();
  }
}

function describe(name: string, r: LoadResult, serverCpu: number): string {
  const codes = Object.entries(r.statusCodes).map(([c, n]) => `${c}:${n}`).join(' ');
  return (
    `  ${name.padEnd(8)} ${r.rps.toFixed(0).padStart(7)} 2xx/s  p50 ${r.p50_ms.toFixed(0).padStart(5)} ms  p99 ${r.p99_ms.toFixed(0).padStart(5)} ms` +
    `  2xx ${r.ok2xx}  non-2xx ${r.non2xx}  errors ${r.errors} (timeouts ${r.timeouts})  [${codes}]` +
    `  cpu: server ${serverCpu.toFixed(0)}%, loader ${r.loader_cpu_pct.toFixed(0)}%`
  );
}

async function main(): Promise<void> {
  const started = performance.now();
  console.log(`bench:http — ${CONNECTIONS} connections, ${DURATION_S} s per run (+${WARMUP_S} s warm-up per route), ${BUYERS} buyers, stock ${STOCK}, load generator: ${LOAD_MODE}`);
  const now = Date.now();
  const tokens = await Promise.all(
    Array.from({ length: BUYERS }, (_, i) => signBuyerToken(SECRETS.STAMPEDE_USER_JWT_SECRET, `buyer-${i}`, { expiresIn_s: 3600, now })),
  );
  const loader = LOAD_MODE === 'child' ? childLoader(tokens) : inlineLoader(tokens);
  const dir = mkdtempSync(join(tmpdir(), 'stampede-bench-http-'));
  const rows: Row[] = [];
  try {
    rows.push(await benchBackend({ kind: 'sqlite', dir }, 'sqlite', loader));
    rows.push(await benchBackend({ kind: 'mysql', url: await freshDatabase(MYSQL, 'stampede_bench_http') }, 'mysql', loader));
  } finally {
    loader.close();
    rmSync(dir, { recursive: true, force: true });
  }

  for (const row of rows) {
    console.log(`${row.backend}: ratio trivial/reserve = ${row.ratio.toFixed(2)}`);
    console.log(describe('trivial', row.trivial, row.server_cpu_pct.trivial));
    console.log(describe('reserve', row.reserve, row.server_cpu_pct.reserve));
    const seen = row.reserve.statusCodes['201'] ?? 0;
    console.log(
      `  actor reserved ${row.actor_reserved}, server sent ${row.server_201} 201s; autocannon received ${row.warmup_reserved} (warm-up) + ${seen} (measured), ` +
        `the rest were in flight when a run stopped`,
    );
  }
  const [s, m] = rows as [Row, Row];
  const figures = {
    bench: 'http',
    connections: CONNECTIONS,
    sqlite_reserve_rps: Math.round(s.reserve.rps),
    sqlite_reserve_p99_ms: s.reserve.p99_ms,
    sqlite_trivial_rps: Math.round(s.trivial.rps),
    sqlite_ratio: +s.ratio.toFixed(2),
    mysql_reserve_rps: Math.round(m.reserve.rps),
    mysql_reserve_p99_ms: m.reserve.p99_ms,
    mysql_trivial_rps: Math.round(m.trivial.rps),
    mysql_ratio: +m.ratio.toFixed(2),
  };
  console.log(`total ${((performance.now() - started) / 1000).toFixed(0)} s`);
  if (process.argv.includes('--write-docs')) {
    const cell = (r: LoadResult) => `${r.rps.toFixed(0)} | ${r.p50_ms} | ${r.p99_ms} | ${r.non2xx} | ${r.errors}`;
    writeDocsSection('bench:http', [
      `Measured ${new Date().toISOString().slice(0, 10)} on this 2-core machine: ${CONNECTIONS} connections, ${DURATION_S} s per run after a ${WARMUP_S} s warm-up, ` +
        `${BUYERS} buyers (one JWT per request, rotated), stock ${STOCK}; autocannon in ${LOAD_MODE === 'child' ? 'a child process (its own core)' : 'the server process'}.`,
      '',
      '| backend | route | 2xx/s | p50 ms | p99 ms | non-2xx | errors |',
      '|---|---|---|---|---|---|---|',
      ...rows.flatMap((r) => [`| ${r.backend} | GET /healthz | ${cell(r.trivial)} |`, `| ${r.backend} | POST /v1/orders | ${cell(r.reserve)} |`]),
      '',
      `Cost of a reservation relative to the trivial route (trivial rps / reservation rps; target ≤ 1.5): SQLite ${figures.sqlite_ratio}, MariaDB ${figures.mysql_ratio}.`,
      '',
      '```json',
      JSON.stringify(figures),
      '```',
    ]);
  }
  console.log(JSON.stringify(figures));
}

// ---- the cost of recording (--record) ------------------------------------------------------------

interface ReserveRun {
  reserve: LoadResult;
  server_cpu_pct: number;
  /** With recording: lines in the file, its size, and lines lost (buffer full or write failed). */
  recorded_lines?: number;
  recording_bytes?: number;
  dropped_lines?: number;
}

/** One fresh node on the embedded default, warmed up, then the measured reservation load. */
async function reserveRun(dir: string, loader: Loader, recordFile?: string): Promise<ReserveRun> {
  let engine: TestEngine | undefined;
  try {
    engine = await startEngine({ kind: 'sqlite', dir }, recordFile ? { STAMPEDE_RECORD: recordFile } : {});
    const { client, url } = engine;
    const put = await client.admin('PUT', `/v1/skus/${SKU}`, { name: SKU, priceCents: 1999, merchantId: 'm1', delivery: 'ticket' });
    if (put.status !== 200) throw new Error(`sku: ${put.status} ${JSON.stringify(put.body)}`);
    const stock = await client.admin('PUT', `/v1/skus/${SKU}/stock/${DATE}`, { total: STOCK });
    if (stock.status !== 200) throw new Error(`stock: ${stock.status} ${JSON.stringify(stock.body)}`);
    await loader.run({ url, route: 'reserve', connections: CONNECTIONS, duration_s: WARMUP_S });
    const { result, server_cpu_pct } = await measured({ url, route: 'reserve', connections: CONNECTIONS, duration_s: DURATION_S }, loader);
    await settledServerAnswers(engine);
    const node = engine.node;
    await engine.stop();
    engine = undefined;
    if (!recordFile) return { reserve: result, server_cpu_pct };
    const sum = async (c: { get(): Promise<{ values: { value: number }[] }> }) => (await c.get()).values.reduce((n, v) => n + v.value, 0);
    return {
      reserve: result,
      server_cpu_pct,
      recorded_lines: await sum(node.metrics.recordLines),
      recording_bytes: statSync(recordFile).size,
      dropped_lines: await sum(node.metrics.recordDropped),
    };
  } finally {
    await engine?.stop();
  }
}

async function mainRecord(): Promise<void> {
  console.log(`bench:http --record — ${CONNECTIONS} connections, ${DURATION_S} s per run (+${WARMUP_S} s warm-up), ${BUYERS} buyers, embedded SQLite, load generator: ${LOAD_MODE}`);
  const now = Date.now();
  const tokens = await Promise.all(
    Array.from({ length: BUYERS }, (_, i) => signBuyerToken(SECRETS.STAMPEDE_USER_JWT_SECRET, `buyer-${i}`, { expiresIn_s: 3600, now })),
  );
  const loader = LOAD_MODE === 'child' ? childLoader(tokens) : inlineLoader(tokens);
  const dir = mkdtempSync(join(tmpdir(), 'stampede-bench-record-'));
  let plain: ReserveRun;
  let recorded: ReserveRun;
  try {
    plain = await reserveRun(join(dir, 'plain'), loader);
    recorded = await reserveRun(join(dir, 'recorded'), loader, join(dir, 'traffic.jsonl'));
  } finally {
    loader.close();
    rmSync(dir, { recursive: true, force: true });
  }
  const rpsRatio = recorded.reserve.rps / plain.reserve.rps;
  const p99Ratio = recorded.reserve.p99_ms / plain.reserve.p99_ms;
  console.log(describe('plain', plain.reserve, plain.server_cpu_pct));
  console.log(describe('recorded', recorded.reserve, recorded.server_cpu_pct));
  console.log(
    `  recording: ${recorded.recorded_lines} lines, ${((recorded.recording_bytes ?? 0) / 1024 / 1024).toFixed(1)} MiB, ${recorded.dropped_lines} dropped; ` +
      `recorded/plain: reservations/s ×${rpsRatio.toFixed(2)}, p99 ×${p99Ratio.toFixed(2)}`,
  );
  console.log(
    JSON.stringify({
      bench: 'http-record',
      connections: CONNECTIONS,
      duration_s: DURATION_S,
      plain_reserve_rps: Math.round(plain.reserve.rps),
      plain_reserve_p99_ms: plain.reserve.p99_ms,
      recorded_reserve_rps: Math.round(recorded.reserve.rps),
      recorded_reserve_p99_ms: recorded.reserve.p99_ms,
      rps_ratio: +rpsRatio.toFixed(2),
      p99_ratio: +p99Ratio.toFixed(2),
      recorded_lines: recorded.recorded_lines,
      recording_bytes: recorded.recording_bytes,
      dropped_lines: recorded.dropped_lines,
    }),
  );
}

if (process.argv.includes('--load-child')) {
  serveAsLoadChild();
} else if (import.meta.url === `file://${process.argv[1]}` && process.argv.includes('--record')) {
  mainRecord().catch((error: unknown) => {
    console.error(error);
    process.exit(1);
  });
} else if (import.meta.url === `file://${process.argv[1]}`) {
  main().catch((error: unknown) => {
    console.error(error);
    process.exit(1);
  });
}
