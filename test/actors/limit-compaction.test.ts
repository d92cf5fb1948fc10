// Proves a limit actor's journal compaction on the real MariaDB and SQLite journals: past
// COMPACT_AFTER_EVENTS it writes one `restored` record in the compact format (each SKU's facts once:
// some 150 orders of a SKU with 32 attributes of 256 characters in a record of a few KiB, not over
// 1 MiB), handed to the group commit as any record (one of 256 KiB or more alone), drops the records before it, and a new actor
// loads the same state from it; a journal compacted before that format (a plain `restored` record)
// still loads, with the records after it; and a buyer whose snapshot is over BUYER_SNAPSHOT_BYTES_MAX
// is not compacted — reported once, not tried again with each batch, its journal left whole and
// loading to the same state.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GroupCommitter } from '../../actors/group-commit.ts';
import { buyerStream, COMPACT_AFTER_EVENTS, COMPACT_RETRY_EVENTS_MAX, COMPACTION_ALONE_BYTES_MIN, LimitActor, type BuyerInspection, type HoldFate } from '../../actors/limit-actor.ts';
import { BUYER_SNAPSHOT_BYTES_MAX, BUYER_SNAPSHOT_FORMAT, buyerToSnapshot, compileRules, emptyBuyer, evolveBuyer, type BuyerEvent, type BuyerOrderFacts } from '../../engine/index.ts';
import { backends } from '../persistence/backends.ts';
import { send, testCommitter } from './limit-support.ts';

const T0 = Date.parse('2027-06-01T10:00:00Z');
const rules = compileRules([{ id: 'units-1000', groupBy: ['skuId'], max: { units: 1_000 } }]);
const attributes = Object.fromEntries(Array.from({ length: 32 }, (_, k) => [`attr${k}`, `v${k}-`.padEnd(256, 'x')]));

function facts(i: number): BuyerOrderFacts {
  return { orderId: `o${String(i).padStart(4, '0')}`, skuId: 'big-sku', date: '2027-06-02', merchantId: 'm1', attributes, qty: 1, createdAt: T0 + i };
}

/** An order of one of 40 SKUs, each with 32 attributes of 256 characters of its own (8 KiB each in a snapshot). */
function factsOfMany(i: number): BuyerOrderFacts {
  const sku = `big-${i % 40}`;
  return { ...facts(i), skuId: sku, attributes: Object.fromEntries(Object.entries(attributes).map(([k, v]) => [k, `${sku}-${v}`.slice(0, 256)])) };
}

/** How each record is handed to the group committer from now on: its first event's type, and whether alone. */
function handedTo(committer: GroupCommitter): { type: string; alone: boolean }[] {
  const handed: { type: string; alone: boolean }[] = [];
  const commit = committer.commit.bind(committer);
  committer.commit = (record, withRecords, options) => {
    handed.push({ type: (record.events[0] as BuyerEvent).type, alone: options?.alone === true });
    return commit(record, withRecords, options);
  };
  return handed;
}

describe.each(backends)('limit actor compaction on $name', (backend) => {
  let stores: Awaited<ReturnType<typeof backend.open>>;
  beforeAll(async () => {
    stores = await backend.open('limit_compaction');
  });
  afterAll(async () => stores?.dispose());

  function deps() {
    const committer = testCommitter(stores.journal);
    const skipped: { userId: string; bytes: number; max: number }[] = [];
    // Every hold's order still reserved: a load keeps them held.
    return {
      committer,
      skipped,
      deps: {
        journal: stores.journal,
        committer,
        now: () => T0 + 1_000,
        rules: () => rules,
        fateOf: async (): Promise<HoldFate> => 'reserved',
        compactionSkipped: (userId: string, bytes: number, max: number) => skipped.push({ userId, bytes, max }),
      },
    };
  }
  const view = async (actor: LimitActor) => {
    const v = (await send(actor, { type: 'inspect' })) as BuyerInspection;
    return { holds: v.holds, counted: v.counted, noShows: v.noShows };
  };

  it('compacts past COMPACT_AFTER_EVENTS into one compact record, and a new actor loads the same state from it', async () => {
    const { committer, deps: d } = deps();
    const handed = handedTo(committer);
    const actor = new LimitActor('compacting', d);
    const n = Math.ceil(COMPACT_AFTER_EVENTS / 1.75) + 4;
    for (let i = 0; i < n; i++) {
      expect(await send(actor, { type: 'hold', order: facts(i) })).toEqual({ outcome: 'held', orderId: facts(i).orderId });
      if (i % 4 !== 3) expect(await send(actor, { type: 'confirm', orderId: facts(i).orderId })).toEqual({ outcome: 'confirmed' });
    }
    const before = await view(actor);
    expect(before.holds.length + before.counted.length).toBe(n);

    const records = await stores.journal.readAfter(buyerStream('compacting'), 0);
    const restored = records.find((r) => (r.events[0] as BuyerEvent).type === 'restored')!;
    expect(records.map((r) => (r.events[0] as BuyerEvent).type)[0]).toBe('restored'); // the records before it dropped
    expect((restored.events[0] as BuyerEvent & { type: 'restored' }).snapshot).toMatchObject({ format: BUYER_SNAPSHOT_FORMAT });
    // Each order repeating its SKU's 8 KiB of attributes made this record over 1 MiB.
    expect(Buffer.byteLength(JSON.stringify(restored.events))).toBeLessThan(32 * 1024);
    // Small (nearly every compaction): it rides in a group commit as any record does.
    expect(handed.filter((h) => h.alone)).toEqual([]);
    expect(handed.filter((h) => h.type === 'restored')).toHaveLength(1);

    expect(await view(new LimitActor('compacting', d))).toEqual(before);
    committer.close();
  });

  it(`writes a compaction record of ${COMPACTION_ALONE_BYTES_MIN / 1024} KiB or more alone: never a rider in other streams' write`, async () => {
    const { committer, deps: d } = deps();
    const handed = handedTo(committer);
    const actor = new LimitActor('compacting-large', d);
    const n = Math.ceil(COMPACT_AFTER_EVENTS / 1.75) + 4;
    for (let i = 0; i < n; i++) {
      expect(await send(actor, { type: 'hold', order: factsOfMany(i) })).toEqual({ outcome: 'held', orderId: factsOfMany(i).orderId });
      if (i % 4 !== 3) expect(await send(actor, { type: 'confirm', orderId: factsOfMany(i).orderId })).toEqual({ outcome: 'confirmed' });
    }
    const records = await stores.journal.readAfter(buyerStream('compacting-large'), 0);
    const restored = records.find((r) => (r.events[0] as BuyerEvent).type === 'restored')!;
    expect(Buffer.byteLength(JSON.stringify((restored.events[0] as BuyerEvent & { type: 'restored' }).snapshot))).toBeGreaterThanOrEqual(COMPACTION_ALONE_BYTES_MIN);
    expect(handed.filter((h) => h.alone)).toEqual([{ type: 'restored', alone: true }]);
    committer.close();
  });

  it('loads a journal compacted before the compact format: its plain `restored` record and the records after it', async () => {
    const { committer, deps: d } = deps();
    const stream = buyerStream('compacted-long-ago');
    // The state as the plain-format compaction wrote it, the records before it dropped long ago.
    const old = emptyBuyer();
    for (let i = 0; i < 6; i++) evolveBuyer(old, { type: 'held', order: facts(i), at: T0 + i });
    evolveBuyer(old, { type: 'confirmed', orderId: facts(0).orderId, at: T0 + 10 });
    evolveBuyer(old, { type: 'released', orderId: facts(1).orderId, reason: 'cancelled', at: T0 + 11 });
    evolveBuyer(old, { type: 'no_show_recorded', noShow: { ...facts(90), at: T0 + 12 }, at: T0 + 12 });
    await stores.journal.append([{ stream, seq: 301, lastSeq: 301, at: T0 + 13, events: [{ type: 'restored', snapshot: buyerToSnapshot(old), at: T0 + 13 }] }]);
    await stores.journal.append([{ stream, seq: 302, lastSeq: 302, at: T0 + 14, events: [{ type: 'confirmed', orderId: facts(2).orderId, at: T0 + 14 }] }]);

    const loaded = await view(new LimitActor('compacted-long-ago', d));
    expect(loaded.counted.map((o) => o.orderId)).toEqual([facts(0).orderId, facts(2).orderId]);
    expect(loaded.holds.map((o) => o.orderId)).toEqual([3, 4, 5].map((i) => facts(i).orderId));
    expect(loaded.holds[0]).toEqual({ ...facts(3), status: 'held' });
    expect(loaded.noShows).toEqual([{ ...facts(90), at: T0 + 12 }]);
    committer.close();
  });

  it('leaves the journal of a buyer whose snapshot is over BUYER_SNAPSHOT_BYTES_MAX whole: reported once, not retried with every batch, and it still loads', async () => {
    const { committer, skipped, deps: d } = deps();
    const stream = buyerStream('oversized');
    // 700 holds of distinct SKUs with 32 attributes of 256 characters each: ~4.6 MiB of facts that no
    // format can share, journaled 100 to a record.
    const big = (i: number): BuyerOrderFacts => ({ ...facts(i), skuId: `sku-${i}`, attributes: Object.fromEntries(Object.entries(attributes).map(([k, v]) => [k, `${i}-${v}`.slice(0, 256)])) });
    for (let r = 0; r < 7; r++) {
      const events = Array.from({ length: 100 }, (_, k): BuyerEvent => ({ type: 'held', order: big(r * 100 + k), at: T0 + r }));
      await stores.journal.append([{ stream, seq: r * 100 + 1, lastSeq: r * 100 + 100, at: T0 + r, events }]);
    }
    const actor = new LimitActor('oversized', d);
    const loaded = await view(actor); // a batch 700 events past the last compaction: one is due
    expect(loaded.holds).toHaveLength(700);
    expect(skipped).toHaveLength(1);
    expect(skipped[0]).toMatchObject({ userId: 'oversized', max: BUYER_SNAPSHOT_BYTES_MAX });
    expect(skipped[0]!.bytes).toBeGreaterThan(BUYER_SNAPSHOT_BYTES_MAX);
    // Batches that write go on; none tries the compaction again (until 700 events more).
    expect(COMPACT_RETRY_EVENTS_MAX).toBeGreaterThan(700);
    for (let i = 700; i < 710; i++) expect(await send(actor, { type: 'hold', order: facts(i) })).toEqual({ outcome: 'held', orderId: facts(i).orderId });
    expect(skipped).toHaveLength(1);
    // Nothing dropped, no `restored` record: the journal rebuilds the buyer as before.
    const records = await stores.journal.readAfter(stream, 0);
    expect(records[0]!.seq).toBe(1);
    expect(records.some((r) => (r.events[0] as BuyerEvent).type === 'restored')).toBe(false);
    const again = await view(new LimitActor('oversized', d));
    expect(again.holds.map((o) => o.orderId)).toEqual([...loaded.holds.map((o) => o.orderId), ...Array.from({ length: 10 }, (_, k) => facts(700 + k).orderId)]);
    committer.close();
  });
});
