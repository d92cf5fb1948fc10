// Wakes actors that were discarded holding work no request may come for (a SKU/date whose write
// failed or that crashed with live reservations: their expiry timer went with the incarnation, and
// without a buyer or payment touching the SKU/date its expired stock would stay held). Each is woken
// after a short delay; if it fails again — its recovery, or its first write after recovering (the
// database reads but does not write: a full disk, a read-only failover) — again after a longer one
// (doubling, at most `delay_max_ms`, each cut at random by up to `jitter` so that keys discarded
// together do not retry together), until one of its writes is durable. One timer per key at most;
// timers are unref'd and cleared by `stop`.

export interface RewakerOptions {
  delay_first_ms: number;
  delay_max_ms: number;
  /**
   * Each delay is cut by up to this share, at random: after an outage thousands of SKU/dates were
   * discarded together, and woken in lockstep they would all retry at the same instants.
   */
  jitter?: number;
  /** In [0, 1): the jitter's random source (injected by tests). */
  random?: () => number;
}

export const rewaker_default: RewakerOptions = { delay_first_ms: 250, delay_max_ms: 30_000, jitter: 0.5 };

export class Rewaker {
  /** Keys being woken: the failed attempts so far, and the pending timer if any. */
  private readonly waking = new Map<string, { attempts: number; timer: NodeJS.Timeout | undefined }>();
  private stopped = false;

  constructor(
    private readonly wakeNow: (key: string) => void,
    private readonly options: RewakerOptions = rewaker_default,
  ) {}

  /**
   * The key was discarded with work: wake it soon (once, however often this is called meanwhile);
   * later and later each time it is discarded again before a write of its was durable.
   */
  wake(key: string): void {
    if (this.stopped) return;
    const entry = this.waking.get(key);
    if (entry) {
      if (entry.timer === undefined) {
        entry.attempts++;
        this.schedule(key, entry);
      }
      return;
    }
    const fresh = { attempts: 0, timer: undefined };
    this.waking.set(key, fresh);
    this.schedule(key, fresh);
  }

  /** Its recovery failed: if it is being woken, try again later (longer each time). */
  failed(key: string): void {
    const entry = this.waking.get(key);
    if (!entry || entry.timer !== undefined) return;
    entry.attempts++;
    this.schedule(key, entry);
  }

  /** A write of it was durable: it works again, nothing more to do for it. */
  settled(key: string): void {
    const entry = this.waking.get(key);
    if (!entry) return;
    if (entry.timer !== undefined) clearTimeout(entry.timer);
    this.waking.delete(key);
  }

  /** Whether the key is being woken (discarded with work, and no write of it durable since). */
  has(key: string): boolean {
    return this.waking.has(key);
  }

  /** Keys being woken now (ops, tests). */
  get pending(): number {
    return this.waking.size;
  }

  stop(): void {
    this.stopped = true;
    for (const entry of this.waking.values()) if (entry.timer !== undefined) clearTimeout(entry.timer);
    this.waking.clear();
  }

  private schedule(key: string, entry: { attempts: number; timer: NodeJS.Timeout | undefined }): void {
    if (this.stopped) return;
    const base = Math.min(this.options.delay_max_ms, this.options.delay_first_ms * 2 ** entry.attempts);
    const jitter = this.options.jitter ?? 0;
    const delay = jitter > 0 ? base * (1 - jitter * (this.options.random ?? Math.random)()) : base;
    entry.timer = setTimeout(() => {
      entry.timer = undefined;
      this.wakeNow(key);
    }, delay);
    entry.timer.unref();
  }
}
