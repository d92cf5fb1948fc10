// The facts of a run the verdict needs, taken from the answers the replayer got: which orders were
// made, refused as sold out, cancelled and paid, and when stock or rules changed. Run times are
// milliseconds since the run started; `wall(ms)` turns one into the engine's clock (same machine).
import type { Rule } from '../../engine/rules.ts';
import { canonicalJson } from '../../http/idempotency.ts';
import { CANCEL_ROUTE, CARD_KEYS_ROUTE, isRoute, routeOf, RULE_ROUTE, SKU_ROUTE, STOCK_ROUTE } from '../recording/api-routes.ts';
import { isOrderLine, paymentIdOf, paymentOf, type RecordedLine } from '../recording/format.ts';
import type { OrderFact, ReplayLog } from '../replay/replayer.ts';
import { stockKey } from './engine-view.ts';

export interface SoldOutAnswer {
  line: number;
  key: string;
  qty: number;
  sent_ms: number;
  answered_ms: number;
  /**
   * The earliest the refusal may have been decided: the send of the first request of the run with the
   * same buyer, Idempotency-Key and body (the engine answers a repeat with the first answer, decided
   * then), or this request's own send.
   */
  decided_from_ms: number;
}

export interface CancelAnswer {
  orderId: string;
  status: number;
  answered_ms: number;
}

export interface PaymentAnswer {
  line: number;
  orderId: string;
  /** As sent (paymentIdOf). */
  paymentId: string;
  status: 'succeeded' | 'failed';
  /** Whether the replayer signed it correctly (a recorded bad signature is replayed as one). */
  signed: boolean;
  /** The callback's amount is the order's (a wrong amount changes nothing). */
  amount_ok: boolean;
  answer_status: number;
  /** The answer's error code, if it was an error. */
  answer_error: string | undefined;
  /** The order's status in the answer. */
  order_status: string | undefined;
  /** When it was sent (run time, ms). */
  sent_ms: number;
  /** When its answer came (run time, ms). */
  answered_ms: number;
}

/** A request of the run that sets a SKU/date's stock: a PUT of its total, or a card-key upload (date `open`). */
export interface StockChange {
  line: number;
  kind: 'total' | 'keys';
  sent_ms: number;
  answered_ms: number;
  /** The answer's status (0: none came). */
  status: number;
  /** The total the answer gives (a PUT answered 2xx). */
  total?: number;
  /** The total the PUT asked for (its body). */
  requested?: number;
  /** The keys the answer says were added (an upload answered 2xx): the stock of `open` grows by as many. */
  added?: number;
}

export interface RuleChange {
  ruleId: string;
  /** The rule it put (a PUT's body); undefined for a DELETE. */
  rule: Rule | undefined;
  sent_ms: number;
  answered_ms: number;
  /** The answer's status; 0 when none came (whether it applied is unknown). */
  status: number;
}

export interface RunFacts {
  log: ReplayLog;
  /** Wall-clock ms (engine clock) at run time 0. */
  started_wall_ms: number;
  orders: Map<string, OrderFact>;
  soldOut: SoldOutAnswer[];
  cancels: CancelAnswer[];
  payments: PaymentAnswer[];
  /** The requests that set stock, per SKU/date key, in line order (the replayer sends them one at a time: admin barriers). */
  stockChanges: Map<string, StockChange[]>;
  /**
   * The SKU/dates the run's answers show the engine has: a stock change answered 2xx, an order
   * answered 201, a sold_out refusal. The verdict must read these; others the traffic names (an order
   * for a SKU that does not exist, refused 404) may not exist at all.
   */
  stockExisting: Set<string>;
  /** Card keys each SKU holds (the latest upload answer's `total`, all keys ever added to it). */
  cardKeys: Map<string, number>;
  /** Per SKU, the card keys the run's uploads answered 2xx sent: its lines' own strings. */
  uploadedKeys: Map<string, Set<string>>;
  /** Per SKU, the card keys of uploads answered 5xx or not at all: stored or not, nobody knows. */
  unsureKeys: Map<string, Set<string>>;
  /** The run's admin rule changes (PUT/DELETE /v1/limit-rules/{ruleId}) and their answers, in line order (admin lines go one at a time). */
  ruleChanges: RuleChange[];
  /** Per SKU, the prices its `PUT /v1/skus/{id}` lines answered 2xx set, in line order (sent and answered: run time). */
  skuPrices: Map<string, { sent_ms: number; answered_ms: number; priceCents: number }[]>;
  /**
   * Per SKU, when the last `PUT /v1/skus/{id}` of the run that changed its attributes was answered 2xx
   * (run time): an order of it made before then was held with attributes the verdict cannot know (it
   * reads the SKU after the run).
   */
  skuChanged_ms: Map<string, number>;
  /** The SKU/dates the run touched. */
  stock: { skuId: string; date: string }[];
  /** The order ids answered 201 to the requests of each (buyer, Idempotency-Key, body): one each, by the contract. */
  keyedOrders: Map<string, Set<string>>;
  /**
   * Per (buyer, Idempotency-Key), every keyed order request answered, in line order, with its body as
   * canonical JSON (the engine hashes bodies so: the same fields in another order are the same body).
   */
  keyedRequests: Map<string, KeyedRequest[]>;
}

export interface KeyedRequest {
  line: number;
  /** The request's body, canonical JSON. */
  body: string;
  /** The answer's status (0: none came). */
  status: number;
}

type StockTarget = { skuId: string; date: string };

/** The SKU/date an order line asks for. */
function orderTargetOf(line: RecordedLine): StockTarget | undefined {
  const b = line.body as { skuId?: unknown; date?: unknown } | undefined;
  return isOrderLine(line) && b && typeof b.skuId === 'string' && typeof b.date === 'string' ? { skuId: b.skuId, date: b.date } : undefined;
}

/** The SKU/date whose stock a line changes: a stock setting, or a card-key upload (date `open`). */
function stockChangeOf(line: RecordedLine): (StockTarget & { kind: StockChange['kind'] }) | undefined {
  if (line.method !== 'PUT' && line.method !== 'POST') return undefined;
  const route = routeOf(line.method, line.path);
  if (route?.template === STOCK_ROUTE && line.method === 'PUT') return { skuId: route.params.skuId!, date: route.params.date!, kind: 'total' };
  if (route?.template === CARD_KEYS_ROUTE && line.method === 'POST') return { skuId: route.params.skuId!, date: 'open', kind: 'keys' };
  return undefined;
}

function numberField(body: unknown, field: string): number | undefined {
  const value = body !== null && typeof body === 'object' ? (body as Record<string, unknown>)[field] : undefined;
  return typeof value === 'number' && Number.isFinite(value) ? value : undefined;
}

/** The SKU/dates a traffic touches: those of its orders, stock settings and card-key uploads. */
export function stockOfLines(lines: readonly RecordedLine[]): StockTarget[] {
  const stock = new Map<string, StockTarget>();
  for (const line of lines) {
    const target = orderTargetOf(line) ?? stockChangeOf(line);
    if (target) stock.set(stockKey(target.skuId, target.date), target);
  }
  return [...stock.values()];
}

export function runFacts(log: ReplayLog, started_wall_ms: number): RunFacts {
  const facts: RunFacts = {
    log,
    started_wall_ms,
    orders: new Map(),
    soldOut: [],
    cancels: [],
    payments: [],
    stockChanges: new Map(),
    stockExisting: new Set(),
    cardKeys: new Map(),
    uploadedKeys: new Map(),
    unsureKeys: new Map(),
    ruleChanges: [],
    skuPrices: new Map(),
    skuChanged_ms: new Map(),
    stock: stockOfLines(log.lines),
    keyedOrders: new Map(),
    keyedRequests: new Map(),
  };
  for (const o of log.orders.values()) {
    facts.orders.set(o.orderId, o);
    facts.stockExisting.add(stockKey(o.skuId, o.date));
  }

  // First send of each keyed order request (buyer, key, body), whatever it was answered. Bodies as
  // canonical JSON, as the engine compares them: the same fields in another order are a repeat.
  const bodies = log.lines.map((line) => (isOrderLine(line) && line.idempotencyKey !== undefined ? canonicalJson(line.body) : undefined));
  const keyed = log.lines.map((line, n) => (bodies[n] !== undefined ? `${line.user ?? ''}\n${line.idempotencyKey!}\n${bodies[n]}` : undefined));
  const firstSent = new Map<string, number>();
  keyed.forEach((key, n) => {
    const sent = log.answers.get(n)?.sent_ms;
    if (key === undefined || sent === undefined) return;
    const first = firstSent.get(key);
    if (first === undefined || sent < first) firstSent.set(key, sent);
  });
  /** Each SKU's attributes as its latest PUT answered 2xx set them (canonical JSON). */
  const skuAttributes = new Map<string, string>();
  log.lines.forEach((line, n) => {
    const answer = log.answers.get(n);
    if (isOrderLine(line)) {
      const target = orderTargetOf(line);
      const key = keyed[n];
      const first = key !== undefined ? firstSent.get(key) : undefined;
      const error = answer && (answer.body as { error?: string } | undefined)?.error;
      const made = answer?.status === 201 ? (answer.body as { orderId?: unknown } | undefined)?.orderId : undefined;
      const body = bodies[n];
      if (body !== undefined && answer) {
        const buyerKey = `${line.user ?? ''}\n${line.idempotencyKey!}`;
        const requests = facts.keyedRequests.get(buyerKey);
        const request: KeyedRequest = { line: n, body, status: answer.status };
        if (requests) requests.push(request);
        else facts.keyedRequests.set(buyerKey, [request]);
      }
      if (key !== undefined && typeof made === 'string') {
        const ids = facts.keyedOrders.get(key);
        if (ids) ids.add(made);
        else facts.keyedOrders.set(key, new Set([made]));
      }
      if (target && answer?.status === 409 && error === 'sold_out') {
        facts.stockExisting.add(stockKey(target.skuId, target.date));
        const qty = Number((line.body as { qty?: unknown }).qty);
        facts.soldOut.push({
          line: n,
          key: stockKey(target.skuId, target.date),
          qty,
          sent_ms: answer.sent_ms,
          answered_ms: answer.answered_ms,
          decided_from_ms: Math.min(answer.sent_ms, first ?? answer.sent_ms),
        });
      }
      return;
    }
    const changed = stockChangeOf(line);
    if (changed) {
      if (!answer) return;
      const key = stockKey(changed.skuId, changed.date);
      const change: StockChange = { line: n, kind: changed.kind, sent_ms: answer.sent_ms, answered_ms: answer.answered_ms, status: answer.status };
      const requested = (line.body as { total?: unknown } | undefined)?.total;
      if (changed.kind === 'total' && typeof requested === 'number') change.requested = requested;
      const keys = (line.body as { keys?: unknown } | undefined)?.keys;
      // Uploads answered 2xx apart from those answered 5xx or not at all (which may or may not hold
      // their keys): a SKU's total past the keys of its 2xx uploads says some came from elsewhere.
      const ok = answer.status >= 200 && answer.status < 300;
      if (changed.kind === 'keys' && (ok || answer.status === 0 || answer.status >= 500) && Array.isArray(keys)) {
        const into = ok ? facts.uploadedKeys : facts.unsureKeys;
        let set = into.get(changed.skuId);
        if (!set) into.set(changed.skuId, (set = new Set()));
        for (const k of keys) if (typeof k === 'string') set.add(k);
      }
      if (answer.status >= 200 && answer.status < 300) {
        facts.stockExisting.add(key);
        const total = numberField(answer.body, 'total');
        if (changed.kind === 'total' && total !== undefined) change.total = total;
        if (changed.kind === 'keys') {
          const added = numberField(answer.body, 'added');
          if (added !== undefined) change.added = added;
          if (total !== undefined) facts.cardKeys.set(changed.skuId, Math.max(facts.cardKeys.get(changed.skuId) ?? 0, total));
        }
      }
      const list = facts.stockChanges.get(key);
      if (list) list.push(change);
      else facts.stockChanges.set(key, [change]);
      return;
    }
    if (line.method === 'PUT' && answer && answer.status >= 200 && answer.status < 300) {
      const sku = routeOf(line.method, line.path);
      if (sku?.template === SKU_ROUTE && typeof sku.params.skuId === 'string') {
        const skuId = sku.params.skuId;
        const attributes = canonicalJson((line.body as { attributes?: unknown } | undefined)?.attributes ?? {});
        const before = skuAttributes.get(skuId);
        skuAttributes.set(skuId, attributes);
        const price = (line.body as { priceCents?: unknown } | undefined)?.priceCents;
        if (typeof price === 'number') {
          const prices = facts.skuPrices.get(skuId) ?? [];
          prices.push({ sent_ms: answer.sent_ms, answered_ms: answer.answered_ms, priceCents: price });
          facts.skuPrices.set(skuId, prices);
        }
        if (before !== undefined && before !== attributes) facts.skuChanged_ms.set(skuId, Math.max(facts.skuChanged_ms.get(skuId) ?? 0, answer.answered_ms));
        return;
      }
    }
    if ((line.method === 'PUT' || line.method === 'DELETE') && isRoute(line.method, line.path, RULE_ROUTE)) {
      const route = routeOf(line.method, line.path);
      const ruleId = route?.params.ruleId;
      // An admin line's answer is kept; a rule request without admin credentials was refused (401/403)
      // and changed nothing.
      if (typeof ruleId === 'string' && line.admin === true) {
        // No answer kept (none came): in flight from the start to the end, as far as the verdict knows.
        facts.ruleChanges.push({
          ruleId,
          rule: line.method === 'PUT' ? (line.body as Rule | undefined) : undefined,
          sent_ms: answer?.sent_ms ?? 0,
          answered_ms: answer?.answered_ms ?? Infinity,
          status: answer?.status ?? 0,
        });
      }
      return;
    }
    if (line.method === 'POST' && isRoute(line.method, line.path, CANCEL_ROUTE) && answer?.orderId !== undefined) {
      facts.cancels.push({ orderId: answer.orderId, status: answer.status, answered_ms: answer.answered_ms });
      return;
    }
    if (line.payment && answer?.orderId !== undefined) {
      const p = paymentOf(line)!;
      facts.payments.push({
        line: n,
        orderId: answer.orderId,
        paymentId: paymentIdOf(p, n),
        status: p.status,
        signed: line.badSignature !== true,
        amount_ok: p.amountCents === undefined || p.amountCents === log.orders.get(p.orderRef)?.amountCents,
        answer_status: answer.status,
        answer_error: (answer.body as { error?: unknown } | undefined)?.error === undefined ? undefined : String((answer.body as { error?: unknown }).error),
        order_status: (answer.body as { status?: string } | undefined)?.status,
        sent_ms: answer.sent_ms,
        answered_ms: answer.answered_ms,
      });
    }
  });
  return facts;
}
