// Proves the outbox bus keeps a durable's position in the database — after being closed and opened
// again on the same SQLite file it resumes at the lowest unacked event (redelivering what came after
// it, losing nothing) — reads the table only when nudged or on its poll, and trims only rows every
// known durable has passed, by running it on a real SQLite file that we close and reopen.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OutboxBus } from '../../../persistence/bus/outbox-bus.ts';
import type { OutboxStore } from '../../../persistence/ports.ts';
import { openSqlStores, type SqlStores } from '../../../persistence/sql/open.ts';
import { outboxBatch, outboxEvents, recorder, sleep, waitFor } from './support.ts';

const subjects = ['stampede.evt.>'];
const events = (...names: string[]) => outboxEvents('stampede.evt.m1', 'resume', ...names);
const ids = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => `resume-${from + i}`);
const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => String(from + i));

describe('outbox bus on a SQLite file closed and opened again', () => {
  let dir: string;
  let file: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'stampede-outbox-bus-'));
    file = join(dir, 'engine.sqlite');
  });
  afterAll(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  async function withStores<T>(work: (stores: SqlStores) => Promise<T>): Promise<T> {
    const stores = await openSqlStores({ sqlitePath: file });
    try {
      return await work(stores);
    } finally {
      await stores.close();
    }
  }

  it('resumes a durable at its lowest unacked event after a close and a reopen', async () => {
    const firstRun = recorder((e) => e.id === 'resume-12');
    const savedPosition = await withStores(async (stores) => {
      const bus = new OutboxBus(stores.outbox, { subjects, redeliveryDelay_ms: 60_000 });
      await bus.consume({ durable: 'delivery', filter: 'stampede.evt.*.resume.>', handler: firstRun.handler, concurrency: 4 });
      await stores.projection.apply(outboxBatch(events(...range(1, 10))));
      bus.nudge();
      await waitFor('1..10', () => firstRun.acked.length === 10);
      await stores.projection.apply(outboxBatch(events(...range(11, 15))));
      bus.nudge();
      // 12 is refused (and waits a minute to come again); the rest after it are handled.
      await waitFor('11, 13, 14, 15 and a refused 12', () => firstRun.acked.length === 14 && firstRun.deliveries.length === 15);
      await bus.close();
      const rows = await stores.outbox.readAfter(0, 100);
      return { cursor: await stores.outbox.cursor('bus:delivery'), eleventh: rows.find((r) => r.eventId === 'resume-11')!.id };
    });
    expect(savedPosition.cursor).toBe(savedPosition.eleventh);

    // Written while no bus runs, then a new process opens the same file.
    await withStores((stores) => stores.projection.apply(outboxBatch(events('16', '17'))));
    const secondRun = recorder();
    await withStores(async (stores) => {
      const bus = new OutboxBus(stores.outbox, { subjects });
      await bus.consume({ durable: 'delivery', filter: 'stampede.evt.*.resume.>', handler: secondRun.handler, concurrency: 4 });
      await waitFor('12..17', () => secondRun.acked.length === 6);
      await sleep(200);
      await bus.close();
    });
    // 13..15 come again (handled, but above the unacked 12): at least once; 1..11 never again.
    expect([...secondRun.acked].sort()).toEqual(ids(12, 17).sort());
    expect(new Set([...firstRun.acked, ...secondRun.acked])).toEqual(new Set(ids(1, 17)));
  });

  it('reads the table only on its poll while it waits, even with every slot busy and a refusal pending', async () => {
    await withStores(async (stores) => {
      const calls = { readAfter: 0, saveCursor: 0 };
      const counted: OutboxStore = {
        readAfter: (afterId, limit) => {
          calls.readAfter += 1;
          return stores.outbox.readAfter(afterId, limit);
        },
        saveCursor: (name, id) => {
          calls.saveCursor += 1;
          return stores.outbox.saveCursor(name, id);
        },
        cursor: (name) => stores.outbox.cursor(name),
        trim: (names) => stores.outbox.trim(names),
        head: () => stores.outbox.head(),
      };
      const bus = new OutboxBus(counted, { subjects, poll_ms: 300, redeliveryDelay_ms: 50 });
      let release: () => void = () => {};
      const gate = new Promise<void>((resolve) => (release = resolve));
      let refused = 0;
      let held = 0;
      await bus.consume({
        durable: 'idle',
        filter: 'stampede.evt.m3.>',
        concurrency: 2,
        handler: async (e) => {
          if (e.id === 'idle-1') {
            refused += 1;
            throw new Error('not yet');
          }
          held += 1;
          await gate;
        },
      });
      await stores.projection.apply(outboxBatch(outboxEvents('stampede.evt.m3', 'idle', '1', '2', '3')));
      bus.nudge();
      await waitFor('both slots held', () => held === 2);
      const before = { ...calls };
      const refusedBefore = refused;
      await sleep(1_000);
      // About three polls in a second; a loop that spun would have read hundreds of times.
      expect(calls.readAfter - before.readAfter).toBeLessThanOrEqual(5);
      expect(calls.saveCursor - before.saveCursor).toBe(0);
      expect(refused).toBe(refusedBefore); // no slot: the due redelivery waits for one
      release();
      await bus.close();
    });
  });

  it('trims only rows every known durable has passed, holding them for a named durable not yet running', async () => {
    await withStores(async (stores) => {
      const start = await stores.outbox.head();
      const bus = new OutboxBus(stores.outbox, { subjects, durables: ['later'], trimInterval_ms: 0 });
      const early = recorder();
      await bus.consume({ durable: 'early', filter: 'stampede.evt.>', handler: early.handler });
      const mine = outboxEvents('stampede.evt.m2', 'trim', ...range(1, 5));
      await stores.projection.apply(outboxBatch(mine));
      bus.nudge();
      await waitFor('early has all', () => early.acked.filter((id) => id.startsWith('trim-')).length === 5);
      await waitFor('early saved', async () => (await stores.outbox.cursor('bus:early')) === (await stores.outbox.head()));
      await sleep(200);
      // `later` has never run: every row stays for it.
      expect((await stores.outbox.readAfter(start, 100)).map((r) => r.eventId)).toEqual(mine.map((e) => e.eventId));

      const later = recorder();
      await bus.consume({ durable: 'later', filter: 'stampede.evt.m2.>', handler: later.handler });
      await waitFor('later has all', () => later.acked.length === 5);
      await waitFor('trimmed', async () => (await stores.outbox.readAfter(0, 100)).length === 1, 5_000);
      await bus.close();
      expect(later.acked).toEqual(mine.map((e) => e.eventId));
      expect((await stores.outbox.readAfter(0, 100)).map((r) => r.eventId)).toEqual(['trim-5']);
    });
  });
});
