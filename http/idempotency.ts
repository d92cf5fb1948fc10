// Idempotency-Key at the HTTP hop: the first answer to (buyer, key) is the answer, for 24 h.
// In memory, a gate makes concurrent requests with one key share one execution; on a miss it
// asks the durable store (answers made durable before a restart). A different body with the same
// key is a 422. 5xx answers are not kept: the client retries them.

import { createHash } from 'node:crypto';
import { IDEMPOTENCY_ANSWER_MS } from '../persistence/ports.ts';

export interface Answer {
  status: number;
  body: unknown;
}

/** A first answer made durable earlier (the store's row). */
type StoredFirstAnswer = Answer & { requestHash: string; createdAt?: number };

interface Entry {
  /** Its key in `entries` (buyer and Idempotency-Key). */
  id: string;
  userId: string;
  hash: string;
  answer: Promise<Answer>;
  settledAt: number | undefined;
  /** When the key's first answer was made (a replayed one's, from the store): it is replayed 24 hours from then. */
  firstAt: number;
  /**
   * Its answer was a 5xx (or it threw): whether the request was applied is unknown, so the same body
   * runs again — but the key stays this body's: another body with it is 422 (it may own an order).
   */
  unknownOutcome?: true;
}

export interface IdempotencyGateOptions {
  /** Entries kept at most; the oldest settled ones are evicted first. */
  entries_max: number;
  /** A settled entry younger than this is never evicted (covers the read model's lag). */
  keep_min_ms: number;
  /**
   * Entries of one buyer at most (default IDEMPOTENCY_KEYS_PER_BUYER_MAX): past it that buyer's new keys
   * are turned away (`busy`: 429) until some of theirs age out, so one client minting a key per request
   * cannot fill the shared cache and have every buyer's keyed orders refused.
   */
  per_user_max?: number;
  /**
   * A settled entry older than this goes even when there is room (default IDEMPOTENCY_MEMORY_MS): its
   * durable answer is in the store by then (201 and 409 sold_out projected from their SKU/date's
   * journal; other refusals written before they were sent, actors/refusal-answers.ts). Memory follows
   * recent traffic, not the peak.
   */
  retain_ms?: number;
  now: () => number;
}

export const IDEMPOTENCY_TTL_MS = IDEMPOTENCY_ANSWER_MS;
/** How long the gate keeps a settled answer in memory by default (see IdempotencyGateOptions.retain_ms). */
export const IDEMPOTENCY_MEMORY_MS = 10 * 60_000;
/** A buyer's keys in memory at most, by default (see IdempotencyGateOptions.per_user_max). */
export const IDEMPOTENCY_KEYS_PER_BUYER_MAX = 1_000;
/** Retry-After of a buyer turned away for holding too many keys: its entries age out over the memory's retention. */
export const IDEMPOTENCY_BUSY_RETRY_S = 600;
/** Old entries dropped per request at most (the trimming is spread over the requests). */
const TRIM_PER_CALL = 32;

export function requestHash(method: string, path: string, body: unknown): string {
  return createHash('sha256').update(`${method} ${path}\n${canonicalJson(body)}`).digest('base64url');
}

/** JSON with object keys sorted, so the same request always hashes the same. */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null';
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  const keys = Object.keys(value as object).sort();
  return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson((value as Record<string, unknown>)[k])}`).join(',')}}`;
}

/** Stale places in the eviction queue tolerated past the live entries before it is rebuilt (see compact). */
const QUEUE_SLACK = 16;

export class IdempotencyGate {
  private readonly entries = new Map<string, Entry>();
  /**
   * The entries in the order they were made, oldest at `head`: what eviction walks, oldest first. An
   * entry removed from `entries` (evicted, or removed for a 422 or a retry) stays here, stale, until
   * the walk passes it or the queue is rebuilt. Not the Map's own order: a Map keeps a deleted entry's
   * slot until its table is rebuilt, and a walk from its start passed every slot deleted since, one
   * for each request once old keys left as new ones came (`bench/idempotency-gate.ts`: 19.0 µs per
   * keyed request at 200,000 keys, 2.9 µs with the queue).
   */
  private queue: (Entry | undefined)[] = [];
  private head = 0;
  /** Entries per buyer (only buyers with some). */
  private readonly perUser = new Map<string, number>();
  /** Entries whose request is still running. */
  private running = 0;

  constructor(private readonly options: IdempotencyGateOptions) {}

  /**
   * Runs `execute` once per (user, key): concurrent and later calls with the same hash get its
   * answer; with another hash, `reused`. `stored` looks up an answer made durable earlier.
   */
  async run(
    userId: string,
    key: string,
    hash: string,
    stored: () => Promise<StoredFirstAnswer | undefined>,
    execute: () => Promise<Answer>,
  ): Promise<Answer | 'reused' | 'busy'> {
    const id = `${userId}\u0000${key}`;
    this.trimOld();
    let known = this.entries.get(id);
    // Its first answer is past its 24 hours (kept here since a replay late in them): a new key now.
    if (known && this.options.now() - known.firstAt >= IDEMPOTENCY_TTL_MS) {
      this.remove(id, known);
      known = undefined;
    }
    if (known) {
      if (known.hash !== hash) return 'reused';
      if (!known.unknownOutcome) return known.answer;
      // The same body after a 5xx: runs again (the SKU/date replays the first decision if it was made).
      this.remove(id, known);
    } else {
      if ((this.perUser.get(userId) ?? 0) >= (this.options.per_user_max ?? IDEMPOTENCY_KEYS_PER_BUYER_MAX)) {
        // A key with a durable first answer still gets it (kept nowhere here); a new one waits.
        return this.storedAnswer(hash, await stored()) ?? 'busy';
      }
      // Full of requests still running (as many as the entries allowed): this one runs without an
      // entry — its durable answer, else the request; a 503 for every keyed order would hand the
      // storefront to whoever fills the memory.
      if (!this.makeRoom()) return this.ungated(hash, stored, execute);
    }
    const entry: Entry = { id, userId, hash, settledAt: undefined, firstAt: this.options.now(), answer: Promise.resolve({ status: 0, body: null }) };
    entry.answer = this.ungated(hash, stored, execute, (createdAt) => (entry.firstAt = createdAt));
    this.entries.set(id, entry);
    this.queue.push(entry);
    this.perUser.set(userId, (this.perUser.get(userId) ?? 0) + 1);
    this.running++;
    try {
      const answer = await entry.answer;
      entry.settledAt = this.options.now();
      if (answer.status >= 500) entry.unknownOutcome = true;
      else if (answer.status === 422 && this.entries.get(id) === entry) this.remove(id, entry);
      return answer;
    } catch (error) {
      entry.settledAt = this.options.now();
      entry.unknownOutcome = true;
      throw error;
    } finally {
      this.running--;
    }
  }

  /**
   * The durable first answer if there is one, else the request runs: the gate's answer without its
   * memory. `replayed` hears when the stored answer was made.
   */
  private async ungated(
    hash: string,
    stored: () => Promise<StoredFirstAnswer | undefined>,
    execute: () => Promise<Answer>,
    replayed?: (createdAt: number) => void,
  ): Promise<Answer> {
    const previous = await stored();
    const replay = this.storedAnswer(hash, previous);
    if (!replay) return execute();
    if (previous?.createdAt !== undefined) replayed?.(previous.createdAt);
    return replay;
  }

  /** A stored first answer still in force: it for the same body, 422 for another; undefined when none. */
  private storedAnswer(hash: string, previous: StoredFirstAnswer | undefined): Answer | undefined {
    if (!previous || (previous.createdAt !== undefined && this.options.now() - previous.createdAt >= IDEMPOTENCY_TTL_MS)) return undefined;
    return previous.requestHash !== hash ? { status: 422, body: REUSED_BODY } : { status: previous.status, body: previous.body };
  }

  get size(): number {
    return this.entries.size;
  }

  /** Drops a few of the oldest settled entries past retain_ms, as requests come. */
  private trimOld(): void {
    const limit = this.entries.size - TRIM_PER_CALL;
    this.dropOldest(Math.max(this.options.retain_ms ?? IDEMPOTENCY_MEMORY_MS, this.options.keep_min_ms), () => this.entries.size > limit);
  }

  /**
   * When full, drops the oldest settled entries past keep_min_ms until there is room — and if all are
   * younger (keys arriving faster than entries_max a keep_min_ms: a big sale, or many bot accounts),
   * the oldest settled ones anyway: their answers are durable or soon will be (a retry of the same
   * body then gets its first answer from the store or from its SKU/date), while the requests still
   * running keep their entries, so duplicates in flight still share one execution. False only when
   * every entry is a request still running.
   */
  private makeRoom(): boolean {
    const max = this.options.entries_max;
    if (this.entries.size < max) return true;
    this.dropOldest(this.options.keep_min_ms, () => this.entries.size >= max);
    if (this.entries.size < max) return true;
    // Every place a request still running (a stalled database): nothing to walk past.
    if (this.running >= max) return false;
    for (let i = this.head; i < this.queue.length && this.entries.size >= max; i++) {
      const e = this.queue[i];
      if (this.kept(e) && e.settledAt !== undefined) this.remove(e.id, e);
    }
    this.compact();
    return this.entries.size < max;
  }

  /** Drops entries settled at least `age_ms` ago, oldest first (in the order they were made), while `more()`. */
  private dropOldest(age_ms: number, more: () => boolean): void {
    const now = this.options.now();
    while (this.head < this.queue.length && more()) {
      const e = this.queue[this.head];
      if (this.kept(e)) {
        if (e.settledAt === undefined || now - e.settledAt < age_ms) break;
        this.remove(e.id, e);
      }
      this.queue[this.head++] = undefined;
    }
    this.compact();
  }

  /**
   * Rebuilds the queue without its stale places once they outnumber the live entries by QUEUE_SLACK
   * (or the places passed at its head are half of it): its length stays within twice the entries and
   * the slack, and each rebuild is paid for by as many removals.
   */
  private compact(): void {
    const places = this.queue.length - this.head;
    if (places <= 2 * this.entries.size + QUEUE_SLACK && this.head <= this.queue.length / 2) return;
    this.queue = this.queued();
    this.head = 0;
  }

  /** Whether a place of the queue holds an entry still in `entries` (not a stale place). */
  private kept(e: Entry | undefined): e is Entry {
    return e !== undefined && this.entries.get(e.id) === e;
  }

  /** The entries the queue holds from its head, oldest first, without its stale places. */
  private queued(): Entry[] {
    const kept: Entry[] = [];
    for (let i = this.head; i < this.queue.length; i++) {
      const e = this.queue[i];
      if (this.kept(e)) kept.push(e);
    }
    return kept;
  }

  /**
   * For tests: throws unless every entry is in the queue exactly once, after its head, in the order the
   * entries were made (the Map's own order), and the queue is within its bound.
   */
  checkIntegrity(): void {
    const queued = this.queued();
    const made = [...this.entries.values()];
    if (queued.length !== made.length || queued.some((e, i) => e !== made[i])) {
      throw new Error(`idempotency gate: ${made.length} entries, ${queued.length} of them queued in their order`);
    }
    if (this.queue.length - this.head > 2 * this.entries.size + QUEUE_SLACK + 1) {
      throw new Error(`idempotency gate: ${this.queue.length - this.head} places queued for ${this.entries.size} entries`);
    }
  }

  private remove(id: string, e: Entry): void {
    this.entries.delete(id);
    const n = (this.perUser.get(e.userId) ?? 1) - 1;
    if (n > 0) this.perUser.set(e.userId, n);
    else this.perUser.delete(e.userId);
  }
}

export const REUSED_BODY = { error: 'idempotency_key_reused', message: 'this Idempotency-Key was used with another request' };
