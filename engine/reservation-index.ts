// The live reservations of one SKU/date: looked up by order id, walked in the order they were made.
// A flash sale holds hundreds of thousands of them for as long as their buyers take to pay, so they
// are kept in columns of typed arrays, not as JavaScript objects:
//
// - Objects kept that long reach the old generation, and every young-generation collection (every
//   ~60 ms at 150,000 reservations/s) first copies the newest of them twice; every full collection
//   marks all of them. Measured before this table (heap snapshots, `docs/performance.md`, session
//   11): 5 heap objects and 243 bytes per live reservation (the object, its two strings, two boxed
//   doubles for its times, its Map entry), and under an open-loop load of 150,000 reservations/s
//   stalls of 30–50 ms whenever a full collection's incremental marking ran. A row here is a few
//   typed-array slots the collector never looks into: no object per reservation at all.
// - One JavaScript Map that size rehashes everything each time it doubles (measured: 29 ms at
//   524,288 entries). This table's own hash index grows incrementally: a few slots of the old
//   index move to the new one per operation, so no single operation pays for the whole.
// - Nor for the new index's memory: a fresh array of megabytes is mapped lazily, and each of its
//   4 KiB pages costs a page fault (~2 µs on these VMs) when first written. Probed at random, the
//   first ~10,000 operations after a growth to 2,097,152 slots (16 MiB, at 524,288 reservations)
//   each faulted a page: +25 ms within ~65 ms of an open loop at 150,000 reservations/s, its worst
//   stall. A large index's successor is made ahead (from three eighths full; it grows at half) and
//   its pages are written a page every PREPARE_OPS_PER_PAGE additions, so growth finds it mapped.
//
// Rows are appended in arrival order to chunks of CHUNK_ROWS rows (a chunk's arrays start small and
// double, so a SKU/date with a handful of reservations stays small); a deleted row is only marked,
// and a chunk whose rows are all deleted lets its arrays go. A reservation read from the table is a
// new object each time (`get`, `values`): callers read it, they never compare identities. Walks that
// need one field of every row (the expiry pass, the earliest expiry) read its column in place and
// build only the reservations they return; an operator's page of ids after a cursor reads only the
// chunks whose range of ids can hold some of it (`after`).

import type { Reservation } from './inventory.ts';

const CHUNK_BITS = 10;
const CHUNK_ROWS = 1 << CHUNK_BITS;
const ROW_IN_CHUNK = CHUNK_ROWS - 1;
/** Rows a chunk's arrays hold at first (doubling up to CHUNK_ROWS). */
const CHUNK_ROWS_FIRST = 8;
/** Text bytes a chunk starts with per row it can hold (an order id and a short user id). */
const TEXT_BYTES_PER_ROW = 40;

// Row flags.
const LIVE = 1;
const LIMITED = 2;
/** The order id, or the user id, has a character above U+00FF: stored as two bytes per character. */
const WIDE_ID = 4;
const WIDE_USER = 8;

// Numeric columns (Float64Array, NUMS per row) and text columns (Int32Array, INTS per row).
const NUMS = 4;
const CREATED_AT = 0;
const EXPIRES_AT = 1;
const AMOUNT_CENTS = 2;
const QTY = 3;
const INTS = 4;
const ID_AT = 0;
const ID_LENGTH = 1;
const USER_AT = 2;
const USER_LENGTH = 3;

// Hash index slots: row id + 1, or one of these.
const EMPTY = 0;
const DELETED = -1;
/** Slots of an index no smaller than this (a power of two). */
const SLOTS_MIN = 16;
/** Old-index slots moved to the new index per operation while it grows or shrinks. */
const MIGRATE_PER_OPERATION = 16;
/** An index of this many slots or more (512 KiB of entries) has its successor made ahead of its growth. */
const PREPARE_SLOTS_MIN = 1 << 16;
/** Int32 entries in a 4 KiB page. */
const ENTRIES_PER_PAGE = 1024;
/**
 * Additions per page of the successor written ahead: its pages (capacity / 256 of them, the successor
 * twice as large) are all written after capacity / 16 additions, well before the growth at capacity / 2
 * slots used (the preparation starts at 3 / 8).
 */
const PREPARE_OPS_PER_PAGE = 16;
/** Slots hold row id + 1 in an Int32Array; past this row id the rows are renumbered from 0. */
export const ROW_ID_MAX = 0x7ffffffe;

class Chunk {
  rows = 0;
  live = 0;
  capacity: number;
  nums: Float64Array;
  ints: Int32Array;
  flags: Uint8Array;
  text: Uint8Array;
  textEnd = 0;
  /**
   * The least and the greatest order id among the chunk's live rows, as of its first `boundedRows`
   * rows: computed when a listing first reads the chunk, extended over the rows appended since (rows
   * are only appended; a deleted row never comes back, so deletions only leave the bounds wider than
   * they need be). Not kept up to date by `set`: that is the reservation hot path.
   */
  idMin: string | undefined;
  idMax: string | undefined;
  boundedRows = 0;

  constructor(capacity: number) {
    this.capacity = capacity;
    this.nums = new Float64Array(capacity * NUMS);
    this.ints = new Int32Array(capacity * INTS);
    this.flags = new Uint8Array(capacity);
    this.text = new Uint8Array(capacity * TEXT_BYTES_PER_ROW);
  }

  /** Room for one more row (the caller appends to a chunk only while it holds under CHUNK_ROWS). */
  makeRoom(): void {
    if (this.rows < this.capacity) return;
    const capacity = Math.min(CHUNK_ROWS, this.capacity * 2);
    this.nums = grown(this.nums, capacity * NUMS);
    this.ints = grown(this.ints, capacity * INTS);
    this.flags = grown(this.flags, capacity);
    this.capacity = capacity;
  }

  /** Stores `s` in the chunk's text; returns where, with WIDE set in the result's sign when wide. */
  writeText(s: string, wide: boolean): number {
    const bytes = wide ? s.length * 2 : s.length;
    if (this.textEnd + bytes > this.text.length) this.text = grown(this.text, Math.max(this.text.length * 2, this.textEnd + bytes));
    const at = this.textEnd;
    const text = this.text;
    if (wide) {
      for (let i = 0; i < s.length; i++) {
        const c = s.charCodeAt(i);
        text[at + 2 * i] = c & 0xff;
        text[at + 2 * i + 1] = c >>> 8;
      }
    } else {
      for (let i = 0; i < s.length; i++) text[at + i] = s.charCodeAt(i);
    }
    this.textEnd += bytes;
    return at;
  }

  /** Brings idMin and idMax up to the rows appended since they were computed (see idMin). */
  bound(): void {
    if (this.boundedRows === this.rows) return;
    let min = -1;
    let max = -1;
    for (let i = this.boundedRows; i < this.rows; i++) {
      // A deleted row's flags are cleared (its id's width too): it is never live again, so not bounded.
      if (!(this.flags[i]! & LIVE)) continue;
      if (min < 0 || compareRows(this, i, this, min) < 0) min = i;
      if (max < 0 || compareRows(this, i, this, max) > 0) max = i;
    }
    this.boundedRows = this.rows;
    if (min < 0) return;
    if (this.idMin === undefined || compareId(this, min, this.idMin) < 0) this.idMin = idOf(this, min);
    if (this.idMax === undefined || compareId(this, max, this.idMax) > 0) this.idMax = idOf(this, max);
  }

  /** Lets the arrays go (every row deleted, none to come: the chunk is full). */
  release(): void {
    this.capacity = 0;
    this.nums = EMPTY_NUMS;
    this.ints = EMPTY_INTS;
    this.flags = EMPTY_BYTES;
    this.text = EMPTY_BYTES;
    this.textEnd = 0;
  }
}

const EMPTY_NUMS = new Float64Array(0);
const EMPTY_INTS = new Int32Array(0);
const EMPTY_BYTES = new Uint8Array(0);

function grown<T extends Float64Array | Int32Array | Uint8Array>(a: T, length: number): T {
  const b = new (a.constructor as new (n: number) => T)(length);
  b.set(a);
  return b;
}

/**
 * An open-addressing hash index (linear probing) from an order id's hash to its row: slot i is
 * entries[2i] (row id + 1, EMPTY or DELETED) and entries[2i + 1] (the id's hash), side by side so that
 * a probe reads one cache line.
 */
class Slots {
  readonly entries: Int32Array;
  readonly mask: number;
  /** Slots not EMPTY (holding a row or DELETED): probing stops only at an EMPTY one. */
  used = 0;

  /** `entries`: of capacity * 2 entries, all EMPTY (see ReservationIndex.prepareGrowth for the exception). */
  constructor(
    readonly capacity: number,
    entries?: Int32Array,
  ) {
    this.entries = entries ?? new Int32Array(capacity * 2);
    this.mask = capacity - 1;
  }

  /** Puts a row whose id is in no slot yet (the caller checked). */
  place(hash: number, rowId: number): void {
    const entries = this.entries;
    let i = hash & this.mask;
    while (entries[2 * i]! > 0) i = (i + 1) & this.mask;
    if (entries[2 * i] === EMPTY) this.used++;
    entries[2 * i] = rowId + 1;
    entries[2 * i + 1] = hash;
  }
}

/** Slots for `n` entries: at most a third full, so that it grows at half full after n / 2 more. */
function slotsFor(n: number): number {
  let capacity = SLOTS_MIN;
  while (capacity < n * 3) capacity *= 2;
  return capacity;
}

/** FNV-1a over the UTF-16 code units, then murmur3's finalizer (linear probing wants mixed low bits). */
function hashOf(s: string): number {
  let h = 0x811c9dc5 | 0;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return h ^ (h >>> 16);
}

function isNarrow(s: string): boolean {
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) > 0xff) return false;
  return true;
}

/** Scratch of one string's character codes (strings are read synchronously, one at a time). */
const codes: number[] = [];
const CODES_PER_CALL = 4096;

function readText(text: Uint8Array, at: number, length: number, wide: boolean): string {
  let out = '';
  for (let from = 0; from < length; from += CODES_PER_CALL) {
    const n = Math.min(CODES_PER_CALL, length - from);
    codes.length = n;
    if (wide) for (let i = 0; i < n; i++) codes[i] = text[at + 2 * (from + i)]! | (text[at + 2 * (from + i) + 1]! << 8);
    else for (let i = 0; i < n; i++) codes[i] = text[at + from + i]!;
    const part = String.fromCharCode.apply(null, codes);
    out = from === 0 ? part : out + part;
  }
  return out;
}

/** Stored text against `s`, in code-unit order (as `<` compares strings): negative, 0 or positive. */
function compareText(text: Uint8Array, at: number, length: number, wide: boolean, s: string): number {
  const n = Math.min(length, s.length);
  for (let j = 0; j < n; j++) {
    const c = wide ? text[at + 2 * j]! | (text[at + 2 * j + 1]! << 8) : text[at + j]!;
    const d = c - s.charCodeAt(j);
    if (d !== 0) return d;
  }
  return length - s.length;
}

/** A row's order id against `s` (see compareText). */
function compareId(chunk: Chunk, i: number, s: string): number {
  const t = i * INTS;
  return compareText(chunk.text, chunk.ints[t + ID_AT]!, chunk.ints[t + ID_LENGTH]!, (chunk.flags[i]! & WIDE_ID) !== 0, s);
}

/** Two rows' order ids against each other (see compareText); both rows live (their flags hold the width). */
function compareRows(a: Chunk, i: number, b: Chunk, j: number): number {
  const s = i * INTS;
  const t = j * INTS;
  const aText = a.text;
  const bText = b.text;
  const aAt = a.ints[s + ID_AT]!;
  const bAt = b.ints[t + ID_AT]!;
  const aLength = a.ints[s + ID_LENGTH]!;
  const bLength = b.ints[t + ID_LENGTH]!;
  const aWide = (a.flags[i]! & WIDE_ID) !== 0;
  const bWide = (b.flags[j]! & WIDE_ID) !== 0;
  const n = Math.min(aLength, bLength);
  for (let k = 0; k < n; k++) {
    const c = aWide ? aText[aAt + 2 * k]! | (aText[aAt + 2 * k + 1]! << 8) : aText[aAt + k]!;
    const d = bWide ? bText[bAt + 2 * k]! | (bText[bAt + 2 * k + 1]! << 8) : bText[bAt + k]!;
    if (c !== d) return c - d;
  }
  return aLength - bLength;
}

/** A row's order id as a string. */
function idOf(chunk: Chunk, i: number): string {
  const t = i * INTS;
  return readText(chunk.text, chunk.ints[t + ID_AT]!, chunk.ints[t + ID_LENGTH]!, (chunk.flags[i]! & WIDE_ID) !== 0);
}

function reservation(orderId: string, userId: string, qty: number, amountCents: number, createdAt: number, expiresAt: number, limited: boolean): Reservation {
  // Two literals, so that every reservation read has one of two hidden classes.
  return limited ? { orderId, userId, qty, amountCents, createdAt, expiresAt, limited: true } : { orderId, userId, qty, amountCents, createdAt, expiresAt };
}

export interface ReservationIndexOptions {
  /** Row ids are renumbered from 0 past this one (tests set it low to exercise that). */
  row_id_max?: number;
  /** Indexes of this many slots or more have their successor made ahead (tests set it low to exercise that). */
  prepare_slots_min?: number;
  /** Memory of `length` entries for a successor made ahead, not zeroed (tests give it garbage). */
  unzeroed?: (length: number) => Int32Array;
}

/** `length` Int32 entries whose memory is not cleared when allocated (ReservationIndex.prepareGrowth clears it). */
function unzeroedEntries(length: number): Int32Array {
  const bytes = Buffer.allocUnsafeSlow(length * Int32Array.BYTES_PER_ELEMENT);
  return new Int32Array(bytes.buffer, bytes.byteOffset, length);
}

export class ReservationIndex {
  /** chunks[k] holds the rows whose id >> CHUNK_BITS is firstChunk + k. */
  private chunks: Chunk[] = [];
  private firstChunk = 0;
  private nextRow = 0;
  private count = 0;
  private slots = new Slots(SLOTS_MIN);
  /** The index being emptied into `slots` while it grows or shrinks, and the next slot of it to move. */
  private old: Slots | undefined;
  private migrated = 0;
  /**
   * The index `slots` grows into next, made ahead while `slots` is large (see prepareGrowth), and how
   * many of its entries have had their page written; additions since the last page was written.
   */
  private next: Slots | undefined;
  private nextWritten = 0;
  private additions = 0;
  private readonly rowIdMax: number;
  private readonly prepareSlotsMin: number;
  private readonly unzeroed: (length: number) => Int32Array;
  private lastHashed = '';
  private lastHash = hashOf('');

  constructor(options: ReservationIndexOptions = {}) {
    this.rowIdMax = options.row_id_max ?? ROW_ID_MAX;
    this.prepareSlotsMin = options.prepare_slots_min ?? PREPARE_SLOTS_MIN;
    this.unzeroed = options.unzeroed ?? unzeroedEntries;
  }

  get size(): number {
    return this.count;
  }

  get(orderId: string): Reservation | undefined {
    const rowId = this.rowOf(orderId, this.hashFor(orderId));
    return rowId < 0 ? undefined : this.read(rowId, orderId);
  }

  has(orderId: string): boolean {
    return this.rowOf(orderId, this.hashFor(orderId)) >= 0;
  }

  /** Adds a reservation (replacing one with the same id, which then keeps its place). */
  set(orderId: string, r: Reservation): this {
    if (r.orderId !== orderId) throw new Error(`reservation index: ${r.orderId} set under ${orderId}`);
    const hash = this.hashFor(orderId);
    const known = this.rowOf(orderId, hash);
    if (known >= 0) this.write(known, r, false);
    else {
      if (this.nextRow > this.rowIdMax) this.renumber();
      const rowId = this.append(r);
      if ((this.slots.used + 1) * 2 > this.slots.capacity) this.resize(this.count + 1);
      else if (this.slots.capacity >= this.prepareSlotsMin) this.prepareGrowth();
      this.slots.place(hash, rowId);
      this.count++;
    }
    this.migrate();
    return this;
  }

  delete(orderId: string): boolean {
    const hash = this.hashFor(orderId);
    let slots = this.slots;
    let i = this.slotOf(slots, orderId, hash);
    if (i < 0 && this.old) {
      slots = this.old;
      i = this.slotOf(slots, orderId, hash);
    }
    if (i < 0) return false;
    const rowId = slots.entries[2 * i]! - 1;
    slots.entries[2 * i] = DELETED;
    this.count--;
    if (this.count === 0) {
      this.clear();
      return true;
    }
    const chunk = this.chunkOf(rowId);
    chunk.flags[rowId & ROW_IN_CHUNK] = 0;
    chunk.live--;
    if (chunk.live === 0 && chunk.rows === CHUNK_ROWS) {
      chunk.release();
      this.dropReleasedHead();
    }
    if (!this.old && this.slots.capacity > SLOTS_MIN && this.count * 16 < this.slots.capacity) this.resize(this.count);
    this.migrate();
    return true;
  }

  /**
   * Replaces, in one pass in arrival order, every live reservation for which `replace` returns
   * another one (with the same id), each keeping its place; returns how many.
   */
  replaceEach(replace: (r: Reservation) => Reservation | undefined): number {
    let replaced = 0;
    this.scan((_chunk, _i, rowId) => {
      const r = this.read(rowId, undefined);
      const next = replace(r);
      if (next === undefined || next === r) return true;
      if (next.orderId !== r.orderId) throw new Error(`replaceEach: ${r.orderId} replaced by ${next.orderId}`);
      this.write(rowId, next, false);
      replaced++;
      return true;
    });
    return replaced;
  }

  /**
   * Expiry: the live reservations due by `now` (expiresAt ≤ now) in arrival order, at most `max`, and
   * the earliest expiry after them (`now` when more than `max` are due). With `inOrder` (each
   * reservation expires no earlier than the one before it) the walk stops at the first one not due;
   * otherwise it reads every row's expiry from its column, building no reservation for rows not due.
   */
  due(now: number, max: number, inOrder: boolean): { due: Reservation[]; nextExpiresAt: number | undefined } {
    const due: Reservation[] = [];
    let next = Infinity;
    this.scan((chunk, i, rowId) => {
      const expiresAt = chunk.nums[i * NUMS + EXPIRES_AT]!;
      if (expiresAt <= now) {
        if (due.length >= max) {
          next = now;
          return false;
        }
        due.push(this.read(rowId, undefined));
        return true;
      }
      next = Math.min(next, expiresAt);
      return !inOrder;
    });
    return { due, nextExpiresAt: next === Infinity ? undefined : next };
  }

  /** The earliest expiry of a live reservation (the first one's with `inOrder`, see `due`). */
  earliestExpiresAt(inOrder: boolean): number | undefined {
    let at = Infinity;
    this.scan((chunk, i) => {
      at = Math.min(at, chunk.nums[i * NUMS + EXPIRES_AT]!);
      return !inOrder;
    });
    return at === Infinity ? undefined : at;
  }

  /** The latest creation time among live reservations (undefined if none). */
  latestCreatedAt(): number | undefined {
    let at = -Infinity;
    this.scan((chunk, i) => {
      at = Math.max(at, chunk.nums[i * NUMS + CREATED_AT]!);
      return true;
    });
    return at === -Infinity ? undefined : at;
  }

  /**
   * The live reservations whose order id comes after `afterOrderId` (in code-unit order), the
   * `limit` first of them in that order. An operator pages a whole sale this way, up to a million
   * live reservations, in the SKU/date's actor (the node's one event loop): a walk over every row per
   * page took 77–150 ms at 1,000,000 (docs/performance.md, "Operators' listing"). Order ids grow with
   * time (engine/ids.ts) and rows are appended in arrival order, so each chunk holds a narrow range
   * of ids: a chunk whose ids are all at or before the cursor, or all at or after the `limit`-th id
   * found so far, is passed over on its bounds (Chunk.idMin/idMax) without reading its rows. Ids
   * are compared in their columns; only the reservations returned are built.
   */
  after(afterOrderId: string, limit: number): Reservation[] {
    if (limit <= 0) return [];
    /** Row ids of the candidates, in id order; never more than `limit`. */
    const rows: number[] = [];
    // The `limit`-th candidate, once there are `limit`: a row must come before it to be one.
    let lastChunk: Chunk | undefined;
    let lastI = 0;
    for (let k = 0; k < this.chunks.length; k++) {
      const chunk = this.chunks[k]!;
      if (chunk.live === 0) continue;
      chunk.bound();
      if (chunk.idMax! <= afterOrderId) continue;
      if (lastChunk && compareId(lastChunk, lastI, chunk.idMin!) <= 0) continue;
      const base = (this.firstChunk + k) << CHUNK_BITS;
      for (let i = 0; i < chunk.rows; i++) {
        if (!(chunk.flags[i]! & LIVE)) continue;
        if (compareId(chunk, i, afterOrderId) <= 0) continue;
        if (lastChunk && compareRows(chunk, i, lastChunk, lastI) >= 0) continue;
        // Insert in order (ids are unique): mostly at the end, rows being nearly in id order.
        let lo = 0;
        let hi = rows.length;
        const end = rows[hi - 1];
        if (end !== undefined && compareRows(this.chunkOf(end), end & ROW_IN_CHUNK, chunk, i) < 0) lo = hi;
        while (lo < hi) {
          const mid = (lo + hi) >>> 1;
          const other = rows[mid]!;
          if (compareRows(this.chunkOf(other), other & ROW_IN_CHUNK, chunk, i) < 0) lo = mid + 1;
          else hi = mid;
        }
        rows.splice(lo, 0, base + i);
        if (rows.length > limit) rows.pop();
        if (rows.length === limit) {
          const last = rows[limit - 1]!;
          lastChunk = this.chunkOf(last);
          lastI = last & ROW_IN_CHUNK;
        }
      }
    }
    return rows.map((rowId) => this.read(rowId, undefined));
  }

  /** Visits the live rows in arrival order until `visit` returns false (not while the index changes). */
  private scan(visit: (chunk: Chunk, i: number, rowId: number) => boolean): void {
    for (let k = 0; k < this.chunks.length; k++) {
      const chunk = this.chunks[k]!;
      if (chunk.capacity === 0) continue;
      const base = (this.firstChunk + k) << CHUNK_BITS;
      for (let i = 0; i < chunk.rows; i++) {
        if (chunk.flags[i]! & LIVE && !visit(chunk, i, base + i)) return;
      }
    }
  }

  /** The live reservations in arrival order (not to be called while the index changes). */
  *values(): IterableIterator<Reservation> {
    for (let k = 0; k < this.chunks.length; k++) {
      const chunk = this.chunks[k]!;
      if (chunk.capacity === 0) continue;
      for (let i = 0; i < chunk.rows; i++) {
        if (chunk.flags[i]! & LIVE) yield this.read(((this.firstChunk + k) << CHUNK_BITS) + i, undefined);
      }
    }
  }

  /**
   * An order id's hash, remembered for the last id: a reservation's id is looked up by `decide`
   * (`has`) and then added by `evolve` (`set`), and a settled one read then deleted.
   */
  private hashFor(orderId: string): number {
    if (orderId !== this.lastHashed) {
      this.lastHashed = orderId;
      this.lastHash = hashOf(orderId);
    }
    return this.lastHash;
  }

  private chunkOf(rowId: number): Chunk {
    return this.chunks[(rowId >>> CHUNK_BITS) - this.firstChunk]!;
  }

  /**
   * Throws if the hash index disagrees with the rows (tests call it; O(slots)): every slot holding a
   * row names a live row with its id's hash, the live rows are held exactly once, and each index's
   * count of used slots is right.
   */
  checkIntegrity(): void {
    let held = 0;
    for (const slots of this.old ? [this.slots, this.old] : [this.slots]) {
      let used = 0;
      let live = 0;
      const e = slots.entries;
      for (let i = 0; i < slots.capacity; i++) {
        const r = e[2 * i]!;
        if (r !== EMPTY) used++;
        if (r === EMPTY || r === DELETED) continue;
        if (r < 0) throw new Error(`reservation index: slot ${i} holds ${r}`);
        live++;
        const chunk = this.chunks[((r - 1) >> CHUNK_BITS) - this.firstChunk];
        if (!chunk || chunk.capacity === 0 || (chunk.flags[(r - 1) & ROW_IN_CHUNK]! & LIVE) === 0) throw new Error(`reservation index: slot ${i} names row ${r - 1}, not live`);
        if (e[2 * i + 1] !== hashOf(idOf(chunk, (r - 1) & ROW_IN_CHUNK))) throw new Error(`reservation index: slot ${i} holds another hash than its row's id`);
      }
      if (used !== slots.used) throw new Error(`reservation index: ${used} used slots counted as ${slots.used}`);
      held += live;
    }
    if (held !== this.count) throw new Error(`reservation index: ${held} rows in its index for ${this.count} reservations`);
  }

  /** The row of a live order id, or -1. */
  private rowOf(orderId: string, hash: number): number {
    let i = this.slotOf(this.slots, orderId, hash);
    if (i >= 0) return this.slots.entries[2 * i]! - 1;
    if (!this.old) return -1;
    i = this.slotOf(this.old, orderId, hash);
    return i >= 0 ? this.old.entries[2 * i]! - 1 : -1;
  }

  private slotOf(slots: Slots, orderId: string, hash: number): number {
    const entries = slots.entries;
    for (let i = hash & slots.mask; ; i = (i + 1) & slots.mask) {
      const r = entries[2 * i]!;
      if (r === EMPTY) return -1;
      if (r > 0 && entries[2 * i + 1] === hash && this.idIs(r - 1, orderId)) return i;
    }
  }

  private idIs(rowId: number, orderId: string): boolean {
    const chunk = this.chunkOf(rowId);
    const i = rowId & ROW_IN_CHUNK;
    return chunk.ints[i * INTS + ID_LENGTH] === orderId.length && compareId(chunk, i, orderId) === 0;
  }

  private read(rowId: number, orderId: string | undefined): Reservation {
    const chunk = this.chunkOf(rowId);
    const i = rowId & ROW_IN_CHUNK;
    const nums = chunk.nums;
    const ints = chunk.ints;
    const flags = chunk.flags[i]!;
    const n = i * NUMS;
    const t = i * INTS;
    return reservation(
      orderId ?? readText(chunk.text, ints[t + ID_AT]!, ints[t + ID_LENGTH]!, (flags & WIDE_ID) !== 0),
      readText(chunk.text, ints[t + USER_AT]!, ints[t + USER_LENGTH]!, (flags & WIDE_USER) !== 0),
      nums[n + QTY]!,
      nums[n + AMOUNT_CENTS]!,
      nums[n + CREATED_AT]!,
      nums[n + EXPIRES_AT]!,
      (flags & LIMITED) !== 0,
    );
  }

  /** A new row at the end of the arrival order; returns its id. */
  private append(r: Reservation): number {
    const rowId = this.nextRow;
    const k = rowId >>> CHUNK_BITS;
    if (this.chunks.length === 0) this.firstChunk = k;
    let chunk = this.chunks[k - this.firstChunk];
    if (!chunk) {
      // A SKU/date that filled a chunk is hot: its next chunks start at full size.
      chunk = new Chunk(this.chunks.length === 0 ? CHUNK_ROWS_FIRST : CHUNK_ROWS);
      this.chunks.push(chunk);
    }
    chunk.makeRoom();
    chunk.rows++;
    chunk.live++;
    this.nextRow++;
    this.write(rowId, r, true);
    return rowId;
  }

  /** Writes a reservation's fields into its row (a new row's id text too; a known row keeps its id). */
  private write(rowId: number, r: Reservation, isNew: boolean): void {
    const chunk = this.chunkOf(rowId);
    const i = rowId & ROW_IN_CHUNK;
    const n = i * NUMS;
    const t = i * INTS;
    chunk.nums[n + CREATED_AT] = r.createdAt;
    chunk.nums[n + EXPIRES_AT] = r.expiresAt;
    chunk.nums[n + AMOUNT_CENTS] = r.amountCents;
    chunk.nums[n + QTY] = r.qty;
    let flags = isNew ? LIVE : chunk.flags[i]! & (LIVE | WIDE_ID | WIDE_USER);
    if (r.limited) flags |= LIMITED;
    if (isNew) {
      const wideId = !isNarrow(r.orderId);
      if (wideId) flags |= WIDE_ID;
      chunk.ints[t + ID_AT] = chunk.writeText(r.orderId, wideId);
      chunk.ints[t + ID_LENGTH] = r.orderId.length;
    }
    if (isNew || !this.userIs(chunk, i, r.userId)) {
      const wideUser = !isNarrow(r.userId);
      flags = wideUser ? flags | WIDE_USER : flags & ~WIDE_USER;
      chunk.ints[t + USER_AT] = chunk.writeText(r.userId, wideUser);
      chunk.ints[t + USER_LENGTH] = r.userId.length;
    }
    chunk.flags[i] = flags;
  }

  private userIs(chunk: Chunk, i: number, userId: string): boolean {
    const t = i * INTS;
    return compareText(chunk.text, chunk.ints[t + USER_AT]!, chunk.ints[t + USER_LENGTH]!, (chunk.flags[i]! & WIDE_USER) !== 0, userId) === 0;
  }

  /**
   * Starts moving the index to `slotsFor(n)` slots (finishing a move still under way first), into
   * the successor made ahead when it has that size.
   */
  private resize(n: number): void {
    if (this.old) this.migrate(Infinity);
    this.old = this.slots;
    this.migrated = 0;
    const capacity = slotsFor(n);
    const next = this.next;
    this.next = undefined;
    if (next !== undefined && next.capacity === capacity) {
      // Written whole ahead of a growth (prepareGrowth): only a growth asked for sooner finishes here.
      if (this.nextWritten < next.entries.length) next.entries.fill(EMPTY, this.nextWritten);
      this.slots = next;
    } else this.slots = new Slots(capacity);
    this.migrate();
  }

  /**
   * From three eighths full on (no move under way), makes the index `slots` will grow into (twice
   * its size: the growth at half full with few deleted slots asks for that) and writes one page of
   * it every PREPARE_OPS_PER_PAGE additions: the page faults are paid a few at a time before the
   * growth instead of by the ~10,000 operations after it. Its memory is taken unzeroed (a zeroed
   * array of megabytes that the allocator takes from freed memory is cleared there and then: ~3 ms
   * for 16 MiB), and each page is zeroed as it is written, so the successor is an empty index once
   * every page has been; resize finishes one it needs sooner, and drops one of the wrong size.
   */
  private prepareGrowth(): void {
    const slots = this.slots;
    if (this.old || slots.used * 8 < slots.capacity * 3) return;
    let next = this.next;
    if (next === undefined) {
      const capacity = slots.capacity * 2;
      next = this.next = new Slots(capacity, this.unzeroed(capacity * 2));
      this.nextWritten = 0;
      this.additions = 0;
    }
    if (this.nextWritten >= next.entries.length || ++this.additions < PREPARE_OPS_PER_PAGE) return;
    this.additions = 0;
    next.entries.fill(EMPTY, this.nextWritten, this.nextWritten + ENTRIES_PER_PAGE);
    this.nextWritten += ENTRIES_PER_PAGE;
  }

  /**
   * Moves up to `max` slots of the old index into the new one. The new one was sized for 3× the
   * entries of both at the start, and grows again at half full, so what it takes from the old one
   * (at most a third of its slots) always leaves it an empty slot.
   */
  private migrate(max = MIGRATE_PER_OPERATION): void {
    const old = this.old;
    if (!old) return;
    const end = Math.min(old.capacity, this.migrated + max);
    const entries = old.entries;
    for (let i = this.migrated; i < end; i++) {
      const r = entries[2 * i]!;
      if (r > 0) {
        this.slots.place(entries[2 * i + 1]!, r - 1);
        entries[2 * i] = DELETED; // found in the new index from now on
      }
    }
    this.migrated = end;
    if (end === old.capacity) this.old = undefined;
  }

  /** Drops the released chunks at the head of the arrival order. */
  private dropReleasedHead(): void {
    let n = 0;
    while (n < this.chunks.length && this.chunks[n]!.capacity === 0) n++;
    if (n === 0) return;
    this.chunks.splice(0, n);
    this.firstChunk += n;
  }

  private clear(): void {
    this.chunks = [];
    this.firstChunk = 0;
    this.nextRow = 0;
    this.count = 0;
    this.slots = new Slots(SLOTS_MIN);
    this.old = undefined;
    this.migrated = 0;
    this.next = undefined;
  }

  /** Row ids ran out (ROW_ID_MAX): the live rows are written again from row 0, in the same order. */
  private renumber(): void {
    if (this.count > this.rowIdMax / 2) throw new Error(`reservation index: ${this.count} live rows leave no row ids (row_id_max ${this.rowIdMax})`);
    const live = [...this.values()];
    this.clear();
    for (const r of live) this.set(r.orderId, r);
  }
}
