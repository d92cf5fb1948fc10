// Proves the node looks up a stored Idempotency-Key answer only for keys that may have one (actors/
// answer-keys.ts), and never misses one that has: against a real node over HTTP, on the embedded
// default and on MariaDB + Redis (where the start reads the stored keys only once a write of the
// previous process could no longer commit). A new key is placed without a read of the store; after a restart
// (the gate's memory gone) the keys stored before it are read at start, and a retry of each — a 201, a
// 409 sold out and a 404 refusal — gets its first answer again, while a new key still reads nothing.
// And the filter's generations: a key stays known at least two of them (48 hours), then goes.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AnswerKeys } from '../../actors/answer-keys.ts';
import { engineBackends, restartable, startEngine, type Backend, type TestEngine } from '../support/engine.ts';
import { waitFor } from '../support/journal-faults.ts';

describe('AnswerKeys', () => {
  it('says "maybe" for every key until complete, then only for the keys added, for at least two generations', () => {
    let now = 0;
    const keys = new AnswerKeys(() => now, 1_000);
    expect(keys.mayExist('u', 'never')).toBe(true);
    keys.add('u', 'k1');
    keys.markComplete();
    expect([keys.mayExist('u', 'k1'), keys.mayExist('u', 'never'), keys.mayExist('u2', 'k1')]).toEqual([true, false, false]);
    // Added at the end of a generation: still known a whole generation later.
    now = 999;
    keys.add('u', 'k2');
    now = 1_998;
    expect([keys.mayExist('u', 'k1'), keys.mayExist('u', 'k2')]).toEqual([true, true]);
    // Kept a second generation too (an answer made on a clock ahead of this one), then gone.
    now = 2_998;
    expect([keys.mayExist('u', 'k1'), keys.mayExist('u', 'k2')]).toEqual([true, true]);
    now = 3_998;
    expect([keys.mayExist('u', 'k1'), keys.mayExist('u', 'k2')]).toEqual([false, false]);
    // However long after the next generation begins, the current one is kept as an older one.
    keys.add('u', 'k3');
    now = 50_000;
    expect(keys.mayExist('u', 'k3')).toBe(true);
    now = 51_000;
    expect(keys.mayExist('u', 'k3')).toBe(true);
    now = 52_000;
    expect(keys.mayExist('u', 'k3')).toBe(false);
  });
});

describe.each(engineBackends('e2e_answer_keys'))('stored answers\' keys on %s', (_name, backend) => {
  let at: Backend;
  let e: TestEngine | undefined;
  beforeAll(async () => {
    at = restartable(await backend());
  });
  afterAll(async () => e?.stop());

  it('reads the store for no new key, and finds every stored answer after a restart', async () => {
    e = await startEngine(at, { STAMPEDE_RESERVATION_TTL_MS: '600000' });
    await keysRead(e, at);
    const reads = countReads(e);
    let c = e.client;
    await c.sku('ak', '2027-03-01', 1);
    const order = (key: string, skuId = 'ak') => c.buyer('ak-buyer', 'POST', '/v1/orders', { skuId, date: '2027-03-01', qty: 1 }, { 'idempotency-key': key });
    const created = await order('k-201');
    const soldOut = await order('k-409');
    const notFound = await order('k-404', 'no-such-sku');
    expect([created.status, soldOut.status, notFound.status]).toEqual([201, 409, 404]);
    expect(reads.count).toBe(0);
    await e.node.projector.drained();

    await e.stop();
    e = await startEngine(at, { STAMPEDE_RESERVATION_TTL_MS: '600000' });
    await keysRead(e, at);
    c = e.client;
    const again = countReads(e);
    expect((await order('k-201')).body).toEqual(created.body);
    expect((await order('k-409')).body).toEqual(soldOut.body);
    expect((await order('k-404', 'no-such-sku')).body).toEqual(notFound.body);
    expect(again.count).toBe(3);
    expect((await order('k-new')).status).toBe(409);
    expect(again.count).toBe(3);
  });
});

/**
 * The stored keys read: in the background on SQLite; on MySQL not before a write of the previous
 * process could still commit (two minutes: it is still incomplete now), so read here, two a page.
 */
async function keysRead(e: TestEngine, at: Backend): Promise<void> {
  if (at.kind === 'mysql') {
    expect(e.node.answerKeys.stats.complete).toBe(false);
    await e.node.readAnswerKeys(2);
  } else {
    await waitFor(() => e.node.answerKeys.stats.complete, 10_000, 'the stored keys read');
  }
  expect(e.node.answerKeys.stats.complete).toBe(true);
}

/** Counts the node's reads of a stored answer from now on. */
function countReads(e: TestEngine): { count: number } {
  const counter = { count: 0 };
  const projection = e.node.stores.projection;
  const read = projection.idempotency.bind(projection);
  projection.idempotency = (userId, key) => {
    counter.count++;
    return read(userId, key);
  };
  return counter;
}
