// Time is injected: the core never reads a clock, it is handed `now` (ms since the epoch).
// Actors read a Clock; tests and the simulator swap in a ManualClock to run hours of expiries in a second.

export interface Clock {
  /** Milliseconds since the Unix epoch. */
  now(): number;
}

/** A clock that only moves when told to. */
export class ManualClock implements Clock {
  constructor(private t_ms: number = Date.UTC(2026, 0, 1)) {}
  now(): number {
    return this.t_ms;
  }
  advance(ms: number): void {
    this.t_ms += ms;
  }
  set(t_ms: number): void {
    this.t_ms = t_ms;
  }
}
