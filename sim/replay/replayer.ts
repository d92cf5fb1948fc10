// Sends a recording's requests to an engine with their original timing (scaled by `speed`, or as
// fast as the concurrency allows with `speed: 'max'`), in file order, which is the order of `t` (the
// parser refuses a `t` that goes backwards; lines of one `t` keep their file order). A recording made
// by the engine lists requests in the order they arrived, `t` their arrival, so one buyer's concurrent
// requests are sent again in the order the engine got them. It acts as every party of
// the recording: it mints the buyers' tokens, uses the admin token, signs payment callbacks, and
// puts the orderId an order line received into the lines that refer to it.
//
// Ordering the timing cannot give: a line that refers to an order waits for that order's answer
// (and is skipped, counted, when the order line got no order) and for the line before it on that
// order; a catalog change (SKU, stock, card keys, rules) waits for every line before it, and every
// later line waits for it, so a sale never starts before its stock is set however fast the replay
// runs. Other admin lines (a gate's redeems, a no-shows pass, ops reads) are not barriers: a day's
// recording holds tens of thousands of redeems, and each one holding up the traffic behind it would
// bend the timing (a redeem keeps its place on its order through the order's own chain).
import { CANCEL_ROUTE, CARD_KEYS_ROUTE, isRoute, routeOf, RULE_ROUTE, SKU_ROUTE, STOCK_ROUTE } from '../recording/api-routes.ts';
import { isOrderLine, isPaymentPath, ORDER_ID_PLACEHOLDER, orderRefOf, paymentIdOf, paymentOf, type RecordedLine, type RecordedOutcome } from '../recording/format.ts';
import type { RequestResult } from '../run/results.ts';
import type { Credentials } from './credentials.ts';
import { routeName } from './routes.ts';
import type { SimAnswer, SimRequest, Transport } from './transport.ts';

export type Speed = number | 'max';

export interface ReplayOptions {
  speed: Speed;
  /** Requests in flight at most; past it the next line waits (and so is late). */
  concurrency_max: number;
  /** Called after each answer, or each request given up on (for a progress bar): `done` requests so far. */
  onAnswer?: (done: number) => void;
  /**
   * Called for each line skipped (it refers to an order line that got no order): never sent, so not
   * a request a progress bar should count (counted as one, the live rate read ~30% high).
   */
  onSkip?: (skipped: number) => void;
  /** Milliseconds since the run started (injected so tests can control it). */
  now_ms?: () => number;
}

/** An order a line received: what the verdict and later lines need of it. */
export interface OrderFact {
  line: number;
  orderId: string;
  user: string;
  skuId: string;
  date: string;
  qty: number;
  amountCents: number;
  /** The answer's `expiresAt` (engine clock, ms since the epoch). */
  expiresAt_ms: number;
  sent_ms: number;
  answered_ms: number;
}

/** What one line's request was about, kept for the verdict. */
export interface LineAnswer {
  line: number;
  /** The order this line acted on, if any (resolved orderRef). */
  orderId?: string;
  status: number;
  body: unknown;
  sent_ms: number;
  answered_ms: number;
}

export interface ReplayLog {
  lines: readonly RecordedLine[];
  /** One per line that was sent, in the order the answers came. */
  results: RequestResult[];
  /** Answers of the lines the verdict reads (orders, cancels, payments, admin), by line. */
  answers: Map<number, LineAnswer>;
  /** Order lines that got an order. */
  orders: Map<number, OrderFact>;
  /** Lines not sent: they referred to an order line that got no order. */
  skipped: number;
  /** Lines with a recorded outcome, and how many of them were answered otherwise when replayed. */
  compared: number;
  mismatched: number;
  /** The first MISMATCHES_KEPT_MAX of those lines. */
  mismatches: { line: number; recorded: RecordedOutcome; replayed: RecordedOutcome }[];
  /** When the replay started, on the caller's clock (ReplayOptions.now_ms): its other times count from there. */
  origin_ms: number;
  /** Run time (ms) when the first line was due and when the last answer came. */
  started_ms: number;
  finished_ms: number;
}

export const MISMATCHES_KEPT_MAX = 1_000;

interface Deferred<T> {
  promise: Promise<T>;
  resolve(value: T): void;
}

function deferred<T>(): Deferred<T> {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

function errorOf(status: number, body: unknown): string | undefined {
  if (status >= 200 && status < 300) return undefined;
  if (body && typeof body === 'object' && typeof (body as { error?: unknown }).error === 'string') return (body as { error: string }).error;
  return undefined;
}

function isAdminLine(line: RecordedLine): boolean {
  return line.admin === true && line.method !== 'GET';
}

/** The catalog-changing routes: what the traffic after such a line depends on. */
const CATALOG_CHANGES: readonly (readonly [method: string, template: string])[] = [
  ['PUT', SKU_ROUTE],
  ['PUT', STOCK_ROUTE],
  ['POST', CARD_KEYS_ROUTE],
  ['PUT', RULE_ROUTE],
  ['DELETE', RULE_ROUTE],
];

/**
 * A line that acts as a barrier: an admin change of SKUs, stock, card keys or rules. Only with the
 * admin token: the same request from a buyer or without credentials is refused and changes nothing.
 */
function isCatalogChange(line: RecordedLine): boolean {
  if (line.admin !== true || line.method === 'GET') return false;
  const template = routeOf(line.method, line.path)?.template;
  return CATALOG_CHANGES.some(([method, t]) => method === line.method && t === template);
}

/**
 * Lines whose answer the verdict reads. Not an admin GET's: a dashboard polling the ops listing of
 * 5,000 orders every few seconds through a replayed day would keep every page it was answered.
 */
function keepAnswer(line: RecordedLine): boolean {
  return isOrderLine(line) || line.payment === true || isAdminLine(line) || isRoute(line.method, line.path, CANCEL_ROUTE);
}

export async function replay(lines: readonly RecordedLine[], transport: Transport, credentials: Credentials, options: ReplayOptions): Promise<ReplayLog> {
  const now = options.now_ms ?? (() => performance.now());
  const origin = now();
  const clock = () => now() - origin;
  const log: ReplayLog = {
    lines,
    results: [],
    answers: new Map(),
    orders: new Map(),
    skipped: 0,
    compared: 0,
    mismatched: 0,
    mismatches: [],
    origin_ms: origin,
    started_ms: 0,
    finished_ms: 0,
  };

  // Only order lines that some later line refers to need a promise of their orderId.
  const orderIds = new Map<number, Deferred<string | undefined>>();
  for (const line of lines) {
    const ref = orderRefOf(line);
    if (ref !== undefined && !orderIds.has(ref)) orderIds.set(ref, deferred());
  }

  /** The last catalog change sent (settled: answered or failed); every later line waits for it. */
  let barrier: Promise<unknown> = Promise.resolve();
  let inFlight = 0;
  let done = 0;
  let slotFree: Deferred<void> | undefined;

  const buildRequest = (n: number, line: RecordedLine, orderId: string | undefined): SimRequest => {
    const headers: Record<string, string> = {};
    let path = line.path;
    if (orderId !== undefined) path = path.split(ORDER_ID_PLACEHOLDER).join(encodeURIComponent(orderId));
    let body: string | undefined;
    if (line.payment) {
      const p = paymentOf(line)!;
      const order = log.orders.get(p.orderRef)!;
      body = JSON.stringify({
        orderId,
        paymentId: paymentIdOf(p, n),
        amountCents: p.amountCents ?? order.amountCents,
        status: p.status,
      });
      headers['stampede-signature'] = credentials.paymentSignature(body, line.badSignature !== true);
    } else if (line.rawBody !== undefined) {
      body = line.rawBody;
    } else if (line.body !== undefined) {
      body = JSON.stringify(line.body);
    }
    // A malformed callback kept as received. One whose body is not JSON is signed over its exact bytes,
    // so it meets the same validation (400 again). One with a JSON body goes unsigned (401): it may
    // have been refused only for its Content-Type, and sent signed as JSON it would pay its order.
    if (!line.payment && isPaymentPath(line) && line.rawBody !== undefined && body !== undefined) {
      headers['stampede-signature'] = credentials.paymentSignature(body, line.badSignature !== true);
    }
    if (body !== undefined) headers['content-type'] = 'application/json';
    if (line.user !== undefined) headers.authorization = `Bearer ${credentials.buyerToken(line.user)}`;
    else if (line.admin) headers.authorization = `Bearer ${credentials.secrets.adminToken}`;
    if (line.idempotencyKey !== undefined) headers['idempotency-key'] = line.idempotencyKey;
    return { method: line.method, path, headers, ...(body !== undefined ? { body } : {}) };
  };

  /** Sends the line once what it waits for is done; false when it is skipped instead. */
  const runLine = async (n: number, line: RecordedLine, waitFor: Promise<unknown>): Promise<boolean> => {
    await waitFor;
    const ref = orderRefOf(line);
    let orderId: string | undefined;
    if (ref !== undefined) {
      orderId = await orderIds.get(ref)!.promise;
      if (orderId === undefined) {
        log.skipped++;
        return false;
      }
    }
    const request = buildRequest(n, line, orderId);
    const sent_ms = clock();
    let answer: SimAnswer;
    try {
      answer = await transport.send(request);
    } catch {
      answer = { status: 0, body: undefined };
    }
    const answered_ms = clock();
    const error = answer.status === 0 ? 'no_answer' : errorOf(answer.status, answer.body);
    log.results.push({ line: n, route: routeName(line.method, line.path), sent_ms, answered_ms, status: answer.status, ...(error ? { error } : {}) });
    if (keepAnswer(line)) log.answers.set(n, { line: n, ...(orderId !== undefined ? { orderId } : {}), status: answer.status, body: answer.body, sent_ms, answered_ms });
    if (isOrderLine(line)) {
      const fact = orderFact(n, line, answer, sent_ms, answered_ms);
      if (fact) log.orders.set(n, fact);
      orderIds.get(n)?.resolve(fact?.orderId);
    }
    if (line.outcome) {
      log.compared++;
      const replayed: RecordedOutcome = { status: answer.status, ...(error ? { error } : {}) };
      if (replayed.status !== line.outcome.status || replayed.error !== line.outcome.error) {
        log.mismatched++;
        if (log.mismatches.length < MISMATCHES_KEPT_MAX) log.mismatches.push({ line: n, recorded: line.outcome, replayed });
      }
    }
    return true;
  };

  const pending: Promise<void>[] = [];
  /**
   * Lines sent since the last catalog change. The next change waits for them and for that change,
   * which itself waited for everything before it: so each line is waited for by one change only,
   * and a recording of many changes replays in linear work (waiting for every line sent so far made
   * it quadratic).
   */
  let sinceBarrier: Promise<void>[] = [];
  /** The last line sent on each referenced order, answered or not: the next one on it waits for it. */
  const lastOnOrder = new Map<number, Promise<unknown>>();
  for (let n = 0; n < lines.length; n++) {
    const line = lines[n]!;
    if (options.speed !== 'max') {
      const due_ms = line.t / options.speed;
      const wait_ms = due_ms - clock();
      if (wait_ms >= 1) await new Promise((r) => setTimeout(r, wait_ms));
    }
    while (inFlight >= options.concurrency_max) {
      slotFree ??= deferred();
      await slotFree.promise;
    }
    inFlight++;
    // Lines on one order keep their recorded order (a cancel before a payment, a payment before a
    // redeem stay so, however late the order's own answer comes); a catalog change (a stock change)
    // waits for every line before it.
    const ref = orderRefOf(line);
    const previous = ref !== undefined ? lastOnOrder.get(ref) : undefined;
    const catalogChange = isCatalogChange(line);
    const waitFor = catalogChange ? Promise.allSettled([barrier, ...sinceBarrier]) : previous ? Promise.all([barrier, previous]) : barrier;
    const task = runLine(n, line, waitFor)
      .then((sent) => {
        if (sent) options.onAnswer?.(++done);
        else options.onSkip?.(log.skipped);
      })
      .finally(() => {
        inFlight--;
        const waiting = slotFree;
        slotFree = undefined;
        waiting?.resolve();
      });
    // An order line nobody answers (a crash in runLine) must not leave its referrers waiting.
    if (orderIds.has(n)) task.catch(() => orderIds.get(n)!.resolve(undefined));
    if (catalogChange) {
      barrier = task.catch(() => undefined);
      sinceBarrier = [];
    } else {
      sinceBarrier.push(task);
    }
    if (ref !== undefined) lastOnOrder.set(ref, task.catch(() => undefined));
    pending.push(task);
  }
  await Promise.all(pending);
  log.finished_ms = clock();
  return log;
}

function orderFact(n: number, line: RecordedLine, answer: SimAnswer, sent_ms: number, answered_ms: number): OrderFact | undefined {
  if (answer.status !== 201 && answer.status !== 200) return undefined;
  const b = answer.body as { orderId?: unknown; skuId?: unknown; date?: unknown; qty?: unknown; amountCents?: unknown; expiresAt?: unknown };
  if (!b || typeof b.orderId !== 'string') return undefined;
  return {
    line: n,
    orderId: b.orderId,
    user: line.user ?? '',
    skuId: String(b.skuId),
    date: String(b.date),
    qty: Number(b.qty),
    amountCents: Number(b.amountCents),
    expiresAt_ms: typeof b.expiresAt === 'string' ? Date.parse(b.expiresAt) : NaN,
    sent_ms,
    answered_ms,
  };
}
