// A progress line on stderr while a run sends its traffic, so a person sees it move and how fast:
//   replay [#########-----------] 45% 12,345/27,000  8,912 req/s  ETA 2s
// On a terminal the line is redrawn in place, at most every `redraw_interval_ms`; on a pipe or a CI
// log (no TTY) a plain line is printed every `plain_interval_ms` instead, so logs do not fill with
// carriage returns. No timers: it draws from `tick`/`update`, so it never keeps the process alive,
// and the clock is injected so the tests decide what time it is.

export interface ProgressStream {
  write(chunk: string): unknown;
  isTTY?: boolean;
  columns?: number;
}

export interface ProgressOptions {
  /** Units of work in all (lines to send); 0 or less when unknown: no bar, no percentage, no ETA. */
  total: number;
  stream?: ProgressStream;
  /** Shown first on the line, e.g. `replay`. */
  label?: string;
  /** Milliseconds from a monotonic clock; default `performance.now()`. */
  now_ms?: () => number;
  /** Default 100 ms: faster than that the eye cannot follow and the terminal pays for it. */
  redraw_interval_ms?: number;
  /** Default 5 s between plain lines on a non-TTY stream. */
  plain_interval_ms?: number;
}

/** Live throughput is measured over this much of the recent past. */
const RATE_WINDOW_MS = 1_000;
/** Samples of (time, done) kept for the rate; one every this many ms at most. */
const SAMPLE_INTERVAL_MS = 50;
const SAMPLES_MAX = Math.ceil(RATE_WINDOW_MS / SAMPLE_INTERVAL_MS) + 2;
const BAR_COLS_MAX = 30;
const BAR_COLS_MIN = 10;

export class Progress {
  private total_count: number;
  private readonly stream: ProgressStream;
  private readonly label: string;
  private readonly now_ms: () => number;
  private readonly tty: boolean;
  private readonly redraw_interval_ms: number;
  private readonly plain_interval_ms: number;
  private readonly started_ms: number;
  private done_count = 0;
  private extra = '';
  private last_draw_ms = -Infinity;
  private samples: { t_ms: number; done: number }[] = [];
  private finished = false;

  constructor(options: ProgressOptions) {
    this.total_count = options.total > 0 ? options.total : 0;
    this.stream = options.stream ?? process.stderr;
    this.label = options.label ?? '';
    this.now_ms = options.now_ms ?? (() => performance.now());
    this.tty = this.stream.isTTY === true;
    this.redraw_interval_ms = options.redraw_interval_ms ?? 100;
    this.plain_interval_ms = options.plain_interval_ms ?? 5_000;
    this.started_ms = this.now_ms();
    this.samples.push({ t_ms: this.started_ms, done: 0 });
    // A plain log starts with nothing and gets its first line after the first interval.
    if (!this.tty) this.last_draw_ms = this.started_ms;
  }

  /** Units of work in all, less those skipped; 0 when unknown. */
  get total(): number {
    return this.total_count;
  }

  /** `n` more units done (default 1). */
  tick(n = 1, extra?: string): void {
    this.update(this.done_count + n, extra);
  }

  /**
   * `n` units (default 1) that will not be done after all (lines the replay skips, never sent): taken
   * off the total and not counted as done, so the rate counts only requests and the bar still ends
   * full. Counted as done, they made the live rate read high (~30% in the docs' example).
   */
  skip(n = 1): void {
    if (this.finished || this.total_count === 0) return;
    this.total_count = Math.max(this.done_count, this.total_count - n);
  }

  /** `done` units done in all; `extra` (e.g. `409 sold_out: 1,204`) is shown at the end of the line. */
  update(done: number, extra?: string): void {
    if (this.finished) return;
    this.done_count = done;
    if (extra !== undefined) this.extra = extra;
    const t_ms = this.now_ms();
    this.sample(t_ms);
    const interval_ms = this.tty ? this.redraw_interval_ms : this.plain_interval_ms;
    if (t_ms - this.last_draw_ms < interval_ms) return;
    this.last_draw_ms = t_ms;
    this.draw(t_ms);
  }

  /** Draws the final state and ends the line; later calls do nothing. */
  done(extra?: string): void {
    if (this.finished) return;
    if (extra !== undefined) this.extra = extra;
    const t_ms = this.now_ms();
    this.finished = true;
    const elapsed_s = Math.max(0, t_ms - this.started_ms) / 1000;
    const average_per_s = elapsed_s > 0 ? this.done_count / elapsed_s : 0;
    const parts = [
      this.label,
      this.total_count > 0 ? `${count(this.done_count)}/${count(this.total_count)}` : count(this.done_count),
      `in ${duration(elapsed_s)}`,
      `${count(average_per_s)} req/s`,
      this.extra,
    ];
    const line = parts.filter((p) => p !== '').join('  ');
    this.stream.write(this.tty ? `\r${this.fit(line)}\x1b[K\n` : `${line}\n`);
  }

  /** Units per second over the last second (or since the start, when younger than that). */
  rate_per_s(t_ms = this.now_ms()): number {
    // The newest sample at least a window old; before the first second, the start.
    let from = this.samples[0]!;
    for (const s of this.samples) if (s.t_ms <= t_ms - RATE_WINDOW_MS) from = s;
    const span_ms = t_ms - from.t_ms;
    return span_ms > 0 ? ((this.done_count - from.done) * 1000) / span_ms : 0;
  }

  /** The line as it would be drawn now, without the terminal controls. */
  line(t_ms = this.now_ms()): string {
    const rate = this.rate_per_s(t_ms);
    const parts: string[] = [];
    if (this.label) parts.push(this.label);
    if (this.total_count > 0) {
      const fraction = Math.min(1, this.done_count / this.total_count);
      const pct = `${Math.floor(fraction * 100)}%`.padStart(4);
      if (this.tty) parts.push(`${this.bar(fraction)} ${pct}`);
      else parts.push(pct.trimStart());
      parts.push(`${count(this.done_count)}/${count(this.total_count)}`);
    } else {
      parts.push(count(this.done_count));
    }
    parts.push(`${count(rate)} req/s`);
    if (this.total_count > 0) {
      const left = this.total_count - this.done_count;
      parts.push(left <= 0 ? 'ETA 0s' : rate > 0 ? `ETA ${duration(left / rate)}` : 'ETA ?');
    }
    if (this.extra) parts.push(this.extra);
    // Two spaces between groups read as columns; the bar and its percentage stay together.
    return parts.join('  ').replace(/^(\S+) {2}\[/, '$1 [');
  }

  private draw(t_ms: number): void {
    const line = this.line(t_ms);
    this.stream.write(this.tty ? `\r${this.fit(line)}\x1b[K` : `${line}\n`);
  }

  private bar(fraction: number): string {
    const columns = this.stream.columns ?? 80;
    // The bar gives way first when the terminal is narrow.
    const cols = Math.max(BAR_COLS_MIN, Math.min(BAR_COLS_MAX, columns - 70));
    const filled = Math.round(fraction * cols);
    return `[${'#'.repeat(filled)}${'-'.repeat(cols - filled)}]`;
  }

  /** A redrawn line that wraps can no longer be overwritten with `\r`: keep it one column short. */
  private fit(line: string): string {
    const columns = this.stream.columns ?? 80;
    return line.length < columns ? line : line.slice(0, Math.max(0, columns - 1));
  }

  private sample(t_ms: number): void {
    const last = this.samples[this.samples.length - 1]!;
    if (t_ms - last.t_ms < SAMPLE_INTERVAL_MS) return;
    this.samples.push({ t_ms, done: this.done_count });
    // Keep one sample older than the window so the rate always spans a full second once it can.
    while (this.samples.length > SAMPLES_MAX || (this.samples.length > 2 && this.samples[1]!.t_ms <= t_ms - RATE_WINDOW_MS)) {
      this.samples.shift();
    }
  }
}

const integer = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 });

function count(n: number): string {
  return integer.format(n);
}

/** `2s`, `1m05s`, `2h03m`. */
function duration(s: number): string {
  if (!Number.isFinite(s)) return '?';
  const whole = Math.ceil(s);
  if (whole < 60) return `${whole}s`;
  if (whole < 3600) return `${Math.floor(whole / 60)}m${String(whole % 60).padStart(2, '0')}s`;
  return `${Math.floor(whole / 3600)}h${String(Math.floor((whole % 3600) / 60)).padStart(2, '0')}m`;
}
