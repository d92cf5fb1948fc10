// A map whose entries count for `ageMs` after they were set: for what is remembered a while after an
// event (an Idempotency-Key's answer for a few seconds after the read model took it in), at any rate
// of new keys.
//
// Why not one Map trimmed from its start (oldest first, stopping at the first entry young enough): a
// Map keeps a deleted entry's slot until its table is rebuilt, and a walk from its start steps over
// every slot deleted since, so each trim walked past every entry trimmed since the last rebuild: at
// 20,000 new keys a second and a projection every 2 ms, 141.7 µs per projection against 72.1 with
// this map (200,000 entries kept), 330.4 against 212.1 at 50,000 a second (`bench/aged-map.ts`). The
// same walk cost the idempotency gate, the warm buyers' cache and the bounded caches before (sessions
// 23–25).
//
// Here entries live in two generations by time. A set goes into the current one; once the current one
// began `ageMs` ago, it becomes the previous one and the one before is let go whole (every entry in it
// was set before the current one began, so it is `ageMs` old: none that still counts is lost). No
// walk. An entry counts while younger than `ageMs` (a read checks its time); one that no longer counts
// stays in memory until its generation is let go: the map holds the entries set in the last 2 × `ageMs`
// when called at least every `ageMs` (a busy SKU/date), 3 × `ageMs` at most otherwise, and whatever its
// last two generations hold until its next call.
// The clock is the caller's (`now` on every call): the engine's code keeps no clock of its own.

export class AgedMap<K, V> {
  private current = new Map<K, Aged<V>>();
  private previous = new Map<K, Aged<V>>();
  /** When the current generation began (-Infinity: not yet; the first call begins it). */
  private currentSince = -Infinity;

  constructor(readonly ageMs: number) {
    if (!(ageMs > 0) || !Number.isFinite(ageMs)) throw new RangeError(`aged map: ageMs must be a finite number > 0, got ${ageMs}`);
  }

  /** Entries held, counting ones past their age not let go yet (what the map costs in memory). */
  get size(): number {
    return this.current.size + this.previous.size;
  }

  /** The key's value if it was set less than `ageMs` before `now`. */
  get(key: K, now: number): V | undefined {
    this.age(now);
    const aged = this.current.get(key) ?? this.previous.get(key);
    return aged !== undefined && now - aged.at < this.ageMs ? aged.value : undefined;
  }

  /** Sets the key's value as of `now` (it counts until `now + ageMs`, whenever it was set before). */
  set(key: K, value: V, now: number): void {
    this.age(now);
    this.previous.delete(key);
    this.current.set(key, { value, at: now });
  }

  delete(key: K): boolean {
    const inCurrent = this.current.delete(key);
    return this.previous.delete(key) || inCurrent;
  }

  /** Lets go the generation whose every entry is `ageMs` old at `now` (both, past twice the age). */
  private age(now: number): void {
    const since = now - this.currentSince;
    if (since < this.ageMs) return;
    this.previous = since < 2 * this.ageMs ? this.current : new Map();
    this.current = new Map();
    this.currentSince = now;
  }
}

interface Aged<V> {
  value: V;
  at: number;
}
