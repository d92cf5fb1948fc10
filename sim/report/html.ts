// The report as one HTML file a person opens in a browser, offline, months later: no CDN, no
// external file, nothing fetched. The header, summary, tables and verdict are written here as HTML
// (so they read even with scripts off); the four charts are drawn in the browser as SVG by a small
// inline script from the figures embedded as JSON. Every string from the data goes through
// `escapeHtml` or `textContent`, never into markup, and a Content-Security-Policy that allows only
// this page's own script by hash stops anything that slipped through from running or loading.
import { createHash } from 'node:crypto';
import type { CheckResult, StockSeries } from '../run/results.ts';
import type { LatencySummary, RunFigures } from './figures.ts';

/** More lines than this and the stock chart is a tangle: the rest are summarised under it. */
export const STOCK_SERIES_DRAWN_MAX = 12;
/** Samples kept per drawn stock series; more are thinned evenly (first and last kept). */
export const STOCK_SAMPLES_DRAWN_MAX = 1_000;
/** Bars in the outcomes chart; rarer outcomes are summed into one `other` bar. */
export const OUTCOME_BARS_MAX = 12;
/** Violations listed per failed check (the verdict already bounds them; this bounds the page). */
const VIOLATIONS_LISTED_MAX = 50;

export interface HtmlOptions {
  /** Shown in the footer when given (the report itself reads no clock). */
  generated_at?: string;
}

/** The chart names, as carried in each `<svg data-chart="…">`. */
export const CHART_NAMES = ['throughput', 'latency', 'outcomes', 'stock'] as const;
export type ChartName = (typeof CHART_NAMES)[number];

export function htmlReport(figures: RunFigures, options: HtmlOptions = {}): string {
  const stock = stockDrawn(figures.stock);
  // The embedded figures are the JSON report with the stock cut to what the chart draws, so a run
  // with thousands of SKU/dates still makes a page a browser opens.
  const embedded: RunFigures = { ...figures, stock: stock.drawn };
  const script = CHART_SCRIPT;
  const scriptHash = createHash('sha256').update(script, 'utf8').digest('base64');
  const csp = [
    "default-src 'none'",
    `script-src 'sha256-${scriptHash}'`,
    "style-src 'unsafe-inline'",
    'img-src data:',
    "base-uri 'none'",
    "form-action 'none'",
  ].join('; ');

  const t = figures.totals;
  const verdict = figures.verdict;
  const broken = verdict ? verdict.checks.filter((c) => !c.passed).length : 0;
  const status = !verdict ? 'NONE' : verdict.passed && broken === 0 ? 'PASS' : 'FAIL';
  const statusClass = status.toLowerCase();
  const statusNote = !verdict
    ? 'no checks ran'
    : status === 'PASS'
      ? `${verdict.checks.length} of ${verdict.checks.length} checks held`
      : `${broken} of ${verdict.checks.length} checks broke`;

  const share2xx = figures.outcomes.filter((o) => o.status >= 200 && o.status < 300).reduce((s, o) => s + o.count, 0);

  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="${escapeHtml(csp)}">
<title>Stampede sim: ${escapeHtml(figures.title)}</title>
<style>${STYLE}</style>
</head>
<body>
<main>
<header>
  <div class="kicker">Stampede simulation report</div>
  <div class="headline">
    <h1 id="title">${escapeHtml(figures.title)}</h1>
    <div class="badge ${statusClass}" id="verdict-badge"><span id="verdict-status">${status}</span><small>${escapeHtml(statusNote)}</small></div>
  </div>
  <dl class="meta">
    <div><dt>target</dt><dd>${escapeHtml(figures.target)}</dd></div>
    <div><dt>started</dt><dd>${escapeHtml(figures.started_at)}</dd></div>
    <div><dt>traffic</dt><dd>${int(t.lines)} lines, ${int(t.skipped)} skipped</dd></div>
    ${optionsHtml(figures.options)}
  </dl>
</header>

<section class="cards">
  ${card('requests', int(t.requests), `${int(t.answered)} answered, ${int(t.no_answer)} no answer`)}
  ${card('duration', `${fixed(t.duration_s, 2)} s`, 'first sent to last answered')}
  ${card('throughput', `${int(t.requests_per_s)} req/s`, 'over the whole run')}
  ${card('latency p50 / p99', `${ms(figures.latency.overall.p50_ms)} / ${ms(figures.latency.overall.p99_ms)} ms`, `max ${ms(figures.latency.overall.max_ms)} ms`)}
  ${card('2xx', t.requests > 0 ? `${fixed((share2xx / t.requests) * 100, 1)}%` : '-', `${int(share2xx)} successful answers`)}
</section>

<section class="charts">
  ${chartFigure('throughput', 'Throughput', 'requests answered per second, by status class')}
  ${chartFigure('latency', 'Latency', 'p50 and p99 of the requests answered in each interval, ms')}
  ${chartFigure('outcomes', 'Outcomes', 'requests by status and error code')}
  ${chartFigure('stock', 'Stock', 'available units per SKU/date over time', stock.note)}
</section>

<section class="panel" id="verdict">
  <h2>Verdict <span class="badge small ${statusClass}">${status}</span></h2>
  ${verdict ? verdict.checks.map(checkHtml).join('\n  ') : '<p class="muted">No invariants were checked in this run.</p>'}
</section>

<section class="tables">
  <div class="panel">
    <h2>Requests by outcome</h2>
    ${outcomeTable(figures)}
  </div>
  <div class="panel">
    <h2>Latency by route <span class="muted">(ms, answered requests)</span></h2>
    ${latencyTable(figures)}
  </div>
</section>

<footer>${escapeHtml(figures.format)} · timeline in ${int(figures.timeline.bucket_ms)} ms intervals${
    options.generated_at ? ` · generated ${escapeHtml(options.generated_at)}` : ''
  }</footer>
</main>
<script type="application/json" id="figures">${jsonForScript(embedded)}</script>
<script>${script}</script>
</body>
</html>
`;
}

/** Text for HTML content and attribute values: the five characters that can end either. */
export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/**
 * JSON that cannot end its `<script>` element or open a comment in it: every `<`, `>` and `&` is
 * written as a \u escape, which JSON.parse reads back unchanged (they only occur inside strings).
 */
function jsonForScript(value: unknown): string {
  return JSON.stringify(value)
    .replace(/</g, '\\u003c')
    .replace(/>/g, '\\u003e')
    .replace(/&/g, '\\u0026')
    .replace(/\u2028/g, '\\u2028')
    .replace(/\u2029/g, '\\u2029');
}

interface StockDrawn {
  drawn: StockSeries[];
  /** Text said under the chart when some series are not drawn; '' otherwise. */
  note: string;
}

/**
 * The series that drained most are the interesting ones: those are drawn; the rest are summed up in
 * a line of text rather than drawn as a sum, which would flatten every other line on the axis.
 */
function stockDrawn(stock: StockSeries[]): StockDrawn {
  const ranked = stock
    .filter((s) => s.samples.length > 0)
    .map((s) => {
      const first = s.samples[0]!;
      const last = s.samples[s.samples.length - 1]!;
      const peak = s.samples.reduce((m, x) => Math.max(m, x.available), 0);
      return { s, drained: peak - last.available, first, last, key: `${s.skuId}/${s.date}` };
    })
    .sort((a, b) => b.drained - a.drained || b.first.total - a.first.total || (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  const drawn = ranked
    .slice(0, STOCK_SERIES_DRAWN_MAX)
    .map((r) => ({ skuId: r.s.skuId, date: r.s.date, samples: thin(r.s.samples, STOCK_SAMPLES_DRAWN_MAX) }))
    .sort((a, b) => (a.skuId + '/' + a.date < b.skuId + '/' + b.date ? -1 : 1));
  const rest = ranked.slice(STOCK_SERIES_DRAWN_MAX);
  const empty = stock.length - ranked.length;
  const notes: string[] = [];
  if (rest.length > 0) {
    const from = rest.reduce((sum, r) => sum + r.first.available, 0);
    const to = rest.reduce((sum, r) => sum + r.last.available, 0);
    const soldOut = rest.filter((r) => r.last.available === 0).length;
    notes.push(
      `Drawn: the ${drawn.length} SKU/dates that drained most. The other ${int(rest.length)}: ` +
        `available ${int(from)} → ${int(to)} in all, ${int(soldOut)} sold out.`,
    );
  }
  if (empty > 0) notes.push(`${int(empty)} SKU/date${empty === 1 ? '' : 's'} without samples.`);
  return { drawn, note: notes.join(' ') };
}

function thin<T>(samples: T[], max: number): T[] {
  if (samples.length <= max) return samples;
  const out: T[] = [];
  const step = (samples.length - 1) / (max - 1);
  for (let i = 0; i < max; i++) out.push(samples[Math.round(i * step)]!);
  return out;
}

function optionsHtml(options: Record<string, string | number | boolean>): string {
  const entries = Object.entries(options);
  if (entries.length === 0) return '';
  const chips = entries
    .map(([k, v]) => `<code>${escapeHtml(k)}=${escapeHtml(String(v))}</code>`)
    .join(' ');
  return `<div class="wide"><dt>options</dt><dd class="chips">${chips}</dd></div>`;
}

function card(name: string, value: string, note: string): string {
  return `<div class="card"><div class="card-name">${escapeHtml(name)}</div><div class="card-value">${escapeHtml(value)}</div><div class="card-note">${escapeHtml(note)}</div></div>`;
}

function chartFigure(name: ChartName, title: string, subtitle: string, note = ''): string {
  return `<figure class="panel chart">
    <figcaption><h2>${escapeHtml(title)}</h2><span class="muted">${escapeHtml(subtitle)}</span></figcaption>
    <svg data-chart="${name}" data-points="0" role="img" aria-label="${escapeHtml(title)} chart" xmlns="http://www.w3.org/2000/svg"></svg>
    ${note ? `<p class="note">${escapeHtml(note)}</p>` : ''}
  </figure>`;
}

function checkHtml(check: CheckResult): string {
  const listed = check.violations.slice(0, VIOLATIONS_LISTED_MAX);
  const more = check.violations.length - listed.length;
  const violations =
    check.passed || listed.length === 0
      ? ''
      : `<ol class="violations">${listed.map((v) => `<li><code>${escapeHtml(v)}</code></li>`).join('')}${
          more > 0 ? `<li class="muted">… and ${int(more)} more</li>` : ''
        }</ol>`;
  return `<div class="check ${check.passed ? 'pass' : 'fail'}"><span class="badge small ${check.passed ? 'pass' : 'fail'}">${
    check.passed ? 'PASS' : 'FAIL'
  }</span><div><div class="check-name">${escapeHtml(check.name)}</div><div class="check-detail">${escapeHtml(
    check.detail,
  )}</div>${violations}</div></div>`;
}

function outcomeTable(figures: RunFigures): string {
  const rows = figures.outcomes
    .map(
      (o) =>
        `<tr><td><span class="dot ${statusClass(o.status)}"></span>${escapeHtml(o.label)}</td><td class="num">${int(
          o.count,
        )}</td><td class="num">${share(o.share_pct)}</td><td class="barcell"><span class="bar ${statusClass(
          o.status,
        )}" style="width:${Math.max(0, Math.min(100, o.share_pct)).toFixed(2)}%"></span></td></tr>`,
    )
    .join('');
  return `<table><thead><tr><th>outcome</th><th class="num">count</th><th class="num">share</th><th></th></tr></thead><tbody>${rows}</tbody><tfoot><tr><td>total</td><td class="num">${int(
    figures.totals.requests,
  )}</td><td class="num">${figures.totals.requests > 0 ? '100.0%' : '-'}</td><td></td></tr></tfoot></table>`;
}

function latencyTable(figures: RunFigures): string {
  const cells = (l: LatencySummary) =>
    `<td class="num">${int(l.count)}</td><td class="num">${ms(l.p50_ms)}</td><td class="num">${ms(l.p95_ms)}</td><td class="num">${ms(
      l.p99_ms,
    )}</td><td class="num">${ms(l.max_ms)}</td>`;
  const rows = figures.latency.routes
    .map((r) => `<tr><td><code>${escapeHtml(r.route)}</code></td><td class="num">${int(r.requests)}</td>${cells(r)}</tr>`)
    .join('');
  return `<table><thead><tr><th>route</th><th class="num">requests</th><th class="num">answered</th><th class="num">p50</th><th class="num">p95</th><th class="num">p99</th><th class="num">max</th></tr></thead><tbody>${rows}</tbody><tfoot><tr><td>overall</td><td class="num">${int(
    figures.totals.requests,
  )}</td>${cells(figures.latency.overall)}</tr></tfoot></table>`;
}

function statusClass(status: number): string {
  return status === 0 ? 's0' : status < 300 ? 's2' : status < 400 ? 's3' : status < 500 ? 's4' : 's5';
}

const integer = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 });

function int(n: number): string {
  return integer.format(n);
}

function fixed(n: number, digits: number): string {
  return n.toFixed(digits);
}

/** `0.0%` would read as none; a few requests of many are `<0.1%`. */
function share(pct: number): string {
  return pct > 0 && pct < 0.05 ? '<0.1%' : `${pct.toFixed(1)}%`;
}

function ms(v: number | null): string {
  if (v === null) return '-';
  return v >= 100 ? int(v) : v >= 10 ? v.toFixed(1) : v.toFixed(2);
}

const STYLE = `
:root { color-scheme: light; --ink: #1f2937; --muted: #6b7280; --line: #e5e7eb; --bg: #f5f6f8; --panel: #fff;
  --pass: #15803d; --pass-bg: #dcfce7; --fail: #b91c1c; --fail-bg: #fee2e2;
  --s2: #16a34a; --s3: #0891b2; --s4: #d97706; --s5: #dc2626; --s0: #6b7280; }
* { box-sizing: border-box; }
body { margin: 0; background: var(--bg); color: var(--ink);
  font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
main { max-width: 1240px; margin: 0 auto; padding: 24px 24px 40px; }
code { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, "Liberation Mono", monospace; font-size: 12.5px; }
h1 { font-size: 24px; margin: 0; font-weight: 650; overflow-wrap: anywhere; }
h2 { font-size: 15px; margin: 0 0 10px; font-weight: 600; }
.kicker { color: var(--muted); font-size: 12px; text-transform: uppercase; letter-spacing: .06em; margin-bottom: 4px; }
.headline { display: flex; align-items: center; gap: 16px; justify-content: space-between; }
.badge { display: inline-flex; flex-direction: column; align-items: center; padding: 6px 16px; border-radius: 8px;
  font-weight: 700; font-size: 20px; letter-spacing: .04em; }
.badge small { font-size: 11px; font-weight: 500; letter-spacing: 0; }
.badge.small { display: inline-block; font-size: 11px; padding: 1px 7px; border-radius: 4px; vertical-align: 2px; }
.badge.pass { background: var(--pass-bg); color: var(--pass); }
.badge.fail { background: var(--fail-bg); color: var(--fail); }
.badge.none { background: var(--line); color: var(--muted); }
.meta { display: flex; flex-wrap: wrap; gap: 6px 28px; margin: 14px 0 0; }
.meta div { display: flex; gap: 8px; min-width: 0; }
.meta .wide { flex-basis: 100%; }
.meta dt { color: var(--muted); }
.meta dd { margin: 0; overflow-wrap: anywhere; }
.chips code { background: #eef0f3; border-radius: 4px; padding: 1px 6px; margin-right: 4px; white-space: nowrap; }
.cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(180px, 1fr)); gap: 12px; margin: 20px 0; }
.card, .panel { background: var(--panel); border: 1px solid var(--line); border-radius: 10px; }
.card { padding: 12px 14px; }
.card-name { color: var(--muted); font-size: 12px; }
.card-value { font-size: 22px; font-weight: 650; font-variant-numeric: tabular-nums; }
.card-note { color: var(--muted); font-size: 12px; }
.panel { padding: 16px 18px; margin: 0 0 16px; }
.charts { display: grid; grid-template-columns: repeat(auto-fit, minmax(520px, 1fr)); gap: 16px; margin-bottom: 16px; }
.charts .panel { margin: 0; }
figure { margin: 0; }
figcaption { display: flex; gap: 10px; align-items: baseline; flex-wrap: wrap; margin-bottom: 4px; }
figcaption h2 { margin: 0; }
svg { display: block; width: 100%; height: auto; font-family: inherit; }
svg text { fill: #4b5563; font-size: 11px; }
.note { color: var(--muted); font-size: 12px; margin: 6px 0 0; }
.muted { color: var(--muted); font-weight: 400; }
.check { display: flex; gap: 12px; align-items: flex-start; padding: 10px 0; border-top: 1px solid var(--line); }
.check:first-of-type { border-top: 0; }
.check .badge.small { margin-top: 2px; min-width: 42px; text-align: center; }
.check-name { font-weight: 600; }
.check-detail { color: #374151; }
.violations { margin: 6px 0 0; padding-left: 22px; color: var(--fail); }
.violations code { color: #7f1d1d; white-space: pre-wrap; overflow-wrap: anywhere; }
.tables { display: grid; grid-template-columns: minmax(0, 2fr) minmax(0, 3fr); gap: 16px; }
@media (max-width: 1100px) { .tables { grid-template-columns: minmax(0, 1fr); } }
.tables .panel { margin: 0; overflow-x: auto; }
table { border-collapse: collapse; width: 100%; font-variant-numeric: tabular-nums; }
th, td { padding: 5px 6px; border-bottom: 1px solid var(--line); text-align: left; white-space: nowrap; }
th { color: var(--muted); font-weight: 500; font-size: 12px; }
tfoot td { font-weight: 600; border-bottom: 0; }
.num { text-align: right; }
.barcell { width: 30%; }
.bar { display: block; height: 8px; border-radius: 4px; min-width: 2px; }
.dot { display: inline-block; width: 8px; height: 8px; border-radius: 50%; margin-right: 8px; }
.s2 { background: var(--s2); } .s3 { background: var(--s3); } .s4 { background: var(--s4); }
.s5 { background: var(--s5); } .s0 { background: var(--s0); }
footer { color: var(--muted); font-size: 12px; margin-top: 20px; }
`;

/**
 * The browser side: reads the figures, draws each chart into its <svg>, and sets `data-points` (the
 * points or bars drawn) on it and `data-rendered` on <body> when done, which is what the screenshot
 * and its test wait for. Plain ES2017, no dependencies; data only ever reaches the page through
 * `textContent` and `setAttribute`.
 */
const CHART_SCRIPT = String.raw`
(function () {
  'use strict';
  var NS = 'http://www.w3.org/2000/svg';
  var W = 640, H = 320;
  var C = { total: '#1f2937', s2: '#16a34a', s3: '#0891b2', s4: '#d97706', s5: '#dc2626', s0: '#6b7280',
    p50: '#2563eb', p99: '#db2777', grid: '#eceef1', axis: '#9ca3af' };
  var PALETTE = ['#2563eb', '#dc2626', '#16a34a', '#d97706', '#7c3aed', '#0891b2', '#db2777', '#65a30d',
    '#ea580c', '#4f46e5', '#0d9488', '#a16207'];
  var figures = JSON.parse(document.getElementById('figures').textContent);

  function node(name, attrs, parent) {
    var e = document.createElementNS(NS, name);
    for (var k in attrs) if (Object.prototype.hasOwnProperty.call(attrs, k)) e.setAttribute(k, String(attrs[k]));
    if (parent) parent.appendChild(e);
    return e;
  }
  function text(parent, x, y, s, attrs) {
    var a = { x: x, y: y };
    for (var k in attrs || {}) a[k] = attrs[k];
    var t = node('text', a, parent);
    t.textContent = s;
    return t;
  }
  function niceStep(span, count) {
    var raw = span / Math.max(1, count);
    var mag = Math.pow(10, Math.floor(Math.log10(raw)));
    var n = raw / mag;
    return (n <= 1 ? 1 : n <= 2 ? 2 : n <= 2.5 ? 2.5 : n <= 5 ? 5 : 10) * mag;
  }
  function range(from, to, step) {
    var out = [];
    for (var i = Math.ceil(from / step - 1e-9); i * step <= to + step * 1e-9; i++) out.push(Number((i * step).toPrecision(12)));
    return out;
  }
  function num(v) {
    var a = Math.abs(v);
    if (a >= 1e9) return Number((v / 1e9).toPrecision(3)) + 'G';
    if (a >= 1e6) return Number((v / 1e6).toPrecision(3)) + 'M';
    if (a >= 1e4) return Number((v / 1e3).toPrecision(3)) + 'k';
    if (a >= 100 || v === Math.round(v)) return Math.round(v).toLocaleString('en-US');
    return String(Number(v.toPrecision(3)));
  }
  /** One style for all the ticks of an axis (0, 2k, 4k … 10k rather than 8,000 then 10k). */
  function tickFormat(top) {
    var unit = top >= 1e9 ? 1e9 : top >= 1e6 ? 1e6 : top >= 1e4 ? 1e3 : 1;
    var suffix = { 1e9: 'G', 1e6: 'M', 1e3: 'k', 1: '' }[unit];
    return function (v) {
      var x = v / unit;
      return (x === Math.round(x) ? Math.round(x).toLocaleString('en-US') : String(Number(x.toPrecision(3)))) + (v === 0 ? '' : suffix);
    };
  }
  function textWidth(s) { return s.length * 6.3; }
  function emptyChart(svg, message) {
    svg.setAttribute('viewBox', '0 0 ' + W + ' ' + 120);
    text(svg, W / 2, 64, message, { 'text-anchor': 'middle' });
  }

  /** Items laid out left to right, wrapping; returns the height used. */
  function legend(svg, items, x0, y0, maxX) {
    var x = x0, y = y0;
    items.forEach(function (it) {
      var w = 22 + textWidth(it.name) + 14;
      if (x + w > maxX && x > x0) { x = x0; y += 17; }
      if (it.dash) node('line', { x1: x, y1: y - 4, x2: x + 16, y2: y - 4, stroke: it.color, 'stroke-width': 2.5, 'stroke-dasharray': it.dash }, svg);
      else node('rect', { x: x, y: y - 9, width: 16, height: 10, rx: 2, fill: it.color }, svg);
      text(svg, x + 21, y, it.name);
      x += w;
    });
    return y - y0 + 17;
  }

  /** spec: { series: [{ name, color, dash?, points: [[x, y or null], ...] }], xLabel, yLabel } */
  function lineChart(svg, spec) {
    var series = spec.series.filter(function (s) { return s.points.length > 0; });
    var xMin = Infinity, xMax = -Infinity, yMax = 0, points = 0;
    series.forEach(function (s) {
      s.points.forEach(function (p) {
        if (p[1] === null || !isFinite(p[1])) return;
        points++;
        if (p[0] < xMin) xMin = p[0];
        if (p[0] > xMax) xMax = p[0];
        if (p[1] > yMax) yMax = p[1];
      });
    });
    if (points === 0) { emptyChart(svg, 'no data'); return 0; }
    if (xMax === xMin) { xMin -= 0.5; xMax += 0.5; }
    if (!(yMax > 0)) yMax = 1;
    var yStep = niceStep(yMax, 5), yTop = Math.ceil(yMax / yStep - 1e-9) * yStep;
    var yTicks = range(0, yTop, yStep);
    var xTicks = range(xMin, xMax, niceStep(xMax - xMin, 7));
    var yFmt = tickFormat(yTop), xFmt = tickFormat(Math.max(Math.abs(xMin), Math.abs(xMax)));
    var left = 18 + Math.max.apply(null, yTicks.map(function (v) { return textWidth(yFmt(v)); })) + 10;
    var right = W - 16;
    var legendH = legend(svg, series.map(function (s) { return { name: s.name, color: s.color, dash: s.dash }; }), left, 14, right);
    var top = 14 + legendH, bottom = H - 40;
    svg.setAttribute('viewBox', '0 0 ' + W + ' ' + H);
    function X(v) { return left + (v - xMin) / (xMax - xMin) * (right - left); }
    function Y(v) { return bottom - v / yTop * (bottom - top); }

    yTicks.forEach(function (v) {
      node('line', { x1: left, x2: right, y1: Y(v), y2: Y(v), stroke: C.grid }, svg);
      text(svg, left - 6, Y(v) + 3.5, yFmt(v), { 'text-anchor': 'end' });
    });
    xTicks.forEach(function (v) {
      node('line', { x1: X(v), x2: X(v), y1: bottom, y2: bottom + 4, stroke: C.axis }, svg);
      text(svg, X(v), bottom + 16, xFmt(v), { 'text-anchor': 'middle' });
    });
    node('line', { x1: left, x2: right, y1: bottom, y2: bottom, stroke: C.axis }, svg);
    node('line', { x1: left, x2: left, y1: top, y2: bottom, stroke: C.axis }, svg);
    text(svg, (left + right) / 2, H - 6, spec.xLabel, { 'text-anchor': 'middle' });
    text(svg, 12, (top + bottom) / 2, spec.yLabel, { 'text-anchor': 'middle', transform: 'rotate(-90 12 ' + (top + bottom) / 2 + ')' });

    series.forEach(function (s) {
      var d = '', pen = false, lone = [];
      s.points.forEach(function (p, i) {
        if (p[1] === null || !isFinite(p[1])) { pen = false; return; }
        var nextGap = i + 1 >= s.points.length || s.points[i + 1][1] === null;
        if (!pen && nextGap) lone.push(p);
        d += (pen ? 'L' : 'M') + X(p[0]).toFixed(1) + ' ' + Y(p[1]).toFixed(1);
        pen = true;
      });
      var path = node('path', { d: d, fill: 'none', stroke: s.color, 'stroke-width': s.width || 1.8,
        'stroke-linejoin': 'round', 'stroke-linecap': 'round' }, svg);
      if (s.dash) path.setAttribute('stroke-dasharray', s.dash);
      node('title', {}, path).textContent = s.name;
      lone.forEach(function (p) { node('circle', { cx: X(p[0]), cy: Y(p[1]), r: 2.2, fill: s.color }, svg); });
    });
    hover(svg, series, xMin, xMax, left, right, top, bottom);
    return points;
  }

  /** A vertical rule and the values of every series nearest the pointer. */
  function hover(svg, series, xMin, xMax, left, right, top, bottom) {
    var layer = node('g', { 'pointer-events': 'none', visibility: 'hidden' }, svg);
    var rule = node('line', { y1: top, y2: bottom, stroke: C.axis, 'stroke-dasharray': '3 3' }, layer);
    var box = node('rect', { rx: 4, fill: '#ffffff', stroke: C.axis, 'fill-opacity': 0.95 }, layer);
    var lines = [];
    var zone = node('rect', { x: left, y: top, width: right - left, height: bottom - top, fill: 'transparent' }, svg);
    function nearest(points, x) {
      var lo = 0, hi = points.length - 1;
      while (lo < hi) { var mid = (lo + hi) >> 1; if (points[mid][0] < x) lo = mid + 1; else hi = mid; }
      if (lo > 0 && Math.abs(points[lo - 1][0] - x) < Math.abs(points[lo][0] - x)) lo--;
      return points[lo];
    }
    zone.addEventListener('mousemove', function (ev) {
      var m = zone.getScreenCTM();
      if (!m) return;
      var px = (ev.clientX - m.e) / m.a;
      var x = xMin + (px - left) / (right - left) * (xMax - xMin);
      lines.forEach(function (l) { layer.removeChild(l); });
      lines = [];
      var rows = ['t = ' + num(x) + ' s'];
      series.forEach(function (s) {
        var p = nearest(s.points, x);
        rows.push(s.name + ': ' + (p[1] === null ? '-' : num(p[1])));
      });
      var w = 16 + Math.max.apply(null, rows.map(textWidth)), h = 8 + rows.length * 15;
      var bx = px + 12 + w > right ? px - 12 - w : px + 12;
      rule.setAttribute('x1', px); rule.setAttribute('x2', px);
      box.setAttribute('x', bx); box.setAttribute('y', top + 4); box.setAttribute('width', w); box.setAttribute('height', h);
      rows.forEach(function (r, i) { lines.push(text(layer, bx + 8, top + 19 + i * 15, r)); });
      layer.setAttribute('visibility', 'visible');
    });
    zone.addEventListener('mouseleave', function () { layer.setAttribute('visibility', 'hidden'); });
  }

  /** Horizontal bars: bars: [{ name, value, note, color }] */
  function barChart(svg, bars) {
    if (bars.length === 0) { emptyChart(svg, 'no requests'); return 0; }
    // Few bars get thicker rows, so the chart fills its panel like the line charts beside it.
    var rowH = Math.max(26, Math.min(40, 240 / bars.length)), top = 8;
    var labelW = Math.min(220, 12 + Math.max.apply(null, bars.map(function (b) { return textWidth(b.name); })));
    var noteW = 12 + Math.max.apply(null, bars.map(function (b) { return textWidth(b.note); }));
    var left = labelW + 8, right = W - noteW - 8;
    var bottom = top + bars.length * rowH, h = bottom + 28;
    svg.setAttribute('viewBox', '0 0 ' + W + ' ' + h);
    var max = Math.max.apply(null, bars.map(function (b) { return b.value; })) || 1;
    var step = niceStep(max, 5), xTop = Math.ceil(max / step - 1e-9) * step, xFmt = tickFormat(xTop);
    function X(v) { return left + v / xTop * (right - left); }
    range(0, xTop, step).forEach(function (v) {
      node('line', { x1: X(v), x2: X(v), y1: top, y2: bottom, stroke: C.grid }, svg);
      text(svg, X(v), bottom + 16, xFmt(v), { 'text-anchor': 'middle' });
    });
    node('line', { x1: left, x2: left, y1: top, y2: bottom, stroke: C.axis }, svg);
    bars.forEach(function (b, i) {
      var y = top + i * rowH;
      text(svg, left - 8, y + rowH / 2 + 4, b.name, { 'text-anchor': 'end' });
      var barH = Math.min(18, rowH - 10);
      var rect = node('rect', { x: left, y: y + (rowH - barH) / 2, width: Math.max(1.5, X(b.value) - left), height: barH, rx: 3, fill: b.color }, svg);
      node('title', {}, rect).textContent = b.name + ': ' + b.note;
      text(svg, X(b.value) + 6, y + rowH / 2 + 4, b.note);
    });
    return bars.length;
  }

  function classColor(status) {
    return status === 0 ? C.s0 : status < 300 ? C.s2 : status < 400 ? C.s3 : status < 500 ? C.s4 : C.s5;
  }

  // A bucket's point is the middle of the time it covers (the edge buckets cover part of theirs:
  // the run starts and ends inside them), and its rates are over that time, as rate_per_s is.
  function bucketMid(b) { return (Math.max(b.t_ms, figures.totals.first_sent_ms) + b.span_ms / 2) / 1000; }
  function perSecond(n, b) { return b.span_ms > 0 ? n / (b.span_ms / 1000) : 0; }

  function throughput(svg) {
    var tl = figures.timeline;
    function s(name, color, f, extra) {
      var o = { name: name, color: color, points: tl.buckets.map(function (b) { return [bucketMid(b), f(b)]; }) };
      for (var k in extra || {}) o[k] = extra[k];
      return o;
    }
    var series = [
      s('all', C.total, function (b) { return b.rate_per_s; }, { width: 2.4 }),
      s('2xx', C.s2, function (b) { return perSecond(b.status_2xx, b); }),
      s('4xx', C.s4, function (b) { return perSecond(b.status_4xx, b); }),
      s('5xx', C.s5, function (b) { return perSecond(b.status_5xx, b); })
    ];
    if (figures.totals.no_answer > 0) series.push(s('no answer', C.s0, function (b) { return perSecond(b.no_answer, b); }, { dash: '4 3' }));
    return lineChart(svg, { series: series, xLabel: 'time since start (s)', yLabel: 'requests / s' });
  }

  function latency(svg) {
    var tl = figures.timeline;
    function pts(f) { return tl.buckets.map(function (b) { return [bucketMid(b), f(b)]; }); }
    return lineChart(svg, { series: [
      { name: 'p50', color: C.p50, points: pts(function (b) { return b.p50_ms; }) },
      { name: 'p99', color: C.p99, points: pts(function (b) { return b.p99_ms; }) }
    ], xLabel: 'time since start (s)', yLabel: 'latency (ms)' });
  }

  function outcomes(svg) {
    var total = figures.totals.requests;
    var list = figures.outcomes.slice();
    var max = ${OUTCOME_BARS_MAX};
    var bars = list.slice(0, list.length > max ? max - 1 : max).map(function (o) {
      return { name: o.label, value: o.count, color: classColor(o.status) };
    });
    if (list.length > max) {
      var rest = list.slice(max - 1);
      bars.push({ name: 'other (' + rest.length + ' kinds)', color: C.s0,
        value: rest.reduce(function (a, o) { return a + o.count; }, 0) });
    }
    bars.forEach(function (b) {
      var pct = total > 0 ? b.value / total * 100 : 0;
      b.note = b.value.toLocaleString('en-US') + '  (' + (pct > 0 && pct < 0.05 ? '<0.1' : pct.toFixed(1)) + '%)';
    });
    return barChart(svg, bars);
  }

  function stock(svg) {
    var series = figures.stock.map(function (st, i) {
      return {
        name: st.date === 'open' ? st.skuId : st.skuId + ' ' + st.date,
        color: PALETTE[i % PALETTE.length],
        points: st.samples.map(function (x) { return [x.t_ms / 1000, x.available]; })
      };
    });
    svg.setAttribute('data-series', String(series.length));
    if (series.length === 0) { emptyChart(svg, 'no stock was sampled'); return 0; }
    return lineChart(svg, { series: series, xLabel: 'time since start (s)', yLabel: 'available units' });
  }

  var draw = { throughput: throughput, latency: latency, outcomes: outcomes, stock: stock };
  Array.prototype.forEach.call(document.querySelectorAll('svg[data-chart]'), function (svg) {
    var name = svg.getAttribute('data-chart');
    try {
      svg.setAttribute('data-points', String(draw[name](svg)));
    } catch (err) {
      svg.setAttribute('data-error', String(err && err.message || err));
      emptyChart(svg, 'could not draw: ' + String(err && err.message || err));
    }
  });
  document.body.setAttribute('data-rendered', 'true');
})();
`;
