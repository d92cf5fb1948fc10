// The report a person reads in the terminal after a run: who got what answer, how fast, and whether
// the invariants held. Plain text that fits 80 columns for the tables (long route names are cut),
// colour only when asked (the caller passes `color: stream.isTTY`), and the last line is always the
// verdict so `| tail -1` in a script tells PASS from FAIL.
import type { CheckResult } from '../run/results.ts';
import type { LatencySummary, RunFigures } from './figures.ts';

export interface TerminalOptions {
  /** ANSI colours (green PASS, red FAIL, dim labels); off unless asked for. */
  color?: boolean;
  /** Width the free text (check details, violations) wraps or is cut at; default 100. */
  width_cols?: number;
  /** Violations shown per failed check; the rest are counted. Default 3. */
  violations_shown_max?: number;
}

/** Longest route name shown in full; longer ones are cut in the middle. */
const ROUTE_COLS_MAX = 40;
const WIDTH_COLS_DEFAULT = 100;
const VIOLATIONS_SHOWN_DEFAULT = 3;

export function terminalReport(figures: RunFigures, options: TerminalOptions = {}): string {
  const paint = painter(options.color ?? false);
  const width_cols = Math.max(60, options.width_cols ?? WIDTH_COLS_DEFAULT);
  const violations_max = Math.max(0, options.violations_shown_max ?? VIOLATIONS_SHOWN_DEFAULT);
  const out: string[] = [];
  const t = figures.totals;

  out.push(paint.bold(clean(figures.title)));
  out.push(`${paint.dim('target ')}  ${clean(figures.target)}`);
  out.push(`${paint.dim('started')}  ${clean(figures.started_at)}`);
  const options_text = Object.entries(figures.options)
    .map(([k, v]) => `${k}=${String(v)}`)
    .join('  ');
  if (options_text) out.push(...wrap(`${paint.dim('options')}  `, clean(options_text), width_cols, ' '.repeat(9)));
  out.push(
    `${paint.dim('traffic')}  ${int(t.lines)} lines, ${int(t.skipped)} skipped; ${int(t.requests)} requests in ` +
      `${seconds(t.duration_s)} = ${paint.bold(`${rate(t.requests_per_s)} req/s`)}`,
  );
  out.push('');

  out.push(paint.bold('Requests by outcome'));
  const outcomeRows = figures.outcomes.map((o) => [clean(o.label), int(o.count), share(o.share_pct)]);
  outcomeRows.push(['total', int(t.requests), t.requests > 0 ? '100.0%' : '-']);
  out.push(...table(['outcome', 'count', 'share'], outcomeRows, ['l', 'r', 'r'], paint, true));
  out.push('');

  out.push(paint.bold('Latency (ms, answered requests)'));
  const latencyRows = figures.latency.routes.map((r) => [cutMiddle(clean(r.route), ROUTE_COLS_MAX), ...latencyCells(r)]);
  latencyRows.push(['overall', ...latencyCells(figures.latency.overall)]);
  out.push(
    ...table(['route', 'answered', 'p50', 'p95', 'p99', 'max'], latencyRows, ['l', 'r', 'r', 'r', 'r', 'r'], paint, true),
  );
  out.push('');

  const verdict = figures.verdict;
  if (!verdict) {
    out.push(paint.dim('No invariants were checked.'));
    out.push('VERDICT: NONE (no checks ran)');
    return out.join('\n') + '\n';
  }
  out.push(paint.bold('Verdict'));
  const nameCols = Math.min(32, Math.max(0, ...verdict.checks.map((c) => clean(c.name).length)));
  for (const check of verdict.checks) out.push(...checkLines(check, nameCols, width_cols, violations_max, paint));
  out.push('');
  const broken = verdict.checks.filter((c) => !c.passed).length;
  if (verdict.passed && broken === 0) out.push(paint.green(paint.bold('VERDICT: PASS')));
  else out.push(paint.red(paint.bold(`VERDICT: FAIL (${broken} of ${verdict.checks.length} checks broke)`)));
  return out.join('\n') + '\n';
}

function checkLines(
  check: CheckResult,
  nameCols: number,
  width_cols: number,
  violations_max: number,
  paint: Painter,
): string[] {
  const mark = check.passed ? paint.green('PASS') : paint.red('FAIL');
  const head = `  ${mark}  ${cutEnd(clean(check.name), nameCols).padEnd(nameCols)}  `;
  const indent = ' '.repeat(2 + 4 + 2 + nameCols + 2);
  const lines = wrap(head, clean(check.detail), width_cols, indent);
  if (check.passed) return lines;
  // Violations are the lines a person reads closely: they get the width, not the detail's column.
  const listIndent = ' '.repeat(8);
  for (const v of check.violations.slice(0, violations_max)) {
    lines.push(cutEnd(`${listIndent}- ${clean(v)}`, width_cols));
  }
  const more = check.violations.length - violations_max;
  if (more > 0) lines.push(paint.dim(`${listIndent}… and ${int(more)} more`));
  return lines;
}

function latencyCells(l: LatencySummary): string[] {
  return [int(l.count), ms(l.p50_ms), ms(l.p95_ms), ms(l.p99_ms), ms(l.max_ms)];
}

/** A table with a header and a rule under it; the last row gets a rule above it when `total` is set. */
function table(header: string[], rows: string[][], align: ('l' | 'r')[], paint: Painter, total: boolean): string[] {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) =>
    '  ' +
    cells
      .map((c, i) => (align[i] === 'r' ? c.padStart(widths[i]!) : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  const rule = '  ' + widths.map((w) => '─'.repeat(w)).join('  ');
  const lines = [paint.dim(line(header)), paint.dim(rule)];
  rows.forEach((r, i) => {
    if (total && i === rows.length - 1 && rows.length > 1) lines.push(paint.dim(rule));
    lines.push(line(r));
  });
  return lines;
}

/**
 * `prefix` then the words of `text`, wrapped to `width` visible columns; continuation lines start
 * with `indent`. A single word longer than a line is cut.
 */
function wrap(prefix: string, text: string, width: number, indent: string): string[] {
  const lines: string[] = [];
  let current = prefix;
  let fresh = true;
  for (const word of text.split(/\s+/).filter((w) => w !== '')) {
    if (!fresh && visibleLength(current) + 1 + word.length > width) {
      lines.push(current);
      current = indent + word;
    } else {
      current += (fresh ? '' : ' ') + word;
    }
    fresh = false;
  }
  lines.push(current);
  return lines.map((l) => cutEnd(l, width + (l.length - visibleLength(l))));
}

const ANSI_SGR = /\x1b\[[0-9;]*m/g;

function visibleLength(s: string): number {
  return s.replace(ANSI_SGR, '').length;
}

/**
 * Data can hold anything (a route from a recording, a violation quoting a body): control characters
 * are shown escaped so they cannot move the cursor or recolour the terminal.
 */
function clean(s: string): string {
  return s.replace(/[\u0000-\u001f\u007f-\u009f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}

function cutEnd(s: string, width: number): string {
  return s.length <= width ? s : s.slice(0, width - 1) + '…';
}

function cutMiddle(s: string, width: number): string {
  if (s.length <= width) return s;
  const head = Math.ceil((width - 1) / 2);
  return s.slice(0, head) + '…' + s.slice(s.length - (width - 1 - head));
}

const integer = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 });

function int(n: number): string {
  return integer.format(n);
}

function rate(per_s: number): string {
  return per_s >= 100 ? int(per_s) : per_s.toFixed(1);
}

/** `0.0%` would read as none; a few requests of many are `<0.1%`. */
function share(pct: number): string {
  return pct > 0 && pct < 0.05 ? '<0.1%' : `${pct.toFixed(1)}%`;
}

function ms(v: number | null): string {
  if (v === null) return '-';
  return v >= 100 ? int(v) : v >= 10 ? v.toFixed(1) : v.toFixed(2);
}

function seconds(s: number): string {
  return s >= 100 ? `${int(s)} s` : `${s.toFixed(2)} s`;
}

interface Painter {
  bold(s: string): string;
  dim(s: string): string;
  green(s: string): string;
  red(s: string): string;
}

function painter(color: boolean): Painter {
  const sgr = (code: string) => (s: string) => (color ? `\x1b[${code}m${s}\x1b[0m` : s);
  return { bold: sgr('1'), dim: sgr('2'), green: sgr('32'), red: sgr('31') };
}
