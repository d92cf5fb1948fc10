// The journal is the outbox. A SKU/date's events for the outside world (order.reserved, paid,
// cancelled, expired) are already durable in its journal, written in the same commit as the change;
// the projector indexes each durable write in the outbox table as one *range* row (stream, first and
// last seq, which event kinds it holds), in the same transaction as the read model. A flash sale of
// 10^5 reservations thus adds a few hundred outbox rows, not 10^5. Order and delivery streams, whose
// events are few, put each event in the outbox whole.
//
// This reader turns the table back into events for the relay (NATS) and the outbox bus: a range row
// becomes its events, made from the journal by actors/inventory-projection.ts (the same events
// however often they are made). Positions are row id × OUTBOX_ROW_SPAN + the event's index in its
// row, so a reader can stop and resume in the middle of a range. A filter hint lets a reader skip a
// range none of whose event kinds it wants without reading the journal.

import { OUTBOX_SKIP_SUBJECT, type JournalStore, type OutboxEvent, type OutboxRow, type OutboxStore, type PublishedRows } from '../persistence/ports.ts';
import { subjectMatches } from '../persistence/bus/subjects.ts';
import { decodeEvent } from './inventory-codec.ts';
import { inventoryOutboxEvent, outboxKindOf, outboxTypesOf, type StreamContext } from './inventory-projection.ts';
import { eventSubject } from './order-events.ts';
import { splitStream } from '../engine/shard.ts';

/** Positions per outbox row: more than the events one journal write can hold (STAMPEDE_COMMIT_EVENTS_MAX ≤ 100,000). */
export const OUTBOX_ROW_SPAN = 2 ** 20;
/**
 * Rows wholly behind a reader `positions` behind the head (OutboxRelay.lag). A reader past a one-event
 * row stands at the row's first position, the head at its last: SPAN - 1 positions is no row behind.
 */
export function outboxLagRows(positions: number): number {
  return Math.floor(Math.max(0, positions) / OUTBOX_ROW_SPAN);
}

/** The subject of a range row in the table (never published). */
export const OUTBOX_RANGE_SUBJECT = '$range';

/** A range of one SKU/date's journal whose events go to the outside world. */
export interface OutboxRange {
  stream: string;
  fromSeq: number;
  toSeq: number;
  /** OUTBOX_KIND bits of the events in the range. */
  kinds: number;
  merchantId: string;
}

/** The outbox row of a range (written by the projector with the read model). */
export function outboxRangeRow(range: OutboxRange, at: number): OutboxEvent {
  return { eventId: `${range.stream}:${range.fromSeq}-${range.toSeq}`, subject: OUTBOX_RANGE_SUBJECT, body: JSON.stringify(range), at };
}

/** Events of one range row at most: well inside a row's positions (OUTBOX_ROW_SPAN, whose last one marks the row's end). */
export const OUTBOX_RANGE_EVENTS_MAX = 2 ** 19;

/**
 * The outbox rows of a range of any length (a recovery's: everything its SKU/date wrote since the read
 * model's checkpoint): consecutive ranges of at most `max` events, each with the whole range's kinds
 * (a superset: a reader may read a part none of whose events it wants, never skip one it wants).
 */
export function outboxRangeRows(range: OutboxRange, at: number, max = OUTBOX_RANGE_EVENTS_MAX): OutboxEvent[] {
  const rows: OutboxEvent[] = [];
  for (let from = range.fromSeq; from <= range.toSeq; from += max) {
    rows.push(outboxRangeRow({ ...range, fromSeq: from, toSeq: Math.min(range.toSeq, from + max - 1) }, at));
  }
  return rows;
}

/** The name of the row-granular shadow of a cursor (what the table's trim compares with row ids). */
const rowsCursor = (name: string): string => `${name}#rows`;

export class JournalOutbox implements OutboxStore {
  /** The last range expanded: a reader that stopped in its middle resumes without reading the journal again. */
  private cached: { rowId: number; range: ExpandedRange } | undefined;

  constructor(
    private readonly rows: OutboxStore,
    private readonly journal: JournalStore,
  ) {}

  async readAfter(afterPos: number, limit: number, filter?: string, published?: PublishedRows): Promise<OutboxRow[]> {
    const firstRow = Math.floor(afterPos / OUTBOX_ROW_SPAN);
    const raw = await this.rows.readAfter(Math.max(0, firstRow - 1), Math.min(limit, 500));
    const out: OutboxRow[] = [];
    for (const row of raw) {
      const base = row.id * OUTBOX_ROW_SPAN;
      const last = base + OUTBOX_ROW_SPAN - 1;
      // A row published already (at its commit) is passed over whole: a range without reading the journal.
      const done = last > afterPos && published !== undefined && (await published(row.eventId));
      if (row.subject !== OUTBOX_RANGE_SUBJECT) {
        if (base > afterPos) out.push(done ? { id: base, eventId: row.eventId, subject: OUTBOX_SKIP_SUBJECT, body: '', at: row.at } : { ...row, id: base });
      } else {
        const range = JSON.parse(row.body) as OutboxRange;
        if (!done && (filter === undefined || mayMatch(range, filter))) {
          const events = await this.expand(row.id, range);
          for (let i = Math.max(0, afterPos - base + 1); i < events.count && out.length < limit; i++) {
            // A literal, not `{ ...e, id }`: a spread followed by a new key took a hidden class of
            // its own per event (docs/performance.md, "Session 10").
            const e = events.event(i);
            out.push({ id: base + i, eventId: e.eventId, subject: e.subject, body: e.body, at: e.at });
          }
          if (out.length >= limit) break;
        }
        // Past the range's last event: the reader's position moves to the end of the row.
        if (last > afterPos) out.push({ id: last, eventId: row.eventId, subject: OUTBOX_SKIP_SUBJECT, body: '', at: row.at });
      }
      if (out.length >= limit) break;
    }
    return out;
  }

  cursor(name: string): Promise<number> {
    return this.rows.cursor(name);
  }

  async saveCursor(name: string, pos: number): Promise<void> {
    await this.rows.saveCursor(name, pos);
    // Rows wholly behind the position may be trimmed once every reader is past them.
    const done = Math.floor((pos + 1) / OUTBOX_ROW_SPAN) - 1;
    if (done > 0) await this.rows.saveCursor(rowsCursor(name), done);
  }

  trim(cursorNames: readonly string[]): Promise<number> {
    return this.rows.trim(cursorNames.map(rowsCursor));
  }

  async head(): Promise<number> {
    const row = await this.rows.head();
    return row === 0 ? 0 : row * OUTBOX_ROW_SPAN + OUTBOX_ROW_SPAN - 1;
  }

  /**
   * The range's events for the outside world, made one at a time as the reader asks for them: what is
   * kept meanwhile is the journal's encoded events (a range after a recovery may hold 2^19 of them;
   * made whole, their JSON bodies took ~250 MB).
   */
  private async expand(rowId: number, range: OutboxRange): Promise<ExpandedRange> {
    if (this.cached?.rowId === rowId) return this.cached.range;
    const [skuId, date] = splitStream(range.stream);
    const context = { stream: range.stream, skuId, date, merchantId: range.merchantId };
    const raws: unknown[] = [];
    const seqs: number[] = [];
    for (const record of await this.journal.readRange(range.stream, range.fromSeq, range.toSeq)) {
      let seq = record.seq;
      for (const raw of record.events) {
        if (seq >= range.fromSeq && seq <= range.toSeq && outboxKindOf(decodeEvent(raw)) !== 0) {
          raws.push(raw);
          seqs.push(seq);
        }
        seq++;
      }
    }
    const expanded: ExpandedRange = {
      count: raws.length,
      event: (i) => inventoryOutboxEvent(decodeEvent(raws[i]), seqs[i]!, context)!,
    };
    this.cached = { rowId, range: expanded };
    return expanded;
  }
}

/** A range row's events for the outside world, by their index in the row (see expand). */
interface ExpandedRange {
  count: number;
  event(i: number): OutboxEvent;
}

/**
 * The events for the outside world among a journal record's `raws` (the first at `firstSeq`) within
 * fromSeq..toSeq, appended to `out`: what the relay makes of a range row, and what an inventory
 * actor hands the live publisher once its write is durable.
 */
export function rangeEvents(
  raws: readonly unknown[],
  firstSeq: number,
  context: StreamContext,
  fromSeq: number,
  toSeq: number,
  out: OutboxEvent[] = [],
): OutboxEvent[] {
  let seq = firstSeq;
  for (const raw of raws) {
    if (seq >= fromSeq && seq <= toSeq) {
      const e = inventoryOutboxEvent(decodeEvent(raw), seq, context);
      if (e) out.push(e);
    }
    seq++;
  }
  return out;
}

/** Whether any event kind of the range could match the subject filter. */
function mayMatch(range: OutboxRange, filter: string): boolean {
  return outboxTypesOf(range.kinds).some((type) => subjectMatches(filter, eventSubject(range.merchantId, type)));
}

/** Lag in rows of a position behind the head (for metrics). */
export function outboxRowsBehind(head: number, pos: number): number {
  return Math.max(0, Math.floor(head / OUTBOX_ROW_SPAN) - Math.floor(pos / OUTBOX_ROW_SPAN));
}
