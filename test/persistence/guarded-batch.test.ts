// Proves a guarded batch (SqlDatabase.guardedBatch) on the real MariaDB and SQLite: on MySQL the
// statements, their guards and the COMMIT go in one round trip, and `decide` is not read when every
// guard holds; a false guard stops the server before the COMMIT (nothing of the batch stays) and the
// batch runs again with its checks read before the commit, so their error is the one thrown.
import { describe, expect, it } from 'vitest';
import type { CheckedStatement, RunResult, SqlDatabase } from '../../persistence/sql/database.ts';
import { rejection } from '../support/poll.ts';
import { backends, storesFor } from './backends.ts';

class ProbeConflict extends Error {}

describe.each(backends)('a guarded batch on $name', (backend) => {
  const stores = storesFor(backend, 'persist_guarded_batch');
  const db = () => (stores().journal as unknown as { db: SqlDatabase }).db;
  const rows = async (table: string) =>
    (await db().all<{ id: number; v: number }>('probe.read', `SELECT id, v FROM ${table} ORDER BY id`)).map((r) => [Number(r.id), Number(r.v)]);
  /** A fresh table holding `ids` (v = 0). */
  async function table(name: string, ids: number[]): Promise<void> {
    await db().run('probe.ddl', `CREATE TABLE ${name} (id INT PRIMARY KEY, v INT NOT NULL)`, []);
    for (const id of ids) await db().run('probe.seed', `INSERT INTO ${name} (id, v) VALUES (?, 0)`, [id]);
  }
  /** Inserts 10 and 11, then sets v = 1 on `touch`, whose count must be `touch.length` (the guard and the check say the same). */
  function batch(name: string, touch: number[]): CheckedStatement[] {
    return [
      { sql: `INSERT INTO ${name} (id, v) VALUES (10, 0), (11, 0)`, params: [], guard: { sql: 'ROW_COUNT() = ?', params: [2] } },
      { sql: `UPDATE ${name} SET v = 1 WHERE id IN (${touch.map(() => '?').join(', ')})`, params: touch, guard: { sql: 'ROW_COUNT() = ?', params: [touch.length] } },
      { sql: `SELECT COUNT(*) AS n FROM ${name} WHERE v = 1`, params: [], rows: true, guard: { sql: `(SELECT COUNT(*) FROM ${name} WHERE v = 1) = ?`, params: [touch.length] } },
    ];
  }
  const decideFor = (touch: number[], calls: { n: number }) => (results: (RunResult | unknown[])[]) => {
    calls.n++;
    if ((results[0] as RunResult).affectedRows !== 2) throw new ProbeConflict('insert');
    if ((results[1] as RunResult).affectedRows !== touch.length) throw new ProbeConflict(`updated ${(results[1] as RunResult).affectedRows} of ${touch.length}`);
    if (Number((results[2] as { n: unknown }[])[0]!.n) !== touch.length) throw new ProbeConflict('count');
  };

  it('commits every statement when every guard holds; on MySQL without reading the checks (one round trip)', async () => {
    await table('probe_ok', [1, 2, 3]);
    const calls = { n: 0 };
    await db().guardedBatch('probe.ok', batch('probe_ok', [1, 3]), decideFor([1, 3], calls));
    expect(await rows('probe_ok')).toEqual([[1, 1], [2, 0], [3, 1], [10, 0], [11, 0]]);
    expect(calls.n).toBe(backend.name === 'mysql' ? 0 : 1);
  });

  it('a false guard changes nothing and the checks read then throw what conflicted', async () => {
    await table('probe_conflict', [1, 2]);
    const calls = { n: 0 };
    // 9 is not there: the update's count is 1 of 2.
    const error = await rejection(db().guardedBatch('probe.conflict', batch('probe_conflict', [1, 9]), decideFor([1, 9], calls)));
    expect(error).toBeInstanceOf(ProbeConflict);
    expect((error as Error).message).toBe('updated 1 of 2');
    expect(calls.n).toBe(1);
    expect(await rows('probe_conflict')).toEqual([[1, 0], [2, 0]]);
    // The connection it ran on is usable (its transaction was rolled back): the next batch commits.
    await db().guardedBatch('probe.after', batch('probe_conflict', [2]), decideFor([2], calls));
    expect(await rows('probe_conflict')).toEqual([[1, 0], [2, 1], [10, 0], [11, 0]]);
  });

  it('a duplicate key fails the batch as a store error, not as a guard, and changes nothing', async () => {
    await table('probe_duplicate', [1, 11]);
    const calls = { n: 0 };
    const error = await rejection(db().guardedBatch('probe.duplicate', batch('probe_duplicate', [1]), decideFor([1], calls)));
    expect(error).not.toBeInstanceOf(ProbeConflict);
    expect(error).toBeInstanceOf(Error);
    expect(calls.n).toBe(0);
    expect(await rows('probe_duplicate')).toEqual([[1, 0], [11, 0]]);
  });

  if (backend.name === 'mysql') {
    it('on MySQL a guard found false does not commit in its packet: the batch commits only as the checks then decide', async () => {
      await table('probe_recheck', [1]);
      const calls = { n: 0 };
      // A guard that is false whatever the data: the packet is rolled back; the checks read after it accept.
      const statements: CheckedStatement[] = [{ sql: 'INSERT INTO probe_recheck (id, v) VALUES (5, 0)', params: [], guard: { sql: '1 = 0', params: [] } }];
      await db().guardedBatch('probe.recheck', statements, () => {
        calls.n++;
      });
      expect(calls.n).toBe(1);
      expect(await rows('probe_recheck')).toEqual([[1, 0], [5, 0]]);
    });
  }
});
