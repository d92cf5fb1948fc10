// Opens an HTML report in headless Chromium, the way a person would open it, and tells what the
// browser drew: each chart's name and number of points, the title, the verdict, every request the page
// made (there should be one: the file itself) and any script error. Optionally saves a full-page PNG.
// Used by the report's test and, run as a script, to make the screenshot in the docs:
//   node --import tsx sim/report/screenshot.ts [docs/images/sim-report.png [report.html]]
import { constants } from 'node:fs';
import { access, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { chromium } from 'playwright-core';
import type { CheckResult, RequestResult, RunRecord, StockSeries } from '../run/results.ts';
import { computeFigures } from './figures.ts';
import { htmlReport } from './html.ts';
import { seededFloats } from '../../engine/random.ts';

export const CHROMIUM_PATH_DEFAULT = '/usr/bin/chromium';

/** Flags for a browser that only renders a local file: no sandbox (containers), no GPU, no calling home. */
export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

export interface RenderOptions {
  /** Where to save a full-page screenshot; its folder is created. */
  pngFile?: string;
  executablePath?: string;
  /** Bound on launching, loading and drawing; default 20 s. */
  timeout_ms?: number;
  /** CSS pixels; default 1280 × 900 (the page grows to its full height in the screenshot). */
  viewport?: { width: number; height: number };
  /** Device pixels per CSS pixel; 2 makes a sharper (and four times larger) PNG. Default 1. */
  scale?: number;
}

export interface RenderedChart {
  /** `data-chart` of the <svg>: throughput, latency, outcomes, stock. */
  name: string;
  /** `data-points`: points or bars the page's script drew (0 when it drew nothing). */
  points: number;
  /** `data-series` where the chart sets it (stock: lines drawn). */
  series?: number;
  /** `data-error`: why the script could not draw it. */
  error?: string;
}

export interface RenderedReport {
  /** The report's heading as shown. */
  title: string;
  charts: RenderedChart[];
  /** `PASS`, `FAIL` or `NONE`, as the page shows it. */
  verdict: string;
  /** Every URL the page requested, the file itself included. */
  requests: string[];
  /** Uncaught script errors and console errors (a blocked load shows here too). */
  errors: string[];
  pngFile?: string;
}

export async function renderReport(htmlFile: string, options: RenderOptions = {}): Promise<RenderedReport> {
  const executablePath = options.executablePath ?? CHROMIUM_PATH_DEFAULT;
  const timeout_ms = options.timeout_ms ?? 20_000;
  try {
    await access(executablePath, constants.X_OK);
  } catch (cause) {
    throw new Error(
      `Chromium not found at ${executablePath}; install it (apt-get install chromium) or pass executablePath`,
      { cause },
    );
  }
  const url = pathToFileURL(resolve(htmlFile)).href;
  let browser;
  try {
    browser = await chromium.launch({ executablePath, headless: true, args: CHROMIUM_ARGS, timeout: timeout_ms });
  } catch (cause) {
    throw new Error(`Chromium at ${executablePath} did not start`, { cause });
  }
  try {
    const context = await browser.newContext({
      viewport: options.viewport ?? { width: 1280, height: 900 },
      deviceScaleFactor: options.scale ?? 1,
    });
    const page = await context.newPage();
    page.setDefaultTimeout(timeout_ms);
    const requests: string[] = [];
    const errors: string[] = [];
    page.on('request', (request) => requests.push(request.url()));
    page.on('pageerror', (error) => errors.push(error.message));
    page.on('console', (message) => {
      if (message.type() === 'error') errors.push(message.text());
    });
    await page.goto(url, { waitUntil: 'load' });
    // The script marks <body> once every chart is drawn (or failed to draw, which data-error tells).
    await page.waitForSelector('body[data-rendered]', { state: 'attached' });
    const charts = await page.$$eval('svg[data-chart]', (svgs) =>
      svgs.map((svg) => {
        const series = svg.getAttribute('data-series');
        const error = svg.getAttribute('data-error');
        return {
          name: svg.getAttribute('data-chart') ?? '',
          points: Number(svg.getAttribute('data-points') ?? 0),
          ...(series === null ? {} : { series: Number(series) }),
          ...(error === null ? {} : { error }),
        };
      }),
    );
    const title = (await page.textContent('#title'))?.trim() ?? '';
    const verdict = (await page.textContent('#verdict-status'))?.trim() ?? '';
    if (options.pngFile) {
      await mkdir(dirname(resolve(options.pngFile)), { recursive: true });
      await page.screenshot({ path: options.pngFile, fullPage: true });
    }
    return { title, charts, verdict, requests, errors, ...(options.pngFile ? { pngFile: options.pngFile } : {}) };
  } finally {
    await browser.close();
  }
}

// ---------------------------------------------------------------------------------------------
// The docs screenshot: a made-up flash sale that looks like a real one, until a real run replaces it.


/**
 * Twenty seconds of a sale opening at t = 2 s: a spike of buyers, stock of five SKU/dates draining to
 * sold out, rule refusals, shedding at the peak, then storefront reads, payments and order polls.
 */
export function exampleRun(seed = 7): RunRecord {
  const random = seededFloats(seed);
  const skus = [
    { skuId: 'concert-a', date: '2026-12-24', total: 4_000 },
    { skuId: 'concert-a', date: '2026-12-25', total: 3_000 },
    { skuId: 'museum-pass', date: '2026-12-24', total: 1_500 },
    { skuId: 'game-key-xl', date: 'open', total: 6_000 },
    { skuId: 'game-key-s', date: 'open', total: 9_000 },
  ];
  const available = skus.map((s) => s.total);
  const soldAt = skus.map(() => [] as number[]);
  const results: RequestResult[] = [];
  const duration_ms = 20_000;
  const sale_ms = 2_000;
  let line = 0;
  for (let t = 0; t < duration_ms; t += 10) {
    // Arrivals per 10 ms: a trickle before the sale, a spike at the opening, a long decay.
    const since = t - sale_ms;
    const per_s = since < 0 ? 300 : 600 + 9_000 * Math.exp(-since / 3_500) * Math.min(1, since / 400);
    const n = Math.round((per_s / 100) * (0.85 + random() * 0.3));
    const load = per_s / 9_600;
    for (let i = 0; i < n; i++) {
      const sent_ms = t + random() * 10;
      const roll = random();
      let route: string;
      let status: number;
      let error: string | undefined;
      if (since < 0 || roll < 0.18) {
        route = 'GET /v1/skus/{skuId}';
        status = 200;
      } else if (roll < 0.26) {
        route = 'GET /v1/orders/{orderId}';
        status = 200;
      } else if (roll < 0.32) {
        route = 'POST /v1/payments/callback';
        status = 200;
      } else {
        route = 'POST /v1/orders';
        const k = Math.floor(random() * random() * skus.length);
        if (load > 0.75 && random() < 0.06) {
          status = 503;
          error = 'overloaded';
        } else if (random() < 0.07) {
          status = 403;
          error = 'limit_exceeded';
        } else if (available[k]! > 0) {
          status = 201;
          available[k]! -= 1;
          soldAt[k]!.push(sent_ms);
        } else {
          status = 409;
          error = 'sold_out';
        }
      }
      // Latency grows with load; a lognormal-ish tail; one in a few thousand gets no answer.
      const base_ms = route === 'POST /v1/orders' ? 4 : 1.5;
      const tail = Math.exp(random() * random() * 3.2);
      let latency_ms = base_ms * (1 + 5 * load * load) * tail + random() * 2;
      if (random() < 0.0004) {
        status = 0;
        error = 'no_answer';
        latency_ms = 2_000;
      }
      results.push({ line: line++, route, sent_ms, answered_ms: sent_ms + latency_ms, status, ...(error ? { error } : {}) });
    }
  }
  results.sort((a, b) => a.sent_ms - b.sent_ms);
  const stock: StockSeries[] = skus.map((s, k) => {
    const sold = soldAt[k]!.sort((a, b) => a - b);
    const samples = [];
    let j = 0;
    for (let t_ms = 0; t_ms <= duration_ms; t_ms += 250) {
      while (j < sold.length && sold[j]! <= t_ms) j++;
      // Paid orders turn reservations into sales a little later.
      const soldNow = Math.floor(j * Math.min(1, Math.max(0, (t_ms - sale_ms) / 12_000)));
      samples.push({ t_ms, total: s.total, reserved: j - soldNow, sold: soldNow, available: s.total - j });
    }
    return { skuId: s.skuId, date: s.date, samples };
  });
  const orders = results.filter((r) => r.status === 201).length;
  const samples = stock.reduce((n, s) => n + s.samples.length, 0);
  const checks: CheckResult[] = [
    {
      name: 'no-oversell',
      passed: true,
      detail: `reserved + sold never exceeded total in ${samples} stock samples of ${skus.length} SKU/dates.`,
      violations: [],
    },
    {
      name: 'every-201-durable',
      passed: true,
      detail: `All ${orders.toLocaleString('en-US')} orders answered 201 were found in the journal after the run.`,
      violations: [],
    },
    { name: 'limits-held', passed: true, detail: 'No buyer holds more than the rules allow.', violations: [] },
    { name: 'idempotent-replies', passed: true, detail: 'Repeated Idempotency-Keys got the first answer again.', violations: [] },
    {
      name: 'stock-accounted',
      passed: true,
      detail: 'Final stock of every SKU/date equals its total minus the orders still counted.',
      violations: [],
    },
  ];
  return {
    title: 'flash-sale seed=7 shape=spike',
    target: 'in-process (embedded SQLite)',
    started_at: '2026-12-01T10:00:00.000Z',
    lines: results.length,
    skipped: 0,
    results,
    stock,
    verdict: { passed: true, checks },
    options: { seed, shape: 'spike', buyers: 20_000, speed: 1, skus: skus.length },
  };
}

async function main(argv: string[]): Promise<void> {
  const pngFile = argv[0] ?? 'docs/images/sim-report.png';
  // A real run's report when one is given (the docs' screenshot is of the documented example run);
  // else the made-up example run below (what the report's test draws).
  const given = argv[1];
  const dir = await mkdtemp(join(tmpdir(), 'stampede-report-'));
  try {
    const htmlFile = given ?? join(dir, 'report.html');
    if (!given) await writeFile(htmlFile, htmlReport(computeFigures(exampleRun())));
    const rendered = await renderReport(htmlFile, { pngFile, viewport: { width: 1280, height: 900 } });
    for (const c of rendered.charts) process.stdout.write(`${c.name}: ${c.points} points${c.error ? ` (${c.error})` : ''}\n`);
    if (rendered.errors.length > 0) process.stdout.write(`page errors:\n  ${rendered.errors.join('\n  ')}\n`);
    process.stdout.write(`wrote ${pngFile}\n`);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  await main(process.argv.slice(2));
}
