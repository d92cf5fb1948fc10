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

  it('still maps an unreachable database to StoreUnavailableError', () => {
    const refused = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:3306'), { code: 'ECONNREFUSED' });
    const mapped = mapSqlError(refused, converter, 'journal.append');
    expect(mapped).toBeInstanceOf(StoreUnavailableError);
    expect(mapped.message).toContain('journal.append');
  });
});
