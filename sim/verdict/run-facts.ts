// The facts of a run the verdict needs, taken from the answers the replayer got: which orders were
// made, refused as sold out, cancelled and paid, and when stock or rules changed. Run times are
// milliseconds since the run started; `wall(ms)` turns one into the engine's clock (same machine).
import { isOrderLine, paymentOf, type RecordedLine } from '../recording/format.ts';
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
  paymentId: string | undefined;
  status: 'succeeded' | 'failed';
  /** Whether the replayer signed it correctly (a recorded bad signature is replayed as one). */
  signed: boolean;
  /** The callback's amount is the order's (a wrong amount changes nothing). */
  amount_ok: boolean;
  answer_status: number;
  /** The order's status in the answer. */
  order_status: string | undefined;
}

export interface RunFacts {
  log: ReplayLog;
  /** Wall-clock ms (engine clock) at run time 0. */
  started_wall_ms: number;
  orders: Map<string, OrderFact>;
  soldOut: SoldOutAnswer[];
  cancels: CancelAnswer[];
  payments: PaymentAnswer[];
  /** Answer times of admin lines that changed stock, per SKU/date key ('*' for a SKU's every date). */
  stockChanges_ms: Map<string, number[]>;
  /** Answer time of the last rule change (PUT/DELETE /v1/limit-rules), if any. */
  lastRuleChange_ms: number | undefined;
  /** The SKU/dates the run touched. */
  stock: { skuId: string; date: string }[];
  /** The order ids answered 201 to the requests of each (buyer, Idempotency-Key, body): one each, by the contract. */
  keyedOrders: Map<string, Set<string>>;
}

type StockTarget = { skuId: string; date: string };

/** The SKU/date an order line asks for. */
function orderTargetOf(line: RecordedLine): StockTarget | undefined {
  const b = line.body as { skuId?: unknown; date?: unknown } | undefined;
  return isOrderLine(line) && b && typeof b.skuId === 'string' && typeof b.date === 'string' ? { skuId: b.skuId, date: b.date } : undefined;
}

/** The SKU/date whose stock an admin line changes: a stock setting, or a card-key upload (date `open`). */
function stockChangeOf(line: RecordedLine): StockTarget | undefined {
  const path = line.path.split('?')[0]!;
  const put = line.method === 'PUT' ? /^\/v1\/skus\/([^/]+)\/stock\/([^/]+)$/.exec(path) : null;
  if (put) return { skuId: decodeURIComponent(put[1]!), date: decodeURIComponent(put[2]!) };
  const keys = line.method === 'POST' ? /^\/v1\/skus\/([^/]+)\/card-keys$/.exec(path) : null;
  return keys ? { skuId: decodeURIComponent(keys[1]!), date: 'open' } : undefined;
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
    stockChanges_ms: new Map(),
    lastRuleChange_ms: undefined,
    stock: stockOfLines(log.lines),
    keyedOrders: new Map(),
  };
  for (const o of log.orders.values()) facts.orders.set(o.orderId, o);

  // First send of each keyed order request (buyer, key, body), whatever it was answered.
  const keyed = log.lines.map((line) =>
    isOrderLine(line) && line.idempotencyKey !== undefined ? `${line.user ?? ''}\n${line.idempotencyKey}\n${JSON.stringify(line.body)}` : undefined,
  );
  const firstSent = new Map<string, number>();
  keyed.forEach((key, n) => {
    const sent = log.answers.get(n)?.sent_ms;
    if (key === undefined || sent === undefined) return;
    const first = firstSent.get(key);
    if (first === undefined || sent < first) firstSent.set(key, sent);
  });
  log.lines.forEach((line, n) => {
    const path = line.path.split('?')[0]!;
    const answer = log.answers.get(n);
    if (isOrderLine(line)) {
      const target = orderTargetOf(line);
      const key = keyed[n];
      const first = key !== undefined ? firstSent.get(key) : undefined;
      const error = answer && (answer.body as { error?: string } | undefined)?.error;
      const made = answer?.status === 201 ? (answer.body as { orderId?: unknown } | undefined)?.orderId : undefined;
      if (key !== undefined && typeof made === 'string') {
        const ids = facts.keyedOrders.get(key);
        if (ids) ids.add(made);
        else facts.keyedOrders.set(key, new Set([made]));
      }
      if (target && answer?.status === 409 && error === 'sold_out') {
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
      if (answer) push(facts.stockChanges_ms, stockKey(changed.skuId, changed.date), answer.answered_ms);
      return;
    }
    if (path.startsWith('/v1/limit-rules/') && (line.method === 'PUT' || line.method === 'DELETE')) {
      if (answer) facts.lastRuleChange_ms = Math.max(facts.lastRuleChange_ms ?? 0, answer.answered_ms);
      return;
    }
    if (line.method === 'POST' && path.endsWith('/cancel') && answer?.orderId !== undefined) {
      facts.cancels.push({ orderId: answer.orderId, status: answer.status, answered_ms: answer.answered_ms });
      return;
    }
    if (line.payment && answer?.orderId !== undefined) {
      const p = paymentOf(line)!;
      facts.payments.push({
        line: n,
        orderId: answer.orderId,
        paymentId: p.paymentId,
        status: p.status,
        signed: line.badSignature !== true,
        amount_ok: p.amountCents === undefined || p.amountCents === log.orders.get(p.orderRef)?.amountCents,
        answer_status: answer.status,
        order_status: (answer.body as { status?: string } | undefined)?.status,
      });
    }
  });
  return facts;
}

function push(map: Map<string, number[]>, key: string, value: number): void {
  const list = map.get(key);
  if (list) list.push(value);
  else map.set(key, [value]);
}
