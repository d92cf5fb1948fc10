// Proves passivation lets 100,000 actors go: each is touched once, then passivated with an injected clock; every one is stopped and the registry, per-shard counts and kind key lists drop to zero (what that gives back in heap is measured by bench/memory.ts, not here).
import { afterEach, describe, expect, it } from 'vitest';
import type { ActorRuntime } from '../../../actors/runtime/index.ts';
import { runtime, until, HOSTINGS } from './support.ts';

describe.each(HOSTINGS)('memory (%s)', (hosting) => {
  let rt: ActorRuntime;
  afterEach(() => rt.stop());

  it('passivates 100,000 touched actors and lets every one go', async () => {
    const N = 100_000;
    let now = 0;
    rt = runtime({ shards: 16, idleMs: 50, now: () => now }, hosting);
    let received = 0;
    let stopped = 0;
    const kind = rt.define<number>('ticket', () => ({
      receive(batch) {
        received += batch.length;
      },
      stopped: () => void stopped++,
    }));

    for (let i = 0; i < N; i++) expect(kind.tell(`sku-${i}/2025-06-01`, i)).toBe(true);
    await until(() => received === N, 30_000, 'all delivered');
    const stats = rt.stats();
    expect(stats.actors).toBe(N);
    expect(stats.byKind).toEqual({ ticket: N });
    expect(stats.shards.reduce((n, s) => n + s.actors, 0)).toBe(N);
    expect(Math.min(...stats.shards.map((s) => s.actors))).toBeGreaterThan(N / 16 / 2); // spread over shards

    now += 51;
    await until(() => rt.stats().actors === 0, 30_000, 'all passivated');
    expect(stopped).toBe(N);
    const after = rt.stats();
    expect(after.byKind).toEqual({ ticket: 0 });
    expect(after.shards.every((s) => s.actors === 0 && s.mailbox === 0)).toBe(true);
    expect([...kind.keys()]).toEqual([]);
    expect(kind.has('sku-0/2025-06-01')).toBe(false);
  });
});
