// The only place where MySQL/MariaDB and SQLite SQL differ: insert-ignore and the two kinds of upsert.
// Every store builds its statements here, so there is one copy of each store, not one per database.
// Statements use `?` placeholders; MikroORM's connection formats them with the driver's escaping.

export type DialectName = 'mysql' | 'sqlite';

/** Rows per multi-row statement: bounds the statement size (MySQL's max_allowed_packet) and lock time. */
export const statement_rows_max = 500;

export class SqlDialect {
  constructor(readonly name: DialectName) {}

  /** `(?, ?, ?), (?, ?, ?)` for `rows` rows of `columns` values. */
  values(rows: number, columns: number): string {
    const row = `(${new Array<string>(columns).fill('?').join(', ')})`;
    return new Array<string>(rows).fill(row).join(', ');
  }

  /** A plain multi-row INSERT: any duplicate key fails the statement. */
  insert(table: string, columns: readonly string[], rows: number): string {
    return `INSERT INTO ${table} (${columns.join(', ')}) VALUES ${this.values(rows, columns.length)}`;
  }

  /**
   * Inserts the rows whose unique keys are new and skips the others silently; the affected row count
   * is the number inserted. Not MySQL's INSERT IGNORE, which would also turn data errors (NULL in a
   * NOT NULL column, a value too long) into warnings and write a mangled row: a no-op update on the
   * duplicate instead, which counts 0 because open.ts connects without the FOUND_ROWS flag.
   */
  insertIgnore(table: string, columns: readonly string[], rows: number): string {
    if (this.name === 'mysql') {
      const first = columns[0];
      return `${this.insert(table, columns, rows)} ON DUPLICATE KEY UPDATE ${first} = ${first}`;
    }
    return `${this.insert(table, columns, rows)} ON CONFLICT DO NOTHING`;
  }

  /** Inserts, or overwrites every non-key column of the row with the same `keys`. */
  upsert(table: string, columns: readonly string[], keys: readonly string[], rows: number): string {
    const updated = columns.filter((c) => !keys.includes(c));
    if (this.name === 'mysql') {
      const set = updated.map((c) => `${c} = VALUES(${c})`).join(', ');
      return `${this.insert(table, columns, rows)} ON DUPLICATE KEY UPDATE ${set}`;
    }
    const set = updated.map((c) => `${c} = excluded.${c}`).join(', ');
    return `${this.insert(table, columns, rows)} ON CONFLICT (${keys.join(', ')}) DO UPDATE SET ${set}`;
  }

  /**
   * Insert, or on a key conflict replace the row only when the new one is the first answer of its
   * period: its `time` is at least `age_ms` after the stored one's (the stored one expired: an
   * idempotency key used again once its first answer ran out), or earlier than the stored one's and
   * within `age_ms` of it (the stored row was written later for a request that came after it: the new
   * row is the real first, written late — a reservation's answer reaches the read model after a
   * refusal of the same key, stored at once, was).
   */
  upsertFirstOfPeriod(table: string, columns: readonly string[], keys: readonly string[], time: string, age_ms: number, rows: number): string {
    const updated = columns.filter((c) => !keys.includes(c) && c !== time);
    if (this.name === 'mysql') {
      // Assigned left to right, each seeing the previous ones: the time column last (see upsertIfGreater).
      const first = `(VALUES(${time}) >= ${time} + ${age_ms} OR (VALUES(${time}) < ${time} AND VALUES(${time}) + ${age_ms} > ${time}))`;
      const set = [...updated, time].map((c) => `${c} = IF(${first}, VALUES(${c}), ${c})`).join(', ');
      return `${this.insert(table, columns, rows)} ON DUPLICATE KEY UPDATE ${set}`;
    }
    const set = [...updated, time].map((c) => `${c} = excluded.${c}`).join(', ');
    const t = `${table}.${time}`;
    return `${this.insert(table, columns, rows)} ON CONFLICT (${keys.join(', ')}) DO UPDATE SET ${set} WHERE excluded.${time} >= ${t} + ${age_ms} OR (excluded.${time} < ${t} AND excluded.${time} + ${age_ms} > ${t})`;
  }

  /**
   * Inserts, or overwrites the row with the same `keys` only when the new `guard` value is greater
   * than the stored one (so replaying an older write never moves a row backwards).
   */
  upsertIfGreater(
    table: string,
    columns: readonly string[],
    keys: readonly string[],
    guard: string,
    rows: number,
  ): string {
    const updated = columns.filter((c) => !keys.includes(c) && c !== guard);
    if (this.name === 'mysql') {
      // MySQL applies the assignments left to right, each seeing the previous ones: the guard column
      // must be assigned last, or the columns after it would compare against the new value.
      const newer = `VALUES(${guard}) > ${guard}`;
      const set = [...updated, guard].map((c) => `${c} = IF(${newer}, VALUES(${c}), ${c})`).join(', ');
      return `${this.insert(table, columns, rows)} ON DUPLICATE KEY UPDATE ${set}`;
    }
    const set = [...updated, guard].map((c) => `${c} = excluded.${c}`).join(', ');
    return (
      `${this.insert(table, columns, rows)} ON CONFLICT (${keys.join(', ')}) DO UPDATE SET ${set}` +
      ` WHERE excluded.${guard} > ${table}.${guard}`
    );
  }
}

/**
 * Bytes of values in one multi-row statement, at most (as given, before escaping: a string's quotes and
 * backslashes, a blob's hex can double them). Rows of a few hundred bytes never reach it; rows holding a
 * merchant's delivery payload (up to 32 KiB) would: 500 of them passed MariaDB's max_allowed_packet
 * (16 MiB) and the write failed on every retry.
 */
export const statement_value_bytes_max = 4 * 1024 * 1024;

/** The bytes a statement's values take, about (see statement_value_bytes_max). */
export function valueBytes(values: readonly unknown[]): number {
  let n = 0;
  for (const v of values) {
    if (typeof v === 'string') n += v.length > 64 ? Buffer.byteLength(v) : v.length;
    else if (v instanceof Uint8Array) n += v.byteLength;
    else n += 8;
  }
  return n;
}

/**
 * The multi-row statements that write `items`: at most statement_rows_max rows each, and at most
 * statement_value_bytes_max bytes of values (a row larger than that goes alone).
 */
export function rowStatements<T>(items: readonly T[], statement: (rows: number) => string, values: (item: T) => unknown[]): { sql: string; params: unknown[] }[] {
  const out: { sql: string; params: unknown[] }[] = [];
  let params: unknown[] = [];
  let rows = 0;
  let bytes = 0;
  for (const item of items) {
    const v = values(item);
    const size = valueBytes(v);
    if (rows > 0 && (rows >= statement_rows_max || bytes + size > statement_value_bytes_max)) {
      out.push({ sql: statement(rows), params });
      params = [];
      rows = 0;
      bytes = 0;
    }
    for (const x of v) params.push(x);
    rows++;
    bytes += size;
  }
  if (rows > 0) out.push({ sql: statement(rows), params });
  return out;
}

/** Splits `items` into consecutive slices of at most `size`. */
export function chunks<T>(items: readonly T[], size: number = statement_rows_max): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}
