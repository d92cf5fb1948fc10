// Proves /readyz, which needs no token, costs the node one dependency check a second however many
// probes arrive (each check takes a pooled database connection the journal needs too): concurrent
// probes share one check, and a probe a second later makes a new one — a real node on the embedded
// default, its store's ping counted.
import mysql from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WRITE_PROBE_DEFAULTS } from '../../app/write-probe.ts';
import { READINESS_CHECK_TTL_MS } from '../../http/routes/ops.ts';
import { startEngine, type TestEngine } from '../support/engine.ts';
import { freshMysqlDatabase, REDIS_URL } from '../support/services.ts';

describe('/readyz under a flood of probes', () => {
  let e: TestEngine;
  beforeAll(async () => {
    e = await startEngine({ kind: 'sqlite' });
  });
  afterAll(async () => e?.stop());

  it('answers 100 concurrent probes with one dependency check, and checks again a second later', async () => {
    const stores = e.node.stores;
    const ping = stores.ping.bind(stores);
    let checks = 0;
    stores.ping = async () => {
      checks++;
      return ping();
    };
    const answers = await Promise.all(Array.from({ length: 100 }, () => e.client.request('GET', '/readyz')));
    expect(answers.map((a) => a.status)).toEqual(Array(100).fill(200));
    expect(answers[0]!.body).toMatchObject({ status: 'ready', dependencies: { sqlite: true } });
    expect(checks).toBe(1);
    await new Promise((r) => setTimeout(r, READINESS_CHECK_TTL_MS + 50));
    expect((await e.client.request('GET', '/readyz')).status).toBe(200);
    expect(checks).toBe(2);
  });
});

// Proves /readyz fails a database that answers reads but holds its writes, and passes again once
// writes go through: on the real MariaDB, another connection holds a READ lock on the table the
// probe writes (as a read-only database, a full disk or a stuck lock would hold every write).
describe('/readyz when the database takes reads but not writes', () => {
  let e: TestEngine;
  beforeAll(async () => {
    e = await startEngine({ kind: 'mysql', url: await freshMysqlDatabase('stampede_readyz_writes'), redisUrl: REDIS_URL });
  });
  afterAll(async () => e?.stop());

  it('answers 503 naming databaseWrites while writes are held, 200 once they go through', async () => {
    const ok = await e.client.request('GET', '/readyz');
    expect(ok.status).toBe(200);
    expect(ok.body).toMatchObject({ status: 'ready', dependencies: { mysql: true, databaseWrites: true, redis: true } });
    // The Redis snapshot store's failures are scraped (none here).
    expect(String((await e.client.admin('GET', '/metrics')).body)).toMatch(/^stampede_redis_snapshot_save_failures_total 0$/m);
    const locker = await mysql.createConnection(e.config.mysqlUrl!);
    try {
      // Past the check's TTL, and past the time a successful write vouches for writes (no commit since).
      await new Promise((r) => setTimeout(r, Math.max(READINESS_CHECK_TTL_MS, WRITE_PROBE_DEFAULTS.evidence_ms) + 100));
      await locker.query('LOCK TABLES store_identity READ');
      const probes = e.node.writeProbe.probes;
      const held = await e.client.request('GET', '/readyz');
      expect(held.status).toBe(503);
      expect(held.body).toMatchObject({ error: 'unavailable' });
      expect(held.body.message).toMatch(/databaseWrites/);
      expect(held.body.message).not.toMatch(/mysql/);
      expect(e.node.writeProbe.probes).toBe(probes + 1);
      // Checks within the backoff after a failed probe answer "down" without a new probe.
      await new Promise((r) => setTimeout(r, READINESS_CHECK_TTL_MS + 50));
      expect((await e.client.request('GET', '/readyz')).status).toBe(503);
      expect(e.node.writeProbe.probes).toBe(probes + 1);
      await locker.query('UNLOCK TABLES');
    } finally {
      await locker.end();
    }
    // Ready again at the first probe after the backoff.
    const deadline = Date.now() + WRITE_PROBE_DEFAULTS.backoff_min_ms + 5_000;
    let back = await e.client.request('GET', '/readyz');
    while (back.status !== 200 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 250));
      back = await e.client.request('GET', '/readyz');
    }
    expect(back.status).toBe(200);
    expect(back.body).toMatchObject({ dependencies: { mysql: true, databaseWrites: true } });
  }, 20_000);
});
