// Proves /readyz, which needs no token, costs the node one dependency check a second however many
// probes arrive (each check takes a pooled database connection the journal needs too): concurrent
// probes share one check, and a probe a second later makes a new one — a real node on the embedded
// default, its store's ping counted.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { READINESS_CHECK_TTL_MS } from '../../http/routes/ops.ts';
import { startEngine, type TestEngine } from '../support/engine.ts';

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
