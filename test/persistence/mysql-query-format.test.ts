// Proves the MySQL statement formatting hands MikroORM's finished text over untouched (no placeholder
// scan) and still formats statements that come with values, like mysql2's own.
import { format } from 'mysql2';
import { describe, expect, it } from 'vitest';
import { formatMysqlQuery } from '../../persistence/sql/open.ts';

describe('MySQL query format', () => {
  it('leaves text without values as it is, question marks and quotes included', () => {
    const sql = `INSERT INTO journal (stream, events) VALUES ('a?b', X'3f'), ('it''s ? \\'', '?')`;
    expect(formatMysqlQuery(sql, [])).toBe(sql);
    expect(formatMysqlQuery(sql, undefined)).toBe(sql);
    expect(formatMysqlQuery(sql, null)).toBe(sql);
  });

  it('formats statements that carry values exactly like mysql2', () => {
    const cases: [string, unknown[]][] = [
      ['SELECT * FROM t WHERE a = ? AND b = ?', ["o'hara", 3]],
      ['INSERT INTO t (x) VALUES (?)', [Buffer.from('{"q":"?"}')]],
      ['SELECT ?? FROM t WHERE c IN (?)', ['col', ['x', 'y']]],
    ];
    for (const [sql, values] of cases) {
      expect(formatMysqlQuery(sql, values)).toBe(format(sql, values as never));
      expect(formatMysqlQuery(sql, values)).not.toContain('?');
    }
  });
});
