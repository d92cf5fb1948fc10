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
}

/** The SKU/dates a traffic touches: those of its orders, stock settings and card-key uploads. */
export function stockOfLines(lines: readonly RecordedLine[]): { skuId: string; date: string }[] {
  const stock = new Map<string, { skuId: string; date: string }>();
  for (const line of lines) {
    const path = line.path.split('?')[0]!;
    const b = line.body as { skuId?: unknown; date?: unknown } | undefined;
    if (isOrderLine(line) && b && typeof b.skuId === 'string' && typeof b.date === 'string') stock.set(stockKey(b.skuId, b.date), { skuId: b.skuId, date: b.date });
    const put = /^\/v1\/skus\/([^/]+)\/stock\/([^/]+)$/.exec(path);
    if (put && line.method === 'PUT') {
      const [skuId, date] = [decodeURIComponent(put[1]!), decodeURIComponent(put[2]!)];
      stock.set(stockKey(skuId, date), { skuId, date });
    }
    const keys = /^\/v1\/skus\/([^/]+)\/card-keys$/.exec(path);
    if (keys && line.method === 'POST') {
      const skuId = decodeURIComponent(keys[1]!);
      stock.set(stockKey(skuId, 'open'), { skuId, date: 'open' });
    }
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
    stock: [],
  };
  const stock = new Map<string, { skuId: string; date: string }>();
  const touch = (skuId: string, date: string) => stock.set(stockKey(skuId, date), { skuId, date });
  for (const o of log.orders.values()) facts.orders.set(o.orderId, o);

  log.lines.forEach((line, n) => {
    const path = line.path.split('?')[0]!;
    const answer = log.answers.get(n);
    if (isOrderLine(line)) {
      const b = line.body as { skuId?: unknown; date?: unknown; qty?: unknown } | undefined;
      if (b && typeof b.skuId === 'string' && typeof b.date === 'string') {
        touch(b.skuId, b.date);
        const error = answer && (answer.body as { error?: string } | undefined)?.error;
        if (answer?.status === 409 && error === 'sold_out') {
          facts.soldOut.push({ line: n, key: stockKey(b.skuId, b.date), qty: Number(b.qty), sent_ms: answer.sent_ms, answered_ms: answer.answered_ms });
        }
      }
      return;
    }
    const stockPut = /^\/v1\/skus\/([^/]+)\/stock\/([^/]+)$/.exec(path);
    if (stockPut && line.method === 'PUT') {
      const [skuId, date] = [decodeURIComponent(stockPut[1]!), decodeURIComponent(stockPut[2]!)];
      touch(skuId, date);
      if (answer) push(facts.stockChanges_ms, stockKey(skuId, date), answer.answered_ms);
      return;
    }
    const keys = /^\/v1\/skus\/([^/]+)\/card-keys$/.exec(path);
    if (keys && line.method === 'POST') {
      const skuId = decodeURIComponent(keys[1]!);
      touch(skuId, 'open');
      if (answer) push(facts.stockChanges_ms, stockKey(skuId, 'open'), answer.answered_ms);
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
  facts.stock = [...stock.values()];
  return facts;
}

function push(map: Map<string, number[]>, key: string, value: number): void {
  const list = map.get(key);
  if (list) list.push(value);
  else map.set(key, [value]);
}
