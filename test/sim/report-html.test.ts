// Proves the HTML report works where it is read, in a browser: a five-second synthetic run with two
// stock series and a failed check is written to a file and opened in headless Chromium, which must
// draw all four charts with data (both stock lines), show the title and FAIL, request nothing but the
// file itself, raise no script error, and save a non-empty PNG; and that its throughput chart reads
// each bucket over the time it covers: a run of 2xx answers only draws its 2xx line where its total.
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RequestResult, RunRecord, StockSeries } from '../../sim/run/results.ts';
import { computeFigures, htmlReport } from '../../sim/report/index.ts';
import { CHROMIUM_ARGS, CHROMIUM_PATH_DEFAULT, renderReport, type RenderedReport } from '../../sim/report/screenshot.ts';
import { chromium } from 'playwright-core';

/** 3,000 requests spread evenly over 5 s; each SKU/date sells out after its stock of 201s. */
function syntheticRun(): RunRecord {
  const results: RequestResult[] = [];
  const stockOf = [600, 400];
  const sold: number[][] = [[], []];
  for (let line = 0; line < 3_000; line++) {
    const sent_ms = (line * 5_000) / 3_000;
    const latency_ms = 2 + (line % 17) + (line % 101 === 0 ? 80 : 0);
    const k = line % 2;
    let status = 201;
    let error: string | undefined;
    if (line % 250 === 7) {
      status = 0;
      error = 'no_answer';
    } else if (line % 40 === 3) {
      status = 503;
      error = 'overloaded';
    } else if (line % 9 === 4) {
      status = 403;
      error = 'limit_exceeded';
    } else if (sold[k]!.length >= stockOf[k]!) {
      status = 409;
      error = 'sold_out';
    } else {
      sold[k]!.push(sent_ms);
    }
    results.push({ line, route: 'POST /v1/orders', sent_ms, answered_ms: sent_ms + latency_ms, status, ...(error ? { error } : {}) });
  }
  const stock: StockSeries[] = [0, 1].map((k) => ({
    skuId: k === 0 ? 'concert-a' : 'game-key',
    date: k === 0 ? '2026-12-24' : 'open',
    samples: Array.from({ length: 21 }, (_, i) => {
      const t_ms = i * 250;
      const taken = sold[k]!.filter((t) => t <= t_ms).length;
      return { t_ms, total: stockOf[k]!, reserved: taken, sold: 0, available: stockOf[k]! - taken };
    }),
  }));
  return {
    title: 'flash-sale seed=1 <b>shape</b>=spike',
    target: 'in-process (embedded SQLite)',
    started_at: '2026-12-01T10:00:00.000Z',
    lines: 3_000,
    skipped: 0,
    results,
    stock,
    verdict: {
      passed: false,
      checks: [
        { name: 'no-oversell', passed: true, detail: 'reserved + sold never exceeded total in 42 samples.', violations: [] },
        {
          name: 'every-201-durable',
          passed: false,
          detail: 'Every order answered 201 is in the journal.',
          violations: ['line 12: answered 201, not in the journal <script>window.pwned=1</script>'],
        },
      ],
    },
    options: { seed: 1, shape: 'spike' },
  };
}

describe('HTML report in headless Chromium', () => {
  let dir: string;
  let htmlFile: string;
  let pngFile: string;
  let rendered: RenderedReport;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'stampede-report-html-'));
    htmlFile = join(dir, 'report.html');
    pngFile = join(dir, 'shots', 'report.png');
    await writeFile(htmlFile, htmlReport(computeFigures(syntheticRun())));
    rendered = await renderReport(htmlFile, { pngFile, timeout_ms: 15_000 });
  }, 20_000);

  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('draws the four charts, each with data', () => {
    expect(rendered.charts.map((c) => c.name).sort()).toEqual(['latency', 'outcomes', 'stock', 'throughput']);
    for (const chart of rendered.charts) {
      expect(chart.error, chart.name).toBeUndefined();
      expect(chart.points, chart.name).toBeGreaterThan(0);
    }
    // Five outcomes: 201, 403 limit_exceeded, 409 sold_out, 503 overloaded, no answer.
    expect(rendered.charts.find((c) => c.name === 'outcomes')!.points).toBe(5);
    const stock = rendered.charts.find((c) => c.name === 'stock')!;
    expect(stock.series).toBe(2);
    expect(stock.points).toBe(42);
    // Five seconds in 100 ms buckets (50: the last covers a sliver and is merged into the one before),
    // each drawn as all/2xx/4xx/5xx/no answer.
    expect(computeFigures(syntheticRun()).timeline.buckets.length).toBe(50);
    expect(rendered.charts.find((c) => c.name === 'throughput')!.points).toBe(50 * 5);
  });

  it('shows the title and the failed verdict, and runs no script from the data', () => {
    expect(rendered.title).toBe('flash-sale seed=1 <b>shape</b>=spike');
    expect(rendered.verdict).toBe('FAIL');
    expect(rendered.errors).toEqual([]);
  });

  it('requests nothing but the file itself', () => {
    expect(rendered.requests).toEqual([pathToFileURL(htmlFile).href]);
  });

  it('saves a PNG screenshot', async () => {
    const png = await readFile(pngFile);
    expect(png.length).toBeGreaterThan(10_000);
    expect(png.subarray(0, 8)).toEqual(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]));
  });
});

describe('HTML report throughput chart', () => {
  it('draws the 2xx rate of each bucket over the time the bucket covers, as the total rate is', async () => {
    // Every answer a 200, one a millisecond from 130.5 ms to 2374.5 ms: the run starts and ends mid-bucket.
    const run = syntheticRun();
    run.results = Array.from({ length: 2_245 }, (_, k) => ({ line: k, route: 'GET /v1/skus/{skuId}', sent_ms: 130 + k, answered_ms: 130.5 + k, status: 200 }));
    const dir = await mkdtemp(join(tmpdir(), 'stampede-report-rates-'));
    const browser = await chromium.launch({ executablePath: CHROMIUM_PATH_DEFAULT, headless: true, args: CHROMIUM_ARGS });
    try {
      const file = join(dir, 'report.html');
      await writeFile(file, htmlReport(computeFigures(run)));
      const page = await browser.newPage();
      await page.goto(pathToFileURL(file).href);
      await page.waitForSelector('body[data-rendered]', { state: 'attached' });
      const lines = Object.fromEntries(
        await page.$$eval('svg[data-chart="throughput"] path', (paths) => paths.map((p) => [p.querySelector('title')?.textContent ?? '', p.getAttribute('d') ?? ''])),
      );
      expect(Object.keys(lines).sort()).toEqual(['2xx', '4xx', '5xx', 'all']);
      // Over the whole bucket the first and last points of the 2xx line fell to about half the total's.
      expect(lines['2xx']).toBe(lines.all);
    } finally {
      await browser.close();
      await rm(dir, { recursive: true, force: true });
    }
  }, 20_000);
});
