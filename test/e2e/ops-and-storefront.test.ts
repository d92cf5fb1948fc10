// Proves the storefront's SKU page, sale windows and visibility, the ops routes (shards, metrics, health, readiness) with their auth, and card-key uploads (dedupe, `open` stock growth, keys never in a response nor in plain text in the SQLite file), over HTTP against a real node on the embedded default (SQLite).
import { randomUUID } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEngine, type Answer, type TestEngine } from '../support/engine.ts';
import { waitFor } from '../support/journal-faults.ts';

const HOUR = 3_600_000;
const iso = (ms: number) => new Date(ms).toISOString();

/** The value of one sample line of Prometheus text (0 when the series does not exist yet). */
function sample(text: string, series: string): number {
  for (const line of text.split('\n')) {
    if (line.startsWith(`${series} `)) return Number(line.slice(series.length + 1));
  }
  return 0;
}

describe('storefront and ops on the embedded default (SQLite)', () => {
  let e: TestEngine;
  /** Every SKU/date created in this engine: each is one live inventory actor. */
  const streams: [string, string][] = [];
  beforeAll(async () => {
    e = await startEngine({ kind: 'sqlite' });
  });
  afterAll(async () => e?.stop());

  async function sku(skuId: string, dates: [string, number][], extra: Record<string, unknown> = {}): Promise<void> {
    const put = await e.client.admin('PUT', `/v1/skus/${skuId}`, { name: `SKU ${skuId}`, priceCents: 500, merchantId: 'm1', delivery: 'ticket', ...extra });
    expect(put.status).toBe(200);
    for (const [date, total] of dates) {
      expect((await e.client.admin('PUT', `/v1/skus/${skuId}/stock/${date}`, { total })).status).toBe(200);
      streams.push([skuId, date]);
    }
  }

  it('GET /v1/skus/:id (no auth) shows each date with its available count, caught up within 1 s of reservations', async () => {
    const c = e.client;
    await sku('sf', [
      ['2026-12-01', 10],
      ['2026-12-02', 5],
    ]);
    const page = await c.request('GET', '/v1/skus/sf');
    expect(page.status).toBe(200);
    expect(page.body).toMatchObject({ skuId: 'sf', name: 'SKU sf', priceCents: 500, delivery: 'ticket', attributes: {}, saleStartsAt: null, onSale: true });
    expect(page.body.dates).toEqual([
      { date: '2026-12-01', available: 10 },
      { date: '2026-12-02', available: 5 },
    ]);
    expect((await c.buyer('sf-a', 'POST', '/v1/orders', { skuId: 'sf', date: '2026-12-01', qty: 1 })).status).toBe(201);
    expect((await c.buyer('sf-b', 'POST', '/v1/orders', { skuId: 'sf', date: '2026-12-01', qty: 2 })).status).toBe(201);
    expect((await c.buyer('sf-c', 'POST', '/v1/orders', { skuId: 'sf', date: '2026-12-02', qty: 5 })).status).toBe(201);
    // The contract lets `available` lag by up to a second; this engine notes each SKU/date's
    // availability when a write commits, before the write's replies go out: once the 201s are in,
    // the page shows them (no clock involved).
    expect((await c.request('GET', '/v1/skus/sf')).body.dates).toEqual([
      { date: '2026-12-01', available: 7 },
      { date: '2026-12-02', available: 0 },
    ]);
  });

  it('is not on sale before saleStartsAt nor after saleEndsAt: onSale false and POST /v1/orders 409 not_on_sale, taking nothing', async () => {
    const c = e.client;
    const now = Date.now();
    await sku('early', [['2026-12-05', 10]], { saleStartsAt: iso(now + HOUR), saleEndsAt: iso(now + 2 * HOUR) });
    await sku('late', [['2026-12-05', 10]], { saleStartsAt: iso(now - 2 * HOUR), saleEndsAt: iso(now - HOUR) });
    await sku('open-window', [['2026-12-05', 10]], { saleStartsAt: iso(now - HOUR), saleEndsAt: iso(now + HOUR) });
    for (const id of ['early', 'late']) {
      const page = await c.request('GET', `/v1/skus/${id}`);
      expect([id, page.status, page.body.onSale]).toEqual([id, 200, false]);
      expect(page.body.dates).toEqual([{ date: '2026-12-05', available: 10 }]);
      const post = await c.buyer(`${id}-buyer`, 'POST', '/v1/orders', { skuId: id, date: '2026-12-05', qty: 1 });
      expect([id, post.status, post.body.error]).toEqual([id, 409, 'not_on_sale']);
      expect((await c.admin('GET', `/ops/inventory/${id}/2026-12-05`)).body).toMatchObject({ reserved: 0, available: 10 });
    }
    expect((await c.request('GET', '/v1/skus/early')).body.saleStartsAt).toBe(iso(now + HOUR));
    // Inside its window the same kind of SKU sells.
    expect((await c.request('GET', '/v1/skus/open-window')).body.onSale).toBe(true);
    expect((await c.buyer('ow', 'POST', '/v1/orders', { skuId: 'open-window', date: '2026-12-05', qty: 1 })).status).toBe(201);
  });

  it('hides a SKU whose visibleAt is in the future: 404 on GET, 409 not_on_sale on POST (API.md error table), and nothing is taken', async () => {
    const c = e.client;
    await sku('hidden', [['2026-12-06', 10]], { visibleAt: iso(Date.now() + HOUR) });
    const page = await c.request('GET', '/v1/skus/hidden');
    expect([page.status, page.body.error]).toEqual([404, 'not_found']);
    const post = await c.buyer('peek', 'POST', '/v1/orders', { skuId: 'hidden', date: '2026-12-06', qty: 1 });
    expect([post.status, post.body.error]).toEqual([409, 'not_on_sale']);
    expect((await c.admin('GET', '/ops/inventory/hidden/2026-12-06')).body).toMatchObject({ reserved: 0, available: 10 });
    // Visible (visibleAt in the past): found.
    await sku('shown', [['2026-12-06', 1]], { visibleAt: iso(Date.now() - HOUR) });
    expect((await c.request('GET', '/v1/skus/shown')).status).toBe(200);
  });

  it('GET /ops/shards lists 64 shards whose actor counts sum to the live actors, each where its SKU/date hashes; buyer 403, no token 401', async () => {
    const c = e.client;
    const r = await c.admin('GET', '/ops/shards');
    expect(r.status).toBe(200);
    const shards = r.body.shards as { shard: number; node: string; actors: number; mailbox: number }[];
    expect(shards).toHaveLength(64);
    expect(shards.map((s) => s.shard).sort((a, b) => a - b)).toEqual(Array.from({ length: 64 }, (_, i) => i));
    expect(shards.every((s) => s.node === 'node-1')).toBe(true);
    const sum = shards.reduce((n, s) => n + s.actors, 0);
    expect(sum).toBe(r.body.actors);
    expect(sum).toBe(streams.length);
    // Only inventory actors are live here (no order was paid, no card key delivered).
    expect(r.body.byKind).toEqual({ inventory: streams.length, order: 0, delivery: 0, limits: 0 });
    // Per shard: exactly the SKU/dates that ops says live there.
    const expected = new Array<number>(64).fill(0);
    for (const [skuId, date] of streams) expected[(await c.admin('GET', `/ops/inventory/${skuId}/${date}`)).body.shard]!++;
    expect([...shards].sort((a, b) => a.shard - b.shard).map((s) => s.actors)).toEqual(expected);

    const asBuyer = await c.request('GET', '/ops/shards', { auth: await c.token('nosy') });
    expect([asBuyer.status, asBuyer.body.error]).toEqual([403, 'forbidden']);
    const anonymous = await c.request('GET', '/ops/shards');
    expect([anonymous.status, anonymous.body.error]).toEqual([401, 'unauthorized']);
  });

  it('GET /metrics (admin) counts reservations exactly and exposes the group-commit, mailbox and recovery series', async () => {
    const c = e.client;
    const before = await c.admin('GET', '/metrics');
    expect(before.status).toBe(200);
    expect(before.headers.get('content-type')).toContain('text/plain');
    const reserved0 = sample(before.body, 'stampede_reservations_total{outcome="reserved"}');
    const soldOut0 = sample(before.body, 'stampede_reservations_total{outcome="sold_out"}');
    await sku('met', [['2026-12-07', 4]]);
    const answers = await Promise.all(
      Array.from({ length: 7 }, (_, i) => c.buyer(`met-${i}`, 'POST', '/v1/orders', { skuId: 'met', date: '2026-12-07', qty: 1 })),
    );
    expect(answers.filter((a) => a.status === 201)).toHaveLength(4);
    const after = await c.admin('GET', '/metrics');
    const text: string = after.body;
    expect(sample(text, 'stampede_reservations_total{outcome="reserved"}') - reserved0).toBe(4);
    expect(sample(text, 'stampede_reservations_total{outcome="sold_out"}') - soldOut0).toBe(3);
    // Counting the 3 (sf) and 1 (open-window) reserved earlier in this engine, the total is exact too.
    expect(sample(text, 'stampede_reservations_total{outcome="reserved"}')).toBe(3 + 1 + 4);
    expect(sample(text, 'stampede_group_commit_batch_events_count')).toBeGreaterThan(0);
    expect(sample(text, 'stampede_group_commit_batch_events_sum')).toBeGreaterThanOrEqual(8);
    expect(sample(text, 'stampede_group_commit_latency_ms_count')).toBeGreaterThan(0);
    expect(text).toMatch(/^stampede_group_commit_latency_ms_bucket\{le="\+Inf"\} \d+$/m);
    expect(text).toMatch(/^stampede_mailbox_depth \d+$/m);
    // Every SKU/date actor recovered once when it started.
    expect(sample(text, 'stampede_recovery_ms_count')).toBe(streams.length);
    expect(text).toMatch(/^stampede_recovery_ms_bucket\{le="\+Inf"\} \d+$/m);

    expect((await c.request('GET', '/metrics', { auth: await c.token('nosy') })).status).toBe(403);
    expect((await c.request('GET', '/metrics')).status).toBe(401);
  });

  it('GET /ops/orders/:id shows every change with its own time and cause, also those the read model has not taken in yet', async () => {
    await e.client.sku('free-ticket', '2027-05-01', 5, { priceCents: 0 });
    const projection = e.node.stores.projection;
    const apply = projection.apply;
    let open!: () => void;
    const gate = new Promise<void>((resolve) => (open = resolve));
    projection.apply = async (batch) => {
      await gate;
      return apply.call(projection, batch);
    };
    try {
      const before = Date.now();
      const placed = await e.client.buyer('free-buyer', 'POST', '/v1/orders', { skuId: 'free-ticket', date: '2027-05-01', qty: 1 });
      expect(placed.status).toBe(201);
      const orderId = placed.body.orderId as string;
      await waitFor(async () => (await e.client.buyer('free-buyer', 'GET', `/v1/orders/${orderId}`)).body.status === 'delivered', 5_000, 'the free order delivered');
      const ops = await e.client.admin('GET', `/ops/orders/${orderId}`);
      const lines = ops.body.history as { status: string; at: string; cause: string }[];
      expect(lines.map((h) => h.status)).toEqual(['reserved', 'paid', 'delivered']);
      expect(lines.map((h) => h.cause)).not.toContain('live');
      for (const h of lines) expect(Date.parse(h.at)).toBeGreaterThanOrEqual(before - 1_000);
      expect(Date.parse(lines[1]!.at)).toBeLessThanOrEqual(Date.parse(lines[2]!.at));
    } finally {
      open();
      projection.apply = apply;
    }
  });

  it('GET /healthz is 200 and GET /readyz is 200 with its dependencies', async () => {
    const c = e.client;
    const health = await c.request('GET', '/healthz');
    expect(health.status).toBe(200);
    const ready = await c.request('GET', '/readyz');
    expect(ready.status).toBe(200);
    expect(ready.body).toEqual({ status: 'ready', dependencies: { sqlite: true, databaseWrites: true }, purchaseRules: { inForce: 0, pending: 0 } });
  });

  it('keeps a SKU\'s merchant and delivery kind once it has stock (409, nothing changed), while other fields may change', async () => {
    const c = e.client;
    const body = { name: 'Fixed', priceCents: 500, merchantId: 'm-own', delivery: 'ticket' };
    expect((await c.admin('PUT', '/v1/skus/fixed', body)).status).toBe(200);
    // Before it has stock, anything may change.
    expect((await c.admin('PUT', '/v1/skus/fixed', { ...body, merchantId: 'm-first' })).status).toBe(200);
    expect((await c.admin('PUT', '/v1/skus/fixed', body)).status).toBe(200);
    expect((await c.admin('PUT', '/v1/skus/fixed/stock/2026-12-07', { total: 5 })).status).toBe(200);
    for (const change of [{ merchantId: 'm-other' }, { delivery: 'card_key' }]) {
      const refused = await c.admin('PUT', '/v1/skus/fixed', { ...body, ...change });
      expect([refused.status, refused.body.error]).toEqual([409, 'invalid_state']);
    }
    const renamed = await c.admin('PUT', '/v1/skus/fixed', { ...body, name: 'Fixed, renamed', priceCents: 600 });
    expect([renamed.status, renamed.body.name, renamed.body.merchantId]).toEqual([200, 'Fixed, renamed', 'm-own']);
    expect((await c.request('GET', '/v1/skus/fixed')).body).toMatchObject({ name: 'Fixed, renamed', priceCents: 600, delivery: 'ticket' });
  });
});

describe('card keys on the embedded default (SQLite)', () => {
  it('adds n keys, ignores duplicates, grows `open` stock by the number added, never shows a key, and stores none in plain text', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'stampede-cardkeys-'));
    const e = await startEngine({ kind: 'sqlite', dir });
    const c = e.client;
    const seen: Answer[] = [];
    const keep = (a: Answer) => (seen.push(a), a);
    const keys = Array.from({ length: 5 }, (_, i) => `CARDKEY-${i}-${randomUUID()}`);
    const [k1, k2, k3, k4, k5] = keys as [string, string, string, string, string];
    try {
      expect(keep(await c.admin('PUT', '/v1/skus/ck', { name: 'Zeta Card Pack', priceCents: 999, merchantId: 'm1', delivery: 'card_key' })).status).toBe(200);
      const openStock = async () => keep(await c.admin('GET', '/ops/inventory/ck/open')).body;

      const first = keep(await c.admin('POST', '/v1/skus/ck/card-keys', { keys: [k1, k2, k3, k1] }));
      expect([first.status, first.body]).toEqual([200, { added: 3, total: 3 }]);
      expect(await openStock()).toMatchObject({ total: 3, available: 3 });

      const second = keep(await c.admin('POST', '/v1/skus/ck/card-keys', { keys: [k2, k4, k5] }));
      expect([second.status, second.body]).toEqual([200, { added: 2, total: 5 }]);
      expect(await openStock()).toMatchObject({ total: 5, available: 5 });

      const dupes = keep(await c.admin('POST', '/v1/skus/ck/card-keys', { keys: [k1, k5] }));
      expect([dupes.status, dupes.body]).toEqual([200, { added: 0, total: 5 }]);
      expect(await openStock()).toMatchObject({ total: 5, available: 5 });

      // A buyer's view of the SKU and of an order on it.
      const page = keep(await c.request('GET', '/v1/skus/ck'));
      expect(page.body.dates).toEqual([{ date: 'open', available: 5 }]);
      const order = keep(await c.buyer('ck-buyer', 'POST', '/v1/orders', { skuId: 'ck', date: 'open', qty: 2 }));
      expect(order.status).toBe(201);
      keep(await c.buyer('ck-buyer', 'GET', `/v1/orders/${order.body.orderId}`));
      keep(await c.admin('GET', `/ops/orders/${order.body.orderId}`));
      keep(await c.admin('GET', '/metrics'));
      expect(await openStock()).toMatchObject({ total: 5, reserved: 2, available: 3 });
      expect(await e.node.stores.cardKeys.count('ck')).toBe(5);

      for (const a of seen) {
        const text = `${typeof a.body === 'string' ? a.body : JSON.stringify(a.body)}\n${[...a.headers].map(([k, v]) => `${k}: ${v}`).join('\n')}`;
        for (const key of keys) expect(text.includes(key), `a response contains ${key}`).toBe(false);
      }
    } finally {
      // Closing the database checkpoints its WAL into the main file.
      await e.stop();
    }

    const files = readdirSync(dir, { recursive: true, encoding: 'utf8' })
      .map((f) => join(dir, f))
      .filter((f) => statSync(f).isFile());
    const main = files.find((f) => f.endsWith('stampede.sqlite'));
    expect(main, `files: ${files.join(', ')}`).toBeDefined();
    const mainBytes = readFileSync(main!);
    expect(mainBytes.length).toBeGreaterThan(0);
    // The search works: plain text that is stored (the SKU's name) is found in the main file.
    expect(mainBytes.includes(Buffer.from('Zeta Card Pack'))).toBe(true);
    for (const f of files) {
      const bytes = readFileSync(f);
      for (const key of keys) expect(bytes.includes(Buffer.from(key)), `${f} contains ${key}`).toBe(false);
    }
    rmSync(dir, { recursive: true, force: true });
  });

});
