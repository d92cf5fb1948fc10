// `npm run bench:payments`: from a payment callback to the order's delivery, under the payment wave
// of a flash sale, next to the classic card-shop design, in one process and one run. Issue target:
// payment → delivered p99 ≤ 50 ms on MariaDB + NATS at 2,000 paid orders/s, with zero orders
// delivered twice, zero keys given twice and zero paid orders left undelivered. Figures are printed,
// never asserted; a broken invariant (a double delivery, a key mismatch, an undelivered order) sets
// the exit code.
//
// (i) Stampede: a node in this process on a fresh MariaDB database, Redis, and a nats-server of the
//     bench's own (JetStream, a free loopback port, a temporary store; killed by its pid at the end,
//     also on error). One `card_key` SKU of merchant m1 with BENCH_ORDERS keys (uploaded through
//     addCardKeys, 10,000 per call, which sets the stock of date `open`), and as many orders of
//     distinct buyers reserved up front. Signed `POST /v1/payments/callback` go over HTTP (undici
//     pool of BENCH_CONNECTIONS keep-alive connections) open loop: callback i is due at
//     t0 + i/BENCH_RATE whatever the earlier answers do, and a share of the orders (BENCH_DUPLICATES)
//     get the same callback again 1-2 s later, as a provider retries. The 200 leaves once `paid` is
//     durable; delivery starts in the node right then (order and delivery actors → `order.delivered`
//     → JetStream, published by the live publisher as its write commits), and `order.paid` goes out
//     the same way once `confirm_sold` is durable; the delivery consumer (the safety net) finds the
//     order delivered, and the relay (outbox → JetStream) passes over rows published already. A core NATS subscription, open before
//     the first payment, stamps each `stampede.evt.m1.order.delivered` (and `.order.paid`) as it
//     arrives: payment → delivered = that receipt − the callback's due time.
// (ii) Baseline, the classic design, same MariaDB, same offered load, same client and signature
//     check over HTTP (a bare node:http server in this process): per callback one transaction on a
//     pool of 32 connections — the order set paid, one free key picked `FOR UPDATE SKIP LOCKED`, the
//     key assigned, the order set delivered, COMMIT — answered after the COMMIT, so its answer time
//     is its payment → delivered time. Every payment holds its rows' locks until its fsync'd commit.
//
// Latencies count from the due time, not from when the request left: in an open loop, a server that
// falls behind makes the next callbacks wait in the client, and that wait is part of what a provider
// sees (measuring from the send would hide it: coordinated omission). `dispatch lag` in the output
// is how late the client sent (this process's event loop is shared with the server it measures).
//
// Both designs warm up first (BENCH_WARMUP orders on a SKU of their own, same rate), then measure.
// With BENCH_TRACE=1 (default) Stampede's path is stamped per order by wrapping the node's service,
// store and bus objects from here (the engine has no tracing hooks), and a breakdown by stage is
// printed: where the time of payment → delivered goes, in the median and in the slowest 1%.
// Reconciliation is off (STAMPEDE_RECONCILE_INTERVAL_MS=0): only the bus path delivers.
//
// A design that pays under 90% of the offered rate is flagged OVERLOADED: its latencies are then
// mostly the client's queue (BENCH_RATE lower finds the rate it sustains). The payment provider (the
// open loop, undici) and the merchant's subscriber run on a worker thread (bench/payments-client.mjs),
// as the other machines they are in a sale: on the server's thread they took ~8% of it (a CPU profile
// at 2,000/s) and sent and stamped late whenever it was busy. The trace stamps stay on the server's
// thread (they wrap its objects).
//
// This machine has 2 cores shared with other work: load from anything else distorts the figures
// (the script prints the load average before it starts, the CPU each process used, and the SQL
// statements MariaDB received per paid order).
//
// Knobs (environment): BENCH_ORDERS (20000), BENCH_RATE (2000 first callbacks/s), BENCH_CONNECTIONS (64),
// BENCH_DUPLICATES (0.1 of the orders), BENCH_QTY (1 key per order), BENCH_WARMUP (2000 orders),
// BENCH_SETTLE_S (30), BENCH_BASELINE_POOL (32), BENCH_TRACE (1), BENCH_DESIGNS (stampede,baseline),
// BENCH_SEED (1), BENCH_MYSQL_URL (mysql://root@127.0.0.1:3306), BENCH_REDIS_URL (redis://127.0.0.1:6379),
// BENCH_TIMELINE (0; 1 lists Stampede's 50 ms windows of due time holding a delivery over 50 ms, each
// with the GC pauses, event-loop turns over 5 ms and journal writes over 5 ms on the server's thread
// around it: whether the slowest 1% is one stall or spread out, and what it coincided with),
// BENCH_CPU_PROFILE (a file: a CPU profile of the server's thread over Stampede's open loop only).
// `--write-docs` writes the figures into docs/performance.md (section bench:payments).

import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { loadavg } from 'node:os';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import mysql from 'mysql2/promise';
import type { Pool as MysqlPool, ResultSetHeader, RowDataPacket } from 'mysql2/promise';
import { connect, type NatsConnection } from 'nats';
import { Worker } from 'node:worker_threads';
import type { StampedeNode } from '../app/node.ts';
import { OUTBOX_ROW_SPAN } from '../actors/journal-outbox.ts';
import { createAuth } from '../http/auth.ts';
import { signPayment } from '../http/signing.ts';
import type { NatsBus, OutgoingEvent } from '../persistence/bus/index.ts';
import type { ProjectionBatch } from '../persistence/ports.ts';
import { SECRETS, startEngine, type TestEngine } from '../test/support/engine.ts';
import { OwnNatsServer } from '../test/support/nats-server.ts';
import { percentile } from './baselines.ts';
import { profileThread } from './cpu-profile.ts';
import { cpuReferenceMs } from './machine.ts';
import { slowWindows, TimelineMarks } from './timeline.ts';
import { freshDatabase } from './database.ts';
import { writeDocsSection } from './docs.ts';
import { seededFloats } from '../engine/random.ts';

const env = process.env;
const ORDERS = positiveInt('BENCH_ORDERS', 20_000);
const RATE_PER_S = positiveInt('BENCH_RATE', 2_000);
const CONNECTIONS = positiveInt('BENCH_CONNECTIONS', 64);
const DUPLICATE_SHARE = Number(env.BENCH_DUPLICATES ?? 0.1);
const QTY = positiveInt('BENCH_QTY', 1);
const WARMUP_ORDERS = Number(env.BENCH_WARMUP ?? 2_000);
const SETTLE_MS = positiveInt('BENCH_SETTLE_S', 30) * 1_000;
const BASELINE_POOL = positiveInt('BENCH_BASELINE_POOL', 32);
const TRACE = env.BENCH_TRACE !== '0';
/** Lists the 50 ms windows (by due time) holding a delivery over 50 ms, with what happened around them. */
const TIMELINE = env.BENCH_TIMELINE === '1';
const CPU_PROFILE = env.BENCH_CPU_PROFILE;
const DESIGNS = new Set((env.BENCH_DESIGNS ?? 'stampede,baseline').split(',').map((s) => s.trim()));
const SEED = Number(env.BENCH_SEED ?? 1);
const MYSQL = env.BENCH_MYSQL_URL ?? 'mysql://root@127.0.0.1:3306';
const REDIS = env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379';

const DATABASE = 'stampede_bench_payments';
const MERCHANT = 'm1';
const SKU = 'bench-pay';
const WARM_SKU = 'bench-pay-warm';
const PRICE_CENTS = 1999;
const DATE = 'open';
const CALLBACK_PATH = '/v1/payments/callback';
const DELIVERED_SUBJECT = `stampede.evt.${MERCHANT}.order.delivered`;
const PAID_SUBJECT = `stampede.evt.${MERCHANT}.order.paid`;
/** The target of the issue: payment → delivered p99, ms. */
const TARGET_P99_MS = 50;
/** Keys per addCardKeys call (the API's bound). */
const KEYS_PER_UPLOAD_MAX = 10_000;
/** Reservations placed at once while setting up. */
const RESERVE_CONCURRENCY = 200;
/** A duplicate callback is due this long after its original, plus up to DUPLICATE_JITTER_MS. */
const DUPLICATE_DELAY_MS = 1_000;
const DUPLICATE_JITTER_MS = 1_000;
/** A design that pays less than this share of the offered rate is overloaded (reported, not asserted). */
const OVERLOAD_SHARE = 0.9;
/** Longest one callback may wait for its answer before it counts as an error. */
const CALLBACK_TIMEOUT_MS = 30_000;
/** After the last delivery, how long the subscription keeps listening for a second one. */
const QUIET_MS = 1_000;
/** Longest the setup may wait for the relay to publish the reservations' events. */
const SETUP_DRAIN_MS = 60_000;
/** The baseline server's body bound (the engine's is the same, API.md). */
const BODY_BYTES_MAX = 64 * 1024;

function positiveInt(name: string, dflt: number): number {
  const v = Number(env[name] ?? dflt);
  if (!Number.isSafeInteger(v) || v < 1) throw new RangeError(`${name} must be an integer >= 1, got ${env[name]}`);
  return v;
}

// ---- the offered load (shared by both designs) --------------------------------------------------

/** One callback to send: the order's index, whether it repeats an earlier one, when it is due. */
interface Planned {
  order: number;
  duplicate: boolean;
  due_ms: number;
}


/** First callbacks at i/rate; the duplicates of a shuffled share of the orders 1-2 s after theirs. */
function plan(orders: number, rate_per_s: number, duplicateShare: number, seed: number): Planned[] {
  const random = seededFloats(seed);
  const out: Planned[] = [];
  for (let i = 0; i < orders; i++) out.push({ order: i, duplicate: false, due_ms: (i * 1_000) / rate_per_s });
  const ids = Array.from({ length: orders }, (_, i) => i);
  for (let i = ids.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [ids[i], ids[j]] = [ids[j]!, ids[i]!];
  }
  const duplicates = Math.round(orders * Math.min(Math.max(duplicateShare, 0), 1));
  for (const i of ids.slice(0, duplicates)) {
    out.push({ order: i, duplicate: true, due_ms: out[i]!.due_ms + DUPLICATE_DELAY_MS + random() * DUPLICATE_JITTER_MS });
  }
  return out.sort((a, b) => a.due_ms - b.due_ms);
}

interface OrderRef {
  orderId: string;
  amountCents: number;
}

/** What the open loop recorded, per planned callback (same index as the plan). */
interface LoopOutcome {
  t0: number;
  plan: Planned[];
  dispatched: Float64Array;
  answered: Float64Array;
  /** HTTP status, 0 for a transport error. */
  status: Uint16Array;
  /** The order status in the 200's body. */
  orderStatus: string[];
  errors: number;
  firstError: string | undefined;
}

/**
 * The payment provider and the merchant's subscriber, on a worker thread of their own
 * (bench/payments-client.mjs): they are other machines in a real sale, so they neither wait for the
 * engine's event loop nor take its time. Times come back on this thread's performance.now() clock.
 */
class Client {
  private readonly worker = new Worker(new URL('./payments-client.mjs', import.meta.url), { workerData: { mainTimeOrigin: performance.timeOrigin } });
  private readonly waiting = new Map<number, { resolve: (m: ClientAnswer) => void; reject: (e: Error) => void }>();
  private nextId = 1;
  /** Called with each message the subscriptions receive, stamped on arrival. */
  onEvent: (subject: string, data: string, at: number) => void = () => {};

  constructor() {
    this.worker.on('message', (m: ClientAnswer | { type: 'events'; items: { subject: string; at: number; data: string }[] }) => {
      if (m.type === 'events') {
        for (const e of m.items) this.onEvent(e.subject, e.data, e.at);
        return;
      }
      const w = this.waiting.get(m.id);
      this.waiting.delete(m.id);
      if (m.type === 'failed') w?.reject(new Error(`bench client: ${m.error}`));
      else w?.resolve(m);
    });
    this.worker.on('error', (error) => {
      for (const w of this.waiting.values()) w.reject(error);
      this.waiting.clear();
    });
  }

  private ask(msg: Record<string, unknown>): Promise<ClientAnswer> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.waiting.set(id, { resolve, reject });
      this.worker.postMessage({ ...msg, id });
    });
  }

  async subscribe(natsUrl: string, subjects: string[]): Promise<void> {
    await this.ask({ type: 'subscribe', natsUrl, subjects });
  }

  /**
   * Sends the planned callbacks open loop: each at its due time (timer granularity ~1 ms), whatever
   * the answers do; undici queues what exceeds its connections. Bodies and signatures are made here,
   * before t0, so the loop does little more than hand requests to the pool.
   */
  async openLoop(url: string, orders: OrderRef[], planned: Planned[]): Promise<LoopOutcome> {
    const t_s = Math.floor(Date.now() / 1000);
    const requests = planned.map((p) => {
      const o = orders[p.order]!;
      const raw = JSON.stringify({ orderId: o.orderId, paymentId: `pay-${o.orderId}`, amountCents: o.amountCents, status: 'succeeded' });
      return { raw, signature: signPayment(SECRETS.STAMPEDE_PAYMENT_SECRET, raw, t_s) };
    });
    const answer = await this.ask({
      type: 'loop', url, path: CALLBACK_PATH, connections: CONNECTIONS, timeout_ms: CALLBACK_TIMEOUT_MS, requests, due_ms: planned.map((p) => p.due_ms),
    });
    if (answer.type !== 'loop_done') throw new Error(`bench client answered ${answer.type}`);
    return { ...answer.outcome, plan: planned };
  }

  async close(): Promise<void> {
    await this.ask({ type: 'close' }).catch(() => {});
    await this.worker.terminate();
  }
}

type ClientAnswer =
  | { type: 'subscribed' | 'closed'; id: number }
  | { type: 'failed'; id: number; error: string }
  | { type: 'loop_done'; id: number; outcome: Omit<LoopOutcome, 'plan'> };

interface CallbackFigures {
  first: number;
  duplicates: number;
  /** First callbacks sent per second, from t0 to the last one sent (the offered rate, as achieved). */
  sent_per_s: number;
  /** First callbacks answered 200 per second, from t0 to the last such answer. */
  paid_per_s: number;
  p50_ms: number;
  p95_ms: number;
  p99_ms: number;
  max_ms: number;
  dispatch_lag_p99_ms: number;
  dispatch_lag_max_ms: number;
  errors: number;
  /** Duplicates answered 200 with the order paid or delivered (nothing changed). */
  duplicates_ok: number;
  firstError: string | undefined;
  lastAnswer: number;
}

function callbackFigures(loop: LoopOutcome): CallbackFigures {
  const latencies: number[] = [];
  const lags: number[] = [];
  let first = 0, duplicates = 0, duplicatesOk = 0, firstOk = 0;
  let lastAnswer = loop.t0, lastFirstOk = loop.t0, lastFirstSent = loop.t0;
  loop.plan.forEach((p, k) => {
    const due = loop.t0 + p.due_ms;
    latencies.push(loop.answered[k]! - due);
    lags.push(loop.dispatched[k]! - due);
    lastAnswer = Math.max(lastAnswer, loop.answered[k]!);
    if (p.duplicate) {
      duplicates++;
      if (loop.status[k] === 200 && (loop.orderStatus[k] === 'paid' || loop.orderStatus[k] === 'delivered')) duplicatesOk++;
    } else {
      first++;
      lastFirstSent = Math.max(lastFirstSent, loop.dispatched[k]!);
      if (loop.status[k] === 200) {
        firstOk++;
        lastFirstOk = Math.max(lastFirstOk, loop.answered[k]!);
      }
    }
  });
  latencies.sort((a, b) => a - b);
  lags.sort((a, b) => a - b);
  return {
    first,
    duplicates,
    sent_per_s: first / ((lastFirstSent - loop.t0) / 1000),
    paid_per_s: firstOk / ((lastFirstOk - loop.t0) / 1000),
    p50_ms: percentile(latencies, 50),
    p95_ms: percentile(latencies, 95),
    p99_ms: percentile(latencies, 99),
    max_ms: latencies[latencies.length - 1] ?? Number.NaN,
    dispatch_lag_p99_ms: percentile(lags, 99),
    dispatch_lag_max_ms: lags[lags.length - 1] ?? Number.NaN,
    errors: loop.errors,
    duplicates_ok: duplicatesOk,
    firstError: loop.firstError,
    lastAnswer,
  };
}

// ---- measuring the machine ---------------------------------------------------------------------

/** CPU seconds (user + system) of a process from /proc, or NaN where /proc is not there. */
function cpuSeconds(pid: number | undefined): number {
  if (pid === undefined) return Number.NaN;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // utime and stime are fields 14 and 15 of stat (11 and 12 after the name), in clock ticks (100/s on Linux).
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return Number.NaN;
  }
}

function pidOf(name: string): number | undefined {
  try {
    return Number(execFileSync('pidof', ['-s', name], { encoding: 'utf8' }).trim()) || undefined;
  } catch {
    return undefined;
  }
}

/** CPU used by this process, mariadbd and (when given) the bench's nats-server, in % of one core. */
class CpuMeter {
  private readonly mariadb = pidOf('mariadbd') ?? pidOf('mysqld');
  private start = { self: process.cpuUsage(), mariadb: 0, nats: 0, at: 0, loop: performance.eventLoopUtilization() };
  constructor(private readonly natsPid?: number) {}
  begin(): void {
    this.start = { self: process.cpuUsage(), mariadb: cpuSeconds(this.mariadb), nats: cpuSeconds(this.natsPid), at: performance.now(), loop: performance.eventLoopUtilization() };
  }
  /** `self_pct`: every thread of this process (the client's worker included); `main_pct`: the server's event loop busy. */
  end(): { self_pct: number; main_pct: number; mariadb_pct: number; nats_pct: number } {
    const s = (performance.now() - this.start.at) / 1000;
    const self = process.cpuUsage(this.start.self);
    return {
      self_pct: ((self.user + self.system) / 1e6 / s) * 100,
      main_pct: performance.eventLoopUtilization(this.start.loop).utilization * 100,
      mariadb_pct: ((cpuSeconds(this.mariadb) - this.start.mariadb) / s) * 100,
      nats_pct: ((cpuSeconds(this.natsPid) - this.start.nats) / s) * 100,
    };
  }
}

/**
 * Statements the MariaDB server has received from all clients so far (`Questions`): the difference
 * over a run, divided by its orders, is the SQL statements per paid order (other clients of the
 * shared server count too; they are few while the machine is quiet).
 */
async function sqlStatements(): Promise<number> {
  const conn = await mysql.createConnection(MYSQL);
  try {
    const [rows] = await conn.query<RowDataPacket[]>("SHOW GLOBAL STATUS LIKE 'Questions'");
    return Number(rows[0]?.Value ?? Number.NaN);
  } finally {
    await conn.end();
  }
}

const fmt = (ms: number, digits = 1): string => (Number.isFinite(ms) ? ms.toFixed(digits) : '—');

// ---- (i) Stampede -------------------------------------------------------------------------------

/** Per-order timestamps along Stampede's path (performance.now(), NaN until seen); first occurrence only. */
const STAMPS = [
  'payStart', 'freshStart', 'freshEnd', 'confirmStart', 'confirmEnd', 'payEnd',
  'paidProjected', 'paidPublish', 'paidAcked',
  'assignStart', 'assignEnd', 'deliverEnd',
  'deliveredProjected', 'deliveredPublish', 'deliveredAcked',
] as const;
type Stamp = (typeof STAMPS)[number];

/**
 * Wraps methods of the node's objects (instance properties shadow the prototype's, and every caller
 * goes through the same instances) to stamp each measured order's way and time each store call.
 * Only for this bench: the engine has no tracing hooks.
 */
class Trace {
  readonly stamps = new Map<Stamp, Float64Array>();
  /** Store call durations (pool wait included), by operation, while `recording`. */
  readonly ops = new Map<string, number[]>();
  /** Sizes of the projector's writes and of the relay's publishes, while `recording`. */
  readonly projectorBatchRows: number[] = [];
  readonly publishEvents: number[] = [];
  recording = false;

  constructor(
    private readonly indexOf: Map<string, number>,
    orders: number,
  ) {
    for (const s of STAMPS) this.stamps.set(s, new Float64Array(orders).fill(Number.NaN));
  }

  private stamp(s: Stamp, orderId: string | undefined, at = performance.now()): void {
    if (orderId === undefined) return;
    const i = this.indexOf.get(orderId);
    if (i === undefined) return;
    const a = this.stamps.get(s)!;
    if (Number.isNaN(a[i]!)) a[i] = at;
  }

  private op(name: string, ms: number): void {
    if (!this.recording) return;
    let a = this.ops.get(name);
    if (!a) this.ops.set(name, (a = []));
    a.push(ms);
  }

  /** Replaces obj[name] by a wrapper that calls `before` and `after` (with the start time) around it. */
  private wrap<T extends object, K extends keyof T>(
    obj: T,
    name: K,
    hooks: { before?: (args: unknown[]) => void; after?: (args: unknown[], started: number) => void },
  ): void {
    const original = obj[name] as unknown as (...args: unknown[]) => Promise<unknown>;
    (obj as Record<K, unknown>)[name] = async (...args: unknown[]) => {
      hooks.before?.(args);
      const started = performance.now();
      const result = await original.apply(obj, args);
      hooks.after?.(args, started);
      return result;
    };
  }

  private timed<T extends object>(obj: T, label: string, names: (keyof T)[]): void {
    for (const name of names) this.wrap(obj, name, { after: (_, started) => this.op(`${label}.${String(name)}`, performance.now() - started) });
  }

  install(node: StampedeNode): void {
    const orderIdOf = (args: unknown[]) => args[0] as string;
    this.wrap(node.orders, 'pay', { before: (a) => this.stamp('payStart', orderIdOf(a)), after: (a) => this.stamp('payEnd', orderIdOf(a)) });
    this.wrap(node.orders, 'confirmSold', { before: (a) => this.stamp('confirmStart', orderIdOf(a)), after: (a) => this.stamp('confirmEnd', orderIdOf(a)) });
    this.wrap(node.orders, 'freshReservation', { before: (a) => this.stamp('freshStart', orderIdOf(a)), after: (a) => this.stamp('freshEnd', orderIdOf(a)) });
    // Delivered by the order actor right after the payment's answer (deliveredAfterPayment tells when),
    // else by the bus's consumer or a retry (deliverPaid): the first to end stamps it.
    this.wrap(node.orders, 'deliverPaid', { after: (a) => this.stamp('deliverEnd', orderIdOf(a)) });
    const told = node.orders.deliveredAfterPayment.bind(node.orders);
    node.orders.deliveredAfterPayment = (orderId, result) => {
      this.stamp('deliverEnd', orderId);
      told(orderId, result);
    };
    this.wrap(node.orders, 'assignKeys', { before: (a) => this.stamp('assignStart', a[1] as string), after: (a) => this.stamp('assignEnd', a[1] as string) });
    this.wrap(node.stores.projection, 'apply', {
      after: (a, started) => {
        const batch = a[0] as ProjectionBatch;
        const now = performance.now();
        this.op('projection.apply', now - started);
        if (this.recording) this.projectorBatchRows.push(batch.orders.length + batch.history.length);
        for (const row of [...batch.orders, ...batch.history]) {
          if (row.status === 'paid') this.stamp('paidProjected', row.orderId, now);
          else if (row.status === 'delivered') this.stamp('deliveredProjected', row.orderId, now);
        }
      },
    });
    const bus = node.bus as NatsBus;
    const kinds = (events: readonly OutgoingEvent[]) =>
      events.map((e) => {
        const kind = e.subject.endsWith('.order.paid') ? 'paid' : e.subject.endsWith('.order.delivered') ? 'delivered' : undefined;
        const text = typeof e.data === 'string' ? e.data : Buffer.from(e.data).toString('utf8');
        return { kind, orderId: kind ? /"orderId":"([^"]+)"/.exec(text)?.[1] : undefined };
      });
    this.wrap(bus, 'publish', {
      before: (a) => {
        const events = a[0] as readonly OutgoingEvent[];
        if (this.recording) this.publishEvents.push(events.length);
        for (const e of kinds(events)) if (e.kind) this.stamp(e.kind === 'paid' ? 'paidPublish' : 'deliveredPublish', e.orderId);
      },
      after: (a, started) => {
        this.op('nats.publish', performance.now() - started);
        for (const e of kinds(a[0] as readonly OutgoingEvent[])) if (e.kind) this.stamp(e.kind === 'paid' ? 'paidAcked' : 'deliveredAcked', e.orderId);
      },
    });
    this.timed(node.stores.journal, 'journal', ['append', 'readAfter', 'readRange']);
    this.timed(node.stores.cardKeys, 'cardKeys', ['assignedTo', 'assign', 'unassigned']);
    this.timed(node.stores.outbox, 'outbox', ['readAfter', 'saveCursor', 'trim']);
  }

  at(s: Stamp, i: number): number {
    return this.stamps.get(s)![i]!;
  }
}

/** The delivered (and paid) events the bench hears over core NATS, per order. */
class EventLog {
  readonly deliveredAt: Float64Array;
  readonly paidAt: Float64Array;
  /** Distinct delivered event ids per order (must be exactly one each). */
  readonly deliveredIds: (Set<string> | undefined)[];
  /** Delivered messages per order as received, republications of the same id included. */
  readonly deliveredMessages: Uint16Array;
  delivered = 0;
  messages = 0;
  foreign = 0;

  constructor(
    private readonly indexOf: Map<string, number>,
    orders: number,
  ) {
    this.deliveredAt = new Float64Array(orders).fill(Number.NaN);
    this.paidAt = new Float64Array(orders).fill(Number.NaN);
    this.deliveredIds = new Array(orders);
    this.deliveredMessages = new Uint16Array(orders);
  }

  /** A delivered event `data` (JSON) received at `at` (this thread's clock). */
  onDelivered(data: string, at: number): void {
    this.messages++;
    const e = JSON.parse(data) as { eventId: string; orderId: string };
    const i = this.indexOf.get(e.orderId);
    if (i === undefined) {
      this.foreign++;
      return;
    }
    this.deliveredMessages[i]!++;
    const ids = (this.deliveredIds[i] ??= new Set());
    ids.add(e.eventId);
    if (Number.isNaN(this.deliveredAt[i]!)) {
      this.deliveredAt[i] = at;
      this.delivered++;
    }
  }

  onPaid(data: string, at: number): void {
    const e = JSON.parse(data) as { orderId: string };
    const i = this.indexOf.get(e.orderId);
    if (i !== undefined && Number.isNaN(this.paidAt[i]!)) this.paidAt[i] = at;
  }
}

async function until(check: () => boolean, deadline: number, poll_ms = 10): Promise<boolean> {
  while (!check()) {
    if (performance.now() >= deadline) return false;
    await new Promise((r) => setTimeout(r, poll_ms));
  }
  return true;
}

/** Creates the card_key SKU, uploads `keys` keys, reserves `orders` orders of distinct buyers. */
async function stampedeSku(node: StampedeNode, skuId: string, orders: number): Promise<OrderRef[]> {
  await node.catalog.upsertSku({
    skuId, name: skuId, priceCents: PRICE_CENTS, merchantId: MERCHANT, delivery: 'card_key', attributes: {},
    visibleAt: null, saleStartsAt: null, saleEndsAt: null, updatedAt: new Date().toISOString(),
  });
  const salt = randomBytes(6).toString('hex');
  const keys = orders * QTY;
  for (let from = 0; from < keys; from += KEYS_PER_UPLOAD_MAX) {
    const chunk = Array.from({ length: Math.min(KEYS_PER_UPLOAD_MAX, keys - from) }, (_, i) => `KEY-${skuId}-${salt}-${from + i}`);
    const r = await node.orders.addCardKeys(skuId, chunk);
    if (!r.ok) throw new Error(`card keys of ${skuId}: ${r.error} ${r.message}`);
  }
  const refs: OrderRef[] = new Array(orders);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(RESERVE_CONCURRENCY, orders) }, async () => {
      while (next < orders) {
        const i = next++;
        const a = await node.orders.placeOrder({ userId: `${skuId}-buyer-${i}`, skuId, date: DATE, qty: QTY });
        if (a.status !== 201) throw new Error(`reservation ${i} of ${skuId}: ${a.status} ${JSON.stringify(a.body)}`);
        const body = a.body as { orderId: string; amountCents: number };
        refs[i] = { orderId: body.orderId, amountCents: body.amountCents };
      }
    }),
  );
  return refs;
}

/**
 * Waits until the projector has written everything and the relay has published it (bounded). The
 * relay's lag() never reaches 0 when the newest outbox row is a single event (an order's): head()
 * counts to the end of the row's position span, the cursor stops at its start. So "published" here
 * is: the relay's position is in the newest row, twice in a row 100 ms apart (a range row still
 * being published would have moved by then).
 */
async function settled(node: StampedeNode, timeout_ms: number): Promise<void> {
  const deadline = performance.now() + timeout_ms;
  let streak = 0;
  for (;;) {
    await node.projector.drained();
    streak = (await node.relay!.lag()) < OUTBOX_ROW_SPAN ? streak + 1 : 0;
    if (streak >= 2) return;
    if (performance.now() > deadline) throw new Error(`the relay still had events to publish after ${timeout_ms} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

interface Stats {
  p50_ms: number;
  p95_ms: number;
  p99_ms: number;
  max_ms: number;
  n: number;
}

function stats(values: number[]): Stats {
  const v = values.filter(Number.isFinite).sort((a, b) => a - b);
  return { p50_ms: percentile(v, 50), p95_ms: percentile(v, 95), p99_ms: percentile(v, 99), max_ms: v[v.length - 1] ?? Number.NaN, n: v.length };
}

interface StageRow {
  stage: string;
  p50_ms: number;
  p99_ms: number;
  /** Mean of the stage over the orders whose payment → delivered is at or above its p99. */
  tail_mean_ms: number;
}

interface StampedeResult {
  callbacks: CallbackFigures;
  toDelivered: Stats;
  /** Callback due → the order's `order.paid` heard on NATS. */
  toPaidEvent: Stats;
  deliveredWithinSettle: number;
  undeliveredPaid: number;
  /** Orders with more than one distinct delivered event id. */
  doubleDelivered: number;
  /** Delivered messages received in all, republications included. */
  deliveredMessages: number;
  jetstream: { paid: number; delivered: number };
  keys: KeyCheck;
  metrics: { paidToDelivered_avg_ms: number; paidToDelivered_le50_share: number; callback_avg_ms: number; commit_avg_ms: number; commit_events_avg: number; deliveries: Record<string, number>; published: Record<string, number>; conflicts: number };
  cpu: { self_pct: number; main_pct: number; mariadb_pct: number; nats_pct: number };
  /** SQL statements MariaDB received per paid order while measuring (all clients). */
  statements_per_order: number;
  loop_delay_p99_ms: number;
  loop_delay_max_ms: number;
  stages: StageRow[] | undefined;
  answerStages: StageRow[] | undefined;
  ops: { op: string; n: number; p50_ms: number; p99_ms: number }[];
  projector_batch_rows_avg: number;
  publish_events_avg: number;
  setup_s: number;
}

interface KeyCheck {
  assigned: number;
  orders: number;
  minPerOrder: number;
  maxPerOrder: number;
  /** Orders of ours whose read-model row is not `delivered` with exactly the keys card_keys holds for it. */
  mismatched: number;
  /** Keys assigned to an order that is not one of ours. */
  strays: number;
  ok: boolean;
}

async function checkStampedeKeys(dbUrl: string, orders: OrderRef[]): Promise<KeyCheck> {
  const conn = await mysql.createConnection(dbUrl);
  try {
    const [totals] = await conn.query<RowDataPacket[]>(
      'SELECT COUNT(*) AS assigned, COUNT(DISTINCT order_id) AS orders FROM card_keys WHERE sku_id = ? AND order_id IS NOT NULL',
      [SKU],
    );
    const [rows] = await conn.query<RowDataPacket[]>('SELECT order_id, id FROM card_keys WHERE sku_id = ? AND order_id IS NOT NULL', [SKU]);
    const [read] = await conn.query<RowDataPacket[]>('SELECT order_id, status, delivery FROM orders WHERE sku_id = ?', [SKU]);
    const held = new Map<string, number[]>();
    for (const r of rows) {
      const ids = held.get(r.order_id as string) ?? [];
      ids.push(Number(r.id));
      held.set(r.order_id as string, ids);
    }
    const model = new Map(read.map((r) => [r.order_id as string, r]));
    const ours = new Set(orders.map((o) => o.orderId));
    let mismatched = 0;
    for (const o of orders) {
      const keys = (held.get(o.orderId) ?? []).sort((a, b) => a - b);
      const row = model.get(o.orderId);
      const delivery = row?.delivery ? (JSON.parse(row.delivery as string) as { keyIds?: number[] }) : undefined;
      const recorded = [...(delivery?.keyIds ?? [])].sort((a, b) => a - b);
      if (row?.status !== 'delivered' || keys.length !== QTY || recorded.join() !== keys.join()) mismatched++;
    }
    const counts = [...held.values()].map((ids) => ids.length);
    const strays = [...held.keys()].filter((id) => !ours.has(id)).length;
    const assigned = Number(totals[0]!.assigned);
    const out = {
      assigned,
      orders: Number(totals[0]!.orders),
      minPerOrder: counts.length ? Math.min(...counts) : 0,
      maxPerOrder: counts.length ? Math.max(...counts) : 0,
      mismatched,
      strays,
      ok: false,
    };
    out.ok = assigned === orders.length * QTY && out.orders === orders.length && out.minPerOrder === QTY && out.maxPerOrder === QTY && mismatched === 0 && strays === 0;
    return out;
  } finally {
    await conn.end();
  }
}

function histogramAvg(values: { metricName?: string; value: number }[]): number {
  const sum = values.find((v) => v.metricName?.endsWith('_sum'))?.value ?? 0;
  const count = values.find((v) => v.metricName?.endsWith('_count'))?.value ?? 0;
  return count > 0 ? sum / count : Number.NaN;
}

async function runStampede(dbUrl: string): Promise<StampedeResult> {
  const setupStarted = performance.now();
  const nats = await OwnNatsServer.start();
  // Killed even when this process ends by an error or a signal (kill() is synchronous up to its wait).
  const killNats = () => void nats.kill();
  process.once('exit', killNats);
  let engine: TestEngine | undefined;
  let nc: NatsConnection | undefined;
  let client: Client | undefined;
  try {
    engine = await startEngine(
      { kind: 'mysql', url: dbUrl, redisUrl: REDIS },
      { STAMPEDE_NATS_URL: nats.url, STAMPEDE_RECONCILE_INTERVAL_MS: '0' },
    );
    const node = engine.node;
    const natsPid = pidOfPort(nats.port);
    const orders = await stampedeSku(node, SKU, ORDERS);
    const warm = WARMUP_ORDERS > 0 ? await stampedeSku(node, WARM_SKU, WARMUP_ORDERS) : [];
    await settled(node, SETUP_DRAIN_MS);

    const indexOf = new Map(orders.map((o, i) => [o.orderId, i]));
    const warmIndexOf = new Map(warm.map((o, i) => [o.orderId, i]));
    const log = new EventLog(indexOf, ORDERS);
    const warmLog = new EventLog(warmIndexOf, warm.length);
    const trace = TRACE ? new Trace(indexOf, ORDERS) : undefined;
    trace?.install(node);

    nc = await connect({ servers: nats.url, name: 'bench-payments' });
    client = new Client();
    client.onEvent = (subject, data, at) => {
      if (subject === PAID_SUBJECT) return log.onPaid(data, at);
      log.onDelivered(data, at);
      warmLog.onDelivered(data, at);
    };
    await client.subscribe(nats.url, [DELIVERED_SUBJECT, PAID_SUBJECT]);

    if (warm.length > 0) {
      const w = await client.openLoop(engine.url, warm, plan(warm.length, RATE_PER_S, DUPLICATE_SHARE, SEED + 1));
      if (!(await until(() => warmLog.delivered >= warm.length, performance.now() + SETTLE_MS))) {
        throw new Error(`warm-up: ${warmLog.delivered} of ${warm.length} orders delivered (callback errors ${w.errors}: ${w.firstError})`);
      }
      await settled(node, SETUP_DRAIN_MS);
    }
    const setup_s = (performance.now() - setupStarted) / 1000;
    await node.metrics.registry.resetMetrics();

    const cpu = new CpuMeter(natsPid);
    const loopDelay = monitorEventLoopDelay({ resolution: 5 });
    if (trace) trace.recording = true;
    const statementsBefore = await sqlStatements();
    cpu.begin();
    loopDelay.enable();
    const marks = TIMELINE ? new TimelineMarks(node) : undefined;
    const stopProfile = CPU_PROFILE ? await profileThread(CPU_PROFILE) : undefined;
    const loop = await client.openLoop(engine.url, orders, plan(ORDERS, RATE_PER_S, DUPLICATE_SHARE, SEED));
    await stopProfile?.();
    marks?.stop();
    const callbacks = callbackFigures(loop);
    // Delivered within SETTLE_MS after the last callback was answered, or never (for this bench).
    await until(() => log.delivered >= ORDERS, callbacks.lastAnswer + SETTLE_MS);
    loopDelay.disable();
    const cpuUse = cpu.end();
    const statements = (await sqlStatements()) - statementsBefore;
    if (trace) trace.recording = false;
    const deliveredWithinSettle = log.delivered;
    // Stragglers: a second delivery of an order would show up here.
    await new Promise((r) => setTimeout(r, QUIET_MS));

    const due = new Float64Array(ORDERS);
    const paidOk = new Uint8Array(ORDERS);
    loop.plan.forEach((p, k) => {
      if (p.duplicate) return;
      due[p.order] = loop.t0 + p.due_ms;
      if (loop.status[k] === 200 && (loop.orderStatus[k] === 'paid' || loop.orderStatus[k] === 'delivered')) paidOk[p.order] = 1;
    });
    let undeliveredPaid = 0;
    let doubleDelivered = 0;
    for (let i = 0; i < ORDERS; i++) {
      if (paidOk[i] && Number.isNaN(log.deliveredAt[i]!)) undeliveredPaid++;
      if ((log.deliveredIds[i]?.size ?? 0) > 1) doubleDelivered++;
    }
    const toDelivered = Array.from(log.deliveredAt, (t, i) => t - due[i]!);
    const toPaid = Array.from(log.paidAt, (t, i) => t - due[i]!);
    if (TIMELINE) console.log(slowWindows(loop.t0, due, toDelivered, { windowMs: 50, slowMs: 50, what: 'a delivery' }, marks));

    // JetStream's own count (it drops a republished Nats-Msg-Id): one paid and one delivered per order.
    const jsm = await nc.jetstreamManager();
    const info = await jsm.streams.info('STAMPEDE_EVENTS', { subjects_filter: `stampede.evt.${MERCHANT}.order.*` });
    const subjects = (info.state.subjects ?? {}) as Record<string, number>;
    const jetstream = { paid: subjects[PAID_SUBJECT] ?? 0, delivered: subjects[DELIVERED_SUBJECT] ?? 0 };

    const m = node.metrics;
    const p2d = (await m.paidToDeliveredMs.get()).values;
    const le50 = p2d.find((v) => v.metricName?.endsWith('_bucket') && v.labels.le === 50)?.value ?? 0;
    const p2dCount = p2d.find((v) => v.metricName?.endsWith('_count'))?.value ?? 0;
    const deliveries: Record<string, number> = {};
    for (const v of (await m.deliveries.get()).values) deliveries[String(v.labels.outcome)] = v.value;
    const published: Record<string, number> = {};
    for (const v of (await m.eventsPublished.get()).values) published[String(v.labels.path)] = v.value;
    const metrics = {
      paidToDelivered_avg_ms: histogramAvg(p2d),
      paidToDelivered_le50_share: p2dCount > 0 ? le50 / p2dCount : Number.NaN,
      callback_avg_ms: histogramAvg((await m.paymentCallbackMs.get()).values),
      commit_avg_ms: histogramAvg((await m.groupCommitLatencyMs.get()).values),
      commit_events_avg: histogramAvg((await m.groupCommitBatchEvents.get()).values),
      deliveries,
      published,
      conflicts: (await m.orderConflicts.get()).values.reduce((n, v) => n + v.value, 0),
    };
    const keys = await checkStampedeKeys(dbUrl, orders);

    let stages: StageRow[] | undefined;
    let answerStages: StageRow[] | undefined;
    if (trace) {
      const threshold = stats(toDelivered).p99_ms;
      const tail = toDelivered.map((v, i) => (v >= threshold ? i : -1)).filter((i) => i >= 0);
      const first = firstCallbacks(loop);
      const at = (s: Stamp | 'due' | 'seen' | 'answered', i: number): number =>
        s === 'due' ? due[i]! : s === 'seen' ? log.deliveredAt[i]! : s === 'answered' ? loop.answered[first[i]!]! : trace.at(s, i);
      const row = (stage: string, from: Parameters<typeof at>[0], to: Parameters<typeof at>[0]): StageRow => {
        const d = Array.from({ length: ORDERS }, (_, i) => at(to, i) - at(from, i));
        const s = stats(d);
        const tailValues = tail.map((i) => d[i]!).filter(Number.isFinite);
        return { stage, p50_ms: s.p50_ms, p99_ms: s.p99_ms, tail_mean_ms: tailValues.reduce((a, b) => a + b, 0) / Math.max(1, tailValues.length) };
      };
      stages = [
        row('HTTP in: due → pay handler', 'due', 'payStart'),
        row('order actor: mailbox (activation included)', 'payStart', 'freshStart'),
        row('order actor: fresh reservation asked of the inventory', 'freshStart', 'freshEnd'),
        row('order actor: decide', 'freshEnd', 'confirmStart'),
        row('inventory: confirm_sold + its write (order.paid rides in it)', 'confirmStart', 'confirmEnd'),
        row('deliver: order actor, from the sale to asking for keys (paid applied, answer sent)', 'confirmEnd', 'assignStart'),
        row('deliver: delivery actor (key lookup + assign tx)', 'assignStart', 'assignEnd'),
        row('deliver: order.delivered journal write', 'assignEnd', 'deliverEnd'),
        row('delivered: publish (live at commit, else relay)', 'deliverEnd', 'deliveredPublish'),
        row('delivered: JetStream → bench subscriber', 'deliveredPublish', 'seen'),
        row('total: payment → delivered', 'due', 'seen'),
      ];
      answerStages = [
        row('order.paid journal write (after confirm_sold)', 'confirmEnd', 'payEnd'),
        row('HTTP out: handler done → client has the 200', 'payEnd', 'answered'),
        row('total: callback answer', 'due', 'answered'),
        row('order.paid event: publish after confirm_sold (live at commit, else relay)', 'confirmEnd', 'paidPublish'),
        row('order.paid event: JetStream ack', 'paidPublish', 'paidAcked'),
        row('off the path: order.paid row in the read model and outbox', 'confirmEnd', 'paidProjected'),
        row('off the path: order.delivered row in the read model and outbox', 'deliverEnd', 'deliveredProjected'),
      ];
    }
    const ops = trace
      ? [...trace.ops].map(([op, v]) => ({ op, ...stats(v) })).sort((a, b) => a.op.localeCompare(b.op)).map((s) => ({ op: s.op, n: s.n, p50_ms: s.p50_ms, p99_ms: s.p99_ms }))
      : [];
    const avg = (v: number[]) => (v.length ? v.reduce((a, b) => a + b, 0) / v.length : Number.NaN);
    return {
      callbacks,
      toDelivered: stats(toDelivered),
      toPaidEvent: stats(toPaid),
      deliveredWithinSettle,
      undeliveredPaid,
      doubleDelivered,
      deliveredMessages: log.messages,
      jetstream,
      keys,
      metrics,
      cpu: cpuUse,
      statements_per_order: statements / ORDERS,
      loop_delay_p99_ms: loopDelay.percentile(99) / 1e6,
      loop_delay_max_ms: loopDelay.max / 1e6,
      stages,
      answerStages,
      ops,
      projector_batch_rows_avg: avg(trace?.projectorBatchRows ?? []),
      publish_events_avg: avg(trace?.publishEvents ?? []),
      setup_s,
    };
  } finally {
    await client?.close();
    await nc?.close().catch(() => {});
    await engine?.stop().catch((error: unknown) => console.error('stopping the node:', error));
    await nats.dispose();
    process.off('exit', killNats);
  }
}

/** Order index → the plan index of its first callback. */
function firstCallbacks(loop: LoopOutcome): Int32Array {
  const out = new Int32Array(ORDERS).fill(-1);
  loop.plan.forEach((p, k) => {
    if (!p.duplicate) out[p.order] = k;
  });
  return out;
}

/** The pid of the nats-server listening on `port` (the bench's own), for its CPU time. */
function pidOfPort(port: number): number | undefined {
  try {
    const out = execFileSync('pgrep', ['-f', `nats-server -js -a 127.0.0.1 -p ${port} `], { encoding: 'utf8' }).trim().split('\n')[0];
    return out ? Number(out) : undefined;
  } catch {
    return undefined;
  }
}

// ---- (ii) the classic card shop ---------------------------------------------------------------

const B_ORDERS = 'baseline_pay_orders';
const B_KEYS = 'baseline_pay_keys';

/** One transaction per callback, answered after COMMIT: the order's status afterwards. */
async function baselinePay(pool: MysqlPool, body: { orderId: string; paymentId: string; amountCents: number; status: string }, skuOf: (orderId: string) => string): Promise<string> {
  const conn = await pool.getConnection();
  try {
    await conn.query('START TRANSACTION');
    if (body.status !== 'succeeded') {
      await conn.query('COMMIT');
      return statusOf(conn, body.orderId);
    }
    const [paid] = await conn.execute<ResultSetHeader>(
      `UPDATE ${B_ORDERS} SET status = 'paid', payment_id = ? WHERE id = ? AND status = 'reserved' AND amount_cents = ?`,
      [body.paymentId, body.orderId, body.amountCents],
    );
    if (paid.affectedRows !== 1) {
      // A repeat (or an unknown order): nothing changes, the answer is the order's status.
      const status = await statusOf(conn, body.orderId);
      await conn.query('COMMIT');
      return status;
    }
    const [keys] = await conn.execute<RowDataPacket[]>(
      `SELECT id FROM ${B_KEYS} WHERE sku = ? AND order_id IS NULL LIMIT ${QTY} FOR UPDATE SKIP LOCKED`,
      [skuOf(body.orderId)],
    );
    if (keys.length < QTY) {
      await conn.query('COMMIT'); // paid, awaiting keys
      return 'paid';
    }
    const ids = keys.map((k) => Number(k.id));
    await conn.execute(`UPDATE ${B_KEYS} SET order_id = ? WHERE id IN (${ids.map(() => '?').join(', ')})`, [body.orderId, ...ids]);
    await conn.execute(`UPDATE ${B_ORDERS} SET status = 'delivered' WHERE id = ?`, [body.orderId]);
    await conn.query('COMMIT');
    return 'delivered';
  } catch (error) {
    await conn.query('ROLLBACK').catch(() => undefined);
    throw error;
  } finally {
    conn.release();
  }
}

async function statusOf(conn: mysql.PoolConnection, orderId: string): Promise<string> {
  const [rows] = await conn.execute<RowDataPacket[]>(`SELECT status FROM ${B_ORDERS} WHERE id = ?`, [orderId]);
  return (rows[0]?.status as string | undefined) ?? 'not_found';
}

/** A bare HTTP server doing what the engine's edge does for a callback: raw body, signature, JSON. */
async function startBaselineServer(pool: MysqlPool, skuOf: (orderId: string) => string): Promise<{ url: string; server: Server }> {
  const auth = createAuth({
    adminToken: SECRETS.STAMPEDE_ADMIN_TOKEN,
    userJwtSecret: SECRETS.STAMPEDE_USER_JWT_SECRET,
    paymentSecret: SECRETS.STAMPEDE_PAYMENT_SECRET,
    now: () => Date.now(),
  });
  const send = (res: ServerResponse, status: number, body: unknown) => {
    const text = JSON.stringify(body);
    res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
    res.end(text);
  };
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    if (req.method === 'GET') return send(res, 200, { ok: true });
    const parts: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size <= BODY_BYTES_MAX) parts.push(chunk);
    });
    req.on('end', () => {
      const raw = Buffer.concat(parts);
      if (size > BODY_BYTES_MAX) return send(res, 400, { error: 'invalid_request', message: 'body too large' });
      const header = req.headers['stampede-signature'];
      if (!auth.verifyPaymentSignature(raw, typeof header === 'string' ? header : undefined)) return send(res, 401, { error: 'unauthorized', message: 'bad signature' });
      let body: { orderId: string; paymentId: string; amountCents: number; status: string };
      try {
        body = JSON.parse(raw.toString('utf8'));
      } catch {
        return send(res, 400, { error: 'invalid_request', message: 'malformed JSON' });
      }
      baselinePay(pool, body, skuOf).then(
        (status) => send(res, status === 'not_found' ? 404 : 200, { orderId: body.orderId, status }),
        (error: unknown) => send(res, 503, { error: 'unavailable', message: String(error) }),
      );
    });
  });
  server.keepAliveTimeout = 65_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server };
}

async function fillBaseline(pool: MysqlPool, skuId: string, orders: number): Promise<OrderRef[]> {
  const refs: OrderRef[] = [];
  const ROWS_PER_INSERT = 2_000;
  for (let from = 0; from < orders; from += ROWS_PER_INSERT) {
    const n = Math.min(ROWS_PER_INSERT, orders - from);
    const batch = Array.from({ length: n }, (_, i) => ({ orderId: `${skuId}-o${from + i}`, amountCents: PRICE_CENTS * QTY }));
    refs.push(...batch);
    await pool.query(`INSERT INTO ${B_ORDERS} (id, sku, qty, amount_cents, status) VALUES ?`, [batch.map((o) => [o.orderId, skuId, QTY, o.amountCents, 'reserved'])]);
  }
  for (let from = 0; from < orders * QTY; from += ROWS_PER_INSERT) {
    const n = Math.min(ROWS_PER_INSERT, orders * QTY - from);
    await pool.query(`INSERT INTO ${B_KEYS} (sku, secret) VALUES ?`, [Array.from({ length: n }, (_, i) => [skuId, `KEY-${skuId}-${from + i}`])]);
  }
  return refs;
}

interface BaselineResult {
  callbacks: CallbackFigures;
  delivered: number;
  keys: { assigned: number; orders: number; minPerOrder: number; maxPerOrder: number; ok: boolean };
  cpu: { self_pct: number; main_pct: number; mariadb_pct: number; nats_pct: number };
  statements_per_order: number;
  flushLogAtCommit: number;
}

async function runBaseline(dbUrl: string): Promise<BaselineResult> {
  const pool = mysql.createPool({ uri: dbUrl, connectionLimit: BASELINE_POOL, waitForConnections: true, queueLimit: 0, connectTimeout: 5_000 });
  let server: Server | undefined;
  let client: Client | undefined;
  try {
    await pool.query(`DROP TABLE IF EXISTS ${B_ORDERS}, ${B_KEYS}`);
    await pool.query(`CREATE TABLE ${B_ORDERS} (
      id           VARCHAR(64)  NOT NULL PRIMARY KEY,
      sku          VARCHAR(64)  NOT NULL,
      qty          INT          NOT NULL,
      amount_cents BIGINT       NOT NULL,
      status       VARCHAR(20)  NOT NULL,
      payment_id   VARCHAR(128) NULL
    ) ENGINE=InnoDB`);
    await pool.query(`CREATE TABLE ${B_KEYS} (
      id       BIGINT       NOT NULL AUTO_INCREMENT PRIMARY KEY,
      sku      VARCHAR(64)  NOT NULL,
      secret   VARCHAR(256) NOT NULL,
      order_id VARCHAR(64)  NULL,
      KEY baseline_pay_keys_free (sku, order_id)
    ) ENGINE=InnoDB`);
    const [flush] = await pool.query<RowDataPacket[]>('SELECT @@innodb_flush_log_at_trx_commit AS f');
    const orders = await fillBaseline(pool, SKU, ORDERS);
    const warm = WARMUP_ORDERS > 0 ? await fillBaseline(pool, WARM_SKU, WARMUP_ORDERS) : [];
    // Open every connection before the clock starts.
    const held = await Promise.all(Array.from({ length: BASELINE_POOL }, () => pool.getConnection()));
    for (const c of held) c.release();
    const started = await startBaselineServer(pool, (orderId) => (orderId.startsWith(`${WARM_SKU}-`) ? WARM_SKU : SKU));
    server = started.server;
    client = new Client();
    if (warm.length > 0) await client.openLoop(started.url, warm, plan(warm.length, RATE_PER_S, DUPLICATE_SHARE, SEED + 1));
    const cpu = new CpuMeter();
    const statementsBefore = await sqlStatements();
    cpu.begin();
    const loop = await client.openLoop(started.url, orders, plan(ORDERS, RATE_PER_S, DUPLICATE_SHARE, SEED));
    const cpuUse = cpu.end();
    const statements = (await sqlStatements()) - statementsBefore;
    const callbacks = callbackFigures(loop);
    const [totals] = await pool.query<RowDataPacket[]>(
      `SELECT COUNT(*) AS assigned, COUNT(DISTINCT order_id) AS orders FROM ${B_KEYS} WHERE sku = ? AND order_id IS NOT NULL`,
      [SKU],
    );
    const [per] = await pool.query<RowDataPacket[]>(
      `SELECT COALESCE(MIN(n), 0) AS mn, COALESCE(MAX(n), 0) AS mx FROM (SELECT COUNT(*) AS n FROM ${B_KEYS} WHERE sku = ? AND order_id IS NOT NULL GROUP BY order_id) t`,
      [SKU],
    );
    const [delivered] = await pool.query<RowDataPacket[]>(`SELECT COUNT(*) AS n FROM ${B_ORDERS} WHERE sku = ? AND status = 'delivered'`, [SKU]);
    const keys = {
      assigned: Number(totals[0]!.assigned),
      orders: Number(totals[0]!.orders),
      minPerOrder: Number(per[0]!.mn),
      maxPerOrder: Number(per[0]!.mx),
      ok: false,
    };
    keys.ok = keys.assigned === ORDERS * QTY && keys.orders === ORDERS && keys.minPerOrder === QTY && keys.maxPerOrder === QTY;
    return { callbacks, delivered: Number(delivered[0]!.n), keys, cpu: cpuUse, statements_per_order: statements / ORDERS, flushLogAtCommit: Number(flush[0]!.f) };
  } finally {
    await client?.close();
    if (server) await new Promise<void>((resolve) => { server!.close(() => resolve()); server!.closeAllConnections(); });
    await pool.end();
  }
}

// ---- output ------------------------------------------------------------------------------------

/** The design answered well below the offered rate: its latencies are then mostly the wait in the client's queue. */
function overloaded(c: CallbackFigures): boolean {
  return c.paid_per_s < OVERLOAD_SHARE * RATE_PER_S;
}

function overloadNote(name: string, c: CallbackFigures): string {
  return overloaded(c)
    ? `  OVERLOADED: ${name} paid ${c.paid_per_s.toFixed(0)}/s of the ${RATE_PER_S}/s offered; the callbacks queued in the client (${CONNECTIONS} connections), so its latencies are mostly that queue\n`
    : '';
}

function callbackLine(c: CallbackFigures): string {
  return (
    `callbacks ${c.first} + ${c.duplicates} repeats, sent ${c.sent_per_s.toFixed(0)}/s, paid ${c.paid_per_s.toFixed(0)}/s; ` +
    `answer p50 ${fmt(c.p50_ms)} p95 ${fmt(c.p95_ms)} p99 ${fmt(c.p99_ms)} max ${fmt(c.max_ms)} ms; errors ${c.errors}; ` +
    `repeats answered unchanged ${c.duplicates_ok}/${c.duplicates}; dispatch lag p99 ${fmt(c.dispatch_lag_p99_ms)} max ${fmt(c.dispatch_lag_max_ms)} ms` +
    (c.firstError ? `; first error: ${c.firstError}` : '')
  );
}

function stampedeLine(s: StampedeResult): string {
  const d = s.toDelivered;
  return (
    `stampede  pay→delivered p50 ${fmt(d.p50_ms)} p95 ${fmt(d.p95_ms)} p99 ${fmt(d.p99_ms)} max ${fmt(d.max_ms)} ms (target p99 ≤ ${TARGET_P99_MS}); ` +
    `delivered ${s.deliveredWithinSettle}/${ORDERS} within ${SETTLE_MS / 1000} s; undelivered paid ${s.undeliveredPaid}; delivered twice ${s.doubleDelivered}; ` +
    `keys ${s.keys.ok ? 'ok' : 'MISMATCH'} (${s.keys.assigned} assigned to ${s.keys.orders} orders, ${s.keys.minPerOrder}..${s.keys.maxPerOrder} per order)`
  );
}

function baselineLine(b: BaselineResult): string {
  const c = b.callbacks;
  return (
    `baseline  pay→delivered (= answer) p50 ${fmt(c.p50_ms)} p95 ${fmt(c.p95_ms)} p99 ${fmt(c.p99_ms)} max ${fmt(c.max_ms)} ms; ` +
    `delivered ${b.delivered}/${ORDERS}; keys ${b.keys.ok ? 'ok' : 'MISMATCH'} (${b.keys.assigned} assigned to ${b.keys.orders} orders, ${b.keys.minPerOrder}..${b.keys.maxPerOrder} per order)`
  );
}

function stageTable(rows: StageRow[]): string[] {
  return ['| stage | p50 ms | p99 ms | mean in slowest 1% ms |', '|---|---|---|---|', ...rows.map((r) => `| ${r.stage} | ${fmt(r.p50_ms)} | ${fmt(r.p99_ms)} | ${fmt(r.tail_mean_ms)} |`)];
}

function printTable(rows: StageRow[]): void {
  for (const r of rows) console.log(`    ${r.stage.padEnd(58)} p50 ${fmt(r.p50_ms).padStart(7)}  p99 ${fmt(r.p99_ms).padStart(7)}  slowest-1% mean ${fmt(r.tail_mean_ms).padStart(7)} ms`);
}

async function main(): Promise<void> {
  const load = loadavg()[0]!;
  const cpuReference = cpuReferenceMs();
  console.log(
    `bench:payments — ${ORDERS} orders × ${QTY} key, ${RATE_PER_S} first callbacks/s open loop (+${Math.round(DUPLICATE_SHARE * 100)}% repeats 1-2 s later), ` +
      `${CONNECTIONS} connections, warm-up ${WARMUP_ORDERS} orders, settle ${SETTLE_MS / 1000} s, trace ${TRACE ? 'on' : 'off'}`,
  );
  console.log(
    `  load average ${load.toFixed(2)} on ${2} cores shared with other work${load >= 1 ? ' — NOT QUIET: other load distorts these figures' : ''}; ` +
      `the server runs on the main thread, the load generator and the subscriber on a worker thread of this process; CPU reference ${cpuReference.toFixed(0)} ms (bench/machine.ts: ~620-700 on a quiet hour)`,
  );
  const started = performance.now();
  const dbUrl = await freshDatabase(MYSQL, DATABASE);
  let stampede: StampedeResult | undefined;
  let baseline: BaselineResult | undefined;
  if (DESIGNS.has('stampede')) {
    stampede = await runStampede(dbUrl);
    console.log(`  setup ${stampede.setup_s.toFixed(1)} s; ${callbackLine(stampede.callbacks)}`);
    console.log(stampedeLine(stampede));
    process.stdout.write(overloadNote('Stampede', stampede.callbacks));
    const s = stampede;
    console.log(
      `  paid event on NATS p50 ${fmt(s.toPaidEvent.p50_ms)} p99 ${fmt(s.toPaidEvent.p99_ms)} ms after the due time; JetStream holds ${s.jetstream.paid} paid / ${s.jetstream.delivered} delivered events of m1 (warm-up included); ` +
        `${s.deliveredMessages} delivered messages heard (republications included)`,
    );
    console.log(
      `  metrics: paid→delivered avg ${fmt(s.metrics.paidToDelivered_avg_ms)} ms, ≤50 ms ${(s.metrics.paidToDelivered_le50_share * 100).toFixed(1)}%; callback avg ${fmt(s.metrics.callback_avg_ms)} ms; ` +
        `journal write avg ${fmt(s.metrics.commit_avg_ms, 2)} ms for ${fmt(s.metrics.commit_events_avg)} events; deliveries ${JSON.stringify(s.metrics.deliveries)}; events published ${JSON.stringify(s.metrics.published)}; conflicts ${s.metrics.conflicts}`,
    );
    console.log(
      `  cpu: this process ${s.cpu.self_pct.toFixed(0)}% (the server's event loop busy ${s.cpu.main_pct.toFixed(0)}%), mariadbd ${s.cpu.mariadb_pct.toFixed(0)}%, nats-server ${s.cpu.nats_pct.toFixed(0)}% of a core; ${fmt(s.statements_per_order)} SQL statements per paid order; event-loop delay p99 ${fmt(s.loop_delay_p99_ms)} max ${fmt(s.loop_delay_max_ms)} ms`,
    );
    if (s.stages && s.answerStages) {
      console.log('  where payment → delivered goes (per order, stamped in the node; stages in order, they add up to the total):');
      printTable(s.stages);
      console.log('  the callback answer and the order.paid event, which leave in parallel with the delivery path:');
      printTable(s.answerStages);
      console.log(`  store calls while measuring (pool wait included); projector writes avg ${fmt(s.projector_batch_rows_avg)} rows, NATS publishes (live and relay) avg ${fmt(s.publish_events_avg)} events:`);
      for (const o of s.ops) console.log(`    ${o.op.padEnd(24)} n ${String(o.n).padStart(6)}  p50 ${fmt(o.p50_ms, 2).padStart(7)}  p99 ${fmt(o.p99_ms, 2).padStart(7)} ms`);
    }
  }
  if (DESIGNS.has('baseline')) {
    baseline = await runBaseline(dbUrl);
    console.log(`  ${callbackLine(baseline.callbacks)}`);
    console.log(baselineLine(baseline));
    process.stdout.write(overloadNote('the baseline', baseline.callbacks));
    console.log(
      `  cpu: this process ${baseline.cpu.self_pct.toFixed(0)}%, mariadbd ${baseline.cpu.mariadb_pct.toFixed(0)}% of a core; ${fmt(baseline.statements_per_order)} SQL statements per paid order; pool ${BASELINE_POOL}; innodb_flush_log_at_trx_commit=${baseline.flushLogAtCommit}`,
    );
  }
  const ratio = stampede && baseline ? stampede.toDelivered.p99_ms / baseline.callbacks.p99_ms : Number.NaN;
  const answerRatio = stampede && baseline ? stampede.callbacks.p99_ms / baseline.callbacks.p99_ms : Number.NaN;
  if (stampede && baseline) {
    console.log(`ratio Stampede / baseline, payment → delivered p99: ${fmt(ratio, 2)}   callback answer p99: ${fmt(answerRatio, 2)}`);
  }
  const r2 = (v: number | undefined) => (v === undefined || !Number.isFinite(v) ? null : +v.toFixed(2));
  const figures = {
    bench: 'payments',
    orders: ORDERS,
    rate_per_s: RATE_PER_S,
    load_avg: +load.toFixed(2),
    cpu_reference_ms: Math.round(cpuReference),
    stampede_paid_per_s: r2(stampede?.callbacks.paid_per_s),
    stampede_answer_p50_ms: r2(stampede?.callbacks.p50_ms),
    stampede_answer_p99_ms: r2(stampede?.callbacks.p99_ms),
    stampede_delivered_p50_ms: r2(stampede?.toDelivered.p50_ms),
    stampede_delivered_p95_ms: r2(stampede?.toDelivered.p95_ms),
    stampede_delivered_p99_ms: r2(stampede?.toDelivered.p99_ms),
    stampede_delivered_max_ms: r2(stampede?.toDelivered.max_ms),
    stampede_delivered_within_settle: stampede?.deliveredWithinSettle ?? null,
    stampede_undelivered_paid: stampede?.undeliveredPaid ?? null,
    stampede_delivered_twice: stampede?.doubleDelivered ?? null,
    stampede_keys_ok: stampede?.keys.ok ?? null,
    stampede_overloaded: stampede ? overloaded(stampede.callbacks) : null,
    stampede_statements_per_order: r2(stampede?.statements_per_order),
    baseline_paid_per_s: r2(baseline?.callbacks.paid_per_s),
    baseline_p50_ms: r2(baseline?.callbacks.p50_ms),
    baseline_p99_ms: r2(baseline?.callbacks.p99_ms),
    baseline_keys_ok: baseline?.keys.ok ?? null,
    baseline_overloaded: baseline ? overloaded(baseline.callbacks) : null,
    ratio_delivered_p99: r2(ratio),
    ratio_answer_p99: r2(answerRatio),
  };
  console.log(`total ${((performance.now() - started) / 1000).toFixed(0)} s`);
  if (process.argv.includes('--write-docs')) writeDocs(stampede, baseline, figures, load, cpuReference);
  console.log(JSON.stringify(figures));
  const broken =
    (stampede && (stampede.undeliveredPaid > 0 || stampede.doubleDelivered > 0 || !stampede.keys.ok || stampede.deliveredWithinSettle < ORDERS)) ||
    (baseline && (!baseline.keys.ok || baseline.delivered < ORDERS));
  if (broken) process.exitCode = 1;
}

function writeDocs(s: StampedeResult | undefined, b: BaselineResult | undefined, figures: object, load: number, cpuReference: number): void {
  const row = (design: string, c: CallbackFigures, d: { p50_ms: number; p95_ms: number; p99_ms: number; max_ms: number }, delivered: string, keys: boolean) =>
    `| ${design} | ${c.paid_per_s.toFixed(0)} | ${fmt(c.p50_ms)} | ${fmt(c.p99_ms)} | ${fmt(d.p50_ms)} | ${fmt(d.p95_ms)} | ${fmt(d.p99_ms)} | ${fmt(d.max_ms)} | ${delivered} | ${keys ? 'ok' : 'MISMATCH'} |`;
  const lines = [
    `Measured ${new Date().toISOString().slice(0, 10)} on this 2-core machine (load average ${load.toFixed(2)} at the start, CPU reference ${cpuReference.toFixed(0)} ms from bench/machine.ts; other load distorts these figures): ` +
      `${ORDERS} orders of one card_key SKU, ${RATE_PER_S} first callbacks/s open loop over HTTP (${CONNECTIONS} keep-alive connections), ` +
      `${Math.round(DUPLICATE_SHARE * 100)}% of the orders paid again 1-2 s later, after a warm-up of ${WARMUP_ORDERS} orders; latencies from each callback's due time.`,
    '',
    '| design | paid/s | answer p50 ms | answer p99 ms | pay→delivered p50 ms | p95 ms | p99 ms | max ms | delivered | keys |',
    '|---|---|---|---|---|---|---|---|---|---|',
  ];
  if (s) lines.push(row('stampede (MariaDB + NATS)', s.callbacks, s.toDelivered, `${s.deliveredWithinSettle}/${ORDERS}, twice: ${s.doubleDelivered}`, s.keys.ok));
  if (b) lines.push(row(`baseline (1 tx per callback, pool ${BASELINE_POOL})`, b.callbacks, b.callbacks, `${b.delivered}/${ORDERS}`, b.keys.ok));
  lines.push('');
  const over = [s && overloaded(s.callbacks) ? 'Stampede' : '', b && overloaded(b.callbacks) ? 'the baseline' : ''].filter(Boolean);
  if (over.length > 0) {
    lines.push(`Overloaded at this rate (paid < ${OVERLOAD_SHARE * 100}% of the offered ${RATE_PER_S}/s): ${over.join(' and ')}; callbacks queued in the client, so those latencies are mostly queueing.`, '');
  }
  if (s && b) {
    lines.push(
      `Stampede / baseline: payment → delivered p99 ${fmt(s.toDelivered.p99_ms / b.callbacks.p99_ms, 2)}, answer p99 ${fmt(s.callbacks.p99_ms / b.callbacks.p99_ms, 2)}. ` +
        `CPU in % of a core: Stampede run — this process ${s.cpu.self_pct.toFixed(0)}, mariadbd ${s.cpu.mariadb_pct.toFixed(0)}, nats-server ${s.cpu.nats_pct.toFixed(0)}; ` +
        `baseline run — this process ${b.cpu.self_pct.toFixed(0)}, mariadbd ${b.cpu.mariadb_pct.toFixed(0)}. ` +
        `SQL statements per paid order: Stampede ${fmt(s.statements_per_order)}, baseline ${fmt(b.statements_per_order)}.`,
      '',
    );
  }
  if (s?.stages && s.answerStages) {
    lines.push('Stampede, where payment → delivered goes (stamped per order in the node; the stages add up to the total):', '', ...stageTable(s.stages), '');
    lines.push('The callback answer and the `order.paid` event (in parallel with the delivery path):', '', ...stageTable(s.answerStages), '');
  }
  lines.push('```json', JSON.stringify(figures), '```');
  writeDocsSection('bench:payments', lines);
}

if (import.meta.url === `file://${process.argv[1]}`) {
  main().catch((error: unknown) => {
    console.error(error);
    process.exit(1);
  });
}
