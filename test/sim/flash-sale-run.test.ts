// Proves a synthetic flash sale — pulse of buyers, payments with duplicate and out-of-order
// callbacks, cancels, abandoned reservations, bots, a purchase rule — passes its verdict on the
// embedded default (engine in process, through `stampede sim flash-sale`, reports written, the
// engine's clock moved past every expiry) and on
// MariaDB + Redis + NATS (a real node on a real port, driven over HTTP with --target semantics).
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { simCommand } from '../../sim/cli.ts';
import { FLASH_SALE_DEFAULTS, generateFlashSale } from '../../sim/flash-sale/generator.ts';
import { HttpTransport } from '../../sim/replay/transport.ts';
import { runSimulation } from '../../sim/run/simulation.ts';
import { SECRETS, startEngine, type TestEngine } from '../support/engine.ts';
import { OwnNatsServer } from '../support/nats-server.ts';
import { freshMysqlDatabase, REDIS_URL } from '../support/services.ts';
import { Capture } from '../support/capture.ts';


describe('a synthetic flash sale', () => {
  it('passes its verdict on the embedded default, through the CLI, with the reports written', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'stampede-sim-cli-'));
    const out = new Capture();
    const result = await simCommand(
      ['flash-sale', '--buyers', '1500', '--stock', '150', '--duration-ms', '1500', '--seed', '7', '--report', join(dir, 'r.html'), '--json', join(dir, 'r.json'), '--write', join(dir, 'sale.jsonl')],
      out,
    );
    expect(result?.passed, out.text).toBe(true);
    expect(out.text).toContain('VERDICT: PASS');
    const figures = JSON.parse(readFileSync(join(dir, 'r.json'), 'utf8'));
    const labels = figures.outcomes.map((o: { label: string }) => o.label);
    // The sale sold out, paid, cancelled, refused the bots by the rule: every path was exercised.
    for (const label of ['201', '200', '409 sold_out', '403 limit_exceeded']) expect(labels).toContain(label);
    expect(figures.verdict.checks.every((c: { passed: boolean }) => c.passed)).toBe(true);
    // The engine's clock was moved past the 15-minute TTL: every abandoned reservation expired.
    const accounted = figures.verdict.checks.find((c: { name: string }) => c.name === 'stock accounted for');
    expect(accounted.detail).toContain('after every reservation expired');
    for (const series of figures.stock) {
      const last = series.samples[series.samples.length - 1];
      expect(last.reserved).toBe(0);
    }
    expect(figures.stock.length).toBe(5);
    expect(readFileSync(join(dir, 'r.html'), 'utf8')).toContain('<svg');
    // The traffic it wrote is a recording of exactly that sale.
    const written = readFileSync(join(dir, 'sale.jsonl'), 'utf8').trim().split('\n');
    expect(written.length).toBe(figures.totals.lines);
  });

  describe('on MariaDB + Redis + NATS', () => {
    let nats: OwnNatsServer;
    let e: TestEngine;
    beforeAll(async () => {
      nats = await OwnNatsServer.start();
      const url = await freshMysqlDatabase('sim_flash_sale');
      e = await startEngine({ kind: 'mysql', url, redisUrl: REDIS_URL }, { STAMPEDE_NATS_URL: nats.url, STAMPEDE_RESERVATION_TTL_MS: '4000', STAMPEDE_RECONCILE_INTERVAL_MS: '0' });
    });
    afterAll(async () => {
      await e?.stop();
      await nats?.dispose();
    });

    it('passes its verdict with every paid order delivered once and nothing left reserved', async () => {
      const lines = generateFlashSale({ ...FLASH_SALE_DEFAULTS, seed: 11, buyers: 1_200, stock: 120, duration_ms: 1_500, bots: 3, botRequests: 30 });
      const transport = new HttpTransport(e.url, { connections: 32, timeout_ms: 30_000 });
      const outcome = await runSimulation({
        title: 'flash sale on MariaDB + Redis + NATS',
        lines,
        engine: {
          transport,
          secrets: { adminToken: SECRETS.STAMPEDE_ADMIN_TOKEN, userJwtSecret: SECRETS.STAMPEDE_USER_JWT_SECRET, paymentSecret: SECRETS.STAMPEDE_PAYMENT_SECRET },
          description: e.url,
          stop: () => transport.close(),
        },
        speed: 'max',
        concurrency_max: 64,
        waitForExpiries: true,
        settle_timeout_ms: 30_000,
        options: {},
      });
      await transport.close();
      const failed = outcome.record.verdict!.checks.filter((c) => !c.passed);
      expect(failed, JSON.stringify(failed, null, 1)).toEqual([]);
      const paid = [...outcome.view.orders.values()].filter((o) => o.status === 'delivered');
      expect(paid.length).toBeGreaterThan(50);
      expect([...outcome.view.orders.values()].filter((o) => o.status === 'reserved')).toEqual([]);
      expect(outcome.facts.payments.some((p) => p.order_status === 'refund_required')).toBe(true);
    });
  });
});
