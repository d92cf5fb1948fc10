// Proves `stampede_outbox_lag_rows` says how far the relay is behind as of the scrape that reports it,
// not as of the scrape before: on a node on MariaDB with a NATS server of the test's own, killed while
// orders are placed, the node's very first scrape already counts the rows held back, and once NATS is
// back and the relay has caught up, the next single scrape reads 0.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { OutboxRelay } from '../../persistence/bus/index.ts';
import { startEngine, type TestEngine } from '../support/engine.ts';
import { sampleValue } from '../support/metrics.ts';
import { OwnNatsServer } from '../support/nats-server.ts';
import { until } from '../support/poll.ts';
import { freshMysqlDatabase } from '../support/services.ts';

describe('the outbox lag metric on MariaDB + NATS', () => {
  let nats: OwnNatsServer;
  let e: TestEngine;
  beforeAll(async () => {
    nats = await OwnNatsServer.start();
    e = await startEngine({ kind: 'mysql', url: await freshMysqlDatabase('e2e_outbox_lag_metric') }, { STAMPEDE_NATS_URL: nats.url, STAMPEDE_RECONCILE_INTERVAL_MS: '0' });
  });
  afterAll(async () => {
    await e?.stop();
    await nats?.dispose();
  });

  it('reports the rows behind at the scrape that asks', async () => {
    const c = e.client;
    await c.sku('lag-sku', '2026-12-24', 100, { delivery: 'ticket', priceCents: 1200 });
    const relay = (e.node as unknown as { relay: OutboxRelay }).relay;
    const lagOf = async () => sampleValue((await c.admin('GET', '/metrics')).body as string, 'stampede_outbox_lag_rows');
    await until('the relay caught up with the catalog', () => relay.lag(), (n) => n === 0, 10_000, 20);
    await nats.kill();
    try {
      for (let i = 0; i < 3; i++) expect((await c.buyer(`lag-u${i}`, 'POST', '/v1/orders', { skuId: 'lag-sku', date: '2026-12-24', qty: 1 })).status).toBe(201);
      // The node's first scrape: the rows its relay could not publish.
      expect(await lagOf()).toBeGreaterThan(0);
    } finally {
      await nats.start();
    }
    await until('the relay caught up after the outage', () => relay.lag(), (n) => n === 0, 30_000, 50);
    expect(await lagOf()).toBe(0);
  });
});
