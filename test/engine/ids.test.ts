// Proves order ids are unique, time-ordered, and name their stream, using a seeded random source.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { SeededRandom, orderIdFloor, orderIdFor, parseOrderId, shardOf } from '../../engine/index.ts';

describe('order ids', () => {
  it('round-trip the stream number and creation time, and are unique and ordered', () => {
    const rnd = new SeededRandom(7);
    const ids = Array.from({ length: 10_000 }, (_, i) => orderIdFor(1_700_000_000_000 + i, rnd, 1 + (i % 500)));
    expect(new Set(ids).size).toBe(ids.length);
    expect([...ids].map((id) => id.slice(0, 10))).toEqual([...ids].map((id) => id.slice(0, 10)).sort());
    ids.forEach((id, i) => {
      expect(id).toMatch(/^[A-Za-z0-9._:-]{1,64}$/);
      expect(parseOrderId(id)).toEqual({ streamNo: 1 + (i % 500), createdAt_ms: 1_700_000_000_000 + i });
    });
  });

  it('sort above the floor of a time exactly when made at or after it', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 2 ** 40 }), fc.integer({ min: -5, max: 5 }), fc.integer({ min: 1, max: 2 ** 30 }), fc.nat(), (ms, dt, streamNo, seed) => {
        const id = orderIdFor(Math.max(0, ms + dt), new SeededRandom(seed), streamNo);
        expect(id > orderIdFloor(ms)).toBe(Math.max(0, ms + dt) >= ms);
      }),
      { numRuns: 2_000 },
    );
    // The floor of a time is below an id made then with all-zero randomness too.
    expect(orderIdFor(1_000, { bytes: (n: number) => new Uint8Array(n) } as never, 1) > orderIdFloor(1_000)).toBe(true);
  });

  it('encode time and randomness exactly as the ULID spec (reference written the plain way)', () => {
    const CROCKFORD = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';
    const reference = (now: number, bytes: Uint8Array): string => {
      let time = '';
      for (let i = 0, t = now; i < 10; i++, t = Math.floor(t / 32)) time = CROCKFORD[t % 32] + time;
      let bitsText = '';
      for (const b of bytes) bitsText += b.toString(2).padStart(8, '0');
      let rand = '';
      for (let i = 0; i < 80; i += 5) rand += CROCKFORD[parseInt(bitsText.slice(i, i + 5), 2)];
      return time + rand;
    };
    for (let seed = 1; seed <= 200; seed++) {
      const now = 1_700_000_000_000 + seed * 7_919;
      const expected = reference(now, new SeededRandom(seed).bytes(10));
      expect(orderIdFor(now, new SeededRandom(seed), seed * 1_000)).toBe(`${expected}-${(seed * 1_000).toString(36)}`);
    }
  });

  it('rejects strings that are not order ids', () => {
    for (const bad of ['', 'abc', '01JD3X4Y5Z6A7B8C9D0E1F2G3H', '01JD3X4Y5Z6A7B8C9D0E1F2G3H-', '01JD3X4Y5Z6A7B8C9D0E1F2G3H-0', '01JD3X4Y5Z6A7B8C9D0E1F2GUU-1', '01JD3X4Y5Z6A7B8C9D0E1F2G3H-A']) {
      expect(parseOrderId(bad)).toBeUndefined();
    }
  });

  it('spreads keys over all shards', () => {
    const counts = new Array(64).fill(0);
    for (let i = 0; i < 64_000; i++) counts[shardOf(`sku-${i}/2026-12-01`, 64)]++;
    expect(Math.min(...counts)).toBeGreaterThan(700);
  });
});
