// Proves that an order id anyone can make up (a ULID and a SKU/date's number) costs the node a
// read-model lookup only: GET and cancel answer 404 without waking a passivated SKU/date or making an
// order actor, while real orders of that SKU/date are still answered (also one whose SKU/date was
// discarded with work and is not woken yet) — on the embedded default, a real node over HTTP.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEngine, type TestEngine } from '../support/engine.ts';
import { waitFor } from '../support/journal-faults.ts';

const CROCKFORD = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';

/** Another id of the same SKU/date: the ULID's last character changed. */
function madeUp(orderId: string): string {
  const [ulid, streamNo] = orderId.split('-') as [string, string];
  const last = ulid[ulid.length - 1]!;
  const other = CROCKFORD[(CROCKFORD.indexOf(last) + 1) % CROCKFORD.length]!;
  return `${ulid.slice(0, -1)}${other}-${streamNo}`;
}

describe('made-up order ids', () => {
  let e: TestEngine;
  beforeAll(async () => {
    e = await startEngine({ kind: 'sqlite' }, { STAMPEDE_IDLE_MS: '200' });
  });
  afterAll(async () => e?.stop());

  /** A SKU stocked 10 on 2027-03-01 and one order of `buyer` there. */
  async function firstOrder(skuId: string, buyer: string): Promise<{ stream: string; orderId: string }> {
    await e.client.sku(skuId, '2027-03-01', 10);
    const placed = await e.client.buyer(buyer, 'POST', '/v1/orders', { skuId, date: '2027-03-01', qty: 1 });
    expect(placed.status).toBe(201);
    return { stream: `${skuId}/2027-03-01`, orderId: placed.body.orderId };
  }

  it('are 404 without waking a passivated SKU/date or making an order actor; real orders still answer', async () => {
    const c = e.client;
    const { stream, orderId: real } = await firstOrder('mu', 'mu-buyer');
    expect((await c.buyer('mu-buyer', 'POST', `/v1/orders/${real}/cancel`)).status).toBe(200);
    await waitFor(() => !e.node.inventory.has(stream) && !e.node.orderActors.has(real), 10_000, 'the SKU/date and the order passivated');

    const fake = madeUp(real);
    expect(fake).not.toBe(real);
    expect((await c.buyer('mu-buyer', 'GET', `/v1/orders/${fake}`)).status).toBe(404);
    expect((await c.buyer('mu-buyer', 'POST', `/v1/orders/${fake}/cancel`)).status).toBe(404);
    expect((await c.admin('GET', `/ops/orders/${fake}`)).status).toBe(404);
    expect([e.node.inventory.has(stream), e.node.orderActors.has(fake)]).toEqual([false, false]);

    // The real one is answered from the read model, still without waking anything.
    const got = await c.buyer('mu-buyer', 'GET', `/v1/orders/${real}`);
    expect([got.status, got.body.status]).toEqual([200, 'cancelled']);
    expect(e.node.inventory.has(stream)).toBe(false);
    // An order placed now wakes it as ever, and its reservation is answered while live.
    const next = await c.buyer('mu-other', 'POST', '/v1/orders', { skuId: 'mu', date: '2027-03-01', qty: 1 });
    expect(next.status).toBe(201);
    expect((await c.buyer('mu-other', 'GET', `/v1/orders/${next.body.orderId}`)).body.status).toBe('reserved');
  });

  it('a real order of a SKU/date discarded with work, not woken yet, is still answered: that SKU/date is asked', async () => {
    const c = e.client;
    const { stream, orderId } = await firstOrder('mu2', 'mu2-buyer');
    // A bug crashes the SKU/date with a live reservation: discarded, to be woken by the engine shortly.
    e.node.inventory.tell(stream, { type: 'no-such-command' } as never);
    await waitFor(() => !e.node.inventory.has(stream), 2_000, 'the SKU/date discarded');
    expect(e.node.wakes.has(stream)).toBe(true);
    const got = await c.buyer('mu2-buyer', 'GET', `/v1/orders/${orderId}`);
    expect([got.status, got.body.status]).toEqual([200, 'reserved']);
  });
});
