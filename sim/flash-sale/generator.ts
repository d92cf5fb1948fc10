// A synthetic flash sale as recorded traffic: the operator's setup (SKUs, stock, card keys, purchase
// rules), then buyers arriving in a pulse, a ramp or a steady stream, each ordering once; some pay
// (with duplicate and out-of-order callbacks), some cancel (a few pay after cancelling), the rest
// abandon their reservation to expiry; bots hammer the hottest SKU/date. The same options and seed
// give the same traffic, line for line, so a run can be repeated or written as a recording.
import type { Rule } from '../../engine/rules.ts';
import type { RecordedLine } from '../recording/format.ts';
import { SimRandom } from './sim-random.ts';

export type TrafficShape = 'pulse' | 'ramp' | 'steady';

export interface FlashSaleOptions {
  seed: number;
  /** SKUs on sale; the first `cardKeySkus` of them are card-key SKUs (date `open`), the rest tickets. */
  skus: number;
  cardKeySkus: number;
  /** Travel dates of every ticket SKU. */
  dates: string[];
  /** Units per SKU/date (card keys uploaded per card-key SKU). */
  stock: number;
  buyers: number;
  shape: TrafficShape;
  /** Buyers arrive within this span. */
  duration_ms: number;
  /** Shares of buyers who pay and who cancel; the rest abandon (their reservations expire). */
  pay: number;
  cancel: number;
  /** Share of payments whose callback the provider sends again (same paymentId). */
  duplicates: number;
  /** Share of payers whose failed earlier attempt arrives after the success, and of cancellers who pay after cancelling. */
  outOfOrder: number;
  /** Share of buyers who press "buy" twice (same Idempotency-Key). */
  retries: number;
  /** Share of payers who then look at their order. */
  poll: number;
  /** Bots hammering the hottest SKU/date in the first fifth of the sale, each with this many orders. */
  bots: number;
  botRequests: number;
  /** Each order is for 1..qtyMax units. */
  qtyMax: number;
  rules: Rule[];
  priceCents: number;
}

export const DEFAULT_RULES: Rule[] = [{ id: 'sim-per-buyer', groupBy: ['skuId', 'date'], max: { units: 2 } }];

export const FLASH_SALE_DEFAULTS: FlashSaleOptions = {
  seed: 1,
  skus: 3,
  cardKeySkus: 1,
  dates: ['2027-06-01', '2027-06-02'],
  stock: 1_000,
  buyers: 10_000,
  shape: 'pulse',
  duration_ms: 10_000,
  pay: 0.6,
  cancel: 0.1,
  duplicates: 0.1,
  outOfOrder: 0.05,
  retries: 0.05,
  poll: 0.3,
  bots: 5,
  botRequests: 50,
  qtyMax: 2,
  rules: DEFAULT_RULES,
  priceCents: 1_999,
};

/** Card keys per upload request (the contract allows up to 10,000). */
const KEYS_PER_UPLOAD = 5_000;
/** A buyer pays, cancels or looks this long after the order is due (uniform in the span). */
const PAY_DELAY_MS: [number, number] = [200, 2_000];
const CANCEL_DELAY_MS: [number, number] = [100, 1_500];
const POLL_DELAY_MS: [number, number] = [300, 3_000];
const DUPLICATE_DELAY_MS: [number, number] = [0, 800];
const LATE_CALLBACK_DELAY_MS: [number, number] = [50, 500];

interface Draft {
  t: number;
  /** Draft id of this line, when later lines refer to it. */
  id?: number;
  /** Draft id of the order line this one refers to. */
  ref?: number;
  line: Omit<RecordedLine, 't'>;
}

export interface StockTarget {
  skuId: string;
  date: string;
  delivery: 'card_key' | 'ticket';
}

export function saleStock(o: FlashSaleOptions): StockTarget[] {
  const out: StockTarget[] = [];
  for (let s = 0; s < o.skus; s++) {
    if (s < o.cardKeySkus) out.push({ skuId: skuIdOf(s), date: 'open', delivery: 'card_key' });
    else for (const date of o.dates) out.push({ skuId: skuIdOf(s), date, delivery: 'ticket' });
  }
  return out;
}

function skuIdOf(s: number): string {
  return `sim-sku-${s + 1}`;
}

function arrival(rnd: SimRandom, shape: TrafficShape, duration_ms: number): number {
  switch (shape) {
    case 'steady':
      return rnd.float() * duration_ms;
    case 'ramp':
      // Density grows linearly with time.
      return Math.sqrt(rnd.float()) * duration_ms;
    case 'pulse':
      // Most buyers in the first seconds (exponential, mean a tenth of the span), a tail after.
      return Math.min(duration_ms, -Math.log(1 - rnd.float()) * (duration_ms / 10));
  }
}

export function generateFlashSale(o: FlashSaleOptions): RecordedLine[] {
  const rnd = new SimRandom(o.seed);
  const drafts: Draft[] = [];
  let nextId = 0;
  const targets = saleStock(o);

  // Setup: SKUs, stock or card keys, rules. Admin lines run in file order before any later line.
  for (let s = 0; s < o.skus; s++) {
    const cardKeys = s < o.cardKeySkus;
    drafts.push({
      t: 0,
      line: {
        method: 'PUT',
        path: `/v1/skus/${skuIdOf(s)}`,
        admin: true,
        body: {
          name: `Simulated ${cardKeys ? 'game card' : 'ticket'} ${s + 1}`,
          priceCents: o.priceCents,
          merchantId: `sim-merchant-${(s % 2) + 1}`,
          delivery: cardKeys ? 'card_key' : 'ticket',
          attributes: cardKeys ? { region: 'online' } : { venue: `venue-${(s % 3) + 1}`, region: 'north' },
        },
      },
    });
  }
  let keyNumber = 0;
  for (const target of targets) {
    if (target.delivery === 'card_key') {
      for (let uploaded = 0; uploaded < o.stock; uploaded += KEYS_PER_UPLOAD) {
        const n = Math.min(KEYS_PER_UPLOAD, o.stock - uploaded);
        const keys = Array.from({ length: n }, () => `<key ${++keyNumber}>`);
        drafts.push({ t: 0, line: { method: 'POST', path: `/v1/skus/${target.skuId}/card-keys`, admin: true, body: { keys } } });
      }
    } else {
      drafts.push({ t: 0, line: { method: 'PUT', path: `/v1/skus/${target.skuId}/stock/${target.date}`, admin: true, body: { total: o.stock } } });
    }
  }
  for (const rule of o.rules) {
    drafts.push({ t: 0, line: { method: 'PUT', path: `/v1/limit-rules/${encodeURIComponent(rule.id)}`, admin: true, body: rule } });
  }

  // Popularity falls with the SKU/date's rank (Zipf-like): the first is the hot one.
  const weights = targets.map((_, i) => 1 / (i + 1));
  const weightSum = weights.reduce((a, b) => a + b, 0);
  const pick = (): StockTarget => {
    let x = rnd.float() * weightSum;
    for (let i = 0; i < targets.length; i++) {
      x -= weights[i]!;
      if (x < 0) return targets[i]!;
    }
    return targets[targets.length - 1]!;
  };

  for (let b = 0; b < o.buyers; b++) {
    const user = `buyer-${b + 1}`;
    const target = pick();
    const t = arrival(rnd, o.shape, o.duration_ms);
    const body = { skuId: target.skuId, date: target.date, qty: 1 + Math.floor(rnd.float() * o.qtyMax) };
    const key = `k-${user}`;
    const id = nextId++;
    drafts.push({ t, id, line: { method: 'POST', path: '/v1/orders', user, idempotencyKey: key, body } });
    if (rnd.float() < o.retries) drafts.push({ t: t + rnd.between(0, 300), line: { method: 'POST', path: '/v1/orders', user, idempotencyKey: key, body } });
    const fate = rnd.float();
    const amountCents = o.priceCents * body.qty;
    if (fate < o.pay) {
      const paid = t + rnd.between(...PAY_DELAY_MS);
      const paymentId = `pay-${user}`;
      const pay = (at: number, status: 'succeeded' | 'failed', pid: string) =>
        drafts.push({ t: at, ref: id, line: { method: 'POST', path: '/v1/payments/callback', payment: true, body: { orderRef: -1, status, amountCents, paymentId: pid } } });
      pay(paid, 'succeeded', paymentId);
      if (rnd.float() < o.duplicates) pay(paid + rnd.between(...DUPLICATE_DELAY_MS), 'succeeded', paymentId);
      if (rnd.float() < o.outOfOrder) pay(paid + rnd.between(...LATE_CALLBACK_DELAY_MS), 'failed', `${paymentId}-attempt-1`);
      if (rnd.float() < o.poll) drafts.push({ t: paid + rnd.between(...POLL_DELAY_MS), ref: id, line: { method: 'GET', path: '/v1/orders/{orderId}', user } });
    } else if (fate < o.pay + o.cancel) {
      const cancelled = t + rnd.between(...CANCEL_DELAY_MS);
      drafts.push({ t: cancelled, ref: id, line: { method: 'POST', path: '/v1/orders/{orderId}/cancel', user } });
      if (rnd.float() < o.outOfOrder) {
        const late = cancelled + rnd.between(...LATE_CALLBACK_DELAY_MS);
        drafts.push({ t: late, ref: id, line: { method: 'POST', path: '/v1/payments/callback', payment: true, body: { orderRef: -1, status: 'succeeded', amountCents, paymentId: `pay-${user}` } } });
      }
    }
  }

  const hot = targets[0];
  if (hot) {
    for (let b = 0; b < o.bots; b++) {
      const user = `bot-${b + 1}`;
      for (let r = 0; r < o.botRequests; r++) {
        const body = { skuId: hot.skuId, date: hot.date, qty: 1 + Math.floor(rnd.float() * o.qtyMax) };
        drafts.push({ t: rnd.float() * (o.duration_ms / 5), line: { method: 'POST', path: '/v1/orders', user, body } });
      }
    }
  }

  return toLines(drafts);
}

/** Orders the drafts by time (an order before what refers to it) and numbers the references. */
function toLines(drafts: Draft[]): RecordedLine[] {
  const order = drafts.map((d, i) => ({ d, i }));
  order.sort((a, b) => a.d.t - b.d.t || a.i - b.i);
  const lineOfDraft = new Map<number, number>();
  return order.map(({ d }, n) => {
    if (d.id !== undefined) lineOfDraft.set(d.id, n);
    const line: RecordedLine = { t: Math.round(d.t), ...d.line };
    if (d.ref !== undefined) {
      const ref = lineOfDraft.get(d.ref);
      if (ref === undefined) throw new Error('a reference was ordered before its order line');
      if (line.payment) line.body = { ...(line.body as object), orderRef: ref };
      else line.orderRef = ref;
    }
    return line;
  });
}
