// Proves the group committer settles every waiter by the write's outcome whatever its observer does,
// on the real MariaDB and SQLite journals: with an observer that throws, a durable write still
// resolves its waiters (and the next write goes on), and a refused write (a seq taken already)
// still rejects them — none is left waiting; and a seq taken already fails only its own waiter, not
// the others that shared its write; and a record committed `alone` (a buyer's compaction) goes in a
// write of its own, so its failure (too large for the database's packet) fails no other record.
import { describe, expect, it } from 'vitest';
import { GroupCommitter } from '../../actors/group-commit.ts';
import { StoreUnavailableError } from '../../persistence/errors.ts';
import { backends, storesFor } from '../persistence/backends.ts';

describe.each(backends)('group commit on $name', (backend) => {
  const stores = storesFor(backend, 'group_commit');

  it('settles its waiters when the observer throws, on success and on failure', async () => {
    const seen: string[] = [];
    const committer = new GroupCommitter(
      stores().journal,
      { writes_in_flight_max: 1, batch_records_max: 100, batch_events_max: 1_000 },
      {
        committed: () => {
          seen.push('committed');
          throw new Error('a metric broke');
        },
        failed: () => {
          seen.push('failed');
          throw new Error('a log line broke');
        },
      },
    );
    const record = (stream: string, seq: number) => ({ stream, seq, lastSeq: seq, at: 1, events: [{ n: seq }] });
    const settled = (p: Promise<unknown>) => p.then(() => 'durable', (error: unknown) => `refused: ${(error as Error).name}`);
    // Two writes in turn (one in flight at a time), then a write whose seq is taken: refused.
    const first = settled(committer.commit(record('gc:a', 1)));
    const second = settled(committer.commit(record('gc:b', 1)));
    expect(await Promise.all([first, second])).toEqual(['durable', 'durable']);
    expect(await settled(committer.commit(record('gc:a', 1)))).toMatch(/^refused: /);
    expect(seen).toContain('committed');
    expect(seen).toContain('failed');
    expect((await stores().journal.readAfter('gc:a', 0)).map((r) => r.events)).toEqual([[{ n: 1 }]]);
  });

  it('fails only the stale writer when a batch meets a seq taken already; the rest of its write is durable', async () => {
    const journal = stores().journal;
    const record = (stream: string, seq: number) => ({ stream, seq, lastSeq: seq, at: 1, events: [{ n: seq }] });
    await journal.append([record('gc-stale:a', 1)]);
    let open!: () => void;
    const gate = new Promise<void>((r) => (open = r));
    let appends = 0;
    const gated = Object.create(journal) as typeof journal;
    gated.append = async (records) => {
      if (appends++ === 0) await gate;
      return journal.append(records);
    };
    const failures: unknown[] = [];
    const committer = new GroupCommitter(gated, { writes_in_flight_max: 1, batch_records_max: 100, batch_events_max: 1_000 }, {
      committed: () => undefined,
      failed: (error) => failures.push(error),
    });
    const settled = (p: Promise<unknown>) => p.then(() => 'durable', (error: unknown) => `refused: ${(error as Error).name}`);
    const first = settled(committer.commit(record('gc-stale:c', 1)));
    // While the first write is in flight these two gather into the next one: a stale seq and a new one.
    const before = Array.from({ length: 5 }, (_, i) => settled(committer.commit(record(`gc-stale:f${i}`, 1))));
    const stale = settled(committer.commit(record('gc-stale:a', 1)));
    const fresh = settled(committer.commit(record('gc-stale:b', 1), [record('gc-stale:d', 1)]));
    const after = Array.from({ length: 6 }, (_, i) => settled(committer.commit(record(`gc-stale:g${i}`, 1))));
    open();
    expect(await Promise.all([first, stale, fresh])).toEqual(['durable', 'refused: JournalConflictError', 'durable']);
    expect(await Promise.all([...before, ...after])).toEqual(Array(11).fill('durable'));
    expect((await journal.readAfter('gc-stale:b', 0)).map((r) => r.seq)).toEqual([1]);
    expect((await journal.readAfter('gc-stale:d', 0)).map((r) => r.seq)).toEqual([1]);
    expect(failures).toHaveLength(1);
  });

  it("a record whose rider's seq is taken is written again without its riders and resolves 'refused'; a record stale itself is refused with them; neither fails the others of its write", async () => {
    const journal = stores().journal;
    const record = (stream: string, seq: number) => ({ stream, seq, lastSeq: seq, at: 1, events: [{ n: seq }] });
    await journal.append([record('gc-ride:stale-rider', 1), record('gc-ride:stale-own', 1)]);
    const refused: string[][] = [];
    const committer = new GroupCommitter(journal, { writes_in_flight_max: 1, batch_records_max: 100, batch_events_max: 1_000 }, {
      committed: () => undefined,
      failed: () => undefined,
      ridersRefused: (r, riders) => refused.push([r.stream, ...riders.map((x) => x.stream)]),
    });
    const settled = (p: Promise<unknown>) => p.then((r) => `durable ${String(r)}`, (error: unknown) => `refused: ${(error as Error).name}`);
    const outcomes = await Promise.all([
      settled(committer.commit(record('gc-ride:p', 1))),
      // Alone in a write and in a shared one: the rider of stream stale-rider is stale.
      settled(committer.commit(record('gc-ride:sold', 1), [record('gc-ride:fresh-rider', 1), record('gc-ride:stale-rider', 1)])),
      settled(committer.commit(record('gc-ride:stale-own', 1), [record('gc-ride:own-rider', 1)])),
      settled(committer.commit(record('gc-ride:q', 1), [record('gc-ride:q-rider', 1)])),
    ]);
    expect(outcomes).toEqual(['durable undefined', 'durable refused', 'refused: JournalConflictError', 'durable undefined']);
    // Told once, for the record written without its riders (not for the one refused itself).
    expect(refused).toEqual([['gc-ride:sold', 'gc-ride:fresh-rider', 'gc-ride:stale-rider']]);
    const seqs = async (stream: string) => (await journal.readAfter(`gc-ride:${stream}`, 0)).map((r) => r.seq);
    expect(await seqs('sold')).toEqual([1]);
    expect(await seqs('fresh-rider')).toEqual([]);
    expect((await journal.readAfter('gc-ride:stale-rider', 0)).length).toBe(1);
    expect(await seqs('own-rider')).toEqual([]);
    expect(await seqs('p')).toEqual([1]);
    expect(await seqs('q')).toEqual([1]);
    expect(await seqs('q-rider')).toEqual([1]);
  });

  it('a record whose write again without its riders fails otherwise (the database away) is rejected with that error: its writer treats the outcome as unknown', async () => {
    const journal = stores().journal;
    const record = (stream: string, seq: number) => ({ stream, seq, lastSeq: seq, at: 1, events: [{ n: seq }] });
    await journal.append([record('gc-ride2:stale-rider', 1)]);
    let appends = 0;
    const flaky = Object.create(journal) as typeof journal;
    flaky.append = async (records) => {
      if (appends++ === 1) throw new StoreUnavailableError('injected: the database went away');
      return journal.append(records);
    };
    const refused: unknown[] = [];
    const committer = new GroupCommitter(flaky, { writes_in_flight_max: 1, batch_records_max: 100, batch_events_max: 1_000 }, {
      committed: () => undefined,
      failed: () => undefined,
      ridersRefused: (r) => refused.push(r),
    });
    const outcome = await committer.commit(record('gc-ride2:sold', 1), [record('gc-ride2:stale-rider', 1)]).then(
      (r) => `durable ${String(r)}`,
      (error: unknown) => `refused: ${(error as Error).name}`,
    );
    expect(outcome).toBe('refused: StoreUnavailableError');
    expect(appends).toBe(2);
    expect(refused).toEqual([]);
    expect(await journal.readAfter('gc-ride2:sold', 0)).toEqual([]);
  });

  it('writes a record committed alone in a write of its own, so that its failure fails no record gathered around it', async () => {
    const journal = stores().journal;
    const record = (stream: string) => ({ stream: `gc-alone:${stream}`, seq: 1, lastSeq: 1, at: 1, events: [{ n: stream }] });
    let open!: () => void;
    const gate = new Promise<void>((r) => (open = r));
    const writes: string[][] = [];
    const refusing = Object.create(journal) as typeof journal;
    refusing.append = async (records) => {
      writes.push(records.map((r) => r.stream.slice('gc-alone:'.length)));
      if (writes.length === 1) await gate;
      // As MariaDB refuses a statement past its max_allowed_packet: the whole write fails.
      if (records.some((r) => r.stream === 'gc-alone:compaction')) throw new StoreUnavailableError('injected: packet too large');
      return journal.append(records);
    };
    const committer = new GroupCommitter(refusing, { writes_in_flight_max: 1, batch_records_max: 100, batch_events_max: 1_000 }, { committed: () => undefined, failed: () => undefined });
    const settled = (p: Promise<unknown>) => p.then(() => 'durable', (error: unknown) => `refused: ${(error as Error).name}`);
    const first = settled(committer.commit(record('first')));
    // Gathered while the first write is in flight: the compaction between two others.
    const gathered = [
      settled(committer.commit(record('before'))),
      settled(committer.commit(record('compaction'), undefined, { alone: true })),
      settled(committer.commit(record('after-1'))),
      settled(committer.commit(record('after-2'))),
    ];
    open();
    expect(await Promise.all([first, ...gathered])).toEqual(['durable', 'durable', 'refused: StoreUnavailableError', 'durable', 'durable']);
    expect(writes).toEqual([['first'], ['before'], ['compaction'], ['after-1', 'after-2']]);
    for (const stream of ['before', 'after-1', 'after-2']) expect(await journal.readAfter(`gc-alone:${stream}`, 0)).toHaveLength(1);
  });
});
