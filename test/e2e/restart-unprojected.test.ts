// Proves that an order stream left with unprojected events by a crash is projected after a restart
// even when its first load at start fails (a database blip): the node loads it again with backoff,
// instead of leaving it to whatever next touches the order — for an order nothing touches again (a
// refund_required, a payment mismatch) that was never. On MariaDB, with the read model's checkpoint
// for the stream set back as a crash before the projector's write would leave it, and the journal
// read of that stream failing once.
import mysql from 'mysql2/promise';
import { afterEach, describe, expect, it } from 'vitest';
import { orderStream } from '../../actors/order-actor.ts';
import { StoreUnavailableError } from '../../persistence/errors.ts';
import { SqlJournalStore } from '../../persistence/sql/journal-store.ts';
import { startEngine, type Backend, type TestEngine } from '../support/engine.ts';
import { waitFor } from '../support/journal-faults.ts';
import { freshMysqlDatabase } from '../support/services.ts';

describe('restart with an unprojected order stream whose first load fails (MariaDB)', () => {
  let e: TestEngine | undefined;
  const realReadAfter = SqlJournalStore.prototype.readAfter;
  afterEach(async () => {
    SqlJournalStore.prototype.readAfter = realReadAfter;
    await e?.stop();
    e = undefined;
  });

  it('loads the stream again until its events are projected', async () => {
    const url = await freshMysqlDatabase('e2e_restart_unprojected');
    const backend: Backend = { kind: 'mysql', url };
    e = await startEngine(backend);
    await e.client.sku('unp', '2026-12-20', 5);
    const placed = await e.client.buyer('una', 'POST', '/v1/orders', { skuId: 'unp', date: '2026-12-20', qty: 1 });
    expect(placed.status).toBe(201);
    const orderId: string = placed.body.orderId;
    const stream = orderStream(orderId);
    // A wrong amount: journaled on the order's own stream (its `order.payment_mismatch` event).
    expect((await e.client.pay({ orderId, paymentId: 'short', amountCents: 1000, status: 'succeeded' })).body.status).toBe('reserved');
    const checkpoint = async () => (await e!.node.stores.projection.checkpoints()).get(stream) ?? 0;
    await waitFor(async () => (await checkpoint()) === 2, 10_000, 'the mismatch projected');
    await e.stop();
    e = undefined;

    // As a crash before the projector's write would have left it.
    const conn = await mysql.createConnection(url);
    try {
      await conn.query('UPDATE projection_checkpoints SET seq = 0 WHERE stream = ?', [stream]);
    } finally {
      await conn.end();
    }
    let failedReads = 0;
    SqlJournalStore.prototype.readAfter = function (s: string, afterSeq: number) {
      if (s === stream && failedReads === 0) {
        failedReads++;
        return Promise.reject(new StoreUnavailableError('injected: the read failed'));
      }
      return realReadAfter.call(this, s, afterSeq);
    };

    e = await startEngine(backend);
    expect(failedReads).toBe(1);
    await waitFor(async () => (await checkpoint()) === 2, 15_000, 'the stream projected after its failed load');
  });
});
