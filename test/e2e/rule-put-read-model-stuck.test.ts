// Proves the first purchase rule's PUT has a bounded answer when the read model cannot catch up (its
// writes failing): 503 `unavailable` within a few ask deadlines, the rule not in force, and the same
// PUT succeeds once the read model is written again — on the embedded default.
import { describe, expect, it } from 'vitest';
import { StoreUnavailableError } from '../../persistence/errors.ts';
import { startEngine, type TestEngine } from '../support/engine.ts';
import { engineUnderTest } from '../support/journal-faults.ts';
import { until } from '../support/poll.ts';

describe('the first rule while the read model is stuck', () => {
  const t = engineUnderTest<TestEngine>();

  it('is refused with 503 in bounded time, changes nothing, and goes through once the read model is written again', async () => {
    const e = (t.engine = await startEngine({ kind: 'sqlite' }, { STAMPEDE_ASK_TIMEOUT_MS: '500' }));
    const c = e.client;
    await c.sku('stuck', '2027-04-01', 10);
    const projection = e.node.stores.projection;
    const apply = projection.apply;
    projection.apply = () => Promise.reject(new StoreUnavailableError('injected: the read model cannot be written'));
    try {
      expect((await c.buyer('b1', 'POST', '/v1/orders', { skuId: 'stuck', date: '2027-04-01', qty: 1 })).status).toBe(201);
      const rule = { groupBy: ['skuId'], max: { units: 1 } };
      // Answered while the read model is still stuck (its wait has a deadline; the test's timeout is
      // the hang guard), and the answer is the defined one.
      const put = await c.admin('PUT', '/v1/limit-rules/one-each', rule);
      expect(put.status).toBe(503);
      expect(put.body.error).toBe('unavailable');
      expect((await c.admin('GET', '/v1/limit-rules')).body).toEqual([]);
    } finally {
      projection.apply = apply;
    }
    // The projector retries with backoff (up to 5 s): the PUT goes through once it has caught up.
    await until('the PUT accepted', () => c.admin('PUT', '/v1/limit-rules/one-each', { groupBy: ['skuId'], max: { units: 1 } }), (a) => a.status === 200, 20_000);
    // b1's order placed before the rule is counted: a second one is refused.
    const second = await c.buyer('b1', 'POST', '/v1/orders', { skuId: 'stuck', date: '2027-04-01', qty: 1 });
    expect(second.status).toBe(403);
  }, 30_000);
});
