// Where an open loop's slow answers are in time, and what the server's thread was doing then
// (BENCH_TIMELINE in bench:payments and bench:hot): GC pauses, long event-loop turns and slow
// journal writes, next to each window of due time that holds a slow answer.

import { constants, performance, PerformanceObserver } from 'node:perf_hooks';
import type { StampedeNode } from '../app/node.ts';

/**
 * What happened on the server's thread while an open loop ran: GC pauses, event-loop turns longer
 * than 5 ms (a 1 ms timer's lateness) and journal writes slower than 5 ms, on this thread's clock, so
 * that a window of slow answers can be put next to its cause.
 */
export class TimelineMarks {
  private readonly gcs: [number, number, string][] = [];
  private readonly lags: [number, number][] = [];
  private readonly commits: [number, number][] = [];
  private readonly observer = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) this.gcs.push([e.startTime, e.duration, (e as PerformanceEntry & { detail?: { kind?: number } }).detail?.kind === constants.NODE_PERFORMANCE_GC_MAJOR ? 'major' : 'minor']);
  });
  private readonly timer: NodeJS.Timeout;
  private readonly restore: () => void;

  constructor(node: StampedeNode) {
    this.observer.observe({ entryTypes: ['gc'] });
    let last = performance.now();
    this.timer = setInterval(() => {
      const now = performance.now();
      if (now - last > 6) this.lags.push([last, now - last - 1]);
      last = now;
    }, 1);
    const histogram = node.metrics.groupCommitLatencyMs;
    const observe = histogram.observe.bind(histogram);
    histogram.observe = ((ms: number) => {
      if (ms > 5) this.commits.push([performance.now() - ms, ms]);
      observe(ms);
    }) as typeof histogram.observe;
    this.restore = () => {
      histogram.observe = observe as typeof histogram.observe;
    };
  }

  stop(): void {
    this.observer.disconnect();
    clearInterval(this.timer);
    this.restore();
  }

  /** What started in [from, to], as offsets from t0 (start+duration ms). */
  around(from: number, to: number, t0: number): string {
    const list = (marks: [number, number, ...unknown[]][]) =>
      marks.filter(([at]) => at >= from && at <= to).map(([at, ms, kind]) => `${(at - t0).toFixed(0)}+${ms.toFixed(1)}${kind ? ` ${String(kind)}` : ''}`).join(', ') || '-';
    return `gc ${list(this.gcs)}; turns > 5 ms ${list(this.lags)}; journal writes > 5 ms ${list(this.commits)}`;
  }
}

/**
 * The windows of due time (windowMs wide, from t0) that hold an answer slower than slowMs, each with
 * its count and worst, and with what the marks saw from two windows before its start to two after.
 * `due[i]` is answer i's due time on this thread's clock, `latency[i]` its latency (NaN: none).
 */
export function slowWindows(
  t0: number,
  due: ArrayLike<number>,
  latency: ArrayLike<number>,
  o: { windowMs: number; slowMs: number; what: string },
  marks?: TimelineMarks,
): string {
  const windows = new Map<number, { n: number; slow: number; max: number }>();
  for (let i = 0; i < latency.length; i++) {
    const ms = latency[i]!;
    const w = Math.floor((due[i]! - t0) / o.windowMs);
    let s = windows.get(w);
    if (!s) windows.set(w, (s = { n: 0, slow: 0, max: 0 }));
    s.n++;
    if (ms > o.slowMs) s.slow++;
    if (ms > s.max) s.max = ms;
  }
  const slow = [...windows].filter(([, s]) => s.slow > 0).sort((a, b) => a[0] - b[0]);
  const total = slow.reduce((sum, [, s]) => sum + s.slow, 0);
  const lines = [`  timeline: ${slow.length} of ${windows.size} windows of ${o.windowMs} ms hold ${o.what} over ${o.slowMs} ms; over ${o.slowMs} ms in all: ${total}`];
  for (const [w, s] of slow) {
    lines.push(`    due ${(w * o.windowMs).toString().padStart(6)} ms: ${s.slow}/${s.n} over ${o.slowMs} ms, max ${s.max.toFixed(1)}`);
    if (marks) lines.push(`      ${marks.around(t0 + (w - 2) * o.windowMs, t0 + (w + 2) * o.windowMs, t0)}`);
  }
  return lines.join('\n');
}
