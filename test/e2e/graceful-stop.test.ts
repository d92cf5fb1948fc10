// Proves a stopping node changes nothing for requests that arrive after the stop began: the order in
// flight at the stop still gets its 201, with `Connection: close` (so the stop does not wait out idle
// kept-alive connections), and an order pipelined behind it on that connection is not served (503
// `unavailable` there, or refused when the client sends it again); after a restart only the first is
// reserved — on the embedded default, over real HTTP (undici, one connection).
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
    const pool = new Pool(e.url, { connections: 1, pipelining: 2 });
    const order = async (user: string) => {
      const res = await pool.request({
        path: '/v1/orders',
        method: 'POST',
        // Lets undici pipeline it behind a request in flight (it holds back a POST otherwise).
        idempotent: true,
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
      // The next order goes on the same connection right behind it (pipelined): it arrives while the
      // node stops.
      const pipelined = order('s2');
      const stopped = e.node.stop();
      f.hold = false;
      await f.held[0]!.release();
      const answered = await first;
      expect(answered.status).toBe(201);
      // Answered during the stop: the connection closes after it (the stop need not wait it out).
      expect(answered.connection).toBe('close');
      // The order pipelined behind it was not served on that connection: either turned away there
      // (503, Connection: close) or, the connection closed after the answer, sent again by the client to
      // a node that no longer listens. Either way it changed nothing (checked after the restart).
      const late = await pipelined.then(
        (r) => r,
        (error: unknown) => ({ status: 0, connection: undefined, body: { error: (error as { code?: string }).code } }),
      );
      if (late.status === 503) expect([late.body.error, late.connection]).toEqual(['unavailable', 'close']);
      else expect(late).toMatchObject({ status: 0, body: { error: 'ECONNREFUSED' } });
      await stopped;
    } finally {
      await pool.close();
    }
    e = t.engine = await startEngine(backend);
    expect((await e.client.admin('GET', '/ops/inventory/stopping/2027-03-01')).body).toMatchObject({ reserved: 1 });
  });

  it('closes the connection of an answer given during the stop also when it is an error', async () => {
    const e = (t.engine = await startEngine({ kind: 'sqlite' }));
    await e.client.sku('stopping-err', '2027-03-01', 10);
    const pool = new Pool(e.url, { connections: 1, pipelining: 1 });
    try {
      const f = injectJournalFaults(e.node.stores.journal);
      f.only = (stream) => stream === 'stopping-err/2027-03-01';
      f.hold = true;
      const answer = (async () => {
        const res = await pool.request({
          path: '/v1/orders',
          method: 'POST',
          headers: { 'content-type': 'application/json', authorization: `Bearer ${await e.client.token('s-err')}` },
          body: JSON.stringify({ skuId: 'stopping-err', date: '2027-03-01', qty: 1 }),
        });
        await res.body.dump();
        return { status: res.statusCode, connection: res.headers.connection };
      })();
      await waitFor(() => f.held.length === 1, 5_000, 'the order\'s write');
      const stopped = e.node.stop();
      f.hold = false;
      await f.held[0]!.fail(new Error('injected: the write failed'));
      expect(await answer).toEqual({ status: 503, connection: 'close' });
      await stopped;
    } finally {
      await pool.close();
    }
  });
});
