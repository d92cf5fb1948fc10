// Proves each invariant of the verdict passes on a consistent run and fails on the one defect it
// exists to catch (oversold, stock reserved without an order, undersold, a lost 201, a broken rule,
// a double delivery or shared card key, a dishonoured callback, a stray 5xx), on hand-made facts
// and engine views, so no check is one that cannot fail.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { RecordedLine } from '../../sim/recording/format.ts';
import type { OrderFact, ReplayLog } from '../../sim/replay/replayer.ts';
import type { RequestResult } from '../../sim/run/results.ts';
import type { EngineView, ListedOrder } from '../../sim/verdict/engine-view.ts';
import { runFacts } from '../../sim/verdict/run-facts.ts';
import { TakenTimeline } from '../../sim/verdict/stock-checks.ts';
import { judge } from '../../sim/verdict/verdict.ts';

const T0 = Date.parse('2026-12-03T10:00:00.000Z');
const iso = (ms: number) => new Date(T0 + ms).toISOString();

interface Scenario {
  lines: RecordedLine[];
  results: RequestResult[];
  answers: ReplayLog['answers'];
  orders: Map<number, OrderFact>;
  listed: ListedOrder[];
  inventory: { total: number; reserved: number; sold: number; available: number };
  rules: EngineView['rules'];
  /** What the buyers of delivered orders are shown; default: what the listing says, each key and code its own. */
  goods?: EngineView['goods'];
}

/** The goods a consistent engine shows for the listed orders: a code per ticket, a string per card key id. */
function goodsOf(listed: ListedOrder[]): NonNullable<EngineView['goods']> {
  const goods: NonNullable<EngineView['goods']> = new Map();
  for (const o of listed) {
    if (o.status !== 'delivered' || !o.delivery) continue;
    if ('tickets' in o.delivery) goods.set(o.orderId, { items: Array.from({ length: o.delivery.tickets }, (_, i) => `T-${o.orderId}-${i}`) });
    else if ('cardKeyIds' in o.delivery) goods.set(o.orderId, { items: o.delivery.cardKeyIds.map((id) => `<key ${id}>`) });
  }
  return goods;
}

/** A small consistent sale of one ticket SKU/date of 3 units: a paid order, a reserved one, a sold-out refusal, a cancel. */
function scenario(): Scenario {
  const lines: RecordedLine[] = [
    { t: 0, method: 'PUT', path: '/v1/skus/s1/stock/2027-01-01', admin: true, body: { total: 3 } },
    { t: 10, method: 'POST', path: '/v1/orders', user: 'u1', body: { skuId: 's1', date: '2027-01-01', qty: 1 } },
    { t: 20, method: 'POST', path: '/v1/orders', user: 'u2', body: { skuId: 's1', date: '2027-01-01', qty: 1 } },
    { t: 30, method: 'POST', path: '/v1/payments/callback', payment: true, body: { orderRef: 1, status: 'succeeded', amountCents: 100, paymentId: 'p1' } },
    { t: 40, method: 'POST', path: '/v1/orders', user: 'u3', body: { skuId: 's1', date: '2027-01-01', qty: 2 } },
    { t: 50, method: 'POST', path: '/v1/orders', user: 'u4', body: { skuId: 's1', date: '2027-01-01', qty: 5 } },
  ];
  const ok = (line: number, status: number, error?: string): RequestResult => ({ line, route: 'r', sent_ms: lines[line]!.t, answered_ms: lines[line]!.t + 1, status, ...(error ? { error } : {}) });
  const results = [ok(0, 200), ok(1, 201), ok(2, 201), ok(3, 200), ok(4, 403, 'limit_exceeded'), ok(5, 409, 'sold_out')];
  const fact = (line: number, orderId: string, user: string): OrderFact => ({ line, orderId, user, skuId: 's1', date: '2027-01-01', qty: 1, amountCents: 100, expiresAt_ms: T0 + 900_000, sent_ms: lines[line]!.t, answered_ms: lines[line]!.t + 1 });
  const orders = new Map([
    [1, fact(1, 'o1', 'u1')],
    [2, fact(2, 'o2', 'u2')],
  ]);
  const answers: ReplayLog['answers'] = new Map([
    [0, { line: 0, status: 200, body: {}, sent_ms: 0, answered_ms: 1 }],
    [1, { line: 1, status: 201, body: { orderId: 'o1' }, sent_ms: 10, answered_ms: 11 }],
    [2, { line: 2, status: 201, body: { orderId: 'o2' }, sent_ms: 20, answered_ms: 21 }],
    [3, { line: 3, orderId: 'o1', status: 200, body: { orderId: 'o1', status: 'paid' }, sent_ms: 30, answered_ms: 31 }],
    [4, { line: 4, status: 403, body: { error: 'limit_exceeded' }, sent_ms: 40, answered_ms: 41 }],
    [5, { line: 5, status: 409, body: { error: 'sold_out' }, sent_ms: 50, answered_ms: 51 }],
  ]);
  const listed = (orderId: string, userId: string, status: ListedOrder['status'], extra: Partial<ListedOrder> = {}): ListedOrder => ({
    orderId, userId, skuId: 's1', date: '2027-01-01', qty: 1, amountCents: 100, status,
    createdAt: iso(10), expiresAt: iso(900_000), updatedAt: iso(40), paymentId: null, deliveries: 0, ...extra,
  });
  return {
    lines,
    results,
    answers,
    orders,
    listed: [listed('o1', 'u1', 'delivered', { paymentId: 'p1', deliveries: 1, delivery: { tickets: 1 } }), listed('o2', 'u2', 'reserved', { createdAt: iso(20) })],
    inventory: { total: 3, reserved: 1, sold: 1, available: 1 },
    rules: [{ id: 'one-each', groupBy: ['skuId'], max: { units: 1 } }],
  };
}

function verdictOf(s: Scenario, margin_ms = 5) {
  const log: ReplayLog = { lines: s.lines, results: s.results, answers: s.answers, orders: s.orders, skipped: 0, compared: 0, mismatched: 0, mismatches: [], origin_ms: 0, started_ms: 0, finished_ms: 60 };
  const view: EngineView = {
    read_at_ms: T0 + 100,
    inventory: new Map([['s1/2027-01-01', s.inventory]]),
    orders: new Map(s.listed.map((o) => [o.orderId, o])),
    rules: s.rules,
    skus: new Map([['s1', { skuId: 's1', delivery: 'ticket' as const, merchantId: 'm1', attributes: {}, priceCents: 100 }]]),
    unreadable: [],
    goods: s.goods ?? goodsOf(s.listed),
  };
  return judge(runFacts(log, T0), view, { clock_margin_ms: margin_ms });
}

/** The run's own answer (201) for an order a test adds to the engine's listing: it was made for a request of the run. */
function answered(s: Scenario, o: ListedOrder): void {
  const line = 1_000 + s.orders.size;
  s.orders.set(line, { line, orderId: o.orderId, user: o.userId, skuId: o.skuId, date: o.date, qty: o.qty, amountCents: o.amountCents, expiresAt_ms: Date.parse(o.expiresAt), sent_ms: 0, answered_ms: 1 });
}

function failed(s: Scenario): string[] {
  return verdictOf(s).checks.filter((c) => !c.passed).map((c) => c.name);
}

describe('the verdict', () => {
  it('passes a consistent run', () => {
    const v = verdictOf(scenario());
    expect(v.checks.filter((c) => !c.passed)).toEqual([]);
    expect(v.passed).toBe(true);
  });

  it('fails an oversold SKU/date', () => {
    const s = scenario();
    s.inventory = { total: 3, reserved: 3, sold: 1, available: -1 };
    s.listed.push({ ...s.listed[1]!, orderId: 'o9', userId: 'u9', qty: 2 });
    expect(failed(s)).toContain('no SKU/date oversold');
  });

  it('fails a SKU/date oversold for a while, even if the end state is within the total', () => {
    const s = scenario();
    // Two more reservations overlap the two orders held (3 units of stock), then end.
    s.listed.push(
      { ...s.listed[1]!, orderId: 'o3', userId: 'u3', status: 'cancelled', createdAt: iso(22), updatedAt: iso(30) },
      { ...s.listed[1]!, orderId: 'o4', userId: 'u4', status: 'expired', createdAt: iso(24), expiresAt: iso(35), updatedAt: iso(35) },
    );
    const oversold = verdictOf(s).checks.find((c) => c.name === 'no SKU/date oversold')!;
    expect([oversold.passed, oversold.violations]).toEqual([false, ['s1/2027-01-01: the orders held 4 units at once of a total of 3 since its last stock change']]);
    // One of them released the very millisecond the other was taken: never more than 3 at once.
    const ok = scenario();
    ok.listed.push(
      { ...ok.listed[1]!, orderId: 'o3', userId: 'u3', status: 'cancelled', createdAt: iso(22), updatedAt: iso(24) },
      { ...ok.listed[1]!, orderId: 'o4', userId: 'u4', status: 'expired', createdAt: iso(24), expiresAt: iso(35), updatedAt: iso(35) },
    );
    for (const o of ok.listed.slice(2)) answered(ok, o);
    expect(failed(ok)).toEqual([]);
  });

  it('judges the time between two stock changes against the total then, and fails a stock set answered with another total', () => {
    // Oversold at 22–30 ms while the total was 3; the stock was raised to 10 at 40 ms.
    const s = scenario();
    s.answers.set(0, { ...s.answers.get(0)!, body: { total: 3 } });
    s.lines.push({ t: 40, method: 'PUT', path: '/v1/skus/s1/stock/2027-01-01', admin: true, body: { total: 10 } });
    s.results.push({ line: 6, route: 'r', sent_ms: 40, answered_ms: 41, status: 200 });
    s.answers.set(6, { line: 6, status: 200, body: { total: 10 }, sent_ms: 40, answered_ms: 41 });
    s.listed.push(
      { ...s.listed[1]!, orderId: 'o3', userId: 'u3', status: 'cancelled', createdAt: iso(22), updatedAt: iso(30) },
      { ...s.listed[1]!, orderId: 'o4', userId: 'u4', status: 'cancelled', createdAt: iso(24), updatedAt: iso(30) },
    );
    for (const o of s.listed.slice(2)) answered(s, o);
    s.inventory = { total: 10, reserved: 1, sold: 1, available: 8 };
    const oversold = verdictOf(s).checks.find((c) => c.name === 'no SKU/date oversold')!;
    expect(oversold.violations).toEqual(['s1/2027-01-01: the orders held 4 units at once of a total of 3 between two stock changes']);
    // Two changes closer together than the clocks' margin (1 → 3 within 2 ms, margin 100 ms): the span
    // between them cannot be placed on the orders' clock, and the orders held later are not judged by it.
    const close = scenario();
    close.answers.set(0, { ...close.answers.get(0)!, body: { total: 1 } });
    close.lines[0] = { ...close.lines[0]!, body: { total: 1 } };
    close.lines.push({ t: 2, method: 'PUT', path: '/v1/skus/s1/stock/2027-01-01', admin: true, body: { total: 3 } });
    close.results.push({ line: 6, route: 'r', sent_ms: 2, answered_ms: 3, status: 200 });
    close.answers.set(6, { line: 6, status: 200, body: { total: 3 }, sent_ms: 2, answered_ms: 3 });
    expect(verdictOf(close, 100).checks.find((c) => c.name === 'no SKU/date oversold')!.violations).toEqual([]);
    // An engine that adds instead of setting: asked 3, answered 6.
    const adding = scenario();
    adding.answers.set(0, { ...adding.answers.get(0)!, body: { total: 6 } });
    adding.inventory = { ...adding.inventory, total: 6, available: 4 };
    expect(verdictOf(adding).checks.find((c) => c.name === 'no SKU/date oversold')!.violations).toEqual(['line 0: s1/2027-01-01: stock set to 3 was answered total 6']);
  });

  it('fails stock reserved without an order, and a reservation left past its expiry', () => {
    const s = scenario();
    s.inventory = { total: 3, reserved: 2, sold: 1, available: 0 };
    expect(failed(s)).toContain('stock accounted for');
    const late = scenario();
    const log: ReplayLog = { lines: late.lines, results: late.results, answers: late.answers, orders: late.orders, skipped: 0, compared: 0, mismatched: 0, mismatches: [], origin_ms: 0, started_ms: 0, finished_ms: 60 };
    const view: EngineView = { read_at_ms: 0, inventory: new Map([['s1/2027-01-01', late.inventory]]), orders: new Map(late.listed.map((o) => [o.orderId, o])), rules: [], skus: new Map([['s1', { skuId: 's1', delivery: 'ticket', merchantId: 'm1', attributes: {}, priceCents: 100 }]]), unreadable: [] };
    const v = judge(runFacts(log, T0), view, { clock_margin_ms: 5, expiredBy_ms: T0 + 1_000_000 });
    expect(v.checks.find((c) => c.name === 'stock accounted for')!.violations[0]).toMatch(/o2 .* still reserved/);
  });

  it('fails a sold_out answer while the stock it asked for was free all the time it was decided', () => {
    const s = scenario();
    s.inventory = { total: 10, reserved: 1, sold: 1, available: 8 };
    const undersold = verdictOf(s).checks.find((c) => c.name === 'no SKU/date undersold')!;
    expect(undersold.passed).toBe(false);
    expect(undersold.violations).toEqual(['line 5: s1/2027-01-01 answered sold_out for 5, yet at most 2 of 10 units were taken while it was decided']);
    // An order holding 7 units while the refusal was decided (cancelled after it) explains it.
    const held = scenario();
    held.inventory = { total: 10, reserved: 1, sold: 1, available: 8 };
    held.listed.push({ ...held.listed[1]!, orderId: 'o9', userId: 'u9', qty: 7, status: 'cancelled', createdAt: iso(45), updatedAt: iso(55) });
    expect(failed(held)).not.toContain('no SKU/date undersold');
    // Released before the refusal was sent, it does not.
    const early = scenario();
    early.inventory = { total: 10, reserved: 1, sold: 1, available: 8 };
    early.listed.push({ ...early.listed[1]!, orderId: 'o9', userId: 'u9', qty: 7, status: 'cancelled', createdAt: iso(25), updatedAt: iso(35) });
    expect(failed(early)).toContain('no SKU/date undersold');
  });

  it('judges a sold_out answer sent right after the setup (the admin barrier had the stock set before it was sent), with the real clock margin', () => {
    // 3 units, 2 taken (o1, o2): a refusal of 1 unit at 50 ms is an undersell, however close to the stock's setting at 0-1 ms.
    const s = scenario();
    s.lines[5] = { ...s.lines[5]!, body: { skuId: 's1', date: '2027-01-01', qty: 1 } };
    const undersold = verdictOf(s, 1_000).checks.find((c) => c.name === 'no SKU/date undersold')!;
    expect([undersold.passed, undersold.violations]).toEqual([false, ['line 5: s1/2027-01-01 answered sold_out for 1, yet at most 2 of 3 units were taken while it was decided']]);
    // For 2 units it was right.
    const right = scenario();
    right.lines[5] = { ...right.lines[5]!, body: { skuId: 's1', date: '2027-01-01', qty: 2 } };
    expect(failed(right)).toEqual([]);
  });

  it('judges a sold_out answer against the total in force while it was in flight, not against a later one', () => {
    // The stock is set to 3 (the answer says so); a refusal of 1 unit at 50 ms while 2 are taken; later the
    // total is lowered to 2: the refusal was an undersell all the same.
    const lowered = (qty: number, later: number) => {
      const s = scenario();
      s.answers.set(0, { line: 0, status: 200, body: { skuId: 's1', date: '2027-01-01', total: 3, reserved: 0, sold: 0, available: 3 }, sent_ms: 0, answered_ms: 1 });
      s.lines[5] = { ...s.lines[5]!, body: { skuId: 's1', date: '2027-01-01', qty } };
      s.lines.push({ t: 60, method: 'PUT', path: '/v1/skus/s1/stock/2027-01-01', admin: true, body: { total: later } });
      s.results.push({ line: 6, route: 'r', sent_ms: 60, answered_ms: 61, status: 200 });
      s.answers.set(6, { line: 6, status: 200, body: { skuId: 's1', date: '2027-01-01', total: later, reserved: 1, sold: 1, available: later - 2 }, sent_ms: 60, answered_ms: 61 });
      s.inventory = { total: later, reserved: 1, sold: 1, available: later - 2 };
      return s;
    };
    const undersold = verdictOf(lowered(1, 2), 1_000).checks.find((c) => c.name === 'no SKU/date undersold')!;
    expect([undersold.passed, undersold.violations]).toEqual([false, ['line 5: s1/2027-01-01 answered sold_out for 1, yet at most 2 of 3 units were taken while it was decided']]);
    // A refusal of 2 units was right then (1 free of 3), though the total was raised to 10 after it.
    expect(failed(lowered(2, 10))).toEqual([]);
    // A stock change in flight at the same time as the refusal: the total then is not known, it is not judged.
    const together = lowered(1, 2);
    together.answers.set(6, { ...together.answers.get(6)!, sent_ms: 45, answered_ms: 61 });
    const unjudged = verdictOf(together, 1_000).checks.find((c) => c.name === 'no SKU/date undersold')!;
    expect(unjudged.passed).toBe(true);
    expect(unjudged.detail).toMatch(/^0 of 1 sold_out answers judged/);
  });

  it('judges a repeated keyed request\'s sold_out from when the first was sent: the engine answers a repeat with the first answer', () => {
    // 10 units; o9 holds 7 of them from 3 to 30. u4 asks for 5 with key k4 at 5 (sold out then, rightly),
    // and again with the same key and body at 50, when 8 are free: the engine replays the first answer.
    const repeated = (key: string) => {
      const s = scenario();
      s.inventory = { total: 10, reserved: 1, sold: 1, available: 8 };
      s.listed.push({ ...s.listed[1]!, orderId: 'o9', userId: 'u9', qty: 7, status: 'cancelled', createdAt: iso(3), updatedAt: iso(30) });
      s.lines[5] = { ...s.lines[5]!, idempotencyKey: key };
      s.lines.push({ t: 5, method: 'POST', path: '/v1/orders', user: 'u4', idempotencyKey: 'k4', body: { skuId: 's1', date: '2027-01-01', qty: 5 } });
      s.results.push({ line: 6, route: 'r', sent_ms: 5, answered_ms: 6, status: 409, error: 'sold_out' });
      s.answers.set(6, { line: 6, status: 409, body: { error: 'sold_out' }, sent_ms: 5, answered_ms: 6 });
      return s;
    };
    expect(failed(repeated('k4'))).not.toContain('no SKU/date undersold');
    // Another key (or body) is a new request, decided when it was sent: that refusal is an undersell.
    const other = verdictOf(repeated('k5')).checks.find((c) => c.name === 'no SKU/date undersold')!;
    expect(other.violations).toEqual(['line 5: s1/2027-01-01 answered sold_out for 5, yet at most 2 of 10 units were taken while it was decided']);
  });

  it('fails an order the engine made that no request was answered 201 with (a request answered with an error changed something)', () => {
    const s = scenario();
    s.listed.push({ ...s.listed[1]!, orderId: 'o-ghost', userId: 'u7', createdAt: iso(45) });
    s.inventory = { total: 3, reserved: 2, sold: 1, available: 0 };
    const check = verdictOf(s).checks.find((c) => c.name === 'every 201 is an order')!;
    expect([check.passed, check.violations]).toEqual([false, ['order o-ghost (u7 s1/2027-01-01 ×1) was made, but no request of the run was answered 201 with it']]);
  });

  it('fails a 201 the engine does not list', () => {
    const s = scenario();
    s.listed = s.listed.filter((o) => o.orderId !== 'o2');
    s.inventory = { total: 3, reserved: 0, sold: 1, available: 2 };
    expect(failed(s)).toContain('every 201 is an order');
  });

  it('fails a buyer whose orders break a rule', () => {
    const s = scenario();
    s.listed.push({ ...s.listed[1]!, orderId: 'o3', userId: 'u2', createdAt: iso(25) });
    s.inventory = { total: 3, reserved: 2, sold: 1, available: 0 };
    const v = verdictOf(s);
    const rules = v.checks.find((c) => c.name === 'purchase rules respected')!;
    expect(rules.passed).toBe(false);
    expect(rules.violations[0]).toContain('buyer u2: order o3 broke rule one-each (skuId=s1): 2 units > 1');
    // Cancelled before the second order was made: it no longer counted.
    const ok = scenario();
    ok.listed[1] = { ...ok.listed[1]!, status: 'cancelled', updatedAt: iso(22) };
    ok.listed.push({ ...ok.listed[1]!, orderId: 'o3', status: 'reserved', createdAt: iso(25), updatedAt: iso(25) });
    expect(failed(ok)).not.toContain('purchase rules respected');
    // Cancelled, then paid late (refund_required: its updatedAt is the payment's): it stopped counting
    // at its cancel, which its history gives (endedAt), not at the late payment.
    const late = scenario();
    late.listed[1] = { ...late.listed[1]!, status: 'refund_required', expiresAt: iso(22), updatedAt: iso(60), endedAt: iso(22) };
    late.listed.push({ ...late.listed[1]!, orderId: 'o3', status: 'reserved', createdAt: iso(25), updatedAt: iso(25), endedAt: undefined });
    late.inventory = { total: 3, reserved: 1, sold: 1, available: 1 };
    answered(late, late.listed[2]!);
    expect(failed(late)).toEqual([]);
  });

  it('judges each order by the rules in force when it was made: a rule deleted at the end still judges the orders before it; one put mid-run only those after', async () => {
    const withChanges = (changes: { t: number; method: 'PUT' | 'DELETE'; status: number; rule?: object }[], finalRules: EngineView['rules']) => {
      const s = scenario();
      s.listed.push({ ...s.listed[1]!, orderId: 'o3', userId: 'u2', createdAt: iso(25) });
      answered(s, s.listed.at(-1)!);
      s.inventory = { total: 3, reserved: 2, sold: 1, available: 0 };
      s.rules = finalRules;
      for (const c of changes) {
        const line = s.lines.length;
        s.lines.push({ t: c.t, method: c.method, path: '/v1/limit-rules/cap', admin: true, ...(c.rule ? { body: c.rule } : {}) });
        s.results.push({ line, route: 'r', sent_ms: c.t, answered_ms: c.t + 1, status: c.status });
        s.answers.set(line, { line, status: c.status, body: {}, sent_ms: c.t, answered_ms: c.t + 1 });
      }
      return verdictOf(s).checks.find((c) => c.name === 'purchase rules respected')!;
    };
    const cap = { id: 'cap', groupBy: ['skuId'], max: { units: 1 } };
    // Put before the orders, deleted after them (a teardown): u2's two orders broke it meanwhile.
    const teardown = withChanges([{ t: 1, method: 'PUT', status: 200, rule: cap }, { t: 55, method: 'DELETE', status: 204 }], []);
    expect(teardown.violations).toEqual(['buyer u2: order o3 broke rule cap (skuId=s1): 2 units > 1']);
    // Put again, the same, between the orders: still judged.
    expect(withChanges([{ t: 1, method: 'PUT', status: 200, rule: cap }, { t: 22, method: 'PUT', status: 200, rule: cap }], [cap]).violations).toHaveLength(1);
    // Put after the second order was made: no order was made under it.
    const late = withChanges([{ t: 30, method: 'PUT', status: 200, rule: cap }], [cap]);
    expect([late.passed, late.violations]).toEqual([true, []]);
    // Refused (400): it changed nothing, so the rule is as the engine lists it after the run, all along.
    expect(withChanges([{ t: 1, method: 'PUT', status: 400, rule: { ...cap, max: { units: 9 } } }], []).passed).toBe(true);
    expect(withChanges([{ t: 1, method: 'PUT', status: 400, rule: { ...cap, max: { units: 9 } } }], [cap]).violations).toHaveLength(1);
    // In flight while the second order was made (sent at 24, answered at 25 + 1): not judged by it.
    const inFlight = withChanges([{ t: 1, method: 'PUT', status: 200, rule: { ...cap, max: { units: 5 } } }, { t: 24, method: 'PUT', status: 200, rule: cap }], [cap]);
    expect(inFlight.passed).toBe(true);
  });

  it('fails two orders of one buyer made in the same millisecond that both still count, and not one of them cancelled', () => {
    // The typical race: parallel requests granted inside one millisecond. Both still count, so the
    // later was granted while the earlier was held.
    const s = scenario();
    s.listed.push({ ...s.listed[1]!, orderId: 'o3', userId: 'u2', createdAt: s.listed[1]!.createdAt });
    s.inventory = { total: 3, reserved: 2, sold: 1, available: 0 };
    const rules = verdictOf(s).checks.find((c) => c.name === 'purchase rules respected')!;
    expect(rules.passed).toBe(false);
    expect(rules.violations[0]).toContain('2 units > 1');
    // One of them cancelled: which came first is unknown (cancelled, then the other made, in one ms).
    const ok = scenario();
    ok.listed[1] = { ...ok.listed[1]!, status: 'cancelled', updatedAt: ok.listed[1]!.createdAt };
    ok.listed.push({ ...ok.listed[1]!, orderId: 'o3', status: 'reserved', updatedAt: ok.listed[1]!.createdAt });
    ok.inventory = { total: 3, reserved: 1, sold: 1, available: 1 };
    answered(ok, ok.listed[2]!);
    expect(failed(ok)).not.toContain('purchase rules respected');
  });

  it('fails an order taken from a buyer past a no-show maximum, not one taken before the no-show', () => {
    const s = scenario();
    s.rules = [{ id: 'no-show', max: { noShows: 1 } }];
    // u1's delivered order became a no-show at 15 ms; u1's second order was created at 30 ms.
    s.listed[0] = { ...s.listed[0]!, visit: { kind: 'no_show', at: iso(15) } };
    s.listed.push({ ...s.listed[1]!, orderId: 'o7', userId: 'u1', createdAt: iso(30) });
    s.inventory = { total: 3, reserved: 2, sold: 1, available: 0 };
    const rules = verdictOf(s).checks.find((c) => c.name === 'purchase rules respected')!;
    expect(rules.violations).toEqual(['buyer u1: order o7 was taken with 1 no-shows, rule no-show allows fewer than 1']);
    const before = scenario();
    before.rules = [{ id: 'no-show', max: { noShows: 1 } }];
    before.listed[0] = { ...before.listed[0]!, visit: { kind: 'no_show', at: iso(35) } };
    before.listed.push({ ...before.listed[1]!, orderId: 'o7', userId: 'u1', createdAt: iso(30) });
    before.inventory = { total: 3, reserved: 2, sold: 1, available: 0 };
    expect(failed(before)).not.toContain('purchase rules respected');
  });

  it('fails a double delivery, a card key given to two orders, and a paid order never delivered', () => {
    const twice = scenario();
    twice.listed[0] = { ...twice.listed[0]!, deliveries: 2 };
    expect(failed(twice)).toContain('every paid order delivered exactly once');
    const shared = scenario();
    shared.listed[0] = { ...shared.listed[0]!, delivery: { cardKeyIds: [7] } };
    shared.listed.push({ ...shared.listed[0]!, orderId: 'o5', userId: 'u5', delivery: { cardKeyIds: [7] } });
    shared.inventory = { total: 3, reserved: 1, sold: 2, available: 0 };
    expect(verdictOf(shared).checks.find((c) => c.name === 'every paid order delivered exactly once')!.violations).toContain('card key #7 went to o1 and to o5');
    const stuck = scenario();
    stuck.listed[0] = { ...stuck.listed[0]!, status: 'paid', deliveries: 0, delivery: undefined };
    expect(failed(stuck)).toContain('every paid order delivered exactly once');
  });

  it('fails a ticket code or card key shown to two orders, the wrong number shown, and a key no upload held, as the buyers read them', () => {
    const check = (s: Scenario) => verdictOf(s).checks.find((c) => c.name === 'card keys and ticket codes each to one order')!;
    const two = () => {
      const s = scenario();
      s.listed[1] = { ...s.listed[1]!, status: 'delivered', paymentId: 'p2', deliveries: 1, delivery: { tickets: 1 } };
      s.lines.push({ t: 32, method: 'POST', path: '/v1/payments/callback', payment: true, body: { orderRef: 2, status: 'succeeded', amountCents: 100, paymentId: 'p2' } });
      s.results.push({ line: 6, route: 'r', sent_ms: 32, answered_ms: 33, status: 200 });
      s.answers.set(6, { line: 6, orderId: 'o2', status: 200, body: { orderId: 'o2', status: 'delivered' }, sent_ms: 32, answered_ms: 33 });
      s.inventory = { total: 3, reserved: 0, sold: 2, available: 1 };
      return s;
    };
    const fine = check(two());
    expect([fine.passed, fine.detail]).toEqual([true, '2 delivered orders read as their buyers see them: 0 card keys and 2 ticket codes, each shown to one order']);
    const sameCode = two();
    sameCode.goods = new Map([['o1', { items: ['T-1'] }], ['o2', { items: ['T-1'] }]]);
    expect(check(sameCode).violations).toEqual(['o1 and o2 are shown the same ticket code']);
    const wrongCount = two();
    wrongCount.goods = new Map([['o1', { items: ['T-1', 'T-2'] }], ['o2', { items: ['T-3'] }]]);
    expect(check(wrongCount).violations).toEqual(["o1's buyer is shown 2 ticket codes for qty 1"]);
    const unread = two();
    unread.goods = new Map([['o1', { unreadable: 'o1 is listed delivered, but its buyer\'s GET answered 404' }]]);
    expect(check(unread).violations).toEqual(["o1 is listed delivered, but its buyer's GET answered 404", 'o2 is delivered, but what its buyer is shown was not read']);

    // Card keys: two orders given distinct key ids whose strings are the same key, or a key no upload held.
    const keyed = (total: number, goods: [string, string[]][], unsure: string[] = []) => {
      const lines: RecordedLine[] = [
        { t: 0, method: 'POST', path: '/v1/skus/k1/card-keys', admin: true, body: { keys: ['<key 1>', '<key 2>'] } },
        { t: 10, method: 'POST', path: '/v1/orders', user: 'u1', body: { skuId: 'k1', date: 'open', qty: 1 } },
        { t: 12, method: 'POST', path: '/v1/orders', user: 'u2', body: { skuId: 'k1', date: 'open', qty: 1 } },
        // An upload answered 503 (its keys stored or not: its stock change was refused).
        ...(unsure.length > 0 ? [{ t: 14, method: 'POST', path: '/v1/skus/k1/card-keys', admin: true, body: { keys: unsure } } as RecordedLine] : []),
      ];
      const results: RequestResult[] = lines.map((l, line) => ({ line, route: 'r', sent_ms: l.t, answered_ms: l.t + 1, status: line === 0 ? 200 : line === 3 ? 503 : 201 }));
      const answers: ReplayLog['answers'] = new Map([
        [0, { line: 0, status: 200, body: { added: 2, total }, sent_ms: 0, answered_ms: 1 }],
        [1, { line: 1, status: 201, body: { orderId: 'o1' }, sent_ms: 10, answered_ms: 11 }],
        [2, { line: 2, status: 201, body: { orderId: 'o2' }, sent_ms: 12, answered_ms: 13 }],
        ...(unsure.length > 0 ? [[3, { line: 3, status: 503, body: { error: 'overloaded' }, sent_ms: 14, answered_ms: 15 }] as const] : []),
      ]);
      const fact = (line: number, orderId: string, user: string) => ({ line, orderId, user, skuId: 'k1', date: 'open', qty: 1, amountCents: 0, expiresAt_ms: T0 + 900_000, sent_ms: line, answered_ms: line + 1 });
      const log: ReplayLog = { lines, results, answers, orders: new Map([[1, fact(1, 'o1', 'u1')], [2, fact(2, 'o2', 'u2')]]), skipped: 0, compared: 0, mismatched: 0, mismatches: [], origin_ms: 0, started_ms: 0, finished_ms: 30 };
      const order = (orderId: string, userId: string, id: number): ListedOrder => ({ orderId, userId, skuId: 'k1', date: 'open', qty: 1, amountCents: 0, status: 'delivered', createdAt: iso(10), expiresAt: iso(900_000), updatedAt: iso(20), paymentId: 'free', deliveries: 1, delivery: { cardKeyIds: [id] } });
      const view: EngineView = {
        read_at_ms: T0 + 100,
        inventory: new Map([['k1/open', { total, reserved: 0, sold: 2, available: total - 2 }]]),
        orders: new Map([['o1', order('o1', 'u1', 1)], ['o2', order('o2', 'u2', 2)]]),
        rules: [],
        skus: new Map([['k1', { skuId: 'k1', delivery: 'card_key' as const, merchantId: 'm1', attributes: {}, priceCents: 0 }]]),
        unreadable: [],
        goods: new Map(goods.map(([orderId, items]) => [orderId, { items }])),
      };
      return judge(runFacts(log, T0), view, { clock_margin_ms: 5 }).checks.find((c) => c.name === 'card keys and ticket codes each to one order')!.violations;
    };
    expect(keyed(2, [['o1', ['<key 1>']], ['o2', ['<key 2>']]])).toEqual([]);
    expect(keyed(2, [['o1', ['<key 1>']], ['o2', ['<key 1>']]])).toEqual(['o1 and o2 are shown the same card key']);
    expect(keyed(2, [['o1', ['<key 1>']], ['o2', ['garbled']]])).toEqual(["o2's buyer is shown a card key no upload of k1 held"]);
    // The SKU holds keys from before the run (its total is more than the run uploaded): those are unknown here.
    expect(keyed(5, [['o1', ['<key 1>']], ['o2', ['older key']]])).toEqual([]);
    // A key of an upload answered 503 may be stored: shown, it is no failure.
    expect(keyed(2, [['o1', ['<key 1>']], ['o2', ['<key 3>']]], ['<key 3>'])).toEqual([]);
  });

  it('notes a paid card-key order waiting for keys the pool does not have, and fails one the pool could have served', () => {
    // One card key uploaded; an order of 2 keys paid: it waits for an upload (the contract's "awaiting delivery").
    const awaiting = (keysTotal: number) => {
      const lines: RecordedLine[] = [
        { t: 0, method: 'POST', path: '/v1/skus/k1/card-keys', admin: true, body: { keys: ['<key 1>'] } },
        { t: 10, method: 'POST', path: '/v1/orders', user: 'u1', body: { skuId: 'k1', date: 'open', qty: 2 } },
        { t: 20, method: 'POST', path: '/v1/payments/callback', payment: true, body: { orderRef: 1, status: 'succeeded', amountCents: 200, paymentId: 'p1' } },
      ];
      const results: RequestResult[] = lines.map((l, line) => ({ line, route: 'r', sent_ms: l.t, answered_ms: l.t + 1, status: line === 1 ? 201 : 200 }));
      const answers: ReplayLog['answers'] = new Map([
        [0, { line: 0, status: 200, body: { added: 1, total: keysTotal }, sent_ms: 0, answered_ms: 1 }],
        [1, { line: 1, status: 201, body: { orderId: 'o1' }, sent_ms: 10, answered_ms: 11 }],
        [2, { line: 2, orderId: 'o1', status: 200, body: { orderId: 'o1', status: 'paid' }, sent_ms: 20, answered_ms: 21 }],
      ]);
      const orders = new Map([[1, { line: 1, orderId: 'o1', user: 'u1', skuId: 'k1', date: 'open', qty: 2, amountCents: 200, expiresAt_ms: T0 + 900_000, sent_ms: 10, answered_ms: 11 }]]);
      const log: ReplayLog = { lines, results, answers, orders, skipped: 0, compared: 0, mismatched: 0, mismatches: [], origin_ms: 0, started_ms: 0, finished_ms: 30 };
      const view: EngineView = {
        read_at_ms: T0 + 100,
        inventory: new Map([['k1/open', { total: 3, reserved: 0, sold: 2, available: 1 }]]),
        orders: new Map([['o1', { orderId: 'o1', userId: 'u1', skuId: 'k1', date: 'open', qty: 2, amountCents: 200, status: 'paid', createdAt: iso(10), expiresAt: iso(900_000), updatedAt: iso(20), paymentId: 'p1', deliveries: 0 }]]),
        rules: [],
        skus: new Map([['k1', { skuId: 'k1', delivery: 'card_key' as const, merchantId: 'm1', attributes: {}, priceCents: 100 }]]),
        unreadable: [],
      };
      return judge(runFacts(log, T0), view, { clock_margin_ms: 5 }).checks.find((c) => c.name === 'every paid order delivered exactly once')!;
    };
    const waiting = awaiting(1);
    expect(waiting.passed, waiting.violations.join('\n')).toBe(true);
    expect(waiting.detail).toContain('1 awaiting card keys');
    // With 5 keys in the pool the order could have had its 2: never delivered is a failure.
    const stuck = awaiting(5);
    expect([stuck.passed, stuck.violations]).toEqual([false, ['o1 (k1/open) is paid but was never delivered (5 card keys of k1 unassigned)']]);
  });

  it('fails a cancel answered 200 whose order is not cancelled, and one Idempotency-Key answered two orders', () => {
    const cancelled = scenario();
    cancelled.lines.push({ t: 55, method: 'POST', path: '/v1/orders/{orderId}/cancel', user: 'u2', orderRef: 2 });
    cancelled.results.push({ line: 6, route: 'r', sent_ms: 55, answered_ms: 56, status: 200 });
    cancelled.answers.set(6, { line: 6, orderId: 'o2', status: 200, body: { orderId: 'o2', status: 'cancelled' }, sent_ms: 55, answered_ms: 56 });
    cancelled.listed[1] = { ...cancelled.listed[1]!, status: 'cancelled', updatedAt: iso(56) };
    cancelled.inventory = { total: 3, reserved: 0, sold: 1, available: 2 };
    expect(failed(cancelled)).toEqual([]);
    const paidAfter = scenario();
    paidAfter.lines.push(cancelled.lines[6]!);
    paidAfter.results.push(cancelled.results[6]!);
    paidAfter.answers.set(6, cancelled.answers.get(6)!);
    paidAfter.listed[1] = { ...paidAfter.listed[1]!, status: 'paid', paymentId: 'p9', updatedAt: iso(57) };
    paidAfter.inventory = { total: 3, reserved: 0, sold: 2, available: 1 };
    const v = verdictOf(paidAfter).checks.find((c) => c.name === 'cancels and Idempotency-Keys honoured')!;
    expect([v.passed, v.violations[0]]).toEqual([false, 'o2 was answered cancelled, and is now paid']);

    const twice = scenario();
    const keyed = { t: 60, method: 'POST', path: '/v1/orders', user: 'u5', idempotencyKey: 'k-5', body: { skuId: 's1', date: '2027-01-01', qty: 1 } } as RecordedLine;
    twice.lines.push(keyed, { ...keyed, t: 70 });
    for (const [line, orderId] of [[6, 'o5'], [7, 'o6']] as const) {
      twice.results.push({ line, route: 'r', sent_ms: twice.lines[line]!.t, answered_ms: twice.lines[line]!.t + 1, status: 201 });
      twice.answers.set(line, { line, status: 201, body: { orderId }, sent_ms: twice.lines[line]!.t, answered_ms: twice.lines[line]!.t + 1 });
    }
    const keys = verdictOf(twice).checks.find((c) => c.name === 'cancels and Idempotency-Keys honoured')!;
    expect(keys.passed).toBe(false);
    expect(keys.violations[0]).toContain('answered 2 different orders: o5, o6');
  });

  it('fails a keyed repeat answered otherwise than its first answer, and a used key answered 201 for another body; not a repeat after a 503', () => {
    const keyedCheck = (answersOf: [number, string | undefined][], bodies: Record<string, unknown>[]) => {
      const s = scenario();
      answersOf.forEach(([status, orderId], i) => {
        const line = 6 + i;
        const t = 60 + 10 * i;
        s.lines.push({ t, method: 'POST', path: '/v1/orders', user: 'u5', idempotencyKey: 'k-5', body: bodies[i] } as RecordedLine);
        s.results.push({ line, route: 'r', sent_ms: t, answered_ms: t + 1, status });
        s.answers.set(line, { line, status, body: orderId ? { orderId } : { error: status === 409 ? 'sold_out' : 'unavailable' }, sent_ms: t, answered_ms: t + 1 });
        if (orderId && !s.listed.some((o) => o.orderId === orderId)) {
          const body = bodies[i] as { qty: number };
          const o: ListedOrder = { ...s.listed[1]!, orderId, userId: 'u5', qty: body.qty, amountCents: 100 * body.qty, status: 'cancelled', createdAt: iso(t), updatedAt: iso(t + 1) };
          s.listed.push(o);
          answered(s, o);
        }
      });
      return verdictOf(s).checks.find((c) => c.name === 'cancels and Idempotency-Keys honoured')!;
    };
    const body = { skuId: 's1', date: '2027-01-01', qty: 1 };
    // The same fields in another order are the same body, as the engine hashes it: one order, answered alike.
    const reordered = { qty: 1, date: '2027-01-01', skuId: 's1' };
    expect(keyedCheck([[201, 'o5'], [201, 'o5']], [body, reordered]).violations).toEqual([]);
    // A repeat answered sold_out after its first 201: the engine forgot the key's first answer.
    expect(keyedCheck([[201, 'o5'], [409, undefined]], [body, reordered]).violations).toEqual(['line 7: a repeat of the keyed order request of line 6 (u5, k-5) was answered 409, the first 201']);
    // Another body with the used key is 422, not a second order.
    expect(keyedCheck([[201, 'o5'], [201, 'o6']], [body, { ...body, qty: 2 }]).violations).toEqual(['one Idempotency-Key (u5, k-5) was answered 201 for 2 different bodies: another body with a used key is 422']);
    // After a 503 (whether it applied is unknown) the same body runs again.
    expect(keyedCheck([[503, undefined], [201, 'o5']], [body, body]).violations).toEqual([]);
  });

  it('fails a signed callback not answered 200 (but for the contract\'s 503), and a 5xx that is not the contract\'s 503', () => {
    const s = scenario();
    s.answers.set(3, { ...s.answers.get(3)!, status: 404, body: { error: 'not_found' } });
    expect(failed(s)).toContain('payment callbacks honoured');
    const crash = scenario();
    crash.results[2] = { ...crash.results[2]!, status: 500, error: 'internal' };
    expect(failed(crash)).toContain("no 5xx but the contract's 503s");
    const shed = scenario();
    shed.results.push({ line: 5, route: 'r', sent_ms: 55, answered_ms: 56, status: 503, error: 'overloaded' });
    expect(failed(shed)).not.toContain("no 5xx but the contract's 503s");
    // A signed callback shed with the contract's 503 is the provider's to retry, not a dishonoured one;
    // any other 5xx on it still fails.
    // Here the provider's first callback is shed and its two retries are answered.
    const shedPayment = scenario();
    for (const [line, t] of [[6, 32], [7, 34]] as const) {
      shedPayment.lines.push({ ...shedPayment.lines[3]!, t });
      shedPayment.results.push({ line, route: 'r', sent_ms: t, answered_ms: t + 1, status: 200 });
      shedPayment.answers.set(line, { ...shedPayment.answers.get(3)!, line, status: 200, body: { orderId: 'o1', status: 'delivered' }, sent_ms: t, answered_ms: t + 1 });
    }
    shedPayment.answers.set(3, { ...shedPayment.answers.get(3)!, status: 503, body: { error: 'overloaded', message: 'busy' } });
    const honoured = verdictOf(shedPayment).checks.find((c) => c.name === 'payment callbacks honoured')!;
    expect([honoured.passed, honoured.violations]).toEqual([true, []]);
    expect(honoured.detail).toContain('1 shed with 503');
    // An engine that sheds most payments fails: a sale that would not hold.
    const sheddingAll = scenario();
    sheddingAll.answers.set(3, { ...sheddingAll.answers.get(3)!, status: 503, body: { error: 'unavailable', message: 'down' } });
    const most = verdictOf(sheddingAll).checks.find((c) => c.name === 'payment callbacks honoured')!;
    expect(most.violations).toEqual(['1 of 1 signed callbacks were shed with 503: the engine did not take most payments']);
    const broken = scenario();
    broken.answers.set(3, { ...broken.answers.get(3)!, status: 503, body: { error: 'internal' } });
    expect(failed(broken)).toContain('payment callbacks honoured');
  });

  it('fails an order paid by no payment of the run: by another payment id, on a failed callback, or on a wrong amount', () => {
    const violations = (s: Scenario) => verdictOf(s).checks.find((c) => c.name === 'payment callbacks honoured')!.violations;
    const otherId = scenario();
    otherId.listed[0] = { ...otherId.listed[0]!, paymentId: 'p-elsewhere' };
    expect(violations(otherId)).toEqual(['o1 is delivered by payment p-elsewhere, yet no correctly signed succeeded callback of its amount with that id was sent']);
    const onFailed = scenario();
    onFailed.lines[3] = { ...onFailed.lines[3]!, body: { orderRef: 1, status: 'failed', amountCents: 100, paymentId: 'p1' } };
    expect(violations(onFailed)).toContain('o1 is delivered by payment p1, yet no correctly signed succeeded callback of its amount with that id was sent');
    const wrongAmount = scenario();
    wrongAmount.lines[3] = { ...wrongAmount.lines[3]!, body: { orderRef: 1, status: 'succeeded', amountCents: 99, paymentId: 'p1' } };
    expect(failed(wrongAmount)).toContain('payment callbacks honoured');
    // Paid by a callback sent after the reservation expired: the engine must have expired it first.
    const paidLate = scenario();
    paidLate.listed[0] = { ...paidLate.listed[0]!, expiresAt: iso(20) };
    expect(violations(paidLate)).toEqual([`o1 is delivered by payment p1, whose callbacks were all sent after the reservation expired at ${iso(20)}`]);
    // Sent within the clock margin of its expiry: the engine's clock may have been behind.
    const paidInTime = scenario();
    paidInTime.listed[0] = { ...paidInTime.listed[0]!, expiresAt: iso(27) };
    expect(violations(paidInTime)).toEqual([]);
    // A free order is paid without a callback.
    const free = scenario();
    free.listed.push({ ...free.listed[0]!, orderId: 'o9', userId: 'u9', amountCents: 0, paymentId: 'free', createdAt: iso(45) });
    answered(free, free.listed.at(-1)!);
    free.inventory = { total: 3, reserved: 1, sold: 2, available: 0 };
    expect(violations(free)).toEqual([]);
  });

  it('fails an order expired before its time, and a refund answered before its order had ended; not one ended by its cancel', () => {
    const violations = (s: Scenario) => verdictOf(s).checks.find((c) => c.name === 'payment callbacks honoured')!.violations;
    const early = scenario();
    early.listed[1] = { ...early.listed[1]!, status: 'expired', updatedAt: iso(40) };
    early.inventory = { total: 3, reserved: 0, sold: 1, available: 2 };
    expect(violations(early)).toEqual([`o2 ended (expired) at ${iso(40)}, before its expiry at ${iso(900_000)}, and no cancel of it was answered`]);
    // Its buyer's cancel refused 409 (the order already expired) changed nothing: no excuse.
    early.lines.push({ t: 45, method: 'POST', path: '/v1/orders/{orderId}/cancel', user: 'u2', orderRef: 2 });
    early.results.push({ line: 6, route: 'r', sent_ms: 45, answered_ms: 46, status: 409, error: 'invalid_state' });
    early.answers.set(6, { line: 6, orderId: 'o2', status: 409, body: { error: 'invalid_state' }, sent_ms: 45, answered_ms: 46 });
    expect(violations(early)).toHaveLength(1);
    // Paid late: the engine answered refund_required at 31 ms, but the order ended only at 50 ms.
    const refundFirst = scenario();
    refundFirst.lines[3] = { ...refundFirst.lines[3]!, body: { orderRef: 2, status: 'succeeded', amountCents: 100, paymentId: 'p2' } };
    refundFirst.answers.set(3, { line: 3, orderId: 'o2', status: 200, body: { orderId: 'o2', status: 'refund_required' }, sent_ms: 30, answered_ms: 31 });
    refundFirst.listed[0] = { ...refundFirst.listed[0]!, status: 'reserved', paymentId: null, deliveries: 0, delivery: undefined };
    refundFirst.listed[1] = { ...refundFirst.listed[1]!, status: 'refund_required', paymentId: 'p2', expiresAt: iso(50), updatedAt: iso(31), endedAt: iso(50) };
    refundFirst.inventory = { total: 3, reserved: 1, sold: 0, available: 2 };
    expect(violations(refundFirst)).toEqual([`o2 was answered refund_required at ${iso(31)}, before it ended at ${iso(50)}`]);
    // Cancelled at 25 ms (answered), then paid: a refund, and its early end is its cancel's.
    const cancelledFirst = scenario();
    cancelledFirst.lines.push({ t: 24, method: 'POST', path: '/v1/orders/{orderId}/cancel', user: 'u2', orderRef: 2 });
    cancelledFirst.results.push({ line: 6, route: 'r', sent_ms: 24, answered_ms: 25, status: 200 });
    cancelledFirst.answers.set(6, { line: 6, orderId: 'o2', status: 200, body: { orderId: 'o2', status: 'cancelled' }, sent_ms: 24, answered_ms: 25 });
    cancelledFirst.lines[3] = refundFirst.lines[3]!;
    cancelledFirst.answers.set(3, refundFirst.answers.get(3)!);
    cancelledFirst.listed[0] = refundFirst.listed[0]!;
    cancelledFirst.listed[1] = { ...refundFirst.listed[1]!, expiresAt: iso(900_000), endedAt: iso(25) };
    cancelledFirst.inventory = refundFirst.inventory;
    expect(violations(cancelledFirst)).toEqual([]);
  });

  it('fails an order answered to two buyers, and one not at its SKU\'s price', () => {
    const violations = (s: Scenario) => verdictOf(s).checks.find((c) => c.name === 'every 201 is an order')!.violations;
    // The other buyer's answer came first: the last answer (the one the listing agrees with) hid it.
    const twice = scenario();
    twice.orders = new Map([[7, { ...twice.orders.get(2)!, line: 7, user: 'u7' }], ...twice.orders]);
    expect(violations(twice)).toEqual(['line 2: order o2 was answered to u2, and to u7 before']);
    const priced = scenario();
    priced.listed[1] = { ...priced.listed[1]!, amountCents: 50 };
    expect(violations(priced)).toEqual(['order o2 is 50 cents for 1 × 100']);
    // The price changed mid-run (from 50 to 100, answered at 16 ms): o2 (made at 20 ms) at 100 is right,
    // and one made before the change at 50 too; one made while the change was in flight is not judged.
    const discounted = scenario();
    for (const [t, priceCents] of [[0, 50], [15, 100]] as const) {
      const line = discounted.lines.length;
      discounted.lines.push({ t, method: 'PUT', path: '/v1/skus/s1', admin: true, body: { name: 'S', priceCents, merchantId: 'm1', delivery: 'ticket' } });
      discounted.results.push({ line, route: 'r', sent_ms: t, answered_ms: t + 1, status: 200 });
      discounted.answers.set(line, { line, status: 200, body: {}, sent_ms: t, answered_ms: t + 1 });
    }
    discounted.listed[0] = { ...discounted.listed[0]!, amountCents: 50, createdAt: iso(10) };
    discounted.orders.set(1, { ...discounted.orders.get(1)!, amountCents: 50 });
    discounted.lines[3] = { ...discounted.lines[3]!, body: { orderRef: 1, status: 'succeeded', amountCents: 50, paymentId: 'p1' } };
    discounted.listed.push({ ...discounted.listed[1]!, orderId: 'o5', userId: 'u5', amountCents: 77, createdAt: iso(15) });
    answered(discounted, discounted.listed.at(-1)!);
    discounted.rules = [];
    discounted.inventory = { total: 3, reserved: 2, sold: 1, available: 0 };
    expect(violations(discounted)).toEqual([]);
    discounted.listed[0] = { ...discounted.listed[0]!, amountCents: 100 };
    expect(violations(discounted)).toContain('order o1 is 100 cents for 1 × 50');
  });

  it('fails a run whose orders mostly did not reach the engine (buyer tokens refused, or most orders shed)', () => {
    // Recorded refused 401 (an expired token, a bot with none): replayed refused again, as recorded.
    const asRecorded = scenario();
    for (const line of [4, 5]) {
      asRecorded.lines[line] = { ...asRecorded.lines[line]!, outcome: { status: 401, error: 'unauthorized' } };
      asRecorded.results[line] = { ...asRecorded.results[line]!, status: 401, error: 'unauthorized' };
    }
    asRecorded.lines[2] = { ...asRecorded.lines[2]!, user: undefined };
    asRecorded.results[2] = { ...asRecorded.results[2]!, status: 401, error: 'unauthorized' };
    asRecorded.orders.delete(2);
    asRecorded.listed.pop();
    asRecorded.inventory = { total: 3, reserved: 0, sold: 1, available: 2 };
    expect(verdictOf(asRecorded).checks.find((c) => c.name === 'every 201 is an order')!.violations).toEqual([]);
    const s = scenario();
    for (const line of [4, 5]) s.results[line] = { ...s.results[line]!, status: 401, error: 'unauthorized' };
    s.results[2] = { ...s.results[2]!, status: 503, error: 'overloaded' };
    expect(verdictOf(s).checks.find((c) => c.name === 'every 201 is an order')!.violations).toContain(
      '3 of 4 order requests were answered 401 or 503: the engine refused the run\'s buyers or shed most orders',
    );
    const half = scenario();
    half.results[4] = { ...half.results[4]!, status: 503, error: 'overloaded' };
    expect(failed(half)).not.toContain('every 201 is an order');
  });
});

describe('the taken-stock timeline of the undersell check', () => {
  it('gives the most units taken in any span, as counting every instant would', () => {
    fc.assert(
      fc.property(
        fc.array(fc.record({ t: fc.integer({ min: 0, max: 200 }), d: fc.integer({ min: -5, max: 5 }).filter((d) => d !== 0) }), { maxLength: 60 }),
        fc.integer({ min: -10, max: 210 }),
        fc.integer({ min: 0, max: 100 }),
        (changes, from, width) => {
          const to = from + width;
          const timeline = new TakenTimeline(changes.map((c) => ({ ...c })));
          // Brute force: the count after every change at or before each instant of the span, takes first.
          const sorted = [...changes].sort((a, b) => a.t - b.t || b.d - a.d);
          let expected = -Infinity;
          let running = 0;
          let atFrom = 0;
          for (const c of sorted) {
            running += c.d;
            if (c.t <= from) atFrom = running;
            else if (c.t <= to) expected = Math.max(expected, running);
          }
          expect(timeline.maxIn(from, to)).toBe(Math.max(atFrom, expected));
        },
      ),
      { numRuns: 500 },
    );
  });
});
