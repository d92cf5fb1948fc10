// The handlers one subscription runs at once, bounded by its concurrency: both buses start a handler
// only in a free slot, are told when one frees (to fetch more), and on stop wait for the running
// ones for a bounded time.
import { bus_concurrency_default, bus_concurrency_max } from './ports.ts';

/** The concurrency a caller asked for, checked: an integer in 1..bus_concurrency_max. */
export function concurrencyOf(requested: number | undefined): number {
  const n = requested ?? bus_concurrency_default;
  if (!Number.isInteger(n) || n < 1 || n > bus_concurrency_max) {
    throw new RangeError(`concurrency must be an integer in 1..${bus_concurrency_max}, got ${n}`);
  }
  return n;
}

export class HandlerSlots {
  private readonly running = new Set<Promise<void>>();
  private idleWaiters: (() => void)[] = [];

  /** `onRelease` runs each time a handler finishes (its slot is free again). */
  constructor(
    readonly size: number,
    private readonly onRelease: () => void,
  ) {}

  get busy(): number {
    return this.running.size;
  }

  get free(): number {
    return this.size - this.running.size;
  }

  /** Runs `work` in a slot. The caller checked `free`; `work` must handle its own errors. */
  start(work: () => Promise<void>): void {
    if (this.running.size >= this.size) throw new Error('HandlerSlots.start without a free slot');
    const done: Promise<void> = work()
      .catch(() => {})
      .finally(() => {
        this.running.delete(done);
        if (this.running.size === 0) {
          const waiters = this.idleWaiters;
          this.idleWaiters = [];
          for (const w of waiters) w();
        }
        this.onRelease();
      });
    this.running.add(done);
  }

  /** Resolves true when no handler runs, or false after `timeout_ms` with some still running. */
  drain(timeout_ms: number): Promise<boolean> {
    if (this.running.size === 0) return Promise.resolve(true);
    return new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => {
        this.idleWaiters = this.idleWaiters.filter((w) => w !== onIdle);
        resolve(false);
      }, timeout_ms);
      const onIdle = () => {
        clearTimeout(timer);
        resolve(true);
      };
      this.idleWaiters.push(onIdle);
    });
  }
}
