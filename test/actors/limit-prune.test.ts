// Proves a limit actor prunes, order by order, what no rule can reach by its own facts, on the real
// MariaDB and SQLite journals: beside a window-less rule on another SKU (vip-once) and a 7-day rule, a
// buyer's 2,000 paid coffee orders an hour apart lose all but their last 31 days at the actor's first
// batch, journaled as `pruned` events listing the ids (at most PRUNE_IDS_PER_EVENT_MAX each) that a
// new actor replays to the same state; the vip order stays, and the rules still decide as before.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buyerStream, LimitActor, type BuyerInspection, type HoldFate } from '../../actors/limit-actor.ts';
import { buyerToCompactSnapshot, compileRules, DAY_MS, emptyBuyer, evolveBuyer, PRUNE_IDS_PER_EVENT_MAX, PRUNE_KEEP_MIN_MS, type BuyerEvent, type BuyerOrderFacts } from '../../engine/index.ts';
import { backends } from '../persistence/backends.ts';
import { send, testCommitter } from './limit-support.ts';

const HOUR_MS = 3_600_000;
const T0 = Date.parse('2026-01-01T00:00:00Z');
const N = 2_000;
const NOW = T0 + N * HOUR_MS;
const rules = compileRules([
  { id: 'vip-once', match: { skuIds: ['vip-A'] }, max: { orders: 1 } },
  { id: 'weekly', window: { rollingDays: 7 }, max: { units: 500 } },
]);

function coffee(i: number): BuyerOrderFacts {
  return { orderId: `coffee-${String(i).padStart(5, '0')}`, skuId: 'coffee-B', date: 'open', merchantId: 'm1', attributes: { roast: 'dark' }, qty: 1, createdAt: T0 + i * HOUR_MS };
}
const vip: BuyerOrderFacts = { orderId: 'vip-1', skuId: 'vip-A', date: 'open', merchantId: 'm1', attributes: {}, qty: 1, createdAt: T0 - DAY_MS };

describe.each(backends)('limit actor prune on $name', (backend) => {
  let stores: Awaited<ReturnType<typeof backend.open>>;
  beforeAll(async () => {
    stores = await backend.open('limit_prune');
  });
  afterAll(async () => stores?.dispose());

  it('drops the coffee orders no rule reaches, by id, journaled in bounded events that a new actor replays', async () => {
    const stream = buyerStream('coffee-buyer');
    // The buyer's journal, compacted: the vip order and 2,000 coffee orders, each held and paid.
    const state = emptyBuyer();
    for (const o of [vip, ...Array.from({ length: N }, (_, i) => coffee(i))]) {
      evolveBuyer(state, { type: 'held', order: o, at: o.createdAt });
      evolveBuyer(state, { type: 'confirmed', orderId: o.orderId, at: o.createdAt });
    }
    await stores.journal.append([{ stream, seq: 1, lastSeq: 1, at: NOW - HOUR_MS, events: [{ type: 'restored', snapshot: buyerToCompactSnapshot(state), at: NOW - HOUR_MS }] }]);
    const committer = testCommitter(stores.journal);
    const deps = { journal: stores.journal, committer, now: () => NOW, rules: () => rules, fateOf: async (): Promise<HoldFate> => 'paid' };

    const view = (await send(new LimitActor('coffee-buyer', deps), { type: 'inspect' })) as BuyerInspection;
    // Kept: the vip order (vip-once counts it for ever) and the coffee of the last 31 days.
    const kept = view.counted.map((o) => o.orderId);
    expect(kept[0]).toBe('vip-1');
    const floor = NOW - PRUNE_KEEP_MIN_MS;
    expect(kept.slice(1)).toEqual(Array.from({ length: N }, (_, i) => coffee(i)).filter((o) => o.createdAt >= floor).map((o) => o.orderId));

    // Journaled as ids, in events of at most PRUNE_IDS_PER_EVENT_MAX.
    const records = await stores.journal.readAfter(stream, 0);
    const pruned = records.flatMap((r) => r.events as BuyerEvent[]).filter((e): e is BuyerEvent & { type: 'pruned' } => e.type === 'pruned');
    const ids = pruned.flatMap((e) => e.orderIds ?? []);
    expect(ids).toHaveLength(N + 1 - kept.length);
    expect(pruned.length).toBe(Math.ceil(ids.length / PRUNE_IDS_PER_EVENT_MAX));
    for (const e of pruned) expect(e.orderIds!.length).toBeLessThanOrEqual(PRUNE_IDS_PER_EVENT_MAX);

    // A new actor replays them to the same state, and the rules decide on it.
    const again = new LimitActor('coffee-buyer', deps);
    expect(((await send(again, { type: 'inspect' })) as BuyerInspection).counted).toEqual(view.counted);
    expect(await send(again, { type: 'hold', order: { ...coffee(N), createdAt: NOW } })).toEqual({ outcome: 'held', orderId: coffee(N).orderId });
    expect(await send(again, { type: 'hold', order: { ...vip, orderId: 'vip-2', createdAt: NOW } })).toMatchObject({ outcome: 'limit_exceeded', ruleId: 'vip-once' });
    committer.close();
  });
});
