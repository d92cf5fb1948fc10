// The generator's seeded randomness: the same seed gives the same sale. Not for anything secret.
import { seededFloats } from '../../engine/random.ts';

export class SimRandom {
  private readonly next: () => number;

  constructor(seed: number) {
    this.next = seededFloats(seed);
  }

  /** Uniform in [0, 1). */
  float(): number {
    return this.next();
  }

  /** Uniform in [low, high). */
  between(low: number, high: number): number {
    return low + this.next() * (high - low);
  }
}
