// Collects the violations of one check, keeping the first few to show and counting all of them.
import type { CheckResult } from '../run/results.ts';

/** Violations shown per check; the count covers all of them. */
export const VIOLATIONS_SHOWN_MAX = 20;

export class Violations {
  private readonly shown: string[] = [];
  count = 0;

  add(message: string): void {
    this.count++;
    if (this.shown.length < VIOLATIONS_SHOWN_MAX) this.shown.push(message);
  }

  /** The check's result: `detail` says what was checked; a failure says how many broke. */
  result(name: string, detail: string): CheckResult {
    const passed = this.count === 0;
    const more = this.count > this.shown.length ? ` (${this.count} in all; the first ${this.shown.length} shown)` : '';
    return { name, passed, detail: passed ? detail : `${detail}: ${this.count} violation${this.count === 1 ? '' : 's'}${more}`, violations: [...this.shown] };
  }
}
