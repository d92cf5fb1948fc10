// A map whose entries count for `ageMs` after they were set: for what is remembered a while after an
// event (an Idempotency-Key's answer for a few seconds after the read model took it in; a passivated
// buyer's state for its next limit actor), at any rate of new keys.
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
// began `generationMs` ago, it becomes the previous one and the one before is let go whole (both, once
// it began twice that long ago). No walk. An entry counts while younger than `ageMs` (a read checks its
// time), and is let go with its generation at least `generationMs` after it was set: with generations
// as long as the age (the default) an entry that still counts is never let go; shorter ones (a cache
// that may forget sooner) hold less. One that no longer counts stays in memory until its generation is
// let go: the map holds the entries set in the last 2 × `generationMs` when called at least every
// `generationMs` (a busy SKU/date), 3 × at most otherwise, and whatever its last two generations hold
// until its next call. A set may say what its entry costs (`bytes`); the map keeps the sum of what it
// holds. The clock is the caller's (`now` on every call): the engine's code keeps no clock of its own.

export class AgedMap<K, V> {
  private current = new Generation<K, V>(-Infinity);
  private previous = new Generation<K, V>(-Infinity);

  constructor(
    readonly ageMs: number,
    readonly generationMs: number = ageMs,
  ) {
    if (!(ageMs > 0) || !Number.isFinite(ageMs)) throw new RangeError(`aged map: ageMs must be a finite number > 0, got ${ageMs}`);
    if (!(generationMs > 0) || !(generationMs <= ageMs)) throw new RangeError(`aged map: generationMs must be > 0 and <= ageMs, got ${generationMs}`);
  }

  /** Entries held, counting ones past their age not let go yet (what the map costs in memory). */
  get size(): number {
    return this.current.entries.size + this.previous.entries.size;
  }

  /** The sum of the `bytes` the entries held were set with. */
  get bytes(): number {
    return this.current.bytes + this.previous.bytes;
  }

  /** The key's value if it was set less than `ageMs` before `now`. */
  get(key: K, now: number): V | undefined {
    this.age(now);
    const aged = this.current.entries.get(key) ?? this.previous.entries.get(key);
    return aged !== undefined && now - aged.at < this.ageMs ? aged.value : undefined;
  }

  /** Sets the key's value as of `now` (it counts until `now + ageMs`, whenever it was set before). */
  set(key: K, value: V, now: number, bytes = 0): void {
    this.age(now);
    this.delete(key);
    this.current.entries.set(key, { value, at: now, bytes });
    this.current.bytes += bytes;
  }

  delete(key: K): boolean {
    const inCurrent = this.current.remove(key);
    return this.previous.remove(key) || inCurrent;
  }

  /** Lets go the generation begun `generationMs` before the current one at `now` (both, past twice that); every get and set does. */
  age(now: number): void {
    const since = now - this.current.since;
    if (since < this.generationMs) return;
    this.previous = since < 2 * this.generationMs ? this.current : new Generation(now);
    this.current = new Generation(now);
  }
}

/** The entries set within one generation, and the bytes they were set with. */
class Generation<K, V> {
  readonly entries = new Map<K, Aged<V>>();
  bytes = 0;

  constructor(readonly since: number) {}

  remove(key: K): boolean {
    const aged = this.entries.get(key);
    if (aged === undefined) return false;
    this.entries.delete(key);
    this.bytes -= aged.bytes;
    return true;
  }
}

interface Aged<V> {
  value: V;
  at: number;
  bytes: number;
}
