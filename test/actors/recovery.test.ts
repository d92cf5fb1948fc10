// Proves a SKU/date's recovery hands the projector only what the read model lacks: the events after
// the projector's checkpoint (their order rows, answers and outbox bits), however far back the
// snapshot is, and never starts from a snapshot past that checkpoint — on a real SQLite journal and
// snapshot store written with the actor's own codec.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { encodeEvent } from '../../actors/inventory-codec.ts';
import { OUTBOX_KIND } from '../../actors/inventory-projection.ts';
import { recoverInventory } from '../../actors/recovery.ts';
import { emptyInventory, evolve, toSnapshot, type InventoryEvent } from '../../engine/index.ts';
import type { SnapshotStore } from '../../persistence/ports.ts';
import { openSqlStores, type SqlStores } from '../../persistence/sql/open.ts';

const context = { stream: 'rec/2026-12-02', skuId: 'rec', date: '2026-12-02', merchantId: 'm1' };
const facts = (orderId: string) => ({ orderId, userId: `u-${orderId}`, qty: 1, amountCents: 100, createdAt: 1_000, expiresAt: 901_000 });
/** seq 1..6: stock, two keyed reservations and one without a key, a cancel, a sale. */
const EVENTS: InventoryEvent[] = [
  { type: 'total_set', total: 10, at: 1_000 },
  { type: 'reserved', ...facts('a'), idempotency: { key: 'ka', hash: 'ha' } },
  { type: 'reserved', ...facts('b'), idempotency: { key: 'kb', hash: 'hb' } },
  { type: 'reserved', ...facts('c') },
  { type: 'released', ...facts('a'), reason: 'cancelled', at: 2_000 },
  { type: 'sold', ...facts('b'), paymentId: 'p-b', at: 3_000 },
];

describe('recoverInventory', () => {
  // Each test its own database with the same journal: a snapshot one test saves is no other test's.
  let dir: string;
  let stores: SqlStores;
  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'stampede-recovery-'));
    stores = await openSqlStores({ sqlitePath: join(dir, 'db.sqlite') });
    await stores.journal.append([
      { stream: context.stream, seq: 1, lastSeq: 3, at: 1_000, events: EVENTS.slice(0, 3).map(encodeEvent) },
      { stream: context.stream, seq: 4, lastSeq: 6, at: 3_000, events: EVENTS.slice(3).map(encodeEvent) },
    ]);
  });
  afterEach(async () => {
    await stores.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const changes = (r: Awaited<ReturnType<typeof recoverInventory>>) =>
    r.reprojected.map((p) => [p.seq, p.change?.row.orderId ?? null, p.change?.row.status ?? null, p.idempotency?.key ?? null]);

  it('with no checkpoint, every projectable event since the journal began', async () => {
    const r = await recoverInventory(context, stores.journal, [], 0);
    expect(r.seq).toBe(6);
    expect(changes(r)).toEqual([
      [2, null, null, 'ka'],
      [3, null, null, 'kb'],
      [5, 'a', 'cancelled', null],
      [6, 'b', 'paid', null],
    ]);
    expect(r.outboxFromSeq).toBe(1);
    expect(r.outboxKinds & OUTBOX_KIND.paid).not.toBe(0);
  });

  it('only the events after the checkpoint when the snapshot is further back (here: none at all)', async () => {
    const r = await recoverInventory(context, stores.journal, [], 4);
    // The state is the whole journal's, whatever is handed to the projector.
    expect([r.seq, r.state.total, r.state.reservations.size, r.state.sold]).toEqual([6, 10, 1, 1]);
    expect(changes(r)).toEqual([
      [5, 'a', 'cancelled', null],
      [6, 'b', 'paid', null],
    ]);
    expect(r.outboxFromSeq).toBe(5);
    const caughtUp = await recoverInventory(context, stores.journal, [], 6);
    expect(changes(caughtUp)).toEqual([]);
    expect([caughtUp.outboxFromSeq, caughtUp.outboxKinds]).toEqual([7, 0]);
  });

  it('starts from a snapshot only when the read model has everything up to it, and then hands over only what it lacks', async () => {
    // The SKU/date's real snapshot at seq 6 (the end of the record written at 3,000).
    const state = emptyInventory();
    for (const e of EVENTS) evolve(state, e);
    await stores.snapshots.save({ stream: context.stream, seq: 6, at: 3_000, state: toSnapshot(state) });
    const snapshots = [{ name: 'mysql', store: stores.snapshots }];
    // The read model is at seq 4: the events after it are in the snapshot, so recovery cannot start
    // from it (they would never reach the read model); it replays the journal instead.
    const behind = await recoverInventory(context, stores.journal, snapshots, 4);
    expect([behind.source, behind.snapshotSeq, behind.seq]).toEqual(['journal', 0, 6]);
    expect(changes(behind).map(([seq]) => seq)).toEqual([5, 6]);
    const caughtUp = await recoverInventory(context, stores.journal, snapshots, 6);
    expect([caughtUp.source, caughtUp.snapshotSeq, caughtUp.seq, caughtUp.events_replayed]).toEqual(['mysql', 6, 6, 0]);
    expect([caughtUp.state.total, caughtUp.state.reservations.size, caughtUp.state.sold]).toEqual([10, 1, 1]);
    expect(changes(caughtUp)).toEqual([]);
  });

  it('asks every snapshot store at once, and takes the first store\'s snapshot when both hold the same seq', async () => {
    const state = emptyInventory();
    for (const e of EVENTS) evolve(state, e);
    const record = { stream: context.stream, seq: 6, at: 3_000, state: toSnapshot(state) };
    // The first store answers only once the second has been asked: read one after the other, the
    // recovery would wait for ever (the test's timeout).
    let secondAsked!: () => void;
    const asked = new Promise<void>((resolve) => (secondAsked = resolve));
    const first: SnapshotStore = { save: async () => {}, load: async () => (await asked, record) };
    const second: SnapshotStore = { save: async () => {}, load: async () => (secondAsked(), record) };
    const r = await recoverInventory(context, stores.journal, [{ name: 'redis', store: first }, { name: 'mysql', store: second }], 6);
    expect([r.source, r.snapshotSeq, r.events_replayed]).toEqual(['redis', 6, 0]);
  });

  it('passes over a snapshot of another format or with a count missing, and replays the journal instead', async () => {
    const state = emptyInventory();
    for (const e of EVENTS) evolve(state, e);
    const good = toSnapshot(state);
    for (const stored of [{ ...good, format: 2 }, { ...good, sold: undefined }]) {
      const store: SnapshotStore = { save: async () => {}, load: async () => ({ stream: context.stream, seq: 6, at: 3_000, state: stored }) };
      const r = await recoverInventory(context, stores.journal, [{ name: 'redis', store }], 6);
      expect([r.source, r.snapshotSeq, r.events_replayed]).toEqual(['journal', 0, 6]);
      expect([r.state.total, r.state.reserved, r.state.sold]).toEqual([10, 1, 1]);
    }
  });
});
