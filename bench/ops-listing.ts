// An operator's listing of a SKU/date's orders (`GET /ops/orders`): what one page of live
// reservations costs the SKU/date's actor, which runs it on the node's one event loop. The index is
// filled with N live reservations whose ids are made as the engine makes them (engine/ids.ts) at
// 150,000 reservations/s, then paged at the route's default limit (1,000) by:
//   - the index of this tree (`after` passes over chunks on their range of ids);
//   - the index as it was before that change (every live row read on each page), loaded from git at
//     BASELINE_COMMIT into a temporary file and filled with the same reservations, so both are
//     measured in the same run on the same machine.
// Both are asked for the same pages (the first, then the pages starting at every tenth of the ids);
// the answers are checked equal, and the figures are the median of REPEATS timings of each page. The
// new index also pages the whole listing, start to end, as an operator reading a sale does.
//
// Run: node --import tsx bench/ops-listing.ts [--write-docs]
// Knobs (environment): BENCH_LISTING_SIZES (100000,1000000), BENCH_LISTING_LIMIT (1000),
// BENCH_LISTING_REPEATS (3).

import { loadavg } from 'node:os';
import { performance } from 'node:perf_hooks';
import { orderIdFor, ReservationIndex, seededFloats, type RandomSource, type Reservation } from '../engine/index.ts';
import { median } from './baselines.ts';
import { writeDocsSection } from './docs.ts';
import { importFromGit } from './from-git.ts';

/** The last commit whose `after` read every live row on each page. */
const BASELINE_COMMIT = '162007cb76c4dd82912479992716f7f40f93c594';
const env = process.env;
const SIZES = (env.BENCH_LISTING_SIZES ?? '100000,1000000').split(',').map(Number);
const LIMIT = Number(env.BENCH_LISTING_LIMIT ?? 1_000);
const REPEATS = Number(env.BENCH_LISTING_REPEATS ?? 3);
const RESERVATIONS_PER_MS = 150;
const TTL_MS = 15 * 60_000;

interface Listing {
  set(orderId: string, r: Reservation): unknown;
  after(afterOrderId: string, limit: number): Reservation[];
}

/** Random bytes from a seeded mulberry32 (SeededRandom's BigInt arithmetic would dominate the fill). */
function fastRandom(seed: number): RandomSource {
  const next = seededFloats(seed);
  return {
    bytes(n: number) {
      const out = new Uint8Array(n);
      for (let i = 0; i < n; i++) out[i] = Math.floor(next() * 256);
      return out;
    },
  };
}

/** The index before the change, from git (it imports only types). */
async function baselineIndex(): Promise<{ make: () => Listing; done: () => void }> {
  const { module, done } = await importFromGit<{ ReservationIndex: new () => Listing }>(BASELINE_COMMIT, 'engine/reservation-index.ts');
  return { make: () => new module.ReservationIndex(), done };
}

/** The median time of REPEATS runs of one page, and its ids. */
function timePage(index: Listing, after: string): { ms: number; ids: string[] } {
  const times: number[] = [];
  let ids: string[] = [];
  for (let r = 0; r < REPEATS; r++) {
    const t0 = performance.now();
    const page = index.after(after, LIMIT);
    times.push(performance.now() - t0);
    ids = page.map((p) => p.orderId);
  }
  return { ms: median(times), ids };
}

const fmt = (ms: number): string => (ms >= 10 ? ms.toFixed(1) : ms >= 1 ? ms.toFixed(2) : ms.toFixed(3));

/** N live reservations in both indexes; their pages timed; the figures' line. */
function measure(n: number, makeBaseline: () => Listing): string {
  const now = new ReservationIndex();
  const before = makeBaseline();
  const random = fastRandom(n);
  const start = Date.UTC(2026, 11, 10, 10);
  const ids: string[] = [];
  for (let i = 0; i < n; i++) {
    const at = start + Math.floor(i / RESERVATIONS_PER_MS);
    const orderId = orderIdFor(at, random, 7);
    const r: Reservation = { orderId, userId: `u${i}`, qty: 1, amountCents: 1999, createdAt: at, expiresAt: at + TTL_MS };
    now.set(orderId, r);
    before.set(orderId, r);
    ids.push(orderId);
  }
  ids.sort();
  // The first page, then the pages after every tenth of the ids.
  const cursors = [''];
  for (let d = 1; d < 10; d++) cursors.push(ids[Math.floor((n * d) / 10)]!);
  const newMs: number[] = [];
  const oldMs: number[] = [];
  for (const cursor of cursors) {
    const a = timePage(now, cursor);
    const b = timePage(before, cursor);
    if (a.ids.join() !== b.ids.join()) throw new Error(`pages after '${cursor}' differ`);
    newMs.push(a.ms);
    oldMs.push(b.ms);
  }
  // The whole listing, page after page.
  let pages = 0;
  let slowest = 0;
  let cursor = '';
  const t0 = performance.now();
  for (;;) {
    const p0 = performance.now();
    const page = now.after(cursor, LIMIT);
    slowest = Math.max(slowest, performance.now() - p0);
    pages++;
    if (page.length < LIMIT) break;
    cursor = page[page.length - 1]!.orderId;
  }
  const whole = performance.now() - t0;
  const oldMedian = median(oldMs);
  const newMedian = median(newMs);
  return (
    `- ${n.toLocaleString('en-US')} live reservations, pages of ${LIMIT}: before **${fmt(oldMedian)} ms** a page ` +
    `(${fmt(Math.min(...oldMs))}–${fmt(Math.max(...oldMs))}), now **${fmt(newMedian)} ms** (${fmt(Math.min(...newMs))}–${fmt(Math.max(...newMs))}): ` +
    `**×${Math.round(oldMedian / newMedian)}** less; all ${pages} pages in ${fmt(whole)} ms (slowest ${fmt(slowest)} ms; before, ~${((oldMedian * pages) / 1000).toFixed(1)} s)`
  );
}

async function main(): Promise<void> {
  const baseline = await baselineIndex();
  const load = loadavg()[0]!.toFixed(1);
  const lines: string[] = [];
  try {
    // Both indexes compiled before the first measured page.
    measure(20_000, baseline.make);
    for (const n of SIZES) {
      const line = measure(n, baseline.make);
      console.log(line);
      lines.push(line);
    }
  } finally {
    baseline.done();
  }
  if (process.argv.includes('--write-docs')) {
    writeDocsSection('bench:ops-listing', [
      `Run ${new Date().toISOString().slice(0, 10)}, \`node --import tsx bench/ops-listing.ts\` (median of ${REPEATS} timings of the first page and of the pages at each tenth of the ids; before = the index at ${BASELINE_COMMIT.slice(0, 7)}; load average ${load} at the start):`,
      '',
      ...lines,
    ]);
  }
}

await main();
