// One simulation run: send the traffic (replayer) while sampling stock, let the engine settle
// (deliveries done; expiries passed when the run waits for them), read what the engine says and
// give the verdict. Replay and flash sale both come through here; only their traffic differs.
import type { RecordedLine } from '../recording/format.ts';
import { Credentials } from '../replay/credentials.ts';
import { replay, type ReplayLog, type Speed } from '../replay/replayer.ts';
import { cardKeyPools } from '../verdict/card-key-pools.ts';
import { EngineReader, type EngineView } from '../verdict/engine-view.ts';
import { runFacts, stockOfLines, type RunFacts } from '../verdict/run-facts.ts';
import { unitsByKey } from '../verdict/stock-checks.ts';
import { judge } from '../verdict/verdict.ts';
import type { SimEngine } from './in-process-engine.ts';
import type { RunRecord, StockSeries } from './results.ts';
import { StockSampler } from './stock-sampler.ts';

export interface SimulationOptions {
  title: string;
  lines: RecordedLine[];
  engine: SimEngine;
  speed: Speed;
  concurrency_max: number;
  /**
   * Wait past every reservation's expiry before judging (then none may be left reserved), when
   * that falls within the settle time.
   */
  waitForExpiries: boolean;
  /** Longest wait for deliveries and expiries after the last answer. */
  settle_timeout_ms: number;
  /** Shown in the reports. */
  options: Record<string, string | number | boolean>;
  onAnswer?: (done: number) => void;
  /** Called for each line the replay skips (ReplayOptions.onSkip). */
  onSkip?: (skipped: number) => void;
  /** Called when the traffic is sent and the run waits for the engine to settle. */
  onSettling?: (what: string) => void;
}

export interface SimulationOutcome {
  record: RunRecord;
  log: ReplayLog;
  facts: RunFacts;
  view: EngineView;
}

/** Slack between the run's clock and the engine's, and for the expiry sweep. */
const CLOCK_MARGIN_MS = 1_000;
const STOCK_SAMPLE_INTERVAL_MS = 250;
const STOCK_SERIES_MAX = 24;
const SETTLE_POLL_MS = 500;

export async function runSimulation(o: SimulationOptions): Promise<SimulationOutcome> {
  const credentials = new Credentials(o.engine.secrets);
  const reader = new EngineReader(o.engine.transport, o.engine.secrets);
  // The SKU/dates the traffic touches, known before it runs (for the stock chart).
  const stock = stockOfLines(o.lines);
  // The run's clock starts here, after the work above (it grows with the traffic): the replay's
  // times are read against it (runFacts), and a clock started earlier put every request that much
  // too early for the verdict's checks of when orders were made.
  const started_at = new Date();
  const started_wall_ms = Date.now();
  const origin = performance.now();
  const clock_ms = () => performance.now() - origin;
  const sampler = new StockSampler(reader, stock, { interval_ms: STOCK_SAMPLE_INTERVAL_MS, series_max: STOCK_SERIES_MAX, clock_ms });
  sampler.start();
  let log: ReplayLog;
  let series: StockSeries[] = [];
  try {
    log = await replay(o.lines, o.engine.transport, credentials, {
      speed: o.speed,
      concurrency_max: o.concurrency_max,
      now_ms: () => performance.now() - origin,
      ...(o.onAnswer ? { onAnswer: o.onAnswer } : {}),
      ...(o.onSkip ? { onSkip: o.onSkip } : {}),
    });
  } finally {
    series = await sampler.stop();
  }
  // The replay's times count from its own start (log.origin_ms on this run's clock).
  const facts = runFacts(log, started_wall_ms + log.origin_ms);

  // Settle: expiries first (when asked), then deliveries, re-reading until both are done or time is up.
  const deadline = Date.now() + o.settle_timeout_ms;
  let expiredBy_ms: number | undefined;
  if (o.waitForExpiries) {
    // A loop, not Math.max(...): a million orders would overflow the call's arguments.
    let lastExpiry = 0;
    for (const f of facts.orders.values()) if (Number.isFinite(f.expiresAt_ms) && f.expiresAt_ms > lastExpiry) lastExpiry = f.expiresAt_ms;
    const engineClock = o.engine.clock;
    if (engineClock) {
      // In process: move the engine's clock past the last expiry instead of waiting for it.
      const jump_ms = lastExpiry + CLOCK_MARGIN_MS - engineClock.now();
      if (jump_ms > 0) {
        o.onSettling?.(`moving the engine's clock ${(jump_ms / 1000).toFixed(0)} s on, past the last reservation's expiry`);
        engineClock.advance(jump_ms);
      }
      expiredBy_ms = engineClock.now();
    } else if (lastExpiry + CLOCK_MARGIN_MS + 2 * SETTLE_POLL_MS <= deadline) {
      // With time left for two reads after it: one read alone may find an expiry whose write has not
      // committed yet, and judge it still reserved.
      // Reservations that outlive the settle time are judged as they stand (still reserved is fine then).
      const wait_ms = lastExpiry + CLOCK_MARGIN_MS - Date.now();
      if (wait_ms > 0) {
        o.onSettling?.(`waiting ${(wait_ms / 1000).toFixed(1)} s for the last reservation to expire`);
        await sleep(wait_ms);
      }
      expiredBy_ms = Date.now();
    }
  }
  o.onSettling?.('waiting for deliveries');
  let view = await reader.read(facts.stock, facts.stockExisting);
  // An engine that stopped answering is judged as it is (unreadable): waiting would change nothing.
  while (reader.unanswered === undefined && !settled(facts, view, expiredBy_ms) && Date.now() + SETTLE_POLL_MS < deadline) {
    await sleep(SETTLE_POLL_MS);
    view = await reader.read(facts.stock, facts.stockExisting);
  }
  // What the buyers of delivered orders are shown, as they see it: tokens on the engine's clock (which
  // the run may have moved past the replay's tokens' hour).
  if (reader.unanswered === undefined) view.goods = await reader.readGoods(view, new Credentials(o.engine.secrets, o.engine.clock?.now ?? Date.now));
  // The last series sample is after settling, so the chart ends where the verdict looked.
  const verdict = judge(facts, view, { ...(expiredBy_ms !== undefined ? { expiredBy_ms } : {}), clock_margin_ms: CLOCK_MARGIN_MS });
  for (const s of series) {
    const inv = view.inventory.get(`${s.skuId}/${s.date}`);
    if (inv) s.samples.push({ t_ms: clock_ms(), ...inv });
  }
  const record: RunRecord = {
    title: o.title,
    target: o.engine.description,
    started_at: started_at.toISOString(),
    lines: o.lines.length,
    skipped: log.skipped,
    results: log.results,
    stock: series,
    verdict,
    options: o.options,
  };
  return { record, log, facts, view };
}

/**
 * Nothing paid left undelivered (but manual SKUs, and card-key orders waiting for keys their pool has
 * not got: no upload is coming), nothing reserved past its expiry, and the live counts equal the orders
 * listed (an expiry pass may be between the two reads).
 */
function settled(facts: RunFacts, view: EngineView, expiredBy_ms: number | undefined): boolean {
  const units = unitsByKey(view);
  for (const [key, inv] of view.inventory) if (inv.reserved !== (units.get(key)?.reserved ?? 0)) return false;
  const pools = cardKeyPools(facts, view);
  for (const order of view.orders.values()) {
    if (order.status === 'paid') {
      const delivery = view.skus.get(order.skuId)?.delivery;
      if (delivery !== 'manual' && !(delivery === 'card_key' && pools.get(order.skuId)?.dry)) return false;
    }
    if (expiredBy_ms !== undefined && order.status === 'reserved' && Date.parse(order.expiresAt) + CLOCK_MARGIN_MS < expiredBy_ms) return false;
  }
  return true;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
