// Randomness is injected too, so that ids and codes are reproducible under a seed in tests and simulation.

export interface RandomSource {
  /** n random bytes. */
  bytes(n: number): Uint8Array;
}

/** A deterministic source (xorshift128+ on a 32-bit seed): for tests and the simulator, never for secrets. */
export class SeededRandom implements RandomSource {
  private s0: bigint;
  private s1: bigint;
  constructor(seed: number) {
    this.s0 = BigInt(seed >>> 0) ^ 0x9e3779b97f4a7c15n;
    this.s1 = (BigInt(seed >>> 0) << 17n) ^ 0xbf58476d1ce4e5b9n;
    for (let i = 0; i < 16; i++) this.next();
  }
  private next(): bigint {
    const mask = (1n << 64n) - 1n;
    let x = this.s0;
    const y = this.s1;
    this.s0 = y;
    x ^= (x << 23n) & mask;
    this.s1 = x ^ y ^ (x >> 17n) ^ (y >> 26n);
    return (this.s1 + y) & mask;
  }
  bytes(n: number): Uint8Array {
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i += 8) {
      let v = this.next();
      for (let j = 0; j < 8 && i + j < n; j++) {
        out[i + j] = Number(v & 0xffn);
        v >>= 8n;
      }
    }
    return out;
  }
}

/**
 * A seeded float source in [0, 1) (mulberry32): fast, for the simulator, benchmarks and tests that
 * must replay a mix by its seed. Never for secrets.
 */
export function seededFloats(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}
