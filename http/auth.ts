// Authentication at the edge (contract, "Authentication"):
// - requireBuyer: `Authorization: Bearer <JWT>`, HS256 only, `exp` (and `nbf`) checked against the injected
//   clock, `sub` required and an identifier; sets ctx.state.userId. A token without `exp` is accepted (the
//   contract honours exp, it does not demand it). Missing/invalid → 401 unauthorized.
//   The ADMIN token on a buyer route → 403 forbidden: it is a valid credential that is not allowed here
//   (the mirror of a buyer on an admin route), and it carries no buyer identity to act as.
// - requireAdmin: the admin token, compared in constant time over SHA-256 digests (lengths do not leak);
//   a valid buyer JWT → 403 forbidden; anything else → 401. Sets ctx.state.admin = true.
// - verifyPaymentSignature: `Stampede-Signature: t=<unix s>,v1=<hex>[,v1=<hex>...]`, HMAC-SHA256 over
//   "<t>." + the raw body bytes; |now - t| <= 300 s; constant-time; any v1 may match; malformed → false.
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import type { Middleware, Context } from 'koa';
import { RecentMap } from '../engine/recent-map.ts';
import { ApiError, forbidden, unauthorized } from './api-error.ts';
import { Hs256Verifier } from './jwt-hs256.ts';
import { IDENTIFIER_PATTERN } from './validation.ts';

export interface AuthConfig {
  adminToken: string;
  userJwtSecret: string;
  paymentSecret: string;
  /** Milliseconds since the Unix epoch. */
  now: () => number;
}

export interface BuyerState {
  userId: string;
}
export interface AdminState {
  admin: true;
}

export interface Auth {
  requireBuyer: Middleware<BuyerState>;
  requireAdmin: Middleware<AdminState>;
  /** True iff `header` is a well-formed, fresh, correct signature of `raw`. */
  verifyPaymentSignature(raw: Buffer, header: string | undefined): boolean;
  /** The buyer id of a valid buyer JWT, or undefined (no throwing). */
  buyerIdOf(token: string): Promise<string | undefined>;
  /** Whether `token` is the admin token (constant time). */
  isAdminToken(token: string): boolean;
}

export const PAYMENT_SIGNATURE_HEADER = 'Stampede-Signature';
export const PAYMENT_TOLERANCE_S = 300;
const MAX_TOKEN_LENGTH = 8192;
const MAX_SIGNATURE_HEADER_LENGTH = 2048;
const MAX_V1_ENTRIES = 8;
/**
 * Verified buyer tokens remembered at most: the buyers of the last few seconds of a sale. A miss costs
 * one verification (~5 µs, jwt-hs256.ts). 100,000 (the bound while a miss cost ~47 µs through
 * WebCrypto) held tens of MiB through a million-buyer sale (docs/performance.md, "Session 6").
 */
const VERIFIED_TOKENS_MAX = 10_000;
/** How long a verified token without `exp` is remembered. */
const VERIFIED_TOKEN_TTL_MS = 60_000;

function sha256(s: string | Buffer): Buffer {
  return createHash('sha256').update(s).digest();
}

/**
 * The token of `Authorization: Bearer <token>` (scheme case-insensitive, one or more spaces before the
 * token, trailing spaces allowed, nothing else), or undefined. Scanned by hand: every buyer request
 * passes here (a regular expression built a match array per request).
 */
export function bearerToken(ctx: Context): string | undefined {
  const header = ctx.get('Authorization');
  const n = header.length;
  if (n < 8 || header.slice(0, 6).toLowerCase() !== 'bearer' || header.charCodeAt(6) !== SPACE) return undefined;
  let start = 7;
  while (start < n && header.charCodeAt(start) === SPACE) start++;
  let end = start;
  while (end < n && header.charCodeAt(end) !== SPACE) end++;
  for (let i = end; i < n; i++) if (header.charCodeAt(i) !== SPACE) return undefined;
  if (end === start || end - start > MAX_TOKEN_LENGTH) return undefined;
  return start === 7 && end === n ? header.slice(7) : header.slice(start, end);
}

const SPACE = 0x20;

const BEARER_CHALLENGE = { 'WWW-Authenticate': 'Bearer realm="stampede"' };

function noCredentials(message: string): ApiError {
  return unauthorized(message, BEARER_CHALLENGE);
}

export function createAuth(config: AuthConfig): Auth {
  if (!config.adminToken || !config.userJwtSecret || !config.paymentSecret) {
    throw new Error('createAuth: adminToken, userJwtSecret and paymentSecret must be non-empty');
  }
  const adminDigest = sha256(config.adminToken);
  const jwt = new Hs256Verifier(config.userJwtSecret);
  const paymentKey = Buffer.from(config.paymentSecret, 'utf8');

  const isAdminToken = (token: string): boolean => timingSafeEqual(sha256(token), adminDigest);

  // Verified tokens, so a buyer's next request costs a map lookup instead of parsing and an HMAC check
  // (a quarter of the purchase path's CPU when measured, through jose and WebCrypto before
  // jwt-hs256.ts). An entry is only trusted until the token's own `exp`; the map is bounded and
  // forgets the tokens used least recently first (engine/recent-map.ts).
  const verified = new RecentMap<string, { sub: string; exp_ms: number }>(VERIFIED_TOKENS_MAX);
  // Synchronous (the verification is): the buyer routes call it without an await of their own.
  const buyerIdOfNow = (token: string): string | undefined => {
    const now = config.now();
    const hit = verified.get(token);
    if (hit !== undefined) {
      if (now < hit.exp_ms) return hit.sub;
      verified.delete(token);
    }
    const payload = jwt.verify(token, now);
    if (payload === undefined) return undefined;
    const sub = payload.sub;
    if (typeof sub !== 'string' || !IDENTIFIER_PATTERN.test(sub)) return undefined;
    verified.set(token, { sub, exp_ms: typeof payload.exp === 'number' ? payload.exp * 1000 : now + VERIFIED_TOKEN_TTL_MS });
    return sub;
  };
  const buyerIdOf = async (token: string): Promise<string | undefined> => buyerIdOfNow(token);

  // Not an async function: the request waits in the route after it (a reservation waits for its
  // group commit) without one more suspended frame for the young-generation GC to copy.
  const requireBuyer: Middleware<BuyerState> = (ctx, next) => {
    const token = bearerToken(ctx);
    if (token === undefined) throw noCredentials('a buyer token is required');
    const userId = buyerIdOfNow(token);
    if (userId === undefined) {
      if (isAdminToken(token)) throw forbidden('the admin token cannot act as a buyer');
      throw noCredentials('invalid or expired buyer token');
    }
    ctx.state.userId = userId;
    return next();
  };

  const requireAdmin: Middleware<AdminState> = async (ctx, next) => {
    const token = bearerToken(ctx);
    if (token === undefined) throw noCredentials('the admin token is required');
    if (!isAdminToken(token)) {
      if (buyerIdOfNow(token) !== undefined) throw forbidden('buyers may not use this route');
      throw noCredentials('invalid admin token');
    }
    ctx.state.admin = true;
    await next();
  };

  const verifyPaymentSignature = (raw: Buffer, header: string | undefined): boolean => {
    const parsed = parseSignatureHeader(header);
    if (parsed === undefined) return false;
    // In whole seconds, as `t` is: a `t` stamped 300 s ago is within the tolerance however far into
    // the current second the engine's clock is (in milliseconds it was refused after the first one).
    const skew_s = Math.abs(Math.floor(config.now() / 1000) - parsed.t_s);
    if (!(skew_s <= PAYMENT_TOLERANCE_S)) return false;
    // Signed over t exactly as sent (leading zeros included), then the raw bytes.
    const expected = createHmac('sha256', paymentKey).update(`${parsed.t}.`).update(raw).digest();
    let ok = false;
    for (const candidate of parsed.v1) ok = timingSafeEqual(candidate, expected) || ok; // no early exit
    return ok;
  };

  return { requireBuyer, requireAdmin, verifyPaymentSignature, buyerIdOf, isAdminToken };
}

/** `t=<digits>,v1=<64 hex>[,v1=...]`; unknown schemes (e.g. v0) are ignored; exactly one t; at least one v1. */
function parseSignatureHeader(header: string | undefined): { t: string; t_s: number; v1: Buffer[] } | undefined {
  if (typeof header !== 'string' || header.length === 0 || header.length > MAX_SIGNATURE_HEADER_LENGTH) return undefined;
  let t: string | undefined;
  const v1: Buffer[] = [];
  for (const part of header.split(',')) {
    const eq = part.indexOf('=');
    if (eq < 0) return undefined;
    const key = part.slice(0, eq).trim();
    const value = part.slice(eq + 1).trim();
    if (key === 't') {
      if (t !== undefined || !/^\d{1,12}$/.test(value)) return undefined;
      t = value;
    } else if (key === 'v1') {
      if (!/^[0-9a-fA-F]{64}$/.test(value)) return undefined;
      v1.push(Buffer.from(value, 'hex'));
    }
  }
  if (t === undefined || v1.length === 0 || v1.length > MAX_V1_ENTRIES) return undefined;
  return { t, t_s: Number(t), v1 };
}
