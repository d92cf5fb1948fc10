// Proves the token-bucket limiter lets a burst through, then answers 429 rate_limited with a Retry-After, refills with the injected clock, keeps clients apart, bounds its map and is off at rate 0, through a real koa app and fetch plus direct TokenBucketLimiter calls.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rateLimit, TokenBucketLimiter } from '../../http/rate-limit.ts';
import { startApp, type Harness } from './helpers.ts';

let clock = 1_000_000;
let h: Harness;

beforeAll(async () => {
  h = await startApp((router) => {
    const limited = rateLimit({ ratePerSec: 2, burst: 3, now: () => clock, key: (ctx) => ctx.get('x-client') || ctx.ip });
    router.get('/limited', limited, (ctx) => {
      ctx.body = { ok: true };
    });
    router.get('/unlimited', rateLimit({ ratePerSec: 0 }), (ctx) => {
      ctx.body = { ok: true };
    });
  });
});
afterAll(() => h.close());

const get = (path: string, client = 'a'): Promise<Response> => fetch(h.url + path, { headers: { 'x-client': client } });

describe('rateLimit middleware', () => {
  it('burst passes, then 429 with Retry-After; refills over time; clients are separate', async () => {
    for (let i = 0; i < 3; i++) expect((await get('/limited')).status).toBe(200);
    const limited = await get('/limited');
    expect(limited.status).toBe(429);
    expect(limited.headers.get('retry-after')).toBe('1');
    expect(((await limited.json()) as { error: string }).error).toBe('rate_limited');
    expect((await get('/limited', 'b')).status).toBe(200); // another client has its own bucket
    clock += 500; // 2/s → one token back
    expect((await get('/limited')).status).toBe(200);
    expect((await get('/limited')).status).toBe(429);
  });

  it('rate 0 disables limiting', async () => {
    for (let i = 0; i < 50; i++) expect((await get('/unlimited')).status).toBe(200);
  });
});

describe('TokenBucketLimiter', () => {
  it('Retry-After covers the time to the next token', () => {
    let now = 0;
    const l = new TokenBucketLimiter({ ratePerSec: 0.1, burst: 1, now: () => now });
    expect(l.take('k')).toEqual({ ok: true });
    expect(l.take('k')).toEqual({ ok: false, retryAfter_s: 10 });
    now += 9_000;
    expect(l.take('k')).toEqual({ ok: false, retryAfter_s: 1 });
    now += 1_000;
    expect(l.take('k')).toEqual({ ok: true });
  });

  it('never holds more than maxKeys; the keys seen least recently go first, the most recent half stays', () => {
    const now = 0;
    const l = new TokenBucketLimiter({ ratePerSec: 1, burst: 1, maxKeys: 4, now: () => now });
    for (const k of ['b', 'c', 'd', 'a']) expect(l.take(k).ok).toBe(true);
    // 'a' (its bucket empty) is seen between every two new keys: always among the two seen last, it stays.
    for (let i = 0; i < 1_000; i++) {
      expect(l.take(`k${i}`).ok).toBe(true);
      expect(l.take('a').ok).toBe(false);
      expect(l.size).toBeLessThanOrEqual(4);
    }
    expect(l.take('b').ok).toBe(true); // not seen since the start: forgotten, starts full again
  });

  it('refill never exceeds the burst', () => {
    let now = 0;
    const l = new TokenBucketLimiter({ ratePerSec: 100, burst: 2, now: () => now });
    now += 60_000;
    expect([l.take('k').ok, l.take('k').ok, l.take('k').ok]).toEqual([true, true, false]);
  });

  it('rejects nonsense configuration', () => {
    expect(() => new TokenBucketLimiter({ ratePerSec: -1 })).toThrow();
    expect(() => new TokenBucketLimiter({ ratePerSec: 1, burst: 0 })).toThrow();
  });
});
