// `npm run bench:http`: what a reservation costs over HTTP, measured against the cheapest thing the
// same server can answer. One Stampede node (in this process, on an ephemeral port) is loaded at
// 1,000 keep-alive connections (closed loop, opened before the first run; see `runLoad`), on
// `GET /healthz` (trivial, no auth) and on `POST /v1/orders` (buyer JWT verified, body parsed and
// validated, inventory actor, durable group commit before the 201), the two alternating for the same
// duration BENCH_ROUNDS times. The ratio trivial rps / reservation rps is the relative cost of a
// reservation (target: at most 1.5); the round with the median ratio is reported, every round's
// ratio printed. Two rows: the embedded default (SQLite in a temp dir) and MariaDB (fresh database
// `stampede_bench_http`, no Redis).
//
// Every reservation carries a different buyer: BENCH_BUYERS JWTs are minted up front and rotated
// per request. Stock is 10,000,000 so that all of them reserve.
// Non-2xx answers, connection errors and timeouts are counted and printed; the script ends with one
// JSON line of the figures. With --write-docs it also updates docs/performance.md.
//
// Where the load generator runs: in a child process (this same file, forked with --load-child), so
// the server has a core of its own, as with real clients (BENCH_LOAD=inline shares the server's
// event loop and mostly measures that sharing). `loader` in the output is the load generator's CPU
// in % of one core: well under 100% means the server, not the load generator, is the limit.
// Until 2026-12-04 the load generator was autocannon, which opens its connections anew for every
// run; see `runLoad` for why that understated the trivial route, and docs/performance.md
// ("Session 9") for the figures before and after.
//
// Knobs (environment): BENCH_CONNECTIONS (1000), BENCH_DURATION_S (10), BENCH_WARMUP_S (2), BENCH_ROUNDS (3),
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
import { connect, type Socket } from 'node:net';
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
/** Alternating measured runs of the two routes per backend; the median round is reported. */
const ROUNDS = Number(env.BENCH_ROUNDS ?? 3);
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

/**
 * The load generator: CONNECTIONS keep-alive sockets opened (each answered once) before the first
 * measured request and kept across runs, each a closed loop of one request at a time, HTTP/1.1
 * written and read by hand (every answer of the server has a Content-Length).
 *
 * Why not autocannon, which this bench used first: it opens its connections anew for every run, and
 * Node's server accepts ONE new connection per event-loop turn (libuv >= 1.45, "don't accept() in a
 * loop"); a server busy at 100% of its core turns slowly, so a run's connections trickled in (with a
 * bare node:http server spending 60 µs per request: 678 connections still in the accept queue after
 * 4 s, 100-300 first requests timing out per 10 s run). The trivial route, which keeps the server
 * busiest, lost up to half its connections to that ramp and came out 20-40% low — the ratio's
 * baseline. And not undici's Pool: at ~60 µs of CPU per request it was the bottleneck of the trivial
 * route (97% of its core, the server at 66%). Steady state is what the ratio is about.
 */
interface Conn {
  socket: Socket;
  pending: Buffer | undefined;
  sentAt: number;
  onAnswer: ((status: number) => void) | undefined;
}

let conns: { url: string; list: Conn[] } | undefined;

function openConn(host: string, port: number): Promise<Conn> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host, port, noDelay: true });
    const c: Conn = { socket, pending: undefined, sentAt: 0, onAnswer: undefined };
    socket.on('data', (chunk: Buffer) => onData(c, chunk));
    socket.on('error', () => {});
    socket.on('close', () => {
      const answer = c.onAnswer;
      c.onAnswer = undefined;
      answer?.(-1);
    });
    socket.once('connect', () => {
      // Answered once: the server has accepted it (a connect alone only means the kernel queued it).
      send(c, TRIVIAL_REQUEST, (status) => (status === 200 ? resolve(c) : reject(new Error(`warm-up answer ${status}`))));
    });
    socket.once('error', reject);
  });
}

function send(c: Conn, request: string | Buffer, onAnswer: (status: number) => void): void {
  c.onAnswer = onAnswer;
  c.sentAt = performance.now();
  c.socket.write(request);
}

/** Takes every whole answer out of what the socket delivered; -1 for an answer it cannot read. */
function onData(c: Conn, chunk: Buffer): void {
  let buf = c.pending === undefined ? chunk : Buffer.concat([c.pending, chunk]);
  for (;;) {
    const headEnd = buf.indexOf('\r\n\r\n');
    if (headEnd < 0) break;
    const head = buf.toString('latin1', 0, headEnd);
    const length = /\r\ncontent-length: *(\d+)/i.exec(head);
    if (!length) {
      c.socket.destroy();
      return;
    }
    const total = headEnd + 4 + Number(length[1]);
    if (buf.length < total) break;
    const status = Number(head.slice(9, 12));
    buf = buf.subarray(total);
    const answer = c.onAnswer;
    c.onAnswer = undefined;
    answer?.(status);
  }
  c.pending = buf.length === 0 ? undefined : buf;
}

const TRIVIAL_REQUEST = Buffer.from('GET /healthz HTTP/1.1\r\nHost: bench\r\n\r\n', 'latin1');
const TIMEOUT_MS = 10_000;

async function openConns(url: string, connections: number): Promise<Conn[]> {
  if (conns?.url === url && conns.list.length === connections) return conns.list;
  for (const c of conns?.list ?? []) c.socket.destroy();
  const { hostname, port } = new URL(url);
  const list: Conn[] = [];
  // A few hundred at a time: the server accepts one per event-loop turn, idle turns are short.
  for (let i = 0; i < connections; i += 250) {
    list.push(...(await Promise.all(Array.from({ length: Math.min(250, connections - i) }, () => openConn(hostname, Number(port))))));
  }
  conns = { url, list };
  return list;
}

/** A closed loop: every connection sends its next request when its last one is answered. */
async function runLoad(job: LoadJob, tokens: readonly string[]): Promise<LoadResult> {
  const list = await openConns(job.url, job.connections);
  let next = 0;
  const reserveHead = `POST /v1/orders HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(ORDER_BODY)}\r\nAuthorization: Bearer `;
  // A different buyer on every request (the tokens are reused only after BUYERS requests).
  const request = (): string | Buffer => (job.route === 'trivial' ? TRIVIAL_REQUEST : `${reserveHead}${tokens[next++ % tokens.length]}\r\n\r\n${ORDER_BODY}`);
  const latencies = new Float64Array(4_000_000);
  let answered = 0;
  let ok2xx = 0;
  let non2xx = 0;
  let errors = 0;
  let timeouts = 0;
  const statusCodes: Record<string, number> = {};
  const cpu = process.cpuUsage();
  const started = performance.now();
  const deadline = started + job.duration_s * 1000;
  const sweep = setInterval(() => {
    const now = performance.now();
    for (const c of list) {
      if (c.onAnswer !== undefined && now - c.sentAt > TIMEOUT_MS) {
        timeouts++;
        c.socket.destroy(); // its loop ends with an error; the connection is opened again next run
      }
    }
  }, 1000);
  await Promise.all(
    list.map(
      (c) =>
        new Promise<void>((resolve) => {
          const loop = (status: number): void => {
            const done = performance.now();
            if (done > deadline) return resolve(); // answered after the run: not counted
            if (status < 0) {
              errors++;
              return resolve();
            }
            statusCodes[status] = (statusCodes[status] ?? 0) + 1;
            if (status >= 200 && status < 300) ok2xx++;
            else non2xx++;
            if (answered < latencies.length) latencies[answered++] = done - c.sentAt;
            send(c, request(), loop);
          };
          if (c.socket.destroyed) {
            errors++;
            return resolve();
          }
          send(c, request(), (status) => {
            // The first answer of the run counts like any other.
            loop(status);
          });
        }),
    ),
  );
  clearInterval(sweep);
  if (list.some((c) => c.socket.destroyed)) conns = undefined;
  const duration_s = job.duration_s;
  const used = process.cpuUsage(cpu);
  const sorted = latencies.subarray(0, answered).sort();
  const at = (q: number) => (answered === 0 ? 0 : +sorted[Math.min(answered - 1, Math.floor((q / 100) * answered))]!.toFixed(1));
  return {
    ok2xx,
    non2xx,
    errors,
    timeouts,
    statusCodes,
    duration_s,
    rps: ok2xx / duration_s,
    p50_ms: at(50),
    p99_ms: at(99),
    loader_cpu_pct: ((used.user + used.system) / 1e3 / (performance.now() - started)) * 100,
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
  /** Trivial rps / reservation rps of the reported round (the median of `ratios`). */
  ratio: number;
  /** The ratio of every round, in the order they ran. */
  ratios: number[];
  /** 201s the load generator counted in all measured rounds. */
  measured_reserved: number;
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


interface Measured {
  result: LoadResult;
  server_cpu_pct: number;
}

async function measured(job: LoadJob, loader: Loader): Promise<Measured> {
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
    // The two routes alternate ROUNDS times and the round with the median ratio is reported: on a
    // shared 2-core machine single runs of the trivial route moved by ±30% (docs/performance.md,
    // "Session 9"), more than the difference the ratio is about.
    const rounds: { trivial: Measured; reserve: Measured; ratio: number }[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      const t = await measured({ url, route: 'trivial', connections: CONNECTIONS, duration_s: DURATION_S }, loader);
      const r = await measured({ url, route: 'reserve', connections: CONNECTIONS, duration_s: DURATION_S }, loader);
      rounds.push({ trivial: t, reserve: r, ratio: t.result.rps / r.result.rps });
    }
    const { trivial, reserve, ratio } = [...rounds].sort((a, b) => a.ratio - b.ratio)[Math.floor((rounds.length - 1) / 2)]!;
    // A run ends once every connection's last request is answered; the server's count of answers
    // is read once it stops moving, before reading the actor and stopping the node.
    const answered = await settledServerAnswers(engine);
    const inv = await engine.node.orders.inspect(SKU, DATE);
    return {
      backend: label,
      trivial: trivial.result,
      reserve: reserve.result,
      server_cpu_pct: { trivial: trivial.server_cpu_pct, reserve: reserve.server_cpu_pct },
      ratio,
      ratios: rounds.map((r) => r.ratio),
      actor_reserved: inv.ok ? inv.value.reserved + inv.value.sold : -1,
      server_201: answered['201'] ?? 0,
      warmup_reserved: warm.ok2xx,
      measured_reserved: rounds.reduce((n, r) => n + (r.reserve.result.statusCodes['201'] ?? 0), 0),
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
    console.log(`${row.backend}: ratio trivial/reserve = ${row.ratio.toFixed(2)} (median of ${row.ratios.length} rounds: ${row.ratios.map((r) => r.toFixed(2)).join(', ')}; the median round below)`);
    console.log(describe('trivial', row.trivial, row.server_cpu_pct.trivial));
    console.log(describe('reserve', row.reserve, row.server_cpu_pct.reserve));
    console.log(
      `  actor reserved ${row.actor_reserved}, server sent ${row.server_201} 201s; the load generator counted ${row.warmup_reserved} (warm-up) + ${row.measured_reserved} (measured), ` +
        `the rest were answered after a run's end`,
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
    sqlite_ratios: s.ratios.map((r) => +r.toFixed(2)),
    mysql_reserve_rps: Math.round(m.reserve.rps),
    mysql_reserve_p99_ms: m.reserve.p99_ms,
    mysql_trivial_rps: Math.round(m.trivial.rps),
    mysql_ratio: +m.ratio.toFixed(2),
    mysql_ratios: m.ratios.map((r) => +r.toFixed(2)),
    rounds: ROUNDS,
  };
  console.log(`total ${((performance.now() - started) / 1000).toFixed(0)} s`);
  if (process.argv.includes('--write-docs')) {
    const cell = (r: LoadResult) => `${r.rps.toFixed(0)} | ${r.p50_ms} | ${r.p99_ms} | ${r.non2xx} | ${r.errors}`;
    writeDocsSection('bench:http', [
      `Measured ${new Date().toISOString().slice(0, 10)} on this 2-core machine: ${CONNECTIONS} connections, ${DURATION_S} s per run after a ${WARMUP_S} s warm-up, ` +
        `the two routes alternating ${ROUNDS} times per backend (the round with the median ratio is shown), ` +
        `${BUYERS} buyers (one JWT per request, rotated), stock ${STOCK}; the load generator (${CONNECTIONS} keep-alive connections opened before the first run, closed loop) in ${LOAD_MODE === 'child' ? 'a child process (its own core)' : 'the server process'}.`,
      '',
      '| backend | route | 2xx/s | p50 ms | p99 ms | non-2xx | errors |',
      '|---|---|---|---|---|---|---|',
      ...rows.flatMap((r) => [`| ${r.backend} | GET /healthz | ${cell(r.trivial)} |`, `| ${r.backend} | POST /v1/orders | ${cell(r.reserve)} |`]),
      '',
      `Cost of a reservation relative to the trivial route (trivial rps / reservation rps; target ≤ 1.5), median of ${ROUNDS} rounds: SQLite ${figures.sqlite_ratio} (${figures.sqlite_ratios.join(', ')}), MariaDB ${figures.mysql_ratio} (${figures.mysql_ratios.join(', ')}).`,
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
