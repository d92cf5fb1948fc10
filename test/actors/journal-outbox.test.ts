// Proves the journal-backed outbox gives readers exactly the events of the indexed journal ranges,
// in order, each at a stable position and all of one hidden class: a reader that stops in the middle
// of a range resumes at the next event, a filter skips ranges with no wanted kind without reading the
// journal, whole events of order streams pass through, and trimming follows the row-granular cursors
// — on real SQLite and MariaDB stores, with the projector's own write path.
import { setFlagsFromString } from 'node:v8';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeEvent } from '../../actors/inventory-codec.ts';
import { OUTBOX_KIND } from '../../actors/inventory-projection.ts';
import { JournalOutbox, OUTBOX_RANGE_EVENTS_MAX, OUTBOX_ROW_SPAN, outboxLagRows, outboxRangeRow, outboxRangeRows } from '../../actors/journal-outbox.ts';
import type { InventoryEvent } from '../../engine/index.ts';
import { OUTBOX_SKIP_SUBJECT, type JournalStore, type OutboxEvent, type ProjectionBatch } from '../../persistence/ports.ts';
import { backends, storesFor } from '../persistence/backends.ts';

const stream = 'kx/2026-12-31';

function reserved(i: number): InventoryEvent {
  return { type: 'reserved', orderId: `o${i}`, userId: `u${i}`, qty: 1, amountCents: 100, createdAt: 1_000 + i, expiresAt: 901_000 + i };
}

/** The event ids of a read, without the readers' skip markers. */
const events = (rows: { subject: string; eventId: string }[]) => rows.filter((r) => r.subject !== OUTBOX_SKIP_SUBJECT).map((r) => r.eventId);

function batch(outbox: OutboxEvent[]): ProjectionBatch {
  return { orders: [], history: [], idempotency: [], checkpoints: new Map(), live: new Map(), outbox };
}

describe.each(backends)('journal outbox on $name', (backend) => {
  let stores: Awaited<ReturnType<typeof backend.open>>;
  let journal: JournalStore;
  beforeAll(async () => {
    stores = await backend.open('journal_outbox');
    journal = stores.journal;
    // Write 1: seq 1..5 (a stock change and four reservations); write 2: seq 6..7 (a sale, a cancel).
    const w1: InventoryEvent[] = [{ type: 'total_set', total: 10, at: 1 }, reserved(1), reserved(2), reserved(3), reserved(4)];
    const facts = (i: number) => ({ orderId: `o${i}`, userId: `u${i}`, qty: 1, amountCents: 100, createdAt: 1_000 + i, expiresAt: 901_000 + i });
    const w2: InventoryEvent[] = [
      { type: 'sold', ...facts(1), at: 2_000, paymentId: 'p1' },
      { type: 'released', ...facts(2), reason: 'cancelled', at: 2_001 },
    ];
    await journal.append([{ stream, seq: 1, lastSeq: 5, at: 1, events: w1.map(encodeEvent) }]);
    await journal.append([{ stream, seq: 6, lastSeq: 7, at: 2, events: w2.map(encodeEvent) }]);
    const whole: OutboxEvent = { eventId: '@o/o1:2', subject: 'stampede.evt.m1.order.delivered', body: '{"eventId":"@o/o1:2"}', at: 3 };
    await stores.projection.apply(
      batch([
        outboxRangeRow({ stream, fromSeq: 1, toSeq: 5, kinds: OUTBOX_KIND.reserved, merchantId: 'm1' }, 1),
        outboxRangeRow({ stream, fromSeq: 6, toSeq: 7, kinds: OUTBOX_KIND.paid | OUTBOX_KIND.cancelled, merchantId: 'm1' }, 2),
        whole,
      ]),
    );
  });
  afterAll(async () => stores?.dispose());


  it('turns range rows into their journal events, in order, and passes whole events through', async () => {
    const outbox = new JournalOutbox(stores.outbox, journal);
    const rows = await outbox.readAfter(0, 100);
    expect(events(rows)).toEqual([`${stream}:2`, `${stream}:3`, `${stream}:4`, `${stream}:5`, `${stream}:6`, `${stream}:7`, '@o/o1:2']);
    const paid = rows.find((r) => r.eventId === `${stream}:6`)!;
    expect(paid.subject).toBe('stampede.evt.m1.order.paid');
    expect(JSON.parse(paid.body)).toMatchObject({
      eventId: `${stream}:6`,
      type: 'order.paid',
      merchantId: 'm1',
      orderId: 'o1',
      userId: 'u1',
      skuId: 'kx',
      date: '2026-12-31',
      qty: 1,
      amountCents: 100,
      status: 'paid',
      paymentId: 'p1',
      createdAt: new Date(1_001).toISOString(),
      expiresAt: new Date(901_001).toISOString(),
    });
    expect(rows.find((r) => r.eventId === `${stream}:7`)!.subject).toBe('stampede.evt.m1.order.cancelled');
    // Positions grow strictly.
    for (let i = 1; i < rows.length; i++) expect(rows[i]!.id).toBeGreaterThan(rows[i - 1]!.id);
  });

  it('counts no row behind a reader that has read every row, also when the last is one event', async () => {
    const outbox = new JournalOutbox(stores.outbox, journal);
    const rows = await outbox.readAfter(0, 100);
    const head = await outbox.head();
    const end = rows[rows.length - 1]!;
    expect(end.eventId).toBe('@o/o1:2'); // a one-event row: the reader stands at its first position
    expect(outboxLagRows(head - end.id)).toBe(0);
    expect(outboxLagRows(head - 0)).toBeGreaterThan(0);
    expect(outboxLagRows(OUTBOX_ROW_SPAN)).toBe(1);
  });

  it('resumes in the middle of a range at the next event, from a fresh reader', async () => {
    const first = await new JournalOutbox(stores.outbox, journal).readAfter(0, 2);
    expect(events(first)).toEqual([`${stream}:2`, `${stream}:3`]);
    const rest = await new JournalOutbox(stores.outbox, journal).readAfter(first[first.length - 1]!.id, 100);
    expect(events(rest)).toEqual([`${stream}:4`, `${stream}:5`, `${stream}:6`, `${stream}:7`, '@o/o1:2']);
  });

  it('skips a range with no wanted kind without reading the journal', async () => {
    let reads = 0;
    const counting: JournalStore = { ...journal, readRange: (...a) => (reads++, journal.readRange(...a)) } as JournalStore;
    const rows = await new JournalOutbox(stores.outbox, counting).readAfter(0, 100, 'stampede.evt.*.order.paid');
    expect(reads).toBe(1); // only the range holding a sale
    expect(events(rows).filter((id) => id.startsWith(stream))).toEqual([`${stream}:6`, `${stream}:7`]);
    // The skipped range still moves the reader: its last position is past the range's row.
    expect(rows[0]!.subject).toBe(OUTBOX_SKIP_SUBJECT);
  });

  it('keeps rows until every named cursor is past them', async () => {
    const outbox = new JournalOutbox(stores.outbox, journal);
    const all = await outbox.readAfter(0, 100);
    const afterFirstRange = all.find((r) => r.subject === OUTBOX_SKIP_SUBJECT)!.id;
    await outbox.saveCursor('a', afterFirstRange);
    expect(await outbox.cursor('a')).toBe(afterFirstRange);
    expect(await outbox.trim(['a', 'b'])).toBe(0); // b never read: holds everything
    await outbox.saveCursor('b', all[all.length - 1]!.id);
    expect(await outbox.trim(['a', 'b'])).toBe(1); // the first range row only
    expect(events(await outbox.readAfter(0, 100))).toEqual([`${stream}:6`, `${stream}:7`, '@o/o1:2']);
    expect(await outbox.head()).toBeGreaterThanOrEqual(all[all.length - 1]!.id);
    expect(Math.floor(afterFirstRange / OUTBOX_ROW_SPAN)).toBeGreaterThan(0);
  });
});

describe.each(backends)('journal outbox events on $name', (backend) => {
  it('share one hidden class (a spread followed by a new key took one per event)', async () => {
    const stores = await backend.open('journal_outbox_shapes');
    try {
      const shapes = 'shape/2026-12-31';
      const n = 300;
      await stores.journal.append([{ stream: shapes, seq: 1, lastSeq: n, at: 1, events: Array.from({ length: n }, (_, i) => encodeEvent(reserved(i))) }]);
      await stores.projection.apply(batch([outboxRangeRow({ stream: shapes, fromSeq: 1, toSeq: n, kinds: OUTBOX_KIND.reserved, merchantId: 'm1' }, 1)]));
      const rows = (await new JournalOutbox(stores.outbox, stores.journal).readAfter(0, 1_000)).filter((r) => r.subject !== OUTBOX_SKIP_SUBJECT);
      expect(rows.length).toBe(n);
      setFlagsFromString('--allow-natives-syntax');
      const sameMap = new Function('a', 'b', 'return %HaveSameMap(a, b)') as (a: object, b: object) => boolean;
      expect(rows.filter((r) => !sameMap(rows[0]!, r)).length).toBe(0);
    } finally {
      await stores.dispose();
    }
  });
});

describe.each(backends)('journal outbox of a long recovered range on $name', (backend) => {
  const stores = storesFor(backend, 'journal_outbox_long');
  it('indexes a range longer than a row may hold in consecutive rows, and a paging reader gets each event once, in order', async () => {
    const { journal, projection } = stores();
    const long = 'long/2026-12-31';
    const n = 10;
    await journal.append([{ stream: long, seq: 1, lastSeq: n, at: 1, events: Array.from({ length: n }, (_, i) => encodeEvent(reserved(i))) }]);
    // A row holds at most 4 events here (OUTBOX_RANGE_EVENTS_MAX in production).
    const rows = outboxRangeRows({ stream: long, fromSeq: 1, toSeq: n, kinds: OUTBOX_KIND.reserved, merchantId: 'm1' }, 1, 4);
    expect(rows.map((r) => r.eventId)).toEqual([`${long}:1-4`, `${long}:5-8`, `${long}:9-10`]);
    expect(OUTBOX_RANGE_EVENTS_MAX).toBeLessThan(OUTBOX_ROW_SPAN);
    await projection.apply(batch(rows));
    const outbox = new JournalOutbox(stores().outbox, journal);
    const seen: string[] = [];
    let position = 0;
    for (let page = 0; page < 20; page++) {
      const got = await outbox.readAfter(position, 3);
      if (got.length === 0) break;
      seen.push(...events(got));
      position = got[got.length - 1]!.id;
    }
    expect(seen).toEqual(Array.from({ length: n }, (_, i) => `${long}:${i + 1}`));
  });
});
