// Proves a stopping node changes nothing for requests that arrive after the stop began: an order sent
// on a kept-alive connection that was busy when the server closed gets 503 `unavailable` and the
// connection is closed, while the order in flight at the stop still gets its 201; after a restart
// only that one is reserved — on the embedded default, over real HTTP (undici, one connection).
import { Pool } from 'undici';
import { describe, expect, it } from 'vitest';
import { restartable, startEngine, type TestEngine } from '../support/engine.ts';
import { engineUnderTest, injectJournalFaults, waitFor } from '../support/journal-faults.ts';

describe('a graceful stop', () => {
  const t = engineUnderTest<TestEngine>();

  it('turns away requests that arrive after it began, on connections still open, and answers the one in flight', async () => {
    const backend = restartable({ kind: 'sqlite' });
    let e = (t.engine = await startEngine(backend));
    await e.client.sku('stopping', '2027-03-01', 10);
    const pool = new Pool(e.url, { connections: 1, pipelining: 1 });
    const order = async (user: string) => {
      const res = await pool.request({
        path: '/v1/orders',
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${await e.client.token(user)}` },
        body: JSON.stringify({ skuId: 'stopping', date: '2027-03-01', qty: 1 }),
      });
      return { status: res.statusCode, connection: res.headers.connection, body: (await res.body.json()) as { error?: string } };
    };
    try {
      const f = injectJournalFaults(e.node.stores.journal);
      f.only = (stream) => stream === 'stopping/2027-03-01';
      f.hold = true;
      const first = order('s1');
      await waitFor(() => f.held.length === 1, 5_000, 'the first order\'s write');
      const stopped = e.node.stop();
      f.hold = false;
      await f.held[0]!.release();
      expect((await first).status).toBe(201);
      // The same connection (busy when the server closed, so still open) carries the next order.
      const late = await order('s2');
      expect(late.status).toBe(503);
      expect(late.body.error).toBe('unavailable');
      expect(late.connection).toBe('close');
      await stopped;
    } finally {
      await pool.close();
    }
    e = t.engine = await startEngine(backend);
    expect((await e.client.admin('GET', '/ops/inventory/stopping/2027-03-01')).body).toMatchObject({ reserved: 1 });
  });
});
