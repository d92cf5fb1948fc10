// Proves the run reports say exactly what happened: figures of a ten-request run worked out by hand
// (counts, nearest-rank percentiles, timeline buckets) match computeFigures, the terminal table names
// every outcome and ends with the verdict line, the HTML page escapes hostile strings from the data,
// and the progress line redraws, throttles and measures its rate on an injected clock.
import { describe, expect, it } from 'vitest';
import type { RequestResult, RunRecord } from '../../sim/run/results.ts';
import {
  computeFigures,
  htmlReport,
  percentile,
  Progress,
  terminalReport,
  TIMELINE_BUCKETS_MAX,
  toJson,
} from '../../sim/report/index.ts';

const ORDERS = 'POST /v1/orders';
const SKU = 'GET /v1/skus/{skuId}';

function result(line: number, route: string, sent_ms: number, answered_ms: number, status: number, error?: string): RequestResult {
  return { line, route, sent_ms, answered_ms, status, ...(error ? { error } : {}) };
}

/** Ten requests over one second; latencies in ms are 10 20 30 40 5 (none) 50 15 100 100. */
function handMadeRun(overrides: Partial<RunRecord> = {}): RunRecord {
  return {
    title: 'replay hand-made.jsonl',
    target: 'in-process (embedded SQLite)',
    started_at: '2026-12-01T10:00:00.000Z',
    lines: 11,
    skipped: 1,
    results: [
      result(0, ORDERS, 0, 10, 201),
      result(1, ORDERS, 5, 25, 201),
      result(2, ORDERS, 50, 80, 409, 'sold_out'),
      result(3, ORDERS, 120, 160, 403, 'limit_exceeded'),
      result(4, SKU, 130, 135, 200),
      result(5, ORDERS, 200, 700, 0, 'no_answer'),
      result(6, ORDERS, 210, 260, 503, 'overloaded'),
      result(7, SKU, 300, 315, 200),
      result(8, ORDERS, 310, 410, 409, 'sold_out'),
      result(9, ORDERS, 900, 1000, 409, 'sold_out'),
    ],
    stock: [
      {
        skuId: 'concert-a',
        date: '2026-12-24',
        samples: [
          { t_ms: 0, total: 2, reserved: 0, sold: 0, available: 2 },
          { t_ms: 500, total: 2, reserved: 2, sold: 0, available: 0 },
        ],
      },
    ],
    verdict: {
      passed: false,
      checks: [
        { name: 'no-oversell', passed: true, detail: 'reserved + sold never exceeded total in 2 samples.', violations: [] },
        {
          name: 'every-201-durable',
          passed: false,
          detail: 'Every order answered 201 is in the journal after the run.',
          violations: ['line 0: order o-1 answered 201 but not in the journal', 'line 1: order o-2 answered 201 but not in the journal'],
        },
      ],
    },
    options: { speed: 1, seed: 42 },
    ...overrides,
  };
}

describe('computeFigures', () => {
  const figures = computeFigures(handMadeRun());

  it('counts the requests, the duration and the throughput', () => {
    expect(figures.totals).toEqual({
      lines: 11,
      skipped: 1,
      requests: 10,
      answered: 9,
      no_answer: 1,
      first_sent_ms: 0,
      last_answered_ms: 1000,
      duration_s: 1,
      requests_per_s: 10,
    });
  });

  it('labels outcomes by status and error code, in status order, no answer last', () => {
    expect(figures.outcomes.map((o) => [o.label, o.count, o.share_pct])).toEqual([
      ['200', 2, 20],
      ['201', 2, 20],
      ['403 limit_exceeded', 1, 10],
      ['409 sold_out', 3, 30],
      ['503 overloaded', 1, 10],
      ['no answer', 1, 10],
    ]);
  });

  it('takes exact nearest-rank percentiles, leaving unanswered requests out', () => {
    // Sorted answered latencies: 5 10 15 20 30 40 50 100 100 (nine).
    expect(figures.latency.overall).toEqual({ count: 9, p50_ms: 30, p95_ms: 100, p99_ms: 100, max_ms: 100 });
    expect(figures.latency.routes).toEqual([
      // 7 answered of 8: 10 20 30 40 50 100 100.
      { route: ORDERS, requests: 8, count: 7, p50_ms: 40, p95_ms: 100, p99_ms: 100, max_ms: 100 },
      { route: SKU, requests: 2, count: 2, p50_ms: 5, p95_ms: 15, p99_ms: 15, max_ms: 15 },
    ]);
    expect(percentile([1, 2, 3, 4], 50)).toBe(2);
    expect(percentile([1, 2, 3, 4], 51)).toBe(3);
    expect(percentile([], 50)).toBeNull();
  });

  it('puts each request in the bucket where it finished; a one-second run gets 100 ms buckets', () => {
    const { bucket_ms, buckets } = figures.timeline;
    expect(bucket_ms).toBe(100);
    // Ten, the last ending with the run: no bucket of no length at 1000 ms for the last answer.
    expect(buckets).toHaveLength(10);
    expect(buckets.map((b) => b.span_ms)).toEqual(Array(10).fill(100));
    expect(buckets[0]).toEqual({
      t_ms: 0,
      span_ms: 100,
      requests: 3,
      rate_per_s: 30,
      status_2xx: 2,
      status_4xx: 1,
      status_5xx: 0,
      no_answer: 0,
      p50_ms: 20,
      p99_ms: 30,
    });
    expect(buckets[1]).toMatchObject({ t_ms: 100, requests: 2, status_2xx: 1, status_4xx: 1, p50_ms: 5, p99_ms: 40 });
    expect(buckets[2]).toMatchObject({ t_ms: 200, requests: 1, status_5xx: 1, p50_ms: 50, p99_ms: 50 });
    expect(buckets[5]).toMatchObject({ t_ms: 500, requests: 0, rate_per_s: 0, p50_ms: null, p99_ms: null });
    expect(buckets[7]).toMatchObject({ t_ms: 700, requests: 1, no_answer: 1, p50_ms: null });
    expect(buckets[9]).toMatchObject({ t_ms: 900, requests: 1, status_4xx: 1, p50_ms: 100 });
    expect(buckets.reduce((n, b) => n + b.requests, 0)).toBe(10);
  });

  it('takes a bucket length when asked', () => {
    const { bucket_ms, buckets } = computeFigures(handMadeRun(), { bucket_ms: 250 }).timeline;
    expect(bucket_ms).toBe(250);
    expect(buckets.map((b) => [b.t_ms, b.requests, b.rate_per_s])).toEqual([
      [0, 5, 20],
      [250, 3, 12],
      [500, 1, 4],
      [750, 1, 4],
    ]);
  });

  /** A request sent every millisecond from 130 ms, each answered 0.5 ms later: 1,000 answers a second. */
  const steady = handMadeRun({ results: Array.from({ length: 2_245 }, (_, k) => result(k, SKU, 130 + k, 130.5 + k, 200)) });

  it('reads the edge buckets of a constant-rate run at the rate of the middle ones, over the time they cover', () => {
    const { buckets } = computeFigures(steady, { bucket_ms: 250 }).timeline;
    // The run is 130 to 2374.5 ms: the first bucket covers 120 ms of its 250 and the last 124.5, each
    // under half a bucket, so each is merged into its neighbour.
    expect([buckets[0]!.t_ms, buckets[0]!.span_ms, buckets.at(-1)!.span_ms]).toEqual([0, 370, 374.5]);
    expect(buckets[0]!.rate_per_s).toBeCloseTo(1_000, 6);
    for (const b of buckets.slice(1, -1)) expect([b.span_ms, b.rate_per_s]).toEqual([250, 1_000]);
    // 375 answers in 374.5 ms: the one more a closed span holds, not half the rate.
    expect(buckets.at(-1)!.rate_per_s).toBeCloseTo(1_001.335, 3);
    // Edges covering more than half a bucket stay buckets of their own, at the same rate.
    const wide = computeFigures(handMadeRun({ results: Array.from({ length: 2_100 }, (_, k) => result(k, SKU, 60 + k, 60.5 + k, 200)) }), { bucket_ms: 250 }).timeline.buckets;
    expect([wide[0]!.span_ms, wide.at(-1)!.span_ms]).toEqual([190, 159.5]);
    for (const b of wide) expect(b.rate_per_s).toBeCloseTo(1_000, -1);
  });

  it('merges a sliver of an edge bucket into its neighbour instead of reading its few answers as a spike', () => {
    // 1,000 answers a second, the last 3 of them in the run's last 2 ms (a new bucket from 2,250 ms).
    const run = handMadeRun({ results: Array.from({ length: 2_123 }, (_, k) => result(k, SKU, 130 + k, 130.5 + k, 200)) });
    const { buckets } = computeFigures(run, { bucket_ms: 250 }).timeline;
    expect(Math.max(...buckets.map((b) => b.rate_per_s))).toBeLessThan(1_100);
    expect(buckets.at(-1)!.span_ms).toBeGreaterThan(250);
  });

  it("has bucket rates that, weighted by the time each covers, add up to the run's rate", () => {
    for (const [run, bucket_ms] of [[steady, 250], [steady, 1_000], [handMadeRun(), 250], [handMadeRun(), 300]] as const) {
      const f = computeFigures(run, { bucket_ms });
      const spans_ms = f.timeline.buckets.reduce((sum, b) => sum + b.span_ms, 0);
      expect(spans_ms).toBeCloseTo(f.totals.last_answered_ms - f.totals.first_sent_ms, 6);
      const weighted_per_s = f.timeline.buckets.reduce((sum, b) => sum + b.rate_per_s * b.span_ms, 0) / spans_ms;
      expect(weighted_per_s).toBeCloseTo(f.totals.requests_per_s, 2);
    }
  });

  it('keeps the timeline within its bound when the run does not start on a boundary', () => {
    // 1,199.9 buckets of 100 ms long, from 60 ms: aligned to 0 it would take 1,201 of them.
    const run = handMadeRun({ results: [result(0, SKU, 60, 61, 200), result(1, SKU, 120_040, 120_050, 200)] });
    const { bucket_ms, buckets } = computeFigures(run, { bucket_ms: 100 }).timeline;
    expect(buckets.length).toBeLessThanOrEqual(TIMELINE_BUCKETS_MAX);
    // The length asked does not fit, so the run's default (1 s, for two minutes) stands.
    expect(bucket_ms).toBe(1_000);
  });

  it('chooses 1 s buckets for long runs, finer under 40 s, coarser past the bound', () => {
    const over = (span_ms: number) =>
      computeFigures(handMadeRun({ results: [result(0, SKU, 0, 1, 200), result(1, SKU, span_ms - 5, span_ms, 200)] })).timeline;
    expect(over(100_000).bucket_ms).toBe(1_000);
    expect(over(30_000).bucket_ms).toBe(500);
    expect(over(15_000).bucket_ms).toBe(250);
    expect(over(5_000).bucket_ms).toBe(100);
    const twoHours = over(7_200_000);
    expect(twoHours.bucket_ms).toBe(10_000);
    expect(twoHours.buckets.length).toBeLessThanOrEqual(TIMELINE_BUCKETS_MAX);
  });

  it('passes the stock and the verdict through', () => {
    expect(figures.stock).toEqual(handMadeRun().stock);
    expect(figures.verdict?.checks.map((c) => c.passed)).toEqual([true, false]);
  });

  it('writes stable JSON with only finite numbers, even for a run that sent nothing', () => {
    expect(JSON.parse(toJson(figures))).toEqual(figures);
    expect(toJson(figures)).toBe(toJson(computeFigures(handMadeRun())));
    const empty = computeFigures(handMadeRun({ results: [], stock: [], verdict: undefined }));
    expect(empty.totals).toMatchObject({ requests: 0, duration_s: 0, requests_per_s: 0 });
    expect(empty.latency.overall).toEqual({ count: 0, p50_ms: null, p95_ms: null, p99_ms: null, max_ms: null });
    expect(empty.timeline.buckets).toEqual([]);
    expect(empty.verdict).toBeNull();
    for (const json of [toJson(figures), toJson(empty)]) expect(json).not.toMatch(/NaN|Infinity/);
  });
});

describe('terminalReport', () => {
  const text = terminalReport(computeFigures(handMadeRun()), { color: false });
  const lines = text.trimEnd().split('\n');

  it('lists every outcome with its count and share, and latency per route', () => {
    for (const label of ['201', '409 sold_out', '403 limit_exceeded', '503 overloaded', 'no answer']) {
      expect(text).toContain(label);
    }
    expect(lines.find((l) => l.includes('409 sold_out'))).toMatch(/409 sold_out\s+3\s+30\.0%/);
    expect(lines.find((l) => l.trimStart().startsWith(ORDERS))).toMatch(/\s7\s+40\.0\s+100\s+100\s+100$/);
    expect(text).toContain('10.0 req/s');
  });

  it('shows each check, the violations of the failed one, and ends with the verdict line', () => {
    expect(text).toMatch(/PASS\s+no-oversell/);
    expect(text).toMatch(/FAIL\s+every-201-durable/);
    expect(text).toContain('line 0: order o-1 answered 201 but not in the journal');
    expect(lines.at(-1)).toBe('VERDICT: FAIL (1 of 2 checks broke)');
  });

  it('fits 120 columns, uses colour only when asked, and escapes control characters', () => {
    for (const line of lines) expect(line.length).toBeLessThanOrEqual(120);
    expect(text).not.toContain('\x1b');
    const hostile = handMadeRun();
    hostile.verdict!.checks[1]!.violations = ['body \x1b[2J cleared the screen'];
    const colored = terminalReport(computeFigures(hostile), { color: true });
    expect(colored).toContain('\x1b[31m');
    expect(colored).toContain('body \\x1b[2J cleared');
    expect(colored).not.toContain('\x1b[2J');
  });

  it('says PASS when every check held, and NONE when there was no verdict', () => {
    const passing = handMadeRun({ verdict: { passed: true, checks: [handMadeRun().verdict!.checks[0]!] } });
    expect(terminalReport(computeFigures(passing)).trimEnd().split('\n').at(-1)).toBe('VERDICT: PASS');
    const none = terminalReport(computeFigures(handMadeRun({ verdict: undefined })));
    expect(none.trimEnd().split('\n').at(-1)).toBe('VERDICT: NONE (no checks ran)');
  });
});

describe('htmlReport', () => {
  const hostile = handMadeRun({ title: 'replay <img src=x onerror=alert(1)>.jsonl' });
  hostile.verdict!.checks[1]!.violations = ['order body was "</script><script>alert(1)</script>" & more'];
  const html = htmlReport(computeFigures(hostile));

  it('escapes strings from the data in the markup and in the embedded JSON', () => {
    expect(html).not.toContain('<script>alert(1)');
    expect(html).not.toContain('<img src=x');
    expect(html).toContain('&#60;/script&#62;&#60;script&#62;alert(1)&#60;/script&#62;');
    expect(html.match(/<script\b/g)).toHaveLength(2);
    expect(html.match(/<\/script>/g)).toHaveLength(2);
    const json = /<script type="application\/json" id="figures">(.*?)<\/script>/s.exec(html)![1]!;
    expect(JSON.parse(json).verdict.checks[1].violations[0]).toBe(hostile.verdict!.checks[1]!.violations[0]);
  });

  it('is self-contained: nothing loaded from elsewhere, and only its own script may run', () => {
    expect(html).not.toMatch(/<[a-z][^>]*\s(src|href)=/i);
    expect(html).not.toMatch(/https?:\/\/(?!www\.w3\.org\/2000\/svg)/);
    expect(html).toMatch(/Content-Security-Policy" content="default-src &#39;none&#39;; script-src &#39;sha256-/);
    for (const chart of ['throughput', 'latency', 'outcomes', 'stock']) expect(html).toContain(`data-chart="${chart}"`);
  });
});

describe('Progress', () => {
  function fakeStream(isTTY: boolean) {
    const writes: string[] = [];
    return { writes, stream: { isTTY, columns: 120, write: (s: string) => writes.push(s) } };
  }

  it('redraws in place on a TTY at most every 100 ms, with the rate of the last second and an ETA', () => {
    let now = 0;
    const { writes, stream } = fakeStream(true);
    const progress = new Progress({ total: 27_000, stream, label: 'replay', now_ms: () => now });
    for (now = 10; now <= 90; now += 10) progress.tick(100);
    expect(writes).toHaveLength(1); // drawn at 10 ms, then throttled
    // 1,000 requests every 100 ms for two seconds: 10,000 req/s.
    for (now = 100; now <= 2_000; now += 100) progress.update((now / 100) * 1_000);
    now = 2_000;
    const last = writes.at(-1)!;
    expect(last.startsWith('\r')).toBe(true);
    expect(progress.line()).toMatch(/^replay \[#+-+\]  74% {2}20,000\/27,000 {2}10,000 req\/s {2}ETA 1s$/);
    progress.done();
    expect(writes.at(-1)).toMatch(/^\rreplay {2}20,000\/27,000 {2}in 2s {2}10,000 req\/s\x1b\[K\n$/);
  });

  it('prints a plain line every few seconds when the stream is not a TTY', () => {
    let now = 0;
    const { writes, stream } = fakeStream(false);
    const progress = new Progress({ total: 1_200, stream, label: 'flash-sale', now_ms: () => now });
    for (now = 100; now <= 12_000; now += 100) progress.tick(10);
    now = 12_000;
    progress.done();
    expect(writes).toHaveLength(3);
    expect(writes.join('')).not.toContain('\r');
    expect(writes[0]).toBe('flash-sale  41%  500/1,200  100 req/s  ETA 7s\n');
    expect(writes[2]).toBe('flash-sale  1,200/1,200  in 12s  100 req/s\n');
  });

  it('takes skipped lines off the total without counting them as requests', () => {
    let now = 0;
    const { writes, stream } = fakeStream(false);
    const progress = new Progress({ total: 1_000, stream, label: 'replay', now_ms: () => now });
    // Each 100 ms: 30 requests answered and 10 lines skipped, for two seconds.
    for (now = 100; now <= 2_000; now += 100) {
      progress.tick(30);
      progress.skip(10);
    }
    now = 2_000;
    expect(progress.total).toBe(800);
    expect(progress.rate_per_s(now)).toBe(300);
    expect(progress.line(now)).toBe('replay  75%  600/800  300 req/s  ETA 1s');
    for (now = 2_100; now <= 2_600; now += 100) progress.tick(30);
    now = 2_600;
    progress.skip(20);
    progress.done();
    expect(writes.at(-1)).toBe('replay  780/780  in 3s  300 req/s\n');
  });
});
