// The numbers every report shows, computed once from a run: totals, outcomes, latency percentiles,
// a timeline and the stock series. Pure (no clock, no I/O), so the terminal table, the HTML page and
// the JSON report cannot disagree. `RunFigures` is also the JSON report: every derived number is
// finite (an empty set has `null`, never NaN), and fields carry their unit last.
import type { RunRecord, StockSeries, Verdict } from '../run/results.ts';

/** Format tag of the JSON report, bumped when a field changes meaning. */
export const FIGURES_FORMAT = 'stampede-sim-figures/2';

/** The outcome label of a request that got no answer (status 0). */
export const NO_ANSWER_LABEL = 'no answer';

/**
 * Bound on the timeline's length: a long run gets coarser buckets rather than a timeline that
 * makes the JSON and the HTML heavy and the charts unreadable.
 */
export const TIMELINE_BUCKETS_MAX = 1200;

/** A run with fewer 1 s buckets than this gets finer ones, so its charts have points. */
const TIMELINE_POINTS_MIN = 40;
const FINER_STEPS_MS = [1_000, 500, 250, 100];

/** Bucket sizes tried in order; the first that keeps the timeline under the bound wins. */
const BUCKET_STEPS_MS = [100, 250, 500, 1_000, 2_000, 5_000, 10_000, 30_000, 60_000, 300_000, 600_000, 3_600_000];

/** Exact percentiles of a set of latencies (nearest rank: the smallest value with p% at or below it). */
export interface LatencySummary {
  /** How many latencies (answered requests) the summary is over. */
  count: number;
  /** `null` when `count` is 0. */
  p50_ms: number | null;
  p95_ms: number | null;
  p99_ms: number | null;
  max_ms: number | null;
}

export interface RouteFigures extends LatencySummary {
  route: string;
  /** All requests to the route, answered or not (`count` is the answered ones). */
  requests: number;
}

export interface OutcomeFigures {
  /** `201`, `409 sold_out`, `503 overloaded`, `no answer`: the status and the contract's error code. */
  label: string;
  /** HTTP status; 0 for no answer. */
  status: number;
  count: number;
  /** Share of all requests, 0..100. */
  share_pct: number;
}

/**
 * What finished (got an answer, or was given up on) within one bucket of the timeline. Format 2 added
 * `span_ms`, and `rate_per_s` is over it (format 1 divided by `bucket_ms`, so the edge buckets read low).
 */
export interface TimelineBucket {
  /** Start of the bucket, ms since the run started (a multiple of `bucket_ms`). */
  t_ms: number;
  /**
   * How much of the bucket the run covers: from `max(t_ms, totals.first_sent_ms)` to
   * `min(t_ms + bucket_ms, totals.last_answered_ms)`. `bucket_ms` but for the first and last buckets
   * (the run starts and ends inside them); 0 only for a run of no length. The spans add up to the run's.
   * An edge bucket the run covers less than half of is merged into its neighbour, whose span is then
   * up to 1.5 × `bucket_ms` (2 × when both edges merge into the one bucket between them): a sliver's
   * few answers would read as a spike.
   */
  span_ms: number;
  requests: number;
  /** `requests` over `span_ms` (0 when it is 0): the edge buckets read the rate of the time they cover. */
  rate_per_s: number;
  status_2xx: number;
  status_4xx: number;
  status_5xx: number;
  no_answer: number;
  /** Latency of the answered requests in the bucket; `null` when none was answered. */
  p50_ms: number | null;
  p99_ms: number | null;
}

export interface RunFigures {
  format: typeof FIGURES_FORMAT;
  title: string;
  target: string;
  started_at: string;
  options: Record<string, string | number | boolean>;
  totals: {
    /** Lines in the traffic and those skipped (never sent). */
    lines: number;
    skipped: number;
    requests: number;
    answered: number;
    no_answer: number;
    /** First request sent and last one finished, ms since the run started (0 when nothing ran). */
    first_sent_ms: number;
    last_answered_ms: number;
    duration_s: number;
    /** `requests` over `duration_s`; 0 for a run of no length. */
    requests_per_s: number;
  };
  /** In status order (2xx, 3xx, 4xx, 5xx, no answer), the most frequent first within a status. */
  outcomes: OutcomeFigures[];
  latency: {
    overall: LatencySummary;
    /** The busiest route first. */
    routes: RouteFigures[];
  };
  timeline: {
    bucket_ms: number;
    buckets: TimelineBucket[];
  };
  /** As the run sampled it. */
  stock: StockSeries[];
  verdict: Verdict | null;
}

export interface FiguresOptions {
  /**
   * Length of a timeline bucket. Default: 1 s, finer for runs under 40 s so the charts have about 40
   * points or more (500 ms under 40 s, 250 ms under 20 s, 100 ms under 10 s). Coarsened when it
   * would exceed TIMELINE_BUCKETS_MAX.
   */
  bucket_ms?: number;
}

export function computeFigures(run: RunRecord, options: FiguresOptions = {}): RunFigures {
  const results = run.results;
  let first_sent_ms = Infinity;
  let last_answered_ms = -Infinity;
  for (const r of results) {
    if (r.sent_ms < first_sent_ms) first_sent_ms = r.sent_ms;
    // A request given up on (status 0) ends when the driver gave up: it still took that long.
    if (r.answered_ms > last_answered_ms) last_answered_ms = r.answered_ms;
  }
  if (results.length === 0) {
    first_sent_ms = 0;
    last_answered_ms = 0;
  }
  const span_ms = Math.max(0, last_answered_ms - first_sent_ms);
  const duration_s = span_ms / 1000;

  const outcomeCounts = new Map<string, { status: number; count: number }>();
  const allLatencies: number[] = [];
  const routes = new Map<string, { requests: number; latencies: number[] }>();
  let answered = 0;
  for (const r of results) {
    const label = outcomeLabel(r.status, r.error);
    const o = outcomeCounts.get(label);
    if (o) o.count++;
    else outcomeCounts.set(label, { status: r.status, count: 1 });

    let route = routes.get(r.route);
    if (!route) routes.set(r.route, (route = { requests: 0, latencies: [] }));
    route.requests++;
    if (r.status !== 0) {
      answered++;
      const latency_ms = latencyOf(r.sent_ms, r.answered_ms);
      allLatencies.push(latency_ms);
      route.latencies.push(latency_ms);
    }
  }

  const outcomes: OutcomeFigures[] = [...outcomeCounts]
    .map(([label, { status, count }]) => ({
      label,
      status,
      count,
      share_pct: round3((count / results.length) * 100),
    }))
    .sort((a, b) => statusRank(a.status) - statusRank(b.status) || b.count - a.count || compare(a.label, b.label));

  const routeFigures: RouteFigures[] = [...routes]
    .map(([route, { requests, latencies }]) => ({ route, requests, ...summarize(latencies) }))
    .sort((a, b) => b.requests - a.requests || compare(a.route, b.route));

  const bucket_ms = chooseBucketMs(first_sent_ms, last_answered_ms, options.bucket_ms);
  return {
    format: FIGURES_FORMAT,
    title: run.title,
    target: run.target,
    started_at: run.started_at,
    options: run.options,
    totals: {
      lines: run.lines,
      skipped: run.skipped,
      requests: results.length,
      answered,
      no_answer: results.length - answered,
      first_sent_ms: round3(first_sent_ms),
      last_answered_ms: round3(last_answered_ms),
      duration_s: round3(duration_s),
      requests_per_s: duration_s > 0 ? round3(results.length / duration_s) : 0,
    },
    outcomes,
    latency: { overall: summarize(allLatencies), routes: routeFigures },
    timeline: { bucket_ms, buckets: timeline(run, first_sent_ms, last_answered_ms, bucket_ms) },
    stock: run.stock,
    verdict: run.verdict ?? null,
  };
}

/** The JSON report: the figures, pretty-printed, keys in the order the type lists them. */
export function toJson(figures: RunFigures): string {
  // JSON.stringify already writes a non-finite number as null; the figures never hold one anyway.
  return JSON.stringify(figures, null, 2) + '\n';
}

/** `201`, `409 sold_out`, `no answer`. */
export function outcomeLabel(status: number, error: string | undefined): string {
  if (status === 0) return NO_ANSWER_LABEL;
  return error ? `${status} ${error}` : String(status);
}

/** Nearest-rank percentile of ascending-sorted values: the smallest value with p% of them at or below it. */
export function percentile(sorted: ArrayLike<number>, p: number): number | null {
  if (sorted.length === 0) return null;
  const rank = Math.ceil((p / 100) * sorted.length);
  const index = Math.min(sorted.length - 1, Math.max(0, rank - 1));
  return sorted[index] ?? null;
}

function summarize(latencies: number[]): LatencySummary {
  // A Float64Array sorts numerically and fast; a run can hold millions of results.
  const sorted = Float64Array.from(latencies).sort();
  return {
    count: sorted.length,
    p50_ms: roundOrNull(percentile(sorted, 50)),
    p95_ms: roundOrNull(percentile(sorted, 95)),
    p99_ms: roundOrNull(percentile(sorted, 99)),
    max_ms: roundOrNull(percentile(sorted, 100)),
  };
}

function timeline(run: RunRecord, first_sent_ms: number, last_answered_ms: number, bucket_ms: number): TimelineBucket[] {
  if (run.results.length === 0) return [];
  const start_ms = Math.floor(first_sent_ms / bucket_ms) * bucket_ms;
  // Buckets up to the last answer, not one past it: a run ending on a boundary gets no empty bucket
  // of no length after it (which also pushed the count one past its bound).
  const count = bucketCount(first_sent_ms, last_answered_ms, bucket_ms);
  const acc = Array.from({ length: count }, () => ({
    requests: 0,
    status_2xx: 0,
    status_4xx: 0,
    status_5xx: 0,
    no_answer: 0,
    latencies: [] as number[],
  }));
  for (const r of run.results) {
    // A request belongs to the bucket in which it finished: the charts show what the engine answered.
    const index = Math.min(count - 1, Math.max(0, Math.floor((r.answered_ms - start_ms) / bucket_ms)));
    const b = acc[index]!;
    b.requests++;
    if (r.status === 0) {
      b.no_answer++;
      continue;
    }
    if (r.status >= 200 && r.status < 300) b.status_2xx++;
    else if (r.status >= 400 && r.status < 500) b.status_4xx++;
    else if (r.status >= 500) b.status_5xx++;
    b.latencies.push(latencyOf(r.sent_ms, r.answered_ms));
  }
  // The first bucket starts before the run when it did not start on a boundary, and the last ends
  // after it: a rate over the whole bucket read them low (the last ~50% on average). Each bucket's rate
  // is over the part of it the run covers; an edge bucket covering less than half a bucket is merged
  // into its neighbour (a few answers over a sliver of milliseconds would read as a spike and set the
  // chart's scale).
  const spans = acc.map((_, i) => Math.max(0, Math.min(start_ms + (i + 1) * bucket_ms, last_answered_ms) - Math.max(start_ms + i * bucket_ms, first_sent_ms)));
  const starts = acc.map((_, i) => start_ms + i * bucket_ms);
  const merge = (into: number, from: number) => {
    const a = acc[into]!;
    const b = acc[from]!;
    a.requests += b.requests;
    a.status_2xx += b.status_2xx;
    a.status_4xx += b.status_4xx;
    a.status_5xx += b.status_5xx;
    a.no_answer += b.no_answer;
    for (const l of b.latencies) a.latencies.push(l);
    spans[into]! += spans[from]!;
  };
  if (acc.length > 1 && spans[acc.length - 1]! < bucket_ms / 2) {
    merge(acc.length - 2, acc.length - 1);
    acc.pop();
    spans.pop();
    starts.pop();
  }
  if (acc.length > 1 && spans[0]! < bucket_ms / 2) {
    merge(1, 0);
    starts[1] = starts[0]!;
    acc.shift();
    spans.shift();
    starts.shift();
  }
  return acc.map((b, i) => {
    const sorted = Float64Array.from(b.latencies).sort();
    const span_ms = spans[i]!;
    return {
      t_ms: starts[i]!,
      span_ms: round3(span_ms),
      requests: b.requests,
      rate_per_s: span_ms > 0 ? round3(b.requests / (span_ms / 1000)) : 0,
      status_2xx: b.status_2xx,
      status_4xx: b.status_4xx,
      status_5xx: b.status_5xx,
      no_answer: b.no_answer,
      p50_ms: roundOrNull(percentile(sorted, 50)),
      p99_ms: roundOrNull(percentile(sorted, 99)),
    };
  });
}

/** Buckets of `bucket_ms` from the boundary at or before the first send to the last answer: at least one. */
function bucketCount(first_sent_ms: number, last_answered_ms: number, bucket_ms: number): number {
  const start_ms = Math.floor(first_sent_ms / bucket_ms) * bucket_ms;
  return Math.max(1, Math.ceil((last_answered_ms - start_ms) / bucket_ms));
}

function chooseBucketMs(first_sent_ms: number, last_answered_ms: number, requested_ms: number | undefined): number {
  const span_ms = Math.max(0, last_answered_ms - first_sent_ms);
  // The count the timeline will have, its first bucket aligned before the start included.
  const fits = (bucket: number) => bucketCount(first_sent_ms, last_answered_ms, bucket) <= TIMELINE_BUCKETS_MAX;
  if (requested_ms !== undefined) {
    if (!(requested_ms > 0) || !Number.isFinite(requested_ms)) {
      throw new RangeError(`bucket_ms must be a positive number of milliseconds, got ${requested_ms}`);
    }
    if (fits(requested_ms)) return requested_ms;
  }
  // 1 s, or the coarsest finer step that still gives a chart its TIMELINE_POINTS_MIN points.
  const preferred_ms = FINER_STEPS_MS.find((step_ms) => span_ms / step_ms >= TIMELINE_POINTS_MIN) ?? 100;
  const lower_ms = Math.max(preferred_ms, requested_ms ?? 0);
  for (const step_ms of BUCKET_STEPS_MS) if (step_ms >= lower_ms && fits(step_ms)) return step_ms;
  // Longer than a thousand hours: whole hours, still under the bound (more when the aligned first
  // bucket adds one; a few steps at most).
  const hour_ms = 3_600_000;
  let hours_ms = Math.max(1, Math.ceil(span_ms / TIMELINE_BUCKETS_MAX / hour_ms)) * hour_ms;
  while (!fits(hours_ms)) hours_ms += hour_ms;
  return hours_ms;
}

function latencyOf(sent_ms: number, answered_ms: number): number {
  // Clocks of the driver are monotonic; a negative difference can only be a recording glitch.
  return Math.max(0, answered_ms - sent_ms);
}

function statusRank(status: number): number {
  return status === 0 ? 1000 : status;
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Three decimals are below any resolution the driver measures, and keep the JSON readable. */
function round3(x: number): number {
  return Math.round(x * 1000) / 1000;
}

function roundOrNull(x: number | null): number | null {
  return x === null ? null : round3(x);
}
