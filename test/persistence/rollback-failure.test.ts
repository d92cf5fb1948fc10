// Proves a MySQL connection whose ROLLBACK failed after a failed transaction is destroyed, not handed
// back to the pool in doubt: a transaction might still be open on it, and the next autocommit write on
// it would be answered OK and never committed. (The connection here is a stand-in: a server that
// refuses a ROLLBACK on a live connection cannot be made on demand; the pool's dropping of a destroyed
// connection is mysql2's and is exercised by the silent-database tests.)
import { describe, expect, it } from 'vitest';
import { rolledBackOnError, type RawMysqlConnection } from '../../persistence/sql/database.ts';

function connection(rollback: 'ok' | 'fails') {
  const seen: string[] = [];
  const conn: RawMysqlConnection = {
    execute: () => undefined,
    query: (sql, callback) => {
      seen.push(sql);
      callback(sql === 'ROLLBACK' && rollback === 'fails' ? new Error('Lock wait timeout exceeded') : null, {});
    },
    destroy: () => seen.push('destroy'),
    stream: { destroy: () => seen.push('socket destroyed') },
  };
  return { conn, seen };
}

describe('a transaction that fails on a MySQL connection', () => {
  it('is rolled back and its connection kept; a connection whose ROLLBACK fails is destroyed', async () => {
    const failing = () => Promise.reject(new Error('duplicate entry'));
    const kept = connection('ok');
    await expect(rolledBackOnError(kept.conn, failing)).rejects.toThrow('duplicate entry');
    expect(kept.seen).toEqual(['ROLLBACK']);
    const doubtful = connection('fails');
    await expect(rolledBackOnError(doubtful.conn, failing)).rejects.toThrow('duplicate entry');
    expect(doubtful.seen).toEqual(['ROLLBACK', 'socket destroyed', 'destroy']);
    // A transaction that succeeds is not rolled back.
    const fine = connection('fails');
    expect(await rolledBackOnError(fine.conn, async () => 7)).toBe(7);
    expect(fine.seen).toEqual([]);
  });
});
