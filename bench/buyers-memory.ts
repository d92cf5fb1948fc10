// `node --import tsx bench/buyers-memory.ts`: the memory of one sale with a million distinct buyers
// (issue 4's target: within 1.5 GiB of RSS, thanks to the limit actors' passivation). An engine in
// this process (embedded SQLite) with the contract's "one ticket per buyer per venue per date" rule
// takes BENCH_BUYERS orders (default 1,000,000), one per buyer, through its HTTP handler (no socket),
// BENCH_CONCURRENCY at a time. Printed every BENCH_REPORT_EVERY buyers: RSS, heap, live actors by
// kind; at the end the peak RSS against the baseline measured in the same run (RSS once the engine is
// up and its first 1,000 buyers are served) and after the buyers' actors passivated. One JSON line.
import { loadavg } from 'node:os';
import { mintHs256 } from '../sim/replay/credentials.ts';
import { startInProcessEngine } from '../sim/run/in-process-engine.ts';

const BUYERS = Number(process.env.BENCH_BUYERS ?? 1_000_000);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 256);
const REPORT_EVERY = Number(process.env.BENCH_REPORT_EVERY ?? 100_000);
const MiB = 2 ** 20;

async function main(): Promise<void> {
  console.log(`bench:buyers-memory — ${BUYERS} buyers, concurrency ${CONCURRENCY}, load average ${loadavg()[0]!.toFixed(2)} on 2 cores`);
  const engine = await startInProcessEngine({ env: { STAMPEDE_RESERVATION_TTL_MS: String(86_400_000) } });
  const admin = { authorization: `Bearer ${engine.secrets.adminToken}`, 'content-type': 'application/json' };
  const put = async (path: string, body: unknown) => {
    const a = await engine.transport.send({ method: 'PUT', path, headers: admin, body: JSON.stringify(body) });
    if (a.status !== 200) throw new Error(`${path}: ${a.status} ${JSON.stringify(a.body)}`);
  };
  await put('/v1/skus/concert', { name: 'Concert', priceCents: 1999, merchantId: 'm1', delivery: 'ticket', attributes: { venue: 'arena' } });
  await put('/v1/skus/concert/stock/2027-06-01', { total: BUYERS });
  await put('/v1/limit-rules/venue-date', { id: 'venue-date', groupBy: ['venue', 'date'], max: { units: 1 } });

  let peak_rss = 0;
  let baseline_rss = 0;
  let next = 0;
  let done = 0;
  let refused = 0;
  const started = performance.now();
  const sample = () => {
    const rss = process.memoryUsage().rss;
    peak_rss = Math.max(peak_rss, rss);
    return rss;
  };
  const timer = setInterval(sample, 250);
  const order = async (i: number) => {
    const user = `buyer-${i}`;
    // A token minted per request, not cached: a million of them would be the bench's memory, not the engine's.
    const token = mintHs256(engine.secrets.userJwtSecret, user, Math.floor(Date.now() / 1000), 3_600);
    const a = await engine.transport.send({
      method: 'POST',
      path: '/v1/orders',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: '{"skuId":"concert","date":"2027-06-01","qty":1}',
    });
    if (a.status !== 201) refused++;
  };
  const worker = async () => {
    while (next < BUYERS) {
      const i = next++;
      await order(i);
      done++;
      if (done === 1_000) baseline_rss = sample();
      if (done % REPORT_EVERY === 0) {
        const m = process.memoryUsage();
        const actors = engine.node!.runtime.stats().byKind;
        console.log(`  ${done.toLocaleString('en')} buyers in ${((performance.now() - started) / 1000).toFixed(0)} s: rss ${(m.rss / MiB).toFixed(0)} MiB, heap ${(m.heapUsed / MiB).toFixed(0)} MiB, actors ${JSON.stringify(actors)}`);
      }
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  const elapsed_s = (performance.now() - started) / 1000;
  // Passivation: the buyers' limit actors go after their idle time (10 s).
  const end_rss = sample();
  await new Promise((r) => setTimeout(r, 15_000));
  (globalThis as { gc?: () => void }).gc?.();
  const idle_rss = sample();
  const idle_heap = process.memoryUsage().heapUsed;
  clearInterval(timer);
  const inventory = await engine.transport.send({ method: 'GET', path: '/ops/inventory/concert/2027-06-01', headers: admin });
  console.log(`done: ${BUYERS.toLocaleString('en')} buyers in ${elapsed_s.toFixed(0)} s (${(BUYERS / elapsed_s).toFixed(0)}/s), ${refused} refused; reserved ${(inventory.body as { reserved: number }).reserved}`);
  console.log(`rss: baseline ${(baseline_rss / MiB).toFixed(0)} MiB, peak ${(peak_rss / MiB).toFixed(0)} MiB (target 1,536), at the end ${(end_rss / MiB).toFixed(0)} MiB, 15 s later ${(idle_rss / MiB).toFixed(0)} MiB (heap ${(idle_heap / MiB).toFixed(0)} MiB); actors then ${JSON.stringify(engine.node!.runtime.stats().byKind)}`);
  console.log(JSON.stringify({ bench: 'buyers-memory', buyers: BUYERS, orders_per_s: Math.round(BUYERS / elapsed_s), baseline_rss_mib: Math.round(baseline_rss / MiB), peak_rss_mib: Math.round(peak_rss / MiB), idle_rss_mib: Math.round(idle_rss / MiB), target_mib: 1536 }));
  await engine.stop();
}

await main();
