// Counts iterations of any Map (keys, values, entries, forEach, for-of) while installed: for tests of
// the structures that exist to never walk a Map (a Map keeps a deleted entry's slot until its table is
// rebuilt, and a walk steps over every such slot).
import { afterEach } from 'vitest';

const names = ['keys', 'values', 'entries', 'forEach'] as const;
const originals = names.map((n) => [n, Map.prototype[n]] as const);
const originalIterator = Map.prototype[Symbol.iterator];

function restore(): void {
  for (const [n, f] of originals) (Map.prototype as unknown as Record<string, unknown>)[n] = f;
  Map.prototype[Symbol.iterator] = originalIterator;
}

/** Registers the restore after each test of the calling file; `count()` installs the counter. */
export function mapIterations(): { count: () => { readonly n: number } } {
  afterEach(restore);
  return {
    count() {
      const counter = { n: 0 };
      for (const [n, f] of originals) {
        (Map.prototype as unknown as Record<string, unknown>)[n] = function (this: Map<unknown, unknown>, ...args: unknown[]) {
          counter.n++;
          return (f as (...a: unknown[]) => unknown).apply(this, args);
        };
      }
      Map.prototype[Symbol.iterator] = function (this: Map<unknown, unknown>) {
        counter.n++;
        return originalIterator.call(this);
      };
      return counter;
    },
  };
}
