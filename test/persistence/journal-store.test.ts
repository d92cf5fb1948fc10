// Proves the SQL journal appends all-or-nothing, reads back exactly what was written and reports heads,
// by driving the real store on MariaDB and on SQLite.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { JournalConflictError, StoreUnavailableError } from '../../persistence/errors.ts';
import type { JournalRecord } from '../../persistence/ports.ts';
import { journal_rows_per_statement_max, journal_streams_per_read_max, SqlJournalStore } from '../../persistence/sql/journal-store.ts';
import { backends } from './backends.ts';

function record(stream: string, seq: number, count: number, at = 1_000 + seq): JournalRecord {
  const events = Array.from({ length: count }, (_, i) => ({ type: 'reserved', seq: seq + i, note: `e${seq + i}` }));
  return { stream, seq, lastSeq: seq + count - 1, at, events };
}

describe.each(backends)('journal on $name', (backend) => {
  let stores: Awaited<ReturnType<typeof backend.open>>;
  beforeAll(async () => {
    stores = await backend.open('persist_journal');
  });
  afterAll(async () => {
    await stores?.dispose();
  });

  it('reads back appended records in order, with their events intact', async () => {
    const awkward = { text: 'quote \' double " backslash \\ question ? emoji 🎟️ nul-free', n: 2 ** 40, nested: [null, true] };
    const a1 = record('rt:a', 1, 3);
    const a2 = { ...record('rt:a', 4, 1), events: [awkward] };
    const b1 = record('rt:b', 1, 2);
    await stores.journal.append([a1, b1]);
    await stores.journal.append([a2]);

    expect(await stores.journal.readAfter('rt:a', 0)).toEqual([a1, a2]);
    expect(await stores.journal.readAfter('rt:a', 1)).toEqual([a2]);
    expect(await stores.journal.readAfter('rt:a', 4)).toEqual([]);
    expect(await stores.journal.readAfter('rt:b', 0)).toEqual([b1]);
    expect(await stores.journal.readAfter('rt:none', 0)).toEqual([]);
  });

  it('reads a range as exactly the records that hold any of its seqs, however long the stream before it', async () => {
    // Records of 1 to 4 events, contiguous from seq 1 to 60, beside another stream's records.
    const records: JournalRecord[] = [];
    for (let seq = 1, i = 0; seq <= 60; i++) {
      const r = record('range:a', seq, Math.min(1 + (i % 4), 61 - seq));
      records.push(r);
      seq = r.lastSeq + 1;
    }
    await stores.journal.append(records);
    await stores.journal.append([record('range:b', 1, 60), record('range:', 1, 5)]);
    for (let from = 1; from <= 60; from += 3) {
      for (const to of [from, from + 1, from + 6, 60, 75]) {
        const expected = records.filter((r) => r.lastSeq >= from && r.seq <= to);
        expect(await stores.journal.readRange('range:a', from, to), `${from}..${to}`).toEqual(expected);
      }
    }
    expect(await stores.journal.readRange('range:a', 61, 70)).toEqual([]);
    expect(await stores.journal.readRange('range:none', 1, 10)).toEqual([]);
  });

  it('drops the records of one stream that start before a seq, and nothing else', async () => {
    const a = [record('drop:a', 1, 2), record('drop:a', 3, 1), record('drop:a', 4, 3), record('drop:a', 7, 1)];
    const b = [record('drop:b', 1, 2), record('drop:b', 3, 1)];
    await stores.journal.append([...a, ...b]);
    expect(await stores.journal.dropBefore('drop:a', 4)).toBe(2);
    expect(await stores.journal.readAfter('drop:a', 0)).toEqual(a.slice(2));
    expect(await stores.journal.readAfter('drop:b', 0)).toEqual(b);
    expect(await stores.journal.dropBefore('drop:a', 4)).toBe(0);
    expect(await stores.journal.dropBefore('drop:none', 10)).toBe(0);
  });

  it('stores a record of a thousand events as one row', async () => {
    const big = record('rt:big', 1, 1_000);
    await stores.journal.append([big]);
    const [back] = await stores.journal.readAfter('rt:big', 0);
    expect(back?.events).toHaveLength(1_000);
    expect(back).toEqual(big);
  });

  it('treats stream names as case-sensitive', async () => {
    await stores.journal.append([record('case:sku', 1, 1), record('CASE:SKU', 1, 1)]);
    expect(await stores.journal.readAfter('case:sku', 0)).toHaveLength(1);
    expect(await stores.journal.readAfter('CASE:SKU', 0)).toHaveLength(1);
  });

  it('rejects a duplicate (stream, seq) with JournalConflictError and writes nothing of that call', async () => {
    await stores.journal.append([record('dup:a', 1, 2)]);
    const error = await stores.journal
      .append([record('dup:other', 1, 1), record('dup:a', 1, 1)])
      .then(() => undefined, (e: unknown) => e);
    expect(error).toBeInstanceOf(JournalConflictError);
    expect((error as Error).cause).toBeDefined();
    expect(await stores.journal.readAfter('dup:other', 0)).toEqual([]);
    expect(await stores.journal.readAfter('dup:a', 0)).toEqual([record('dup:a', 1, 2)]);
  });

  it('a write of many streams (one text statement on MariaDB) keeps every character of its events, and a duplicate in it fails it whole', async () => {
    const tricky = ["it's", 'back\\slash \\\'', 'question? ?? ?', 'unicode 票 🎫', 'nul \u0000 and \n newline', "X'00'"];
    const records = tricky.map((note, i) => ({ stream: `text:${i}`, seq: 1, lastSeq: 1, at: 5_000 + i, events: [{ type: 'held', note }] }));
    await stores.journal.append(records);
    for (const r of records) expect(await stores.journal.readAfter(r.stream, 0)).toEqual([r]);
    const again = [...tricky.map((_, i) => record(`text:new${i}`, 1, 1)), record('text:3', 1, 1)];
    const error = await stores.journal.append(again).then(() => undefined, (e: unknown) => e);
    expect(error).toBeInstanceOf(JournalConflictError);
    expect(await stores.journal.readAfter('text:new0', 0)).toEqual([]);
    expect(await stores.journal.readAfter('text:3', 0)).toEqual([records[3]]);
  });

  it('answers whole streams asked in the same turn each with its own records (one SELECT per few hundred on MariaDB)', async () => {
    const n = journal_streams_per_read_max * 2 + 37;
    const written: JournalRecord[] = [];
    for (let i = 0; i < n; i++) {
      if (i % 3 === 0) continue; // a third of the streams are empty (new buyers)
      written.push(record(`many:${i}`, 1, 1 + (i % 2)));
      if (i % 5 === 0) written.push(record(`many:${i}`, 1 + 1 + (i % 2), 1));
    }
    await stores.journal.append(written);
    const journal = stores.journal as SqlJournalStore;
    const before = journal.readStatements;
    // Every stream asked once, the first 50 twice (two actors of one key racing), all in one turn.
    const asks = [...Array.from({ length: n }, (_, i) => `many:${i}`), ...Array.from({ length: 50 }, (_, i) => `many:${i}`)];
    const answers = await Promise.all(asks.map((stream) => journal.readAfter(stream, 0)));
    answers.forEach((records, k) => {
      expect(records).toEqual(written.filter((r) => r.stream === asks[k]));
    });
    // Each caller owns its array: changing one answer leaves the other caller's alone.
    answers[0]!.length = 0;
    expect(answers[n]).toEqual(written.filter((r) => r.stream === 'many:0'));
    const selects = journal.readStatements - before;
    if (backend.name === 'mysql') expect(selects).toBeLessThanOrEqual(Math.ceil(asks.length / journal_streams_per_read_max));
    else expect(selects).toBe(asks.length);
    // Reads after a seq stay exact reads of that stream.
    expect(await journal.readAfter('many:5', 2)).toEqual(written.filter((r) => r.stream === 'many:5' && r.seq > 2));
  });

  it('writes a batch larger than the server takes in one packet (16 MiB on MariaDB), in one transaction', async () => {
    // Five records of ~3 MB of events: a statement each (4 MiB bound), ~30 MB of SQL text as hex.
    const big = (stream: string) => ({ stream, seq: 1, lastSeq: 1, at: 7, events: [{ type: 'reserved', pad: 'p'.repeat(3_000_000) }] });
    const records = ['big:1', 'big:2', 'big:3', 'big:4', 'big:5'].map(big);
    await stores.journal.append(records);
    for (const r of records) expect((await stores.journal.readAfter(r.stream, 0)).map((x) => (x.events[0] as { pad: string }).pad.length)).toEqual([3_000_000]);
    // All or nothing still: a conflict in the last packet leaves nothing of the first.
    await expect(stores.journal.append([big('big:6'), big('big:7'), big('big:8'), big('big:1')])).rejects.toBeInstanceOf(JournalConflictError);
    expect(await stores.journal.readAfter('big:6', 0)).toEqual([]);
  }, 60_000);

  it('keeps a batch larger than one statement all-or-nothing too', async () => {
    await stores.journal.append([record('dupbig:a', 1, 1)]);
    const many = Array.from({ length: journal_rows_per_statement_max + 10 }, (_, i) => record(`dupbig:s${i}`, 1, 1));
    const error = await stores.journal.append([...many, record('dupbig:a', 1, 1)]).then(() => undefined, (e: unknown) => e);
    expect(error).toBeInstanceOf(JournalConflictError);
    expect(await stores.journal.readAfter('dupbig:s0', 0)).toEqual([]);
    expect(await stores.journal.readAfter(`dupbig:s${journal_rows_per_statement_max + 9}`, 0)).toEqual([]);

    await stores.journal.append(many);
    expect(await stores.journal.readAfter(`dupbig:s${journal_rows_per_statement_max + 9}`, 0)).toHaveLength(1);
  });

  it('a batch whose middle statement conflicts leaves nothing, and every pooled connection is clean after it', async () => {
    const n = journal_rows_per_statement_max;
    await stores.journal.append([record('mid:taken', 1, 1)]);
    // Three statements: the first would write, the second meets the taken row, the third never runs.
    const first = Array.from({ length: n }, (_, i) => record(`mid:a${i}`, 1, 1));
    const second = [...Array.from({ length: n - 1 }, (_, i) => record(`mid:b${i}`, 1, 1)), record('mid:taken', 1, 1)];
    const third = Array.from({ length: 5 }, (_, i) => record(`mid:c${i}`, 1, 1));
    const error = await stores.journal.append([...first, ...second, ...third]).then(() => undefined, (e: unknown) => e);
    expect(error).toBeInstanceOf(JournalConflictError);
    // More batches at once than the pool has connections: had a connection kept the failed batch's
    // transaction open, the next START TRANSACTION on it would have committed the first statement.
    await Promise.all(Array.from({ length: 24 }, (_, k) => stores.journal.append(Array.from({ length: n + 1 }, (_, i) => record(`mid:after${k}:${i}`, 1, 1)))));
    for (const stream of ['mid:a0', `mid:a${n - 1}`, 'mid:b0', 'mid:c0']) expect(await stores.journal.readAfter(stream, 0)).toEqual([]);
    expect(await stores.journal.readAfter('mid:taken', 0)).toHaveLength(1);
    for (let k = 0; k < 24; k++) expect(await stores.journal.readAfter(`mid:after${k}:${n}`, 0)).toHaveLength(1);
  });

  it('tells which seq a stream record ends at', async () => {
    await stores.journal.append([record('ends:a', 1, 3), record('ends:a', 4, 2)]);
    expect(await stores.journal.endsAt('ends:a', 3)).toBe(true);
    expect(await stores.journal.endsAt('ends:a', 5)).toBe(true);
    expect(await stores.journal.endsAt('ends:a', 2)).toBe(false);
    expect(await stores.journal.endsAt('ends:a', 4)).toBe(false);
    expect(await stores.journal.endsAt('ends:a', 6)).toBe(false);
    expect(await stores.journal.endsAt('ends:none', 3)).toBe(false);
    // With the record's time: the record ending there must have been written then (a snapshot of another history is not).
    expect(await stores.journal.endsAt('ends:a', 3, 1_001)).toBe(true);
    expect(await stores.journal.endsAt('ends:a', 5, 1_004)).toBe(true);
    expect(await stores.journal.endsAt('ends:a', 5, 1_005)).toBe(false);
    expect(await stores.journal.endsAt('ends:a', 2, 1_001)).toBe(false);
  });

  it('reports the last seq of every stream as its head', async () => {
    await stores.journal.append([record('heads:a', 1, 3), record('heads:b', 1, 1)]);
    await stores.journal.append([record('heads:a', 4, 5)]);
    const heads = await stores.journal.heads();
    expect(heads.get('heads:a')).toBe(8);
    expect(heads.get('heads:b')).toBe(1);
    expect(heads.get('rt:a')).toBe(4);
    expect(heads.has('heads:none')).toBe(false);
  });

  it('refuses a record whose events do not match its seq range', async () => {
    const bad = { ...record('bad:a', 1, 2), lastSeq: 5 };
    await expect(stores.journal.append([bad])).rejects.toThrow(RangeError);
    expect(await stores.journal.readAfter('bad:a', 0)).toEqual([]);
  });
});

describe.each(backends)('journal on $name after close', (backend) => {
  it('fails with StoreUnavailableError instead of hanging', async () => {
    const stores = await backend.open('persist_journal_closed');
    await stores.dispose();
    // Refused because the pool is gone, not after waiting to acquire a connection from it (knex's
    // 'Timeout acquiring a connection'); the test's timeout is the hang guard.
    const closed = /database unavailable: Unable to acquire a connection$/;
    // Whole-stream reads coalesced into one SELECT all fail with it.
    const calls = await Promise.allSettled([
      stores.journal.append([record('closed:a', 1, 1)]),
      stores.journal.heads(),
      stores.journal.readAfter('closed:a', 0),
      stores.journal.readAfter('closed:b', 0),
    ]);
    for (const r of calls) {
      expect(r.status === 'rejected' && r.reason instanceof StoreUnavailableError).toBe(true);
      expect(String((r as PromiseRejectedResult).reason.message)).toMatch(closed);
    }
  });
});
