// Proves Metrics exposes every engine metric on its own registry (the process's default metrics appended, and nothing of a dropped node kept alive), reads gauges from the owner's callbacks at scrape time, and labels HTTP metrics with the route template (not the raw path), by driving a real koa app with fetch and reading GET /metrics.
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { notFound } from '../../http/api-error.ts';
import { Metrics } from '../../http/metrics.ts';
import { startApp, type Harness } from './helpers.ts';

const metrics = new Metrics();
let depth = 7;
let h: Harness;

beforeAll(async () => {
  metrics.setMailboxDepthSource(() => depth);
  metrics.setActorCountSource(() => ({ inventory: 3, buyer: 12 }));
  h = await startApp(
    (router) => {
      router.get('/metrics', metrics.handler());
      router.get('/v1/orders/:orderId', (ctx) => {
        if (ctx.params.orderId === 'missing') throw notFound('order');
        ctx.body = { orderId: ctx.params.orderId };
      });
      router.get('/boom', () => {
        throw new Error('x');
      });
    },
    { metrics },
  );
});
afterAll(() => h.close());

async function scrape(): Promise<{ text: string; type: string | null }> {
  const res = await fetch(`${h.url}/metrics`);
  expect(res.status).toBe(200);
  return { text: await res.text(), type: res.headers.get('content-type') };
}

describe('Metrics', () => {
  it('keeps nothing its gauges read alive once dropped, with the process metrics on', async () => {
    // A stopped node is dropped: what its metrics' callbacks reach (the node) must go with it.
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    /** A node's metrics, scraped once and dropped; what its gauge read, weakly. */
    const dropped = async (i: number): Promise<WeakRef<object>> => {
      const held = { actors: new Array<number>(1_000).fill(i) };
      const m = new Metrics({ mailboxDepth: () => held.actors.length });
      expect(await m.text()).toContain('stampede_mailbox_depth 1000');
      return new WeakRef(held);
    };
    const refs = [await dropped(0), await dropped(1), await dropped(2)];
    await new Promise((resolve) => setTimeout(resolve, 0));
    gc();
    expect(refs.map((r) => r.deref() === undefined)).toEqual([true, true, true]);
  });

  it('reservations tallied on the hot path are in every scrape, added to the counter once', async () => {
    const m = new Metrics({ defaultMetrics: false });
    for (let i = 0; i < 3; i++) m.countReservation('sold_out');
    m.countReservation('reserved');
    m.reservations.inc({ outcome: 'reserved' });
    const first = await m.registry.metrics();
    expect(first).toContain('stampede_reservations_total{outcome="sold_out"} 3');
    expect(first).toContain('stampede_reservations_total{outcome="reserved"} 2');
    m.countReservation('sold_out');
    const second = await m.registry.metrics();
    expect(second).toContain('stampede_reservations_total{outcome="sold_out"} 4');
    expect(second).toContain('stampede_reservations_total{outcome="reserved"} 2');
  });

  it('the text names every metric, with the registry content type', async () => {
    metrics.reservations.inc({ outcome: 'reserved' });
    metrics.groupCommitBatchEvents.observe(300);
    metrics.groupCommitLatencyMs.observe(0.3);
    metrics.recoveryMs.observe(12);
    metrics.snapshotFailures.inc({ store: 'redis' });
    const { text, type } = await scrape();
    expect(type).toBe(metrics.contentType);
    for (const name of [
      'stampede_reservations_total{outcome="reserved"} 1',
      'stampede_group_commit_batch_events_bucket{le="500"} 1',
      'stampede_group_commit_batch_events_bucket{le="10000"} 1',
      'stampede_group_commit_latency_ms_bucket{le="0.25"} 0',
      'stampede_group_commit_latency_ms_bucket{le="0.5"} 1',
      'stampede_recovery_ms_count 1',
      'stampede_snapshot_failures_total{store="redis"} 1',
      'stampede_mailbox_depth 7',
      'stampede_actors{kind="inventory"} 3',
      'stampede_actors{kind="buyer"} 12',
      'process_cpu_user_seconds_total',
    ]) {
      expect(text).toContain(name);
    }
  });

  it('gauges are read from the callbacks at scrape time', async () => {
    depth = 42;
    metrics.setActorCountSource(() => ({ inventory: 5 }));
    const { text } = await scrape();
    expect(text).toContain('stampede_mailbox_depth 42');
    expect(text).toContain('stampede_actors{kind="inventory"} 5');
    expect(text).not.toContain('stampede_actors{kind="buyer"}');
  });

  it('http metrics use the route template, not the path', async () => {
    for (const id of ['o-1', 'o-2', 'o-3']) expect((await fetch(`${h.url}/v1/orders/${id}`)).status).toBe(200);
    expect((await fetch(`${h.url}/v1/orders/missing`)).status).toBe(404);
    expect((await fetch(`${h.url}/boom`)).status).toBe(500);
    expect((await fetch(`${h.url}/random/path/123`)).status).toBe(404);
    const { text } = await scrape();
    expect(text).toContain('stampede_http_requests_total{route="/v1/orders/:orderId",status="200"} 3');
    expect(text).toContain('stampede_http_requests_total{route="/v1/orders/:orderId",status="404"} 1');
    expect(text).toContain('stampede_http_requests_total{route="/boom",status="500"} 1');
    expect(text).toContain('stampede_http_requests_total{route="unmatched",status="404"} 1');
    expect(text).toContain('stampede_http_request_ms_count{route="/v1/orders/:orderId"} 4');
    expect(text).not.toMatch(/o-1|o-2|random\/path/);
  });

  it('each Metrics has its own registry', async () => {
    const a = new Metrics({ defaultMetrics: false });
    const b = new Metrics({ defaultMetrics: false });
    a.reservations.inc({ outcome: 'sold_out' });
    expect(await a.text()).toContain('stampede_reservations_total{outcome="sold_out"} 1');
    expect(await b.text()).not.toContain('outcome="sold_out"');
    expect(await b.text()).toContain('stampede_mailbox_depth 0');
  });

  it('counts the Redis snapshot store\'s failed saves and loads once it is plugged in', async () => {
    const m = new Metrics({ defaultMetrics: false });
    expect(await m.text()).not.toContain('stampede_redis_snapshot');
    const store = { failures: 0, loadFailures: 0 };
    m.setRedisSnapshotSource(() => store);
    expect(await m.text()).toMatch(/^stampede_redis_snapshot_save_failures_total 0$/m);
    Object.assign(store, { failures: 4, loadFailures: 2 });
    const text = await m.text();
    expect(text).toMatch(/^stampede_redis_snapshot_save_failures_total 4$/m);
    expect(text).toMatch(/^stampede_redis_snapshot_load_failures_total 2$/m);
    expect(() => m.setRedisSnapshotSource(() => store)).toThrow(/set already/);
  });

  it('shows the SQLite WAL checkpointer only once one is plugged in, its counters growing by what it did', async () => {
    const m = new Metrics({ defaultMetrics: false });
    expect(await m.text()).not.toContain('stampede_sqlite_wal');
    const figures = { running: true, checkpoints: 3, restarts: 1 };
    m.setWalCheckpointerSource(() => figures);
    let text = await m.text();
    expect(text).toMatch(/^stampede_sqlite_wal_checkpointer_up 1$/m);
    expect(text).toMatch(/^stampede_sqlite_wal_checkpoints_total 3$/m);
    expect(text).toMatch(/^stampede_sqlite_wal_restarts_total 1$/m);
    Object.assign(figures, { running: false, checkpoints: 5 });
    text = await m.text();
    expect(text).toMatch(/^stampede_sqlite_wal_checkpointer_up 0$/m);
    expect(text).toMatch(/^stampede_sqlite_wal_checkpoints_total 5$/m);
    expect(text).toMatch(/^stampede_sqlite_wal_restarts_total 1$/m);
    expect(() => m.setWalCheckpointerSource(() => figures)).toThrow(/set already/);
  });
});
