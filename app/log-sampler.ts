// A log line of a kind at most once per interval, the next one saying how many went unlogged: a
// failure that repeats thousands of times a second (an overloaded node shedding, an outage failing
// every delivery, a requester looping) must not cost a log line each (the metrics count them all).

export class LogSampler {
  private readonly byKey = new Map<string, { at: number; unlogged: number }>();

  constructor(
    private readonly interval_ms: number,
    private readonly now: () => number = Date.now,
    /** Keys remembered at most (a key may come from a client: a bound on them); past it, all are forgotten. */
    private readonly keys_max = 1_000,
  ) {}

  /**
   * Whether a line of `key` is to be written now: undefined if not (counted), else how many of its
   * lines went unlogged since the last one written.
   */
  take(key: string): number | undefined {
    const now = this.now();
    const seen = this.byKey.get(key);
    if (seen && now - seen.at < this.interval_ms) {
      seen.unlogged++;
      return undefined;
    }
    if (!seen && this.byKey.size >= this.keys_max) this.byKey.clear();
    this.byKey.set(key, { at: now, unlogged: 0 });
    return seen?.unlogged ?? 0;
  }
}
