// Proves what a node started with `listen` (as `stampede serve` starts it) answers while it starts:
// held mid-start by a table lock on the real MariaDB (its catalog cannot be read until the lock goes),
// /healthz is 200, /readyz 503 "recovering", /metrics says stampede_ready 0, and every other route is
// 503 `unavailable` with Retry-After, changing nothing; once the lock goes the start ends and the same
// server serves. And that a port already taken fails such a start before any recovery, leaving the
// storage free for the next node.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import mysql from 'mysql2/promise';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../../app/config.ts';
import { StampedeNode, StoppedWhileStartingError } from '../../app/node.ts';
import { Client, startEngine, testEnv, type Backend, type TestEngine } from '../support/engine.ts';
import { freshMysqlDatabase } from '../support/services.ts';

async function until<T>(what: string, check: () => Promise<T | undefined>, deadline_ms = 10_000): Promise<T> {
  const end = Date.now() + deadline_ms;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

describe('a node listening while it starts', () => {
  const stops: (() => Promise<unknown>)[] = [];
  afterEach(async () => {
    for (const stop of stops.splice(0).reverse()) await stop().catch(() => undefined);
  });

  /**
   * A node on a MariaDB database whose first run made the schema and `skuId` with 5 on 2026-12-24,
   * started with `listen` while another connection holds a WRITE lock on the catalog's table (the
   * start reads it, so it waits there until the lock goes).
   */
  async function startHeldAtCatalog(database: string, skuId: string) {
    const url = await freshMysqlDatabase(database);
    const backend: Backend = { kind: 'mysql', url };
    const first: TestEngine = await startEngine(backend);
    await first.client.sku(skuId, '2026-12-24', 5);
    await first.stop();
    const locker = await mysql.createConnection(url);
    stops.push(() => locker.end());
    await locker.query('LOCK TABLES skus WRITE');
    const node = new StampedeNode(loadConfig(testEnv(backend)), { logger: pino({ level: 'silent' }) });
    const started = node.start({ listen: true });
    started.catch(() => undefined);
    stops.push(() => node.stop());
    const base = await until('the node to listen', async () => node.url);
    return { url, backend, locker, node, started, base };
  }

  it('answers its probes during the start, refuses every other route with 503 and Retry-After, then serves', async () => {
    const { locker, node, started, base } = await startHeldAtCatalog('stampede_listen_starting', 'early');
    const client = new Client(base);

    expect((await client.request('GET', '/healthz')).status).toBe(200);
    // Matched as the router matches it (case, a trailing slash).
    expect((await client.request('GET', '/Healthz/')).status).toBe(200);
    const ready = await client.request('GET', '/readyz');
    expect(ready.status).toBe(503);
    expect(ready.body).toMatchObject({ error: 'unavailable' });
    expect(ready.body.message).toMatch(/recovering/);
    const metrics = await client.admin('GET', '/metrics');
    expect(metrics.status).toBe(200);
    expect(String(metrics.body)).toMatch(/^stampede_ready 0$/m);
    const order = await client.buyer('early-buyer', 'POST', '/v1/orders', { skuId: 'early', date: '2026-12-24', qty: 1 });
    expect(order.status).toBe(503);
    expect(order.body).toMatchObject({ error: 'unavailable' });
    expect(order.headers.get('retry-after')).toBe('2');
    expect((await client.admin('PUT', '/v1/skus/early/stock/2026-12-24', { total: 50 })).status).toBe(503);
    expect((await client.request('GET', '/v1/skus/early')).status).toBe(503);
    expect(node.ready).toBe(false);

    await locker.query('UNLOCK TABLES');
    await started;
    expect(node.url).toBe(base);
    expect((await client.request('GET', '/readyz')).status).toBe(200);
    expect(String((await client.admin('GET', '/metrics')).body)).toMatch(/^stampede_ready 1$/m);
    // Nothing the refused requests asked for happened: the stock is still 5, with nothing reserved.
    const inventory = await client.admin('GET', '/ops/inventory/early/2026-12-24');
    expect(inventory.body).toMatchObject({ total: 5, reserved: 0, sold: 0 });
    expect((await client.buyer('early-buyer', 'POST', '/v1/orders', { skuId: 'early', date: '2026-12-24', qty: 1 })).status).toBe(201);
  });

  it('stops cleanly when stopped during the start: the start ends at its next step, then the server closes and the storage lock goes', async () => {
    const { url, backend, locker, node, started, base } = await startHeldAtCatalog('stampede_listen_stopped', 'stopped');
    const outcome = started.then(() => 'started', (error: unknown) => String(error));
    expect((await new Client(base).request('GET', '/healthz')).status).toBe(200);
    // Stopped once the start waits for the table (its catalog read), not between two of its steps.
    const database = new URL(url).pathname.slice(1);
    await until('the start to wait for the table lock', async () => {
      const [rows] = await locker.query("SELECT COUNT(*) AS n FROM information_schema.processlist WHERE db = ? AND state LIKE 'Waiting for table%'", [database]);
      return Number((rows as { n: number }[])[0]!.n) > 0 ? true : undefined;
    });
    const stopped = node.stop();
    // The stop waits for the start, held at the catalog's table: nothing is closed under it meanwhile.
    await new Promise((r) => setTimeout(r, 200));
    const answer = await new Client(base).request('GET', '/healthz');
    expect(answer.status).toBe(503);
    expect(answer.headers.get('connection')).toBe('close');
    await locker.query('UNLOCK TABLES');
    await stopped;
    expect(await outcome).toMatch(/stopped while it started/);
    expect(node.ready).toBe(false);
    expect(node.url).toBeUndefined();
    await expect(fetch(`${base}/healthz`)).rejects.toThrow();
    // The database's node lock went with the stop: the next node starts on it and serves.
    const next: TestEngine = await startEngine(backend);
    stops.push(() => next.stop());
    expect((await next.client.request('GET', '/readyz')).status).toBe(200);
    expect((await next.client.request('GET', '/v1/skus/stopped')).status).toBe(200);
  });

  it('refuses a start after a stop, taking nothing (the data folder stays free)', async () => {
    const env = testEnv({ kind: 'sqlite' });
    const node = new StampedeNode(loadConfig(env), { logger: pino({ level: 'silent' }) });
    await node.stop();
    await expect(node.start({ listen: true })).rejects.toBeInstanceOf(StoppedWhileStartingError);
    expect(node.url).toBeUndefined();
    const next = new StampedeNode(loadConfig(env), { logger: pino({ level: 'silent' }) });
    stops.push(() => next.stop());
    await next.start({ listen: true });
    expect((await new Client(next.url!).request('GET', '/readyz')).status).toBe(200);
  });

  it('fails a start whose port is taken before it recovers anything, and leaves the storage to the next node', async () => {
    const other: TestEngine = await startEngine({ kind: 'sqlite' });
    stops.push(() => other.stop());
    const port = new URL(other.url).port;
    const backend: Backend = { kind: 'sqlite' };
    const env = testEnv(backend, { STAMPEDE_HTTP_PORT: port });
    const node = new StampedeNode(loadConfig(env), { logger: pino({ level: 'silent' }) });
    await expect(node.start({ listen: true })).rejects.toMatchObject({ code: 'EADDRINUSE' });
    expect(node.ready).toBe(false);
    // Failed before its stores opened: no database file was made.
    expect(existsSync(join(env.STAMPEDE_DATA_DIR!, 'stampede.sqlite'))).toBe(false);
    // Its data folder is not left locked: a node on another port starts on it.
    const next = new StampedeNode(loadConfig({ ...env, STAMPEDE_HTTP_PORT: '0' }), { logger: pino({ level: 'silent' }) });
    stops.push(() => next.stop());
    await next.start({ listen: true });
    expect((await new Client(next.url!).request('GET', '/readyz')).status).toBe(200);
  });
});
