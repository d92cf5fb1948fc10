// Proves a key's first answer is kept 24 hours and then deleted by the node's periodic pruning (not
// kept for ever, a row per keyed order), after which the key is a new key (API.md) — on the embedded
// default with a manual clock, a real node over HTTP.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../engine/index.ts';
import { IDEMPOTENCY_ANSWER_MS } from '../../persistence/ports.ts';
import { startEngine, type TestEngine } from '../support/engine.ts';

describe('Idempotency-Key answers past their 24 hours', () => {
  let e: TestEngine;
  const clock = new ManualClock(Date.parse('2027-01-10T10:00:00Z'));
  beforeAll(async () => {
    e = await startEngine({ kind: 'sqlite' }, { STAMPEDE_RESERVATION_TTL_MS: '60000' }, clock);
  });
  afterAll(async () => e?.stop());

  it('are replayed within them, deleted after them, and the key then places a new order', async () => {
    const c = e.client;
    await c.sku('ret', '2027-02-01', 10);
    const order = (key: string) => c.buyer('ret-buyer', 'POST', '/v1/orders', { skuId: 'ret', date: '2027-02-01', qty: 1 }, { 'idempotency-key': key });
    const first = await order('k-day');
    expect(first.status).toBe(201);
    await e.node.projector.drained();
    expect(await e.node.stores.projection.idempotency('ret-buyer', 'k-day')).toBeDefined();
    // Within the 24 hours: kept, replayed.
    clock.advance(IDEMPOTENCY_ANSWER_MS - 1_000);
    expect(await e.node.pruneAnswers()).toBe(0);
    c.forgetTokens();
    expect((await order('k-day')).body.orderId).toBe(first.body.orderId);
    // Past them: deleted by the pruning, and the key is a new one.
    clock.advance(2_000);
    c.forgetTokens();
    expect(await e.node.pruneAnswers()).toBeGreaterThanOrEqual(1);
    expect(await e.node.stores.projection.idempotency('ret-buyer', 'k-day')).toBeUndefined();
    const again = await order('k-day');
    expect(again.status).toBe(201);
    expect(again.body.orderId).not.toBe(first.body.orderId);
  });
});
