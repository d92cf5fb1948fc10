// Card keys of a SKU on SQL, stored encrypted with a hash that dedupes uploads: adding the same key
// twice (in one upload or across uploads) stores it once, and `add` says how many were new.
//
// Assignment is enforced by the store, not by its caller: a key row goes from `order_id IS NULL` to
// an order exactly once, through a conditional UPDATE (`... WHERE sku_id = ? AND order_id IS NULL
// AND id IN (...)`) whose affected-row count must equal the number of keys asked for. A row already
// assigned (or of another SKU, or missing) does not match, the count falls short, and the whole
// transaction is rolled back with CardKeyConflictError: all or nothing. Two writers racing for the
// same row serialize on its row lock (InnoDB) or on the database write lock (SQLite); the second
// re-evaluates `order_id IS NULL` against the committed row, matches nothing, and loses. Keys are
// updated in ascending (sku, id) order, so two transactions lock rows in the same order and cannot
// deadlock each other. No locking read comes first: the UPDATE is the check. In the same transaction
// each order is then checked to hold only the keys of this call, so an order never gets a second set.
// Journal records may ride in the same transaction (the orders' `delivered`, decided on these keys):
// an order is then delivered with its keys or not at all, in one commit instead of two in a row.
import { CardKeyConflictError } from '../errors.ts';
import type { CardKeyAssignment, CardKeyStore, JournalRecord } from '../ports.ts';
import type { CheckedStatement, RunResult, SqlDatabase } from './database.ts';
import { chunks, statement_rows_max } from './dialect.ts';
import { journalInserts } from './journal-store.ts';

/** Keys in one upload (the API's bound). */
export const card_keys_per_add_max = 10_000;
/** Keys in one `assign` call (bounds the transaction's statements and locks). */
export const card_keys_per_assign_max = 10_000;
/** Ids one `unassigned` call returns at most. */
export const card_keys_unassigned_read_max = 10_000;
/** Keys one `reveal` call may ask for (an order's qty is at most 100). */
export const card_keys_per_reveal_max = 1_000;
/** Keys assigned to one order that `assignedTo` returns at most (far above the API's qty bound of 100). */
export const card_keys_per_order_max = 1_000;
/** The `order_id` column's length (entities.ts). */
export const card_key_order_id_length_max = 64;

const hash_pattern = /^[0-9a-f]{64}$/;

type Num = number | string;

export class SqlCardKeyStore implements CardKeyStore {
  constructor(private readonly db: SqlDatabase) {}

  async add(skuId: string, keys: readonly { hash: string; ciphertext: string }[]): Promise<number> {
    if (keys.length === 0) return 0;
    if (keys.length > card_keys_per_add_max) {
      throw new RangeError(`card keys: ${keys.length} keys in one add, at most ${card_keys_per_add_max}`);
    }
    for (const k of keys) {
      // The hash is the dedupe key (an HMAC-SHA256 in hex): anything else is a caller's mistake.
      if (!hash_pattern.test(k.hash)) throw new RangeError('card keys: a key hash is not 64 lowercase hex digits');
    }
    const statements = chunks(keys).map((part) => ({
      sql: this.db.dialect.insertIgnore('card_keys', ['sku_id', 'key_hash', 'ciphertext'], part.length),
      params: part.flatMap((k) => [skuId, k.hash, k.ciphertext]),
    }));
    // One transaction: all the keys or none; each statement reports the keys that were new.
    const results = await this.db.batch('cardKeys.add', statements);
    return results.reduce((added, r) => added + r.affectedRows, 0);
  }

  async count(skuId: string): Promise<number> {
    const rows = await this.db.all<{ n: Num }>('cardKeys.count', 'SELECT COUNT(*) AS n FROM card_keys WHERE sku_id = ?', [skuId]);
    return Number(rows[0]?.n ?? 0);
  }

  async unassigned(skuId: string, afterId: number, limit: number): Promise<number[]> {
    if (!Number.isSafeInteger(afterId) || afterId < 0) throw new RangeError(`card keys: afterId must be an integer >= 0, got ${afterId}`);
    if (!Number.isSafeInteger(limit) || limit < 1 || limit > card_keys_unassigned_read_max) {
      throw new RangeError(`card keys: limit must be an integer in 1..${card_keys_unassigned_read_max}, got ${limit}`);
    }
    // card_keys_sku_order_index (sku_id, order_id) serves this in id order: both InnoDB (the primary
    // key) and SQLite (the rowid, which `id` is) append the row id to every secondary index entry.
    const rows = await this.db.all<{ id: Num }>(
      'cardKeys.unassigned',
      'SELECT id FROM card_keys WHERE sku_id = ? AND order_id IS NULL AND id > ? ORDER BY id LIMIT ?',
      [skuId, afterId, limit],
    );
    return rows.map((r) => Number(r.id));
  }

  async assign(assignments: readonly CardKeyAssignment[], at: number, journal: readonly JournalRecord[] = []): Promise<void> {
    const rows = checkAssignments(assignments);
    if (rows.length === 0) {
      if (journal.length > 0) throw new RangeError('card keys: journal records come with the assignments they were decided on');
      return;
    }
    // One transaction: the updates, the check that each order holds exactly this call's keys, and the
    // journal records that ride with them. On MySQL the checks are guards in the same packet as the
    // statements and the COMMIT (one round trip; a failed guard rolls back and the batch runs again
    // with the checks read before the commit, which say what conflicted): guardedBatch.
    const statements: CheckedStatement[] = [];
    const updates: { skuId: string; keys: number }[] = [];
    // Rows are sorted by (sku, id); a statement never spans two SKUs.
    for (const part of chunksBySku(rows)) {
      const skuId = part[0]!.skuId;
      const ids = part.map((r) => r.id);
      const cases = part.map(() => 'WHEN ? THEN ?').join(' ');
      statements.push({
        sql: `UPDATE card_keys SET order_id = CASE id ${cases} END, assigned_at = ? WHERE sku_id = ? AND order_id IS NULL AND id IN (${ids.map(() => '?').join(', ')})`,
        params: [...part.flatMap((r) => [r.id, r.orderId]), at, skuId, ...ids],
        guard: { sql: 'ROW_COUNT() = ?', params: [part.length] },
      });
      updates.push({ skuId, keys: part.length });
    }
    // An order gets one key set: after the updates it must hold exactly the keys of this call. (Its
    // caller checks assignedTo first; this catches a write of an earlier, timed-out call that
    // committed after that check.)
    const expected = new Map<string, number>();
    const skuOf = new Map<string, string>();
    for (const r of rows) {
      expected.set(r.orderId, (expected.get(r.orderId) ?? 0) + 1);
      skuOf.set(r.orderId, r.skuId);
    }
    // One key set per order, by the unique key of `card_key_sets` (no locking read): an earlier call
    // that assigned keys to one of these orders, committed or still committing (its caller timed out),
    // makes this insert find the key taken (it waits for that transaction, as a second journal writer
    // does). The count covers orders given keys before that table existed.
    const orderIds = [...expected.keys()];
    const parts = chunks(orderIds);
    for (const part of parts) {
      statements.push({
        sql: this.db.dialect.insertIgnore('card_key_sets', ['order_id', 'sku_id', 'assigned_at'], part.length),
        params: part.flatMap((orderId) => [orderId, skuOf.get(orderId)!, at]),
        guard: { sql: 'ROW_COUNT() = ?', params: [part.length] },
      });
    }
    for (const part of parts) {
      const inList = part.map(() => '?').join(', ');
      statements.push({
        sql: `SELECT order_id, COUNT(*) AS n FROM card_keys WHERE order_id IN (${inList}) GROUP BY order_id`,
        params: part,
        rows: true,
        // The updates (guarded) gave each order at least its keys of this call, so the orders' keys
        // add up to this call's only when none holds more: one count over the index, not one per order.
        guard: {
          sql: `(SELECT COUNT(*) FROM card_keys WHERE order_id IN (${inList})) = ?`,
          params: [...part, part.reduce((n, orderId) => n + expected.get(orderId)!, 0)],
        },
      });
    }
    statements.push(...journalInserts(this.db, journal));
    await this.db.guardedBatch(
      'cardKeys.assign',
      statements,
      (results) => {
        updates.forEach((u, i) => {
          const res = results[i] as RunResult;
          if (res.affectedRows !== u.keys) {
            throw new CardKeyConflictError(`card keys of ${u.skuId}: ${u.keys - res.affectedRows} of ${u.keys} keys are already assigned or not keys of the SKU; nothing was assigned`);
          }
        });
        parts.forEach((part, i) => {
          const inserted = (results[updates.length + i] as RunResult).affectedRows;
          if (inserted !== part.length) throw new CardKeyConflictError(`card keys: ${part.length - inserted} of ${part.length} orders already have a key set; nothing was assigned`);
        });
        parts.forEach((_, i) => {
          const held = results[updates.length + parts.length + i] as { order_id: string; n: Num }[];
          const extra = held.find((h) => Number(h.n) !== expected.get(h.order_id));
          if (extra) throw new CardKeyConflictError(`card keys: order ${extra.order_id} already has other keys; nothing was assigned`);
        });
      },
      'journal_conflict',
    );
  }

  async oldestAndNewest(): Promise<{ skuId: string; ciphertext: string }[]> {
    const pick = (order: 'ASC' | 'DESC') =>
      this.db.all<{ sku_id: string; ciphertext: string }>('cardKeys.sample', `SELECT sku_id, ciphertext FROM card_keys ORDER BY id ${order} LIMIT 1`);
    const rows = [...(await pick('ASC')), ...(await pick('DESC'))];
    return rows.map((r) => ({ skuId: r.sku_id, ciphertext: r.ciphertext }));
  }

  async assignedTo(orderId: string): Promise<number[]> {
    const rows = await this.db.all<{ id: Num }>(
      'cardKeys.assignedTo',
      'SELECT id FROM card_keys WHERE order_id = ? ORDER BY id LIMIT ?',
      [orderId, card_keys_per_order_max],
    );
    return rows.map((r) => Number(r.id));
  }

  async assignedToMany(orderIds: readonly string[]): Promise<Map<string, number[]>> {
    const out = new Map<string, number[]>();
    for (const id of orderIds) out.set(id, []);
    // One SELECT per few hundred orders instead of one each (the order_id index answers both).
    for (const part of chunks([...out.keys()])) {
      const rows = await this.db.all<{ id: Num; order_id: string }>(
        'cardKeys.assignedTo',
        `SELECT id, order_id FROM card_keys WHERE order_id IN (${part.map(() => '?').join(', ')}) ORDER BY order_id, id`,
        part,
      );
      for (const r of rows) out.get(r.order_id)?.push(Number(r.id));
    }
    return out;
  }

  async reveal(skuId: string, orderId: string, keyIds: readonly number[]): Promise<{ id: number; ciphertext: string }[]> {
    if (keyIds.length === 0) return [];
    if (keyIds.length > card_keys_per_reveal_max) {
      throw new RangeError(`card keys: ${keyIds.length} keys in one reveal, at most ${card_keys_per_reveal_max}`);
    }
    for (const id of keyIds) checkKeyId(id);
    const found = new Map<number, string>();
    for (const part of chunks([...new Set(keyIds)])) {
      const rows = await this.db.all<{ id: Num; ciphertext: string }>(
        'cardKeys.reveal',
        // Only keys assigned to this order, whatever ids are asked for (the ids come from the order's
        // own journal; the store checks it too).
        `SELECT id, ciphertext FROM card_keys WHERE sku_id = ? AND order_id = ? AND id IN (${part.map(() => '?').join(', ')})`,
        [skuId, orderId, ...part],
      );
      for (const r of rows) found.set(Number(r.id), r.ciphertext);
    }
    const out: { id: number; ciphertext: string }[] = [];
    for (const id of keyIds) {
      const ciphertext = found.get(id);
      if (ciphertext !== undefined) out.push({ id, ciphertext });
    }
    return out;
  }

  async countAssigned(skuId: string): Promise<number> {
    const rows = await this.db.all<{ n: Num }>('cardKeys.countAssigned', 'SELECT COUNT(*) AS n FROM card_keys WHERE sku_id = ? AND order_id IS NOT NULL', [skuId]);
    return Number(rows[0]?.n ?? 0);
  }

  async countUnassigned(skuId: string): Promise<number> {
    const rows = await this.db.all<{ n: Num }>(
      'cardKeys.countUnassigned',
      'SELECT COUNT(*) AS n FROM card_keys WHERE sku_id = ? AND order_id IS NULL',
      [skuId],
    );
    return Number(rows[0]?.n ?? 0);
  }
}

interface KeyRow {
  skuId: string;
  orderId: string;
  id: number;
}

/**
 * Flattens the assignments to one row per key, sorted by (sku, id). Throws RangeError for a caller's
 * mistake (a bad id or order id, an empty assignment, too many keys) and CardKeyConflictError for a
 * key named twice in the call (it cannot be assigned twice), both before touching the database.
 */
function checkAssignments(assignments: readonly CardKeyAssignment[]): KeyRow[] {
  const rows: KeyRow[] = [];
  for (const a of assignments) {
    if (a.orderId.length === 0 || a.orderId.length > card_key_order_id_length_max) {
      throw new RangeError(`card keys: order id must be 1..${card_key_order_id_length_max} characters`);
    }
    if (a.keyIds.length === 0) throw new RangeError(`card keys: the assignment to ${a.orderId} names no key`);
    for (const id of a.keyIds) {
      checkKeyId(id);
      rows.push({ skuId: a.skuId, orderId: a.orderId, id });
    }
    if (rows.length > card_keys_per_assign_max) {
      throw new RangeError(`card keys: more than ${card_keys_per_assign_max} keys in one assign`);
    }
  }
  rows.sort((x, y) => (x.skuId < y.skuId ? -1 : x.skuId > y.skuId ? 1 : x.id - y.id));
  for (let i = 1; i < rows.length; i++) {
    const [prev, cur] = [rows[i - 1]!, rows[i]!];
    if (prev.skuId === cur.skuId && prev.id === cur.id) {
      throw new CardKeyConflictError(`card keys of ${cur.skuId}: key ${cur.id} is named twice in one assign; nothing was assigned`);
    }
  }
  return rows;
}

function checkKeyId(id: number): void {
  if (!Number.isSafeInteger(id) || id < 1) throw new RangeError(`card keys: a key id must be an integer >= 1, got ${id}`);
}

/** Consecutive slices of at most statement_rows_max rows, each of one SKU. */
function chunksBySku(rows: readonly KeyRow[]): KeyRow[][] {
  const out: KeyRow[][] = [];
  let current: KeyRow[] = [];
  for (const r of rows) {
    if (current.length > 0 && (current.length >= statement_rows_max || current[0]!.skuId !== r.skuId)) {
      out.push(current);
      current = [];
    }
    current.push(r);
  }
  if (current.length > 0) out.push(current);
  return out;
}
