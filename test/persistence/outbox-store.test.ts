// Proves the outbox keeps each event once, in write order, commits it with the read model or not at
// all, keeps cursors that only move forward, and trims only what every named cursor has passed (never
// the newest row, so head() never goes back), by writing through the projection store to the real
// MariaDB and SQLite.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { OutboxEvent, ProjectionBatch } from '../../persistence/ports.ts';
import { outbox_trim_rows_max } from '../../persistence/sql/outbox-store.ts';
import { backends } from './backends.ts';

function events(test: string, from: number, to: number): OutboxEvent[] {
  return Array.from({ length: to - from + 1 }, (_, i) => ({
    eventId: `${test}:${from + i}`,
    subject: `stampede.evt.m1.order.paid`,
    body: JSON.stringify({ eventId: `${test}:${from + i}`, n: from + i }),
    at: 1_000 + from + i,
  }));
}

function batch(outbox: OutboxEvent[], part: Partial<ProjectionBatch> = {}): ProjectionBatch {
  return { orders: [], history: [], idempotency: [], checkpoints: new Map(), live: new Map(), outbox, ...part };
}

describe.each(backends)('outbox on $name', (backend) => {
  let stores: Awaited<ReturnType<typeof backend.open>>;
  beforeAll(async () => {
    stores = await backend.open('persist_outbox');
  });
  afterAll(async () => {
    await stores?.dispose();
  });

  it('reads an empty outbox as empty, with head 0 and unsaved cursors at 0', async () => {
    expect(await stores.outbox.head()).toBe(0);
    expect(await stores.outbox.readAfter(0, 10)).toEqual([]);
    expect(await stores.outbox.cursor('nobody')).toBe(0);
    expect(await stores.outbox.trim(['nobody'])).toBe(0);
  });

  it('keeps each event once, in the order written, with ids growing', async () => {
    const first = events('order', 1, 3);
    await stores.projection.apply(batch(first));
    // A replayed batch (after a crash) and an overlapping one add only what is new.
    await stores.projection.apply(batch(first));
    await stores.projection.apply(batch([...events('order', 2, 5), ...events('order', 5, 5)]));
    const rows = await stores.outbox.readAfter(0, 100);
    expect(rows.map((r) => r.eventId)).toEqual(events('order', 1, 5).map((e) => e.eventId));
    expect(rows.map(({ id: _, ...e }) => e)).toEqual(events('order', 1, 5));
    for (let i = 1; i < rows.length; i++) expect(rows[i]!.id).toBeGreaterThan(rows[i - 1]!.id);
    expect(await stores.outbox.head()).toBe(rows[rows.length - 1]!.id);

    expect((await stores.outbox.readAfter(rows[1]!.id, 2)).map((r) => r.eventId)).toEqual(['order:3', 'order:4']);
    expect(await stores.outbox.readAfter(rows[4]!.id, 10)).toEqual([]);
  });

  it('writes a batch larger than one statement in one go, in order', async () => {
    const many = events('bulk', 1, 1_203);
    const head = await stores.outbox.head();
    await stores.projection.apply(batch(many));
    const page = await stores.outbox.readAfter(head, 1_000);
    const rows = [...page, ...(await stores.outbox.readAfter(page[page.length - 1]!.id, 1_000))];
    expect(rows.map((r) => r.eventId)).toEqual(many.map((e) => e.eventId));
  });

  it('commits outbox rows with the read model or not at all', async () => {
    const head = await stores.outbox.head();
    const broken = { orderId: 'o-x', stream: 'atomic:s', seq: 1, status: 'reserved' as const, at: 1, cause: null as unknown as string };
    await expect(stores.projection.apply(batch(events('atomic', 1, 2), { history: [broken] }))).rejects.toThrow();
    expect(await stores.outbox.head()).toBe(head);
    expect(await stores.outbox.readAfter(head, 10)).toEqual([]);
  });

  it('refuses an event id or subject the table cannot hold, writing nothing', async () => {
    const head = await stores.outbox.head();
    const long = { ...events('long', 1, 1)[0]!, eventId: 'x'.repeat(201) };
    await expect(stores.projection.apply(batch([...events('long', 2, 2), long]))).rejects.toThrow(RangeError);
    await expect(stores.projection.apply(batch([{ ...long, eventId: 'ok', subject: '' }]))).rejects.toThrow(RangeError);
    expect(await stores.outbox.head()).toBe(head);
  });

  it('moves a cursor forward, never back', async () => {
    await stores.outbox.saveCursor('relay:test', 5);
    await stores.outbox.saveCursor('relay:test', 3);
    expect(await stores.outbox.cursor('relay:test')).toBe(5);
    await stores.outbox.saveCursor('relay:test', 9);
    expect(await stores.outbox.cursor('relay:test')).toBe(9);
    await expect(stores.outbox.saveCursor('outbox:writer', 1)).rejects.toThrow(RangeError);
  });

  it('trims only rows every named cursor has passed, never the newest, a bounded number at a time', async () => {
    const start = await stores.outbox.head();
    await stores.projection.apply(batch(events('trim', 1, 10)));
    const rows = (await stores.outbox.readAfter(start, 100)).filter((r) => r.eventId.startsWith('trim:'));
    const newest = rows[9]!.id;
    await stores.outbox.saveCursor('trim:a', rows[6]!.id);
    await stores.outbox.saveCursor('trim:b', rows[3]!.id);

    expect(await stores.outbox.trim([])).toBe(0);
    expect(await stores.outbox.trim(['trim:a', 'trim:never-saved'])).toBe(0);
    // Everything up to the slower cursor (rows of earlier tests included), nothing above it.
    const passed = (await stores.outbox.readAfter(0, outbox_trim_rows_max)).filter((r) => r.id <= rows[3]!.id).length;
    expect(await stores.outbox.trim(['trim:a', 'trim:b'])).toBe(passed);
    expect(await stores.outbox.trim(['trim:a', 'trim:b'])).toBe(0);
    expect((await stores.outbox.readAfter(0, 100)).map((r) => r.eventId)).toEqual(rows.slice(4).map((r) => r.eventId));

    await stores.outbox.saveCursor('trim:a', newest);
    await stores.outbox.saveCursor('trim:b', newest);
    expect(await stores.outbox.trim(['trim:a', 'trim:b'])).toBe(5);
    expect((await stores.outbox.readAfter(0, 100)).map((r) => r.id)).toEqual([newest]);
    expect(await stores.outbox.head()).toBe(newest);

    // Ids go on growing after a trim down to the newest row.
    await stores.projection.apply(batch(events('trim', 11, 11)));
    expect(await stores.outbox.head()).toBeGreaterThan(newest);
  });
});
