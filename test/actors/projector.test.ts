// Proves the projector's caughtUp() barrier (the first rule's adoption waits on it): it resolves once
// everything enqueued before the call is written, not waiting for what is enqueued after it (a steady
// load may never leave the projector idle), keeps waiting across a failed write and its retry, and
// rejects when the projector closes; it keeps the checkpoints of only the latest order streams in
// memory — on the real MariaDB and SQLite projection stores.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Projector } from '../../actors/projector.ts';
import type { OrderRow, ProjectionBatch, ProjectionStore } from '../../persistence/ports.ts';
import { backends } from '../persistence/backends.ts';

/** The real store, whose writes wait for a gate opened by the test, and can fail. */
function gated(store: ProjectionStore) {
  const gates: (() => void)[] = [];
  const written: number[][] = [];
  let failNext = false;
  const wrapped: ProjectionStore = Object.create(store);
  wrapped.apply = async (batch: ProjectionBatch) => {
    await new Promise<void>((resolve) => gates.push(resolve));
    if (failNext) {
      failNext = false;
      throw new Error('write failed');
    }
    await store.apply(batch);
    written.push([...batch.checkpoints.values()]);
  };
  return {
    store: wrapped,
    written,
    failOnce: () => (failNext = true),
    open: async () => {
      while (gates.length === 0) await new Promise((r) => setTimeout(r, 1));
      gates.shift()!();
    },
  };
}

describe.each(backends)('projector barrier on $name', (backend) => {
  let stores: Awaited<ReturnType<typeof backend.open>>;
  beforeAll(async () => {
    stores = await backend.open('projector_barrier');
  });
  afterAll(async () => stores?.dispose());

  it('resolves once what came before is written, whatever comes after; waits across a retry; rejects on close', async () => {
    const g = gated(stores.projection);
    const projector = new Projector(g.store, { batch_events_max: 1, linger_ms: 0, retry_backoff_ms_max: 5 }, () => {}, () => {});
    await projector.start();
    // Nothing enqueued: caught up at once.
    await projector.caughtUp();

    projector.enqueue('s/2027-01-01', [{ seq: 1 }], 1, 0);
    projector.enqueue('s/2027-01-01', [{ seq: 2 }], 2, 0);
    let caughtUp = false;
    const barrier = projector.caughtUp().then(() => (caughtUp = true));
    projector.enqueue('s/2027-01-01', [{ seq: 3 }], 3, 0);
    // batch_events_max 1: one write per change. The first write fails and is retried.
    g.failOnce();
    await g.open();
    await g.open();
    await new Promise((r) => setTimeout(r, 20));
    expect([caughtUp, g.written]).toEqual([false, [[1]]]);
    await g.open();
    await barrier;
    // Seq 3, enqueued after the call, is not written yet.
    expect(g.written).toEqual([[1], [2]]);
    expect((await stores.projection.checkpoints()).get('s/2027-01-01')).toBe(2);

    const late = projector.caughtUp();
    const closing = projector.close();
    await g.open();
    await closing;
    // Closing wrote what was pending (seq 3), so the barrier resolved; after close, a barrier rejects.
    await late;
    await expect(projector.caughtUp()).rejects.toThrow('closed');
  });

  it("keeps in memory the checkpoints of only the most recently written order streams (transient), reading an older one's from the store, and every other stream's", async () => {
    const options = { batch_events_max: 100, linger_ms: 0, retry_backoff_ms_max: 5, transient: { matches: (s: string) => s.startsWith('@o/'), max: 4 } };
    const projector = new Projector(stores.projection, options, () => {}, () => {});
    await projector.start();
    const streams = ['@o/T-1', '@o/T-2', 'tr/2027-01-04', '@o/T-3', '@o/T-4', '@o/T-5'];
    for (const [i, stream] of streams.entries()) {
      projector.enqueue(stream, [], 10 + i, 0);
      await projector.caughtUp();
    }
    // In memory: the SKU/date's and the most recent order streams' (at most 4, the 2 written last
    // always); the first order streams' are 0 there (not known), and exact from the store. Reading a
    // checkpoint does not keep it longer.
    expect(streams.map((s) => projector.checkpoint(s))).toEqual([0, 0, 12, 13, 14, 15]);
    expect(await Promise.all([...streams, '@o/never'].map((s) => projector.checkpointOf(s)))).toEqual([10, 11, 12, 13, 14, 15, 0]);
    // Written again, an order stream is the most recent: it stays, and those written before it go first.
    projector.enqueue('@o/T-1', [], 20, 0);
    await projector.caughtUp();
    expect(['@o/T-1', '@o/T-3', '@o/T-4', '@o/T-5'].map((s) => projector.checkpoint(s))).toEqual([20, 0, 0, 15]);
    await projector.close();
    // A new projector loads every stream's but keeps in memory only the others'; start() hands all of them over.
    const next = new Projector(stores.projection, options, () => {}, () => {});
    const loaded = await next.start();
    expect(['@o/T-1', '@o/T-2', 'tr/2027-01-04'].map((s) => loaded.get(s))).toEqual([20, 11, 12]);
    expect(['@o/T-1', 'tr/2027-01-04'].map((s) => next.checkpoint(s))).toEqual([0, 12]);
    expect(await next.checkpointOf('@o/T-1')).toBe(20);
    await next.close();
  });

  it('writes more changes than a batch takes in parts, checkpointing the stream with the last part only', async () => {
    const batches: { changes: number; checkpoint: number | undefined }[] = [];
    const store: ProjectionStore = Object.create(stores.projection);
    store.apply = async (batch: ProjectionBatch) => {
      batches.push({ changes: batch.idempotency.length, checkpoint: batch.checkpoints.get('parts/2027-01-03') });
      await stores.projection.apply(batch);
    };
    const projector = new Projector(store, { batch_events_max: 3, linger_ms: 0, retry_backoff_ms_max: 5 }, () => {}, () => {});
    await projector.start();
    const events = Array.from({ length: 10 }, (_, i) => ({
      seq: 11 + i,
      idempotency: { userId: 'parts-user', key: `k${i}`, requestHash: 'h', status: 201, body: { n: i }, createdAt: 1 },
    }));
    projector.enqueue('parts/2027-01-03', events, 25, 0);
    await projector.caughtUp();
    expect(batches).toEqual([
      { changes: 3, checkpoint: undefined },
      { changes: 3, checkpoint: undefined },
      { changes: 3, checkpoint: undefined },
      { changes: 1, checkpoint: 25 },
    ]);
    expect((await stores.projection.checkpoints()).get('parts/2027-01-03')).toBe(25);
    for (let i = 0; i < 10; i++) expect((await stores.projection.idempotency('parts-user', `k${i}`))?.body).toEqual({ n: i });
    await projector.close();
  });

  it('bounds a write by bytes too: heavy events (a manual delivery\'s payload) go in several writes, a stream\'s range in parts', async () => {
    const sizes: number[] = [];
    const store: ProjectionStore = Object.create(stores.projection);
    store.apply = async (batch: ProjectionBatch) => {
      sizes.push(batch.outbox.length);
      await stores.projection.apply(batch);
    };
    const projector = new Projector(store, { batch_events_max: 1_000, batch_bytes_max: 1024 * 1024, linger_ms: 0, retry_backoff_ms_max: 5 }, () => {}, () => {});
    await projector.start();
    const heavy = (stream: string, seq: number) => ({
      seq,
      outbox: { eventId: `${stream}:${seq}`, subject: 'stampede.evt.m1.order.delivered', body: JSON.stringify({ payload: 'p'.repeat(200_000) }), at: 1 },
    });
    // One stream's range of 10 (a recovery's), then 10 streams of one each: ~400 KB a change, 1 MiB a write.
    projector.enqueue('@o/heavy-range', Array.from({ length: 10 }, (_, i) => heavy('@o/heavy-range', i + 1)), 10, 0);
    for (let i = 0; i < 10; i++) projector.enqueue(`@o/heavy-${i}`, [heavy(`@o/heavy-${i}`, 1)], 1, 0);
    await projector.caughtUp();
    expect(sizes.reduce((a, b) => a + b, 0)).toBe(20);
    expect(Math.max(...sizes)).toBeLessThanOrEqual(2);
    expect((await stores.projection.checkpoints()).get('@o/heavy-range')).toBe(10);
    await projector.close();
  });

  it('never lets a row queued again by a recovery undo a further one retried in the same batch', async () => {
    const g = gated(stores.projection);
    const projector = new Projector(g.store, { batch_events_max: 100, linger_ms: 0, retry_backoff_ms_max: 5 }, () => {}, () => {});
    await projector.start();
    const orderId = 'O-rank-1';
    const row = (status: OrderRow['status'], stream: string, seq: number): OrderRow => ({
      orderId, stream, userId: 'u', skuId: 'rank', date: '2027-01-02', qty: 1, amountCents: 100, status,
      createdAt: 1, expiresAt: 2, updatedAt: seq, seq, paymentId: 'p', delivery: status === 'delivered' ? { kind: 'ticket', codes: ['T'] } : null,
    });
    // The order's `delivered` is written first, and that write fails...
    projector.enqueue(`@o/${orderId}`, [{ seq: 3, change: { row: row('delivered', `@o/${orderId}`, 3), history: { orderId, stream: `@o/${orderId}`, seq: 3, status: 'delivered', at: 3, cause: 'delivered' } } }], 3, 0);
    g.failOnce();
    await g.open();
    // ... meanwhile its SKU/date recovers and queues its `paid` again: the retry holds both.
    projector.enqueue('rank/2027-01-02', [{ seq: 7, change: { row: row('paid', 'rank/2027-01-02', 7), history: { orderId, stream: 'rank/2027-01-02', seq: 7, status: 'paid', at: 2, cause: 'payment p' } } }], 7, 0);
    await g.open();
    await projector.caughtUp();
    expect((await stores.projection.order(orderId))?.status).toBe('delivered');
    await projector.close();
  });
});
