// Per-client token buckets: each key gets `burst` tokens, refilled at `ratePerSec`; a request takes one.
// No token → 429 rate_limited with Retry-After (seconds until one token is back, at least 1).
// The buckets are bounded: past `maxKeys`, the keys seen least recently are forgotten (such a key starts
// again full, which errs on the side of serving), half the bound at a time; the maxKeys / 2 keys seen
// last are always kept (engine/recent-map.ts: evicting one key at a time from a Map walked its deleted
// slots, ~40 µs per new key at 100,000 keys). Disabled (a pass-through) when ratePerSec is 0.
import type { Middleware, Context } from 'koa';
import { RecentMap } from '../engine/recent-map.ts';
import { rateLimited } from './api-error.ts';

export interface TokenBucketOptions {
  /** Tokens per second; 0 disables limiting. */
  ratePerSec: number;
  /** Bucket size (requests allowed at once); default max(1, ratePerSec). */
  burst?: number;
  /** Most keys kept (the maxKeys / 2 seen last always are); default 100_000. */
  maxKeys?: number;
  /** Milliseconds since the Unix epoch; default Date.now. */
  now?: () => number;
}

export type TakeResult = { ok: true } | { ok: false; retryAfter_s: number };

interface Bucket {
  tokens: number;
  at_ms: number;
}

export class TokenBucketLimiter {
  readonly ratePerSec: number;
  readonly burst: number;
  readonly maxKeys: number;
  private readonly now: () => number;
  private readonly buckets: RecentMap<string, Bucket>;

  constructor(opts: TokenBucketOptions) {
    if (!(opts.ratePerSec >= 0) || !Number.isFinite(opts.ratePerSec)) throw new Error('ratePerSec must be >= 0');
    this.ratePerSec = opts.ratePerSec;
    this.burst = opts.burst ?? Math.max(1, opts.ratePerSec);
    if (!(this.burst >= 1)) throw new Error('burst must be >= 1');
    this.maxKeys = opts.maxKeys ?? 100_000;
    if (!(this.maxKeys >= 1) || !Number.isSafeInteger(this.maxKeys)) throw new Error('maxKeys must be an integer >= 1');
    this.buckets = new RecentMap(this.maxKeys);
    this.now = opts.now ?? Date.now;
  }

  get enabled(): boolean {
    return this.ratePerSec > 0;
  }

  get size(): number {
    return this.buckets.size;
  }

  take(key: string): TakeResult {
    if (!this.enabled) return { ok: true };
    const now = this.now();
    let b = this.buckets.get(key); // a use: kept at least as long as any key seen before it
    if (b === undefined) {
      b = { tokens: this.burst, at_ms: now };
      this.buckets.set(key, b);
    } else {
      const elapsed_s = Math.max(0, now - b.at_ms) / 1000;
      b.tokens = Math.min(this.burst, b.tokens + elapsed_s * this.ratePerSec);
      b.at_ms = now;
    }
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return { ok: true };
    }
    return { ok: false, retryAfter_s: Math.max(1, Math.ceil((1 - b.tokens) / this.ratePerSec)) };
  }
}

export interface RateLimitOptions extends TokenBucketOptions {
  /** The client a request counts against; default the buyer (ctx.state.userId) or else the IP. */
  key?: (ctx: Context) => string;
}

export function defaultRateLimitKey(ctx: Context): string {
  const userId: unknown = ctx.state.userId;
  return typeof userId === 'string' ? `u:${userId}` : `ip:${ctx.ip}`;
}

export function rateLimit(opts: RateLimitOptions): Middleware {
  const limiter = new TokenBucketLimiter(opts);
  if (!limiter.enabled) return (_ctx, next) => next();
  const key = opts.key ?? defaultRateLimitKey;
  return async (ctx, next) => {
    const r = limiter.take(key(ctx));
    if (!r.ok) throw rateLimited(r.retryAfter_s);
    await next();
  };
}
