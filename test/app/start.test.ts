// Proves a node starts when an order stream with events the read model lacks cannot be loaded (a
// broken journal of one order): the start does not fail or crash on it, the node is ready and serves,
// and that order's reads answer 503 — on the embedded default, restarted on the same data directory.
// And that the URL it prints is usable when it listens on an IPv6 address.
import { afterEach, describe, expect, it } from 'vitest';
import { orderIdFor } from '../../engine/index.ts';
import { restartable, startEngine, type TestEngine } from '../support/engine.ts';

describe('node start', () => {
  let e: TestEngine | undefined;
  afterEach(async () => {
    await e?.stop();
    e = undefined;
  });

  it('is ready even if an order stream with unprojected events cannot be loaded', async () => {
    const backend = restartable({ kind: 'sqlite' });
    e = await startEngine(backend);
    await e.client.sku('wake', '2026-12-24', 5);
    const ref = e.node.catalog.stream('wake', '2026-12-24')!;
    const orderId = orderIdFor(Date.now(), { bytes: (n: number) => new Uint8Array(n).fill(9) }, ref.streamNo);
    // A record at seq 3 with nothing before it: loading this order's stream fails (not contiguous).
    await e.node.stores.journal.append([{ stream: `@o/${orderId}`, seq: 3, lastSeq: 3, at: Date.now(), events: [{ type: 'order.redeemed', at: Date.now() }] }]);
    await e.stop();

    e = await startEngine(backend);
    expect((await e.client.request('GET', '/readyz')).status).toBe(200);
    expect((await e.client.buyer('wake-buyer', 'POST', '/v1/orders', { skuId: 'wake', date: '2026-12-24', qty: 1 })).status).toBe(201);
    expect((await e.client.admin('GET', `/ops/orders/${orderId}`)).status).toBe(503);
  });

  it('prints a usable URL when it listens on an IPv6 address', async () => {
    e = await startEngine({ kind: 'sqlite' }, { STAMPEDE_HTTP_HOST: '::1' });
    expect(e.url).toMatch(/^http:\/\/\[::1\]:\d+$/);
    expect((await fetch(`${e.url}/healthz`)).status).toBe(200);
  });
});
