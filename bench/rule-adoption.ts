// `npm run bench:adoption`: what the first purchase rule costs when a sale without rules is under way
// (docs/purchase-rules.md, "The first rule"). An engine in this process (embedded SQLite) takes
// BENCH_ADOPT_ORDERS orders (default 100,000), one per buyer, on one SKU/date,
// with no rule, BENCH_CONCURRENCY at a time (the baseline, measured in this run: orders/s placed
// without rules); BENCH_ADOPT_PAID of them are then paid (adopted as counted, from the read model).
// Then the first rule is put, and the PUT answers once every buyer adopted its order. Printed: the
// placing rate, the adoption's time and rate, the ratio of the two rates, RSS before and after, and
// one JSON line. Checks that a buyer is then refused by the rule (the adoption counted).
import { loadavg } from 'node:os';
import { startEngine } from '../test/support/engine.ts';

const ORDERS = Number(process.env.BENCH_ADOPT_ORDERS ?? 100_000);
const PAID = Number(process.env.BENCH_ADOPT_PAID ?? 5_000);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 500);
const MiB = 2 ** 20;
const DATE = '2027-01-01';

async function main(): Promise<void> {
  console.log(`bench:adoption — ${ORDERS} orders without rules (${PAID} of them paid), then the first rule; load average ${loadavg()[0]!.toFixed(2)} on 2 cores`);
  const e = await startEngine({ kind: 'sqlite' }, { STAMPEDE_RESERVATION_TTL_MS: '3600000', STAMPEDE_LOG_LEVEL: 'warn' });
  try {
    await e.client.sku('hot', DATE, ORDERS * 2, { priceCents: 100, delivery: 'manual' });
    const ids: string[] = new Array(ORDERS);
    let next = 0;
    const t0 = performance.now();
    await Promise.all(
      Array.from({ length: CONCURRENCY }, async () => {
        while (next < ORDERS) {
          const i = next++;
          const a = await e.node.orders.placeOrder({ userId: `b${i}`, skuId: 'hot', date: DATE, qty: 1 });
          if (a.status !== 201) throw new Error(`order ${i}: ${a.status} ${JSON.stringify(a.body)}`);
          ids[i] = (a.body as { orderId: string }).orderId;
        }
      }),
    );
    const place_s = (performance.now() - t0) / 1000;
    for (let i = 0; i < PAID; i++) {
      const paid = await e.client.pay({ orderId: ids[i]!, paymentId: `p${i}`, amountCents: 100, status: 'succeeded' });
      if (paid.body.status !== 'paid') throw new Error(`payment ${i}: ${paid.status} ${JSON.stringify(paid.body)}`);
    }
    const rss_before = process.memoryUsage().rss;
    const t1 = performance.now();
    const put = await e.client.admin('PUT', '/v1/limit-rules/one', { id: 'one', groupBy: ['skuId', 'date'], max: { units: 1 } });
    const adopt_s = (performance.now() - t1) / 1000;
    const rss_after = process.memoryUsage().rss;
    if (put.status !== 200) throw new Error(`PUT: ${put.status} ${JSON.stringify(put.body)}`);
    const refusedLive = await e.node.orders.placeOrder({ userId: `b${ORDERS - 1}`, skuId: 'hot', date: DATE, qty: 1 });
    const refusedPaid = await e.node.orders.placeOrder({ userId: 'b0', skuId: 'hot', date: DATE, qty: 1 });
    const counted = refusedLive.status === 403 && refusedPaid.status === 403;
    const place_rps = ORDERS / place_s;
    const adopt_rps = ORDERS / adopt_s;
    console.log(`placed ${ORDERS} orders without rules in ${place_s.toFixed(1)} s (${place_rps.toFixed(0)}/s, the baseline)`);
    console.log(`first rule: the PUT answered after ${adopt_s.toFixed(1)} s (${adopt_rps.toFixed(0)} orders adopted/s; ratio to the baseline ${(adopt_rps / place_rps).toFixed(3)}); RSS ${(rss_before / MiB).toFixed(0)} → ${(rss_after / MiB).toFixed(0)} MiB`);
    console.log(`a live and a paid order's buyer then refused by the rule: ${counted}`);
    console.log(JSON.stringify({ bench: 'adoption', orders: ORDERS, paid: PAID, place_rps: Math.round(place_rps), adopt_s: +adopt_s.toFixed(2), adopt_rps: Math.round(adopt_rps), ratio: +(adopt_rps / place_rps).toFixed(3), rss_before_mib: Math.round(rss_before / MiB), rss_after_mib: Math.round(rss_after / MiB), counted }));
    if (!counted) process.exitCode = 1;
  } finally {
    await e.stop();
  }
}

await main();
