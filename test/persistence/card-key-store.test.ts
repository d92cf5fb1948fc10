// Proves card keys are deduplicated per SKU by their hash, and that a key is assigned to one order
// once, all or nothing, even when two store instances race for it, by uploading and assigning keys
// on the real MariaDB and SQLite.
import { spawn } from 'node:child_process';
import mysql from 'mysql2/promise';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CardKeyConflictError, JournalConflictError } from '../../persistence/errors.ts';
import type { CardKeyAssignment } from '../../persistence/ports.ts';
import type { SqlDatabase } from '../../persistence/sql/database.ts';
import { openSqlStores, type SqlStores } from '../../persistence/sql/open.ts';
import { freshMysqlDatabase } from '../support/services.ts';
import { backends } from './backends.ts';
import { rejection } from '../support/poll.ts';

const key = (plain: string) => ({ hash: createHash('sha256').update(plain).digest('hex'), ciphertext: `enc(${plain})` });

/** Uploads `n` keys to the SKU and returns their ids, ascending. */
async function upload(stores: SqlStores, skuId: string, n: number, prefix = skuId): Promise<number[]> {
  expect(await stores.cardKeys.add(skuId, Array.from({ length: n }, (_, i) => key(`${prefix}-${i}`)))).toBe(n);
  return stores.cardKeys.unassigned(skuId, 0, 10_000);
}

describe.each(backends)('card keys on $name', (backend) => {
  let stores: Awaited<ReturnType<typeof backend.open>>;
  beforeAll(async () => {
    stores = await backend.open('persist_card_keys');
  });
  afterAll(async () => {
    await stores?.dispose();
  });

  it('stores each key of a SKU once and counts what was new', async () => {
    expect(await stores.cardKeys.add('game', [key('A'), key('B'), key('A')])).toBe(2);
    expect(await stores.cardKeys.add('game', [key('B'), key('C')])).toBe(1);
    expect(await stores.cardKeys.add('game', [key('A'), key('B'), key('C')])).toBe(0);
    expect(await stores.cardKeys.add('game', [])).toBe(0);
    expect(await stores.cardKeys.count('game')).toBe(3);
  });

  it('keeps the same key apart for different SKUs', async () => {
    expect(await stores.cardKeys.add('other-game', [key('A')])).toBe(1);
    expect(await stores.cardKeys.count('other-game')).toBe(1);
    expect(await stores.cardKeys.count('no-such-sku')).toBe(0);
  });

  it('adds a large upload in bounded statements', async () => {
    const keys = Array.from({ length: 1_234 }, (_, i) => key(`bulk-${i}`));
    expect(await stores.cardKeys.add('bulk', keys)).toBe(1_234);
    expect(await stores.cardKeys.add('bulk', [...keys.slice(0, 600), key('bulk-new')])).toBe(1);
    expect(await stores.cardKeys.count('bulk')).toBe(1_235);
  });

  it('refuses a malformed hash before writing anything', async () => {
    await expect(stores.cardKeys.add('bad', [key('x'), { hash: 'short', ciphertext: 'c' }])).rejects.toThrow(RangeError);
    expect(await stores.cardKeys.count('bad')).toBe(0);
  });

  it('lists unassigned keys in id order after a cursor, assigns them, and finds and reveals them by order', async () => {
    const ids = await upload(stores, 'pool', 10);
    expect(ids).toHaveLength(10);
    expect([...ids].sort((a, b) => a - b)).toEqual(ids);
    expect(await stores.cardKeys.unassigned('pool', 0, 3)).toEqual(ids.slice(0, 3));
    expect(await stores.cardKeys.unassigned('pool', ids[2]!, 3)).toEqual(ids.slice(3, 6));
    expect(await stores.cardKeys.unassigned('pool', ids[9]!, 3)).toEqual([]);
    expect(await stores.cardKeys.countUnassigned('pool')).toBe(10);

    await stores.cardKeys.assign(
      [
        { skuId: 'pool', orderId: 'o-1', keyIds: [ids[3]!, ids[0]!] },
        { skuId: 'pool', orderId: 'o-2', keyIds: [ids[1]!] },
      ],
      1_000,
    );
    expect(await stores.cardKeys.assignedTo('o-1')).toEqual([ids[0], ids[3]]);
    expect(await stores.cardKeys.assignedTo('o-2')).toEqual([ids[1]]);
    expect(await stores.cardKeys.assignedTo('o-none')).toEqual([]);
    // Many orders in one read: each its own keys, ascending; an order without keys gets [].
    const many = await stores.cardKeys.assignedToMany(['o-2', 'o-none', 'o-1', 'o-1']);
    expect([...many.entries()]).toEqual([['o-2', [ids[1]]], ['o-none', []], ['o-1', [ids[0], ids[3]]]]);
    // More orders than one statement takes.
    const lots = Array.from({ length: 1_203 }, (_, i) => `lot-${i}`).concat('o-1');
    const all = await stores.cardKeys.assignedToMany(lots);
    expect(all.size).toBe(lots.length);
    expect(all.get('o-1')).toEqual([ids[0], ids[3]]);
    expect(all.get('lot-1202')).toEqual([]);
    expect(await stores.cardKeys.countUnassigned('pool')).toBe(7);
    expect(await stores.cardKeys.count('pool')).toBe(10);
    expect(await stores.cardKeys.unassigned('pool', 0, 3)).toEqual([ids[2], ids[4], ids[5]]);

    // In the order asked; ids of another SKU, of another order's keys, of a free key, or unknown ids are not revealed.
    expect(await stores.cardKeys.reveal('pool', 'o-1', [ids[3]!, ids[0]!])).toEqual([
      { id: ids[3], ciphertext: 'enc(pool-3)' },
      { id: ids[0], ciphertext: 'enc(pool-0)' },
    ]);
    expect(await stores.cardKeys.reveal('pool', 'o-2', [ids[3]!, ids[0]!, ids[1]!])).toEqual([{ id: ids[1], ciphertext: 'enc(pool-1)' }]);
    expect(await stores.cardKeys.reveal('pool', 'o-1', [ids[2]!])).toEqual([]);
    expect(await stores.cardKeys.reveal('other-game', 'o-1', [ids[0]!])).toEqual([]);
    expect(await stores.cardKeys.reveal('pool', 'o-1', [])).toEqual([]);
    const [rows] = [await stores.cardKeys.reveal('pool', 'o-1', [ids[9]! + 1_000_000])];
    expect(rows).toEqual([]);
  });

  it('assigns all or nothing: one taken key refuses the whole call with CardKeyConflictError and records nothing', async () => {
    const ids = await upload(stores, 'aon', 6);
    await stores.cardKeys.assign([{ skuId: 'aon', orderId: 'first', keyIds: [ids[2]!] }], 1);

    const error = await rejection(
      stores.cardKeys.assign(
        [
          { skuId: 'aon', orderId: 'x-1', keyIds: [ids[0]!, ids[1]!] },
          { skuId: 'aon', orderId: 'x-2', keyIds: [ids[2]!, ids[3]!] },
        ],
        2,
      ),
    );
    expect(error).toBeInstanceOf(CardKeyConflictError);
    expect(await stores.cardKeys.assignedTo('x-1')).toEqual([]);
    expect(await stores.cardKeys.assignedTo('x-2')).toEqual([]);
    expect(await stores.cardKeys.assignedTo('first')).toEqual([ids[2]]);
    expect(await stores.cardKeys.countUnassigned('aon')).toBe(5);
  });

  it('a key is assigned once: a second assignment, to another order or the same one, throws and changes nothing', async () => {
    const ids = await upload(stores, 'once', 3);
    await stores.cardKeys.assign([{ skuId: 'once', orderId: 'owner', keyIds: [ids[0]!] }], 10);
    await expect(stores.cardKeys.assign([{ skuId: 'once', orderId: 'thief', keyIds: [ids[0]!] }], 20)).rejects.toBeInstanceOf(CardKeyConflictError);
    await expect(stores.cardKeys.assign([{ skuId: 'once', orderId: 'owner', keyIds: [ids[0]!] }], 30)).rejects.toBeInstanceOf(CardKeyConflictError);
    // Named twice in one call, or a key of another SKU, or no key at all: refused the same way.
    await expect(stores.cardKeys.assign([{ skuId: 'once', orderId: 'twice', keyIds: [ids[1]!, ids[1]!] }], 40)).rejects.toBeInstanceOf(CardKeyConflictError);
    await expect(
      stores.cardKeys.assign(
        [
          { skuId: 'once', orderId: 'split-a', keyIds: [ids[1]!] },
          { skuId: 'once', orderId: 'split-b', keyIds: [ids[1]!] },
        ],
        40,
      ),
    ).rejects.toBeInstanceOf(CardKeyConflictError);
    await expect(stores.cardKeys.assign([{ skuId: 'other-game', orderId: 'wrong-sku', keyIds: [ids[1]!] }], 50)).rejects.toBeInstanceOf(CardKeyConflictError);
    await expect(stores.cardKeys.assign([{ skuId: 'once', orderId: 'ghost', keyIds: [ids[2]! + 1_000_000] }], 60)).rejects.toBeInstanceOf(CardKeyConflictError);
    // Caller's mistakes are RangeErrors, before any statement.
    await expect(stores.cardKeys.assign([{ skuId: 'once', orderId: 'empty', keyIds: [] }], 70)).rejects.toThrow(RangeError);
    await expect(stores.cardKeys.assign([{ skuId: 'once', orderId: 'bad-id', keyIds: [0] }], 70)).rejects.toThrow(RangeError);

    expect(await stores.cardKeys.assignedTo('owner')).toEqual([ids[0]]);
    for (const o of ['thief', 'twice', 'split-a', 'split-b', 'wrong-sku', 'ghost', 'empty', 'bad-id']) {
      expect(await stores.cardKeys.assignedTo(o), o).toEqual([]);
    }
    expect(await stores.cardKeys.unassigned('once', 0, 10)).toEqual([ids[1], ids[2]]);
    await stores.cardKeys.assign([], 80);
  });

  it('an order gets one key set: assigning other keys to an order that has keys throws and changes nothing', async () => {
    const ids = await upload(stores, 'one-set', 4);
    await stores.cardKeys.assign([{ skuId: 'one-set', orderId: 'holder', keyIds: [ids[0]!] }], 1);
    await expect(
      stores.cardKeys.assign(
        [
          { skuId: 'one-set', orderId: 'bystander', keyIds: [ids[1]!] },
          { skuId: 'one-set', orderId: 'holder', keyIds: [ids[2]!] },
        ],
        2,
      ),
    ).rejects.toBeInstanceOf(CardKeyConflictError);
    expect(await stores.cardKeys.assignedTo('holder')).toEqual([ids[0]]);
    expect(await stores.cardKeys.assignedTo('bystander')).toEqual([]);
    expect(await stores.cardKeys.countUnassigned('one-set')).toBe(3);
    // Several keys for one order in one call, even split over two entries, are one set.
    await stores.cardKeys.assign(
      [
        { skuId: 'one-set', orderId: 'pair', keyIds: [ids[1]!] },
        { skuId: 'one-set', orderId: 'pair', keyIds: [ids[3]!] },
      ],
      3,
    );
    expect(await stores.cardKeys.assignedTo('pair')).toEqual([ids[1], ids[3]]);
  });

  it('an order given keys before key-set rows existed (keys, no key-set row) gets no second set: the count of its keys refuses it', async () => {
    const ids = await upload(stores, 'legacy-set', 3);
    // As an assignment made before `card_key_sets` was written: the key row alone.
    const db = (stores.cardKeys as unknown as { db: SqlDatabase }).db;
    await db.run('test.legacy', 'UPDATE card_keys SET order_id = ?, assigned_at = ? WHERE id = ?', ['old-holder', 1, ids[0]!]);
    const error = await rejection(
      stores.cardKeys.assign(
        [
          { skuId: 'legacy-set', orderId: 'newcomer', keyIds: [ids[1]!] },
          { skuId: 'legacy-set', orderId: 'old-holder', keyIds: [ids[2]!] },
        ],
        2,
      ),
    );
    expect(error).toBeInstanceOf(CardKeyConflictError);
    expect((error as Error).message).toContain('old-holder already has other keys');
    expect(await stores.cardKeys.assignedTo('old-holder')).toEqual([ids[0]]);
    expect(await stores.cardKeys.assignedTo('newcomer')).toEqual([]);
    expect(await stores.cardKeys.countUnassigned('legacy-set')).toBe(2);
  });

  it('assigns a large batch in bounded statements, in one transaction', async () => {
    const ids = await upload(stores, 'big', 1_200);
    const assignments = Array.from({ length: 600 }, (_, i) => ({ skuId: 'big', orderId: `big-${i}`, keyIds: [ids[2 * i]!, ids[2 * i + 1]!] }));
    // The last key is taken already: none of the 1,200 may be recorded.
    await stores.cardKeys.assign([{ skuId: 'big', orderId: 'early', keyIds: [ids[1_199]!] }], 1);
    await expect(stores.cardKeys.assign(assignments, 2)).rejects.toBeInstanceOf(CardKeyConflictError);
    expect(await stores.cardKeys.countUnassigned('big')).toBe(1_199);
    expect(await stores.cardKeys.assignedTo('big-0')).toEqual([]);

    await stores.cardKeys.assign(assignments.slice(0, 599), 3);
    expect(await stores.cardKeys.countUnassigned('big')).toBe(1);
    expect(await stores.cardKeys.assignedTo('big-598')).toEqual([ids[1_196], ids[1_197]]);
  });

  it('writes journal records in the assignment\'s transaction: the keys and the records together, or neither', async () => {
    const ids = await upload(stores, 'riding', 4);
    const delivered = (orderId: string, seq: number) => ({
      stream: `@o/${orderId}`, seq, lastSeq: seq, at: 5, events: [{ type: 'order.delivered', at: 5, delivery: { kind: 'card_key', keyIds: [] } }],
    });
    await stores.cardKeys.assign(
      [{ skuId: 'riding', orderId: 'r1', keyIds: [ids[0]!] }, { skuId: 'riding', orderId: 'r2', keyIds: [ids[1]!] }],
      4,
      [delivered('r1', 1), delivered('r2', 1)],
    );
    expect(await stores.cardKeys.assignedTo('r1')).toEqual([ids[0]]);
    expect((await stores.journal.readAfter('@o/r1', 0)).map((r) => [r.seq, (r.events[0] as { type: string }).type])).toEqual([[1, 'order.delivered']]);
    expect(await stores.journal.readAfter('@o/r2', 0)).toHaveLength(1);

    // A record at a (stream, seq) that exists: nothing of the call is durable, not even the other order's keys.
    const conflict = await rejection(
      stores.cardKeys.assign(
        [{ skuId: 'riding', orderId: 'r3', keyIds: [ids[2]!] }, { skuId: 'riding', orderId: 'r4', keyIds: [ids[3]!] }],
        6,
        [delivered('r3', 1), delivered('r1', 1)],
      ),
    );
    expect(conflict).toBeInstanceOf(JournalConflictError);
    expect(await stores.cardKeys.assignedTo('r3')).toEqual([]);
    expect(await stores.cardKeys.assignedTo('r4')).toEqual([]);
    expect(await stores.journal.readAfter('@o/r3', 0)).toEqual([]);
    // A key already assigned: the records are not written either.
    await expect(stores.cardKeys.assign([{ skuId: 'riding', orderId: 'r3', keyIds: [ids[0]!] }], 7, [delivered('r3', 1)])).rejects.toBeInstanceOf(CardKeyConflictError);
    expect(await stores.journal.readAfter('@o/r3', 0)).toEqual([]);
    expect(await stores.cardKeys.countUnassigned('riding')).toBe(2);
    // Records without assignments are a caller's mistake.
    await expect(stores.cardKeys.assign([], 8, [delivered('r5', 1)])).rejects.toBeInstanceOf(RangeError);
  });
});

/** One assign call, as a racer makes it. */
interface AssignJob {
  assignments: CardKeyAssignment[];
  at: number;
}

/** A store instance that runs a list of assign calls at once and says how each ended: 'ok' or the error's name. */
interface Racer {
  stores?: SqlStores;
  /** `started` is called once the calls are about to be made (so the other racer can start right then). */
  assignAll(jobs: readonly AssignJob[], started?: () => void): Promise<string[]>;
  close(): Promise<void>;
}

/** Assignments a racer sends at once, and its pause between such chunks (see localRacer). */
const RACE_CHUNK = 10;
const RACE_PAUSE_MS = 3;

function localRacer(stores: SqlStores): Racer {
  return {
    stores,
    async assignAll(jobs, started) {
      started?.();
      const settled: PromiseSettledResult<unknown>[] = [];
      // In chunks with a pause between: on SQLite one side's statements are quick enough to sweep
      // every key before the other's busy wait retries; paced, both sides get turns and really race.
      for (let i = 0; i < jobs.length; i += RACE_CHUNK) {
        settled.push(...(await Promise.allSettled(jobs.slice(i, i + RACE_CHUNK).map((j) => stores.cardKeys.assign(j.assignments, j.at)))));
        await new Promise((r) => setTimeout(r, RACE_PAUSE_MS));
      }
      return settled.map((r) => (r.status === 'fulfilled' ? 'ok' : (r.reason as Error).name));
    },
    close: () => stores.close(),
  };
}

const repoRoot = fileURLToPath(new URL('../..', import.meta.url));

/**
 * A store instance in a child process. SQLite's busy wait is synchronous: a second connection in the
 * same process would block the event loop that the first one needs to commit, so a real race on one
 * SQLite file is between processes.
 */
async function childRacer(sqlitePath: string): Promise<Racer> {
  const script = `
    import { openSqlStores } from ${JSON.stringify(join(repoRoot, 'persistence/sql/open.ts'))};
    const stores = await openSqlStores({ sqlitePath: process.env.RACE_DB });
    let input = '';
    process.stdin.on('data', async (chunk) => {
      input += chunk;
      if (!input.includes('\\n')) return;
      const jobs = JSON.parse(input);
      process.stdout.write('go\\n');
      const settled = [];
      for (let i = 0; i < jobs.length; i += ${RACE_CHUNK}) {
        settled.push(...(await Promise.allSettled(jobs.slice(i, i + ${RACE_CHUNK}).map((j) => stores.cardKeys.assign(j.assignments, j.at)))));
        await new Promise((r) => setTimeout(r, ${RACE_PAUSE_MS}));
      }
      process.stdout.write(JSON.stringify(settled.map((r) => (r.status === 'fulfilled' ? 'ok' : r.reason.name))) + '\\n');
      input = '';
    });
    process.stdin.on('end', async () => { await stores.close(); process.exit(0); });
    process.stdout.write('ready\\n');
  `;
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
    cwd: repoRoot,
    env: { ...process.env, RACE_DB: sqlitePath },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  const waiters: { resolve: (line: string) => void; reject: (e: Error) => void }[] = [];
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  child.stdout!.on('data', (d: Buffer) => {
    out += d.toString();
    let nl: number;
    while ((nl = out.indexOf('\n')) >= 0) {
      const line = out.slice(0, nl);
      out = out.slice(nl + 1);
      waiters.shift()?.resolve(line);
    }
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  void exited.then(() => {
    for (const w of waiters.splice(0)) w.reject(new Error(`race child exited: ${err}`));
  });
  const nextLine = () => new Promise<string>((resolve, reject) => waiters.push({ resolve, reject }));
  const ready = await Promise.race([nextLine(), new Promise<string>((_, reject) => setTimeout(() => reject(new Error(`race child not ready: ${err}`)), 30_000).unref())]);
  expect(ready).toBe('ready');
  return {
    async assignAll(jobs, started) {
      const go = nextLine();
      const line = nextLine();
      child.stdin!.write(JSON.stringify(jobs) + '\n');
      expect(await go).toBe('go');
      started?.();
      return JSON.parse(await line) as string[];
    },
    async close() {
      child.stdin!.end();
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** Two independent store instances on one database: two pools (MariaDB), two processes (SQLite). */
async function openTwice(name: 'mysql' | 'sqlite', db: string): Promise<{ a: SqlStores; b: Racer; dispose(): Promise<void> }> {
  if (name === 'mysql') {
    const url = await freshMysqlDatabase(db);
    const a = await openSqlStores({ mysqlUrl: url });
    const b = localRacer(await openSqlStores({ mysqlUrl: url }));
    return { a, b, dispose: async () => void (await Promise.all([a.close(), b.close()])) };
  }
  const dir = mkdtempSync(join(tmpdir(), `stampede-${db}-`));
  const path = join(dir, `${db}.sqlite`);
  const a = await openSqlStores({ sqlitePath: path });
  const b = await childRacer(path);
  return {
    a,
    b,
    async dispose() {
      await Promise.all([a.close(), b.close()]);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

describe.each(backends.map((b) => b.name))('card key assignment races on %s', (name) => {
  let pair: Awaited<ReturnType<typeof openTwice>>;
  beforeAll(async () => {
    pair = await openTwice(name, 'persist_card_keys_race');
  });
  afterAll(async () => {
    await pair?.dispose();
  });

  it('two store instances racing for the same keys: for each key exactly one wins, the loser records nothing', async () => {
    // B comes down the ids, A goes up them once B has started: they meet somewhere in the middle. One
    // side can still sweep every key before the other's first write lands (timing between two
    // processes), so the race is run again, on fresh keys, until both sides won some (at most 5 times).
    let contested = 0;
    for (let attempt = 1; attempt <= 5 && contested === 0; attempt++) {
      const sku = `race-${attempt}`;
      const ids = await upload(pair.a, sku, 200);
      const jobs = (who: string, order: number[]): AssignJob[] => order.map((id) => ({ assignments: [{ skuId: sku, orderId: `${who}-${id}`, keyIds: [id] }], at: 1 }));
      let startA!: () => void;
      const bStarted = new Promise<void>((resolve) => (startA = resolve));
      const [rbReversed, ra] = await Promise.all([
        pair.b.assignAll(jobs('b', [...ids].reverse()), startA),
        bStarted.then(() => localRacer(pair.a).assignAll(jobs('a', ids))),
      ]);
      const rb = [...rbReversed].reverse();
      for (let i = 0; i < ids.length; i++) {
        const outcomes = [ra[i], rb[i]].sort();
        expect(outcomes, `key ${ids[i]}`).toEqual(['CardKeyConflictError', 'ok']);
        const winner = ra[i] === 'ok' ? 'a' : 'b';
        expect(await pair.a.cardKeys.assignedTo(`${winner}-${ids[i]}`)).toEqual([ids[i]]);
        expect(await pair.a.cardKeys.assignedTo(`${winner === 'a' ? 'b' : 'a'}-${ids[i]}`)).toEqual([]);
      }
      expect(await pair.a.cardKeys.countUnassigned(sku)).toBe(0);
      if (ra.includes('ok') && rb.includes('ok')) contested = attempt;
    }
    expect(contested, 'no attempt had both sides win keys').toBeGreaterThan(0);
  });

  it('overlapping multi-key assignments racing from two instances: exactly one is recorded, whole', async () => {
    const ids = await upload(pair.a, 'overlap', 60);
    // Round r: A takes keys 6r..6r+3, B takes 6r+2..6r+5; they share two keys.
    const rounds = ids.length / 6;
    const jobs = (who: 'a' | 'b'): AssignJob[] =>
      Array.from({ length: rounds }, (_, r) => ({
        assignments: [{ skuId: 'overlap', orderId: `o${who}-${r}`, keyIds: ids.slice(6 * r + (who === 'a' ? 0 : 2), 6 * r + (who === 'a' ? 4 : 6)) }],
        at: 1,
      }));
    let startA!: () => void;
    const bStarted = new Promise<void>((resolve) => (startA = resolve));
    const [rb, ra] = await Promise.all([pair.b.assignAll(jobs('b'), startA), bStarted.then(() => localRacer(pair.a).assignAll(jobs('a')))]);
    for (let r = 0; r < rounds; r++) {
      expect([ra[r], rb[r]].sort(), `round ${r}`).toEqual(['CardKeyConflictError', 'ok']);
      const a = await pair.a.cardKeys.assignedTo(`oa-${r}`);
      const b = await pair.a.cardKeys.assignedTo(`ob-${r}`);
      if (ra[r] === 'ok') expect([a, b]).toEqual([ids.slice(6 * r, 6 * r + 4), []]);
      else expect([a, b]).toEqual([[], ids.slice(6 * r + 2, 6 * r + 6)]);
    }
  });
});

describe('card keys on MySQL while an earlier assignment is still committing (no locking read)', () => {
  let stores: SqlStores;
  let url: string;
  beforeAll(async () => {
    url = await freshMysqlDatabase('persist_card_keys_locking');
    stores = await openSqlStores({ mysqlUrl: url });
  });
  afterAll(async () => {
    await stores?.close();
  });

  it('waits for it on the order\'s key-set row and refuses a second key set for the order (a plain read would not see its keys)', async () => {
    const ids = await upload(stores, 'late-game', 3);
    // An earlier call (its caller timed out) assigned a key to the order; its COMMIT is late.
    const earlier = await mysql.createConnection(url);
    try {
      await earlier.query('START TRANSACTION');
      // What an assignment writes: the key, and the order's key-set row.
      await earlier.query('UPDATE card_keys SET order_id = ?, assigned_at = ? WHERE id = ?', ['late-order', 1, ids[0]]);
      await earlier.query('INSERT INTO card_key_sets (order_id, sku_id, assigned_at) VALUES (?, ?, ?)', ['late-order', 'late-game', 1]);
      const second = stores.cardKeys.assign([{ skuId: 'late-game', orderId: 'late-order', keyIds: [ids[1]!] }], 2).then(
        () => 'assigned',
        (error: unknown) => error,
      );
      await new Promise((resolve) => setTimeout(resolve, 300));
      await earlier.query('COMMIT');
      expect(await second).toBeInstanceOf(CardKeyConflictError);
    } finally {
      await earlier.end();
    }
    expect(await stores.cardKeys.assignedTo('late-order')).toEqual([ids[0]]);
    expect(await stores.cardKeys.unassigned('late-game', 0, 10)).toEqual([ids[1], ids[2]]);
  });
});
