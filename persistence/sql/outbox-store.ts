// The transactional outbox on SQL. The projector inserts each event for the outside world in the
// same transaction as the read model (outboxStatements, written by SqlProjectionStore.apply), ignoring
// an event id already there; readers (the NATS relay, the in-process bus) read rows in id order
// after their cursor, and rows every reader has passed are trimmed.
//
// Readers rely on ids growing in commit order: a row committed with an id below a reader's cursor
// would never be read. One projector writes one batch at a time, and on MySQL, where several nodes
// may project into one database, the outbox statements first lock a row that serializes outbox writers
// until their commit, so a later commit always gets greater ids.
import type { OutboxEvent, OutboxRow, OutboxStore } from '../ports.ts';
import type { SqlDatabase, SqlStatement } from './database.ts';
import { rowStatements, type SqlDialect } from './dialect.ts';

/** Rows one readAfter returns at most. */
export const outbox_read_rows_max = 10_000;
/** Rows one trim deletes at most (bounds the DELETE's lock time); call again for more. */
export const outbox_trim_rows_max = 10_000;
/** Cursors one trim may name. */
export const outbox_trim_cursors_max = 100;
/** Column bounds of the outbox tables (entities.ts). */
export const outbox_event_id_length_max = 200;
export const outbox_subject_length_max = 255;
export const outbox_cursor_name_length_max = 200;
/** The row of outbox_cursors whose lock serializes outbox writers on MySQL (not a reader's cursor). */
export const outbox_writer_lock_name = 'outbox:writer';

const outbox_columns = ['event_id', 'subject', 'body', 'at'] as const;

type Num = number | string;

/**
 * The statements that insert the events into the outbox, to run inside the caller's transaction, in
 * the given order (so their ids grow in that order); an event whose eventId is there already is
 * skipped. Throws RangeError (before anything is written) for an id or subject the table cannot hold.
 */
export function outboxStatements(d: SqlDialect, events: readonly OutboxEvent[]): SqlStatement[] {
  if (events.length === 0) return [];
  checkOutboxEvents(events);
  const out: SqlStatement[] = [];
  if (d.name === 'mysql') {
    // Held until commit: a second writer waits here, so its rows get their ids after this commit.
    out.push({ sql: d.insertIgnore('outbox_cursors', ['name', 'id'], 1), params: [outbox_writer_lock_name, 0] });
  }
  out.push(...rowStatements(events, (n) => d.insertIgnore('outbox', outbox_columns, n), (e) => [e.eventId, e.subject, e.body, e.at]));
  return out;
}

/** Throws RangeError for an event the table cannot hold (before any statement is made or run). */
function checkOutboxEvents(events: readonly OutboxEvent[]): void {
  for (const e of events) checkEvent(e);
}

function checkEvent(e: OutboxEvent): void {
  if (typeof e.eventId !== 'string' || e.eventId.length === 0 || e.eventId.length > outbox_event_id_length_max) {
    throw new RangeError(`outbox: event id must be 1..${outbox_event_id_length_max} characters`);
  }
  if (typeof e.subject !== 'string' || e.subject.length === 0 || e.subject.length > outbox_subject_length_max) {
    throw new RangeError(`outbox: event ${e.eventId}: subject must be 1..${outbox_subject_length_max} characters`);
  }
  if (typeof e.body !== 'string') throw new RangeError(`outbox: event ${e.eventId}: body must be JSON text`);
  if (!Number.isSafeInteger(e.at)) throw new RangeError(`outbox: event ${e.eventId}: at must be an integer`);
}

function checkCursorName(name: string): void {
  if (typeof name !== 'string' || name.length === 0 || name.length > outbox_cursor_name_length_max) {
    throw new RangeError(`outbox: cursor name must be 1..${outbox_cursor_name_length_max} characters`);
  }
  if (name === outbox_writer_lock_name) throw new RangeError(`outbox: ${outbox_writer_lock_name} is not a cursor`);
}

export class SqlOutboxStore implements OutboxStore {
  constructor(private readonly db: SqlDatabase) {}

  async readAfter(afterId: number, limit: number): Promise<OutboxRow[]> {
    if (!Number.isSafeInteger(afterId) || afterId < 0) throw new RangeError('outbox: afterId must be an integer >= 0');
    if (!Number.isInteger(limit) || limit < 1 || limit > outbox_read_rows_max) {
      throw new RangeError(`outbox: limit must be an integer in 1..${outbox_read_rows_max}`);
    }
    const rows = await this.db.all<{ id: Num; event_id: string; subject: string; body: string; at: Num }>(
      'outbox.readAfter',
      'SELECT id, event_id, subject, body, at FROM outbox WHERE id > ? ORDER BY id LIMIT ?',
      [afterId, limit],
    );
    return rows.map((r) => ({ id: Number(r.id), eventId: r.event_id, subject: r.subject, body: r.body, at: Number(r.at) }));
  }

  async cursor(name: string): Promise<number> {
    checkCursorName(name);
    const rows = await this.db.all<{ id: Num }>('outbox.cursor', 'SELECT id FROM outbox_cursors WHERE name = ?', [name]);
    return rows[0] === undefined ? 0 : Number(rows[0].id);
  }

  async saveCursor(name: string, id: number): Promise<void> {
    checkCursorName(name);
    if (!Number.isSafeInteger(id) || id < 0) throw new RangeError('outbox: a cursor is an integer >= 0');
    const sql = this.db.dialect.upsertIfGreater('outbox_cursors', ['name', 'id'], ['name'], 'id', 1);
    await this.db.run('outbox.saveCursor', sql, [name, id]);
  }

  /**
   * Deletes rows up to the lowest of the named cursors (a cursor never saved holds everything back;
   * no names trims nothing), at most outbox_trim_rows_max of them. The newest row is always kept, so
   * the table's highest id, and with it head(), never goes back, whatever the database does with
   * its auto-increment counter when the table is empty.
   */
  async trim(cursorNames: readonly string[]): Promise<number> {
    const names = [...new Set(cursorNames)];
    if (names.length === 0) return 0;
    if (names.length > outbox_trim_cursors_max) throw new RangeError(`outbox: at most ${outbox_trim_cursors_max} cursors per trim`);
    for (const name of names) checkCursorName(name);
    const cursors = await this.db.all<{ id: Num }>(
      'outbox.trim',
      `SELECT id FROM outbox_cursors WHERE name IN (${names.map(() => '?').join(', ')})`,
      names,
    );
    if (cursors.length < names.length) return 0;
    const floor = Math.min(...cursors.map((c) => Number(c.id)));
    const bounds = await this.db.all<{ lo: Num | null; hi: Num | null }>('outbox.trim', 'SELECT MIN(id) AS lo, MAX(id) AS hi FROM outbox');
    const lo = bounds[0]?.lo;
    const hi = bounds[0]?.hi;
    if (lo === null || lo === undefined || hi === null || hi === undefined) return 0;
    const upper = Math.min(floor, Number(hi) - 1, Number(lo) + outbox_trim_rows_max - 1);
    if (upper < Number(lo)) return 0;
    const res = await this.db.run('outbox.trim', 'DELETE FROM outbox WHERE id >= ? AND id <= ?', [Number(lo), upper]);
    return res.affectedRows;
  }

  async head(): Promise<number> {
    const rows = await this.db.all<{ id: Num | null }>('outbox.head', 'SELECT MAX(id) AS id FROM outbox');
    const id = rows[0]?.id;
    return id === null || id === undefined ? 0 : Number(id);
  }
}
