// Recovery of one SKU/date: the newest valid snapshot, then the journal after it.
// A snapshot is valid when it parses and its seq is the exact end of a journal record of that
// stream written at the snapshot's `at` (so not the end of a record of another history: a Redis
// kept while the database was restored from a backup); so a Redis that was flushed (no snapshot), stale (older seq: still valid, more journal
// to replay) or ahead of this journal (seq not in it) falls back to the next store and finally to
// the journal alone. Redis keys carry the database's instance id (persistence/index.ts), so the
// snapshots of another database on the same Redis are never even read: the seq check alone could
// not tell them apart when two databases made the same sequence of writes (a test run, a rebuilt
// environment). Snapshots are only written once their seq is projected, so the
// events after the snapshot are all the read model can be missing.

import { emptyInventory, evolve, fromSnapshot, type InventoryState } from '../engine/index.ts';
import type { JournalStore, SnapshotStore } from '../persistence/ports.ts';
import { decodeEvent } from './inventory-codec.ts';
import { outboxKindOf, projectEvent, type ProjectedEvent, type StreamContext } from './inventory-projection.ts';

export interface RecoveredInventory {
  state: InventoryState;
  /** Last seq in the journal. */
  seq: number;
  /** Seq of the snapshot recovery started from (0: none). */
  snapshotSeq: number;
  /** Which snapshot store served it, if any ('journal' when none). */
  source: string;
  /** The read-model changes of the events after the projector's checkpoint, to hand to the projector again (idempotent). */
  reprojected: ProjectedEvent[];
  /** The events after the projector's checkpoint go to the outbox again: from this seq, with these OUTBOX_KIND bits. */
  outboxFromSeq: number;
  outboxKinds: number;
  events_replayed: number;
}

export class JournalCorruptError extends Error {
  override name = 'JournalCorruptError';
}

export async function recoverInventory(
  context: StreamContext,
  journal: JournalStore,
  snapshots: readonly { name: string; store: SnapshotStore }[],
  projectedSeq: number,
): Promise<RecoveredInventory> {
  const stream = context.stream;
  let base: { state: InventoryState; seq: number; source: string } = { state: emptyInventory(), seq: 0, source: 'journal' };
  type Candidate = { name: string; store: SnapshotStore; seq: number; at: number; state: unknown };
  // Every store at once (one round trip's wait, not one per store); the newest valid one wins, the
  // earlier store (Redis) on a tie: the sort is stable.
  const loaded = await Promise.all(
    snapshots.map(async ({ name, store }): Promise<Candidate | undefined> => {
      try {
        const s = await store.load(stream);
        return s && s.seq > 0 ? { name, store, seq: s.seq, at: s.at, state: s.state } : undefined;
      } catch {
        // A snapshot store is an accelerator: unreachable means "use another one".
        return undefined;
      }
    }),
  );
  const candidates = loaded.filter((c): c is Candidate => c !== undefined);
  candidates.sort((a, b) => b.seq - a.seq);
  for (const c of candidates) {
    // The record the snapshot ends with, by its seq and its time: not one of another history (which
    // the store is asked to drop: kept, it would refuse every newer save until the seq passed it).
    if (!(await journal.endsAt(stream, c.seq, c.at))) {
      void c.store.discard?.({ stream, seq: c.seq, at: c.at }).catch(() => {});
      continue;
    }
    // Never start after what the read model has: the events in between must be projected again.
    if (c.seq > projectedSeq) continue;
    try {
      // Checked field by field (engine/inventory.ts): one of another format or malformed is passed over.
      base = { state: fromSnapshot(c.state), seq: c.seq, source: c.name };
      break;
    } catch {
      continue;
    }
  }

  const records = await journal.readAfter(stream, base.seq);
  const state = base.state;
  let seq = base.seq;
  const reprojected: ProjectedEvent[] = [];
  let outboxKinds = 0;
  let replayed = 0;
  for (const record of records) {
    if (record.seq !== seq + 1 || record.lastSeq !== record.seq + record.events.length - 1) {
      throw new JournalCorruptError(`journal of ${stream} is not contiguous at seq ${seq} (record ${record.seq}..${record.lastSeq})`);
    }
    for (const raw of record.events) {
      seq++;
      const event = decodeEvent(raw);
      // Events up to the checkpoint are in the read model and the outbox already. Handing them over
      // again would be harmless but not free: the snapshot may be far behind (none is taken while a
      // sale holds more live reservations than a snapshot may), and every order settled since would
      // be kept in memory and written again before the SKU/date could passivate.
      if (seq > projectedSeq) {
        const projected = projectEvent(state, event, seq, context);
        if (projected) reprojected.push(projected);
        outboxKinds |= outboxKindOf(event);
      }
      evolve(state, event);
      replayed++;
    }
  }
  return {
    state,
    seq,
    snapshotSeq: base.seq,
    source: base.source,
    reprojected,
    outboxFromSeq: Math.max(projectedSeq, base.seq) + 1,
    outboxKinds,
    events_replayed: replayed,
  };
}
