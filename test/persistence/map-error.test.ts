// Proves the one place that maps SQL failures keeps the engine's own errors and a store's own checks
// as they are (a store may throw them inside a transaction), while driver failures still become the
// typed errors the engine reasons about: calling mapSqlError directly with each kind of error.
import { ExceptionConverter } from '@mikro-orm/core';
import { describe, expect, it } from 'vitest';
import { CardKeyConflictError, DuplicateKeyError, StoreUnavailableError } from '../../persistence/errors.ts';
import { mapSqlError } from '../../persistence/sql/map-error.ts';

const converter = new ExceptionConverter();

describe('mapSqlError', () => {
  it.each([
    ['a card-key conflict', new CardKeyConflictError('key 7 is taken')],
    ['a RangeError from a store check', new RangeError('outbox: bad event id')],
    ['a TypeError', new TypeError('bad argument')],
    ['a duplicate key already mapped', new DuplicateKeyError('dup')],
  ])('passes %s through unchanged', (_name, error) => {
    expect(mapSqlError(error, converter, 'op')).toBe(error);
  });

  it.each([
    ['a MariaDB deadlock (1213)', { code: 'ER_LOCK_DEADLOCK', errno: 1213 }],
    ['a read-only server after a failover (1290)', { code: 'ER_OPTION_PREVENTS_STATEMENT', errno: 1290 }],
    ['a full table (1114)', { code: 'ER_RECORD_FILE_FULL', errno: 1114 }],
    ['a packet over max_allowed_packet (1153)', { code: 'ER_NET_PACKET_TOO_LARGE', errno: 1153 }],
    ['an interrupted query (1317)', { code: 'ER_QUERY_INTERRUPTED', errno: 1317 }],
    ['a SQLite write I/O error', { code: 'SQLITE_IOERR_WRITE' }],
    ['a SQLite read-only database (a read-only remount)', { code: 'SQLITE_READONLY' }],
    ['a SQLite busy snapshot', { code: 'SQLITE_BUSY_SNAPSHOT' }],
  ])('maps %s to StoreUnavailableError (a 503 to retry, not a 500)', (_name, fields) => {
    const mapped = mapSqlError(Object.assign(new Error('driver error'), fields), converter, 'cardKeys.add');
    expect(mapped).toBeInstanceOf(StoreUnavailableError);
  });

  it('still maps an unreachable database to StoreUnavailableError', () => {
    const refused = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:3306'), { code: 'ECONNREFUSED' });
    const mapped = mapSqlError(refused, converter, 'journal.append');
    expect(mapped).toBeInstanceOf(StoreUnavailableError);
    expect(mapped.message).toContain('journal.append');
  });
});
