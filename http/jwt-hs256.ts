// Verifies a buyer JWT (API.md "Authentication": HS256 with STAMPEDE_USER_JWT_SECRET) with node:crypto
// on the event loop. jose's jwtVerify does the same checks through WebCrypto, whose asynchronous job
// costs ~47 µs per token here against ~5 µs for this (measured by a microbenchmark: 20,000 tokens);
// every buyer of a flash sale presents a token the node has not seen yet. It accepts only what jose
// accepts with { algorithms: ['HS256'], requiredClaims: ['sub'] } (test/http/jwt-hs256.test.ts
// compares the two on valid, tampered, malformed and time-edge tokens), and is stricter in corners a
// buyer token never uses: a `crit` header, and base64url with whitespace or padding are refused.
//
// Checks, in order: three base64url segments; a header that is a JSON object with alg exactly "HS256"
// and no `crit`; the signature, an HMAC-SHA256 of "<header>.<payload>" compared in constant time; a
// payload that is a JSON object in strict UTF-8 with `sub`; `iat`, `nbf`, `exp` numbers when present;
// nbf <= now and now < exp, in whole seconds as jose counts them (no clock tolerance).
import { createHmac, timingSafeEqual } from 'node:crypto';

export type JwtClaims = Record<string, unknown>;

const BASE64URL = /^[A-Za-z0-9_-]*$/;
const SHA256_BYTES = 32;
const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

/** The bytes of a base64url segment without padding, or undefined when it is not one. */
function base64url(segment: string): Buffer | undefined {
  if (segment.length % 4 === 1 || !BASE64URL.test(segment)) return undefined;
  return Buffer.from(segment, 'base64url');
}

/** A plain JSON object (what jose's isObject accepts), parsed from strict UTF-8. */
function jsonObject(bytes: Buffer): JwtClaims | undefined {
  let value: unknown;
  try {
    value = JSON.parse(strictUtf8.decode(bytes));
  } catch {
    return undefined;
  }
  if (typeof value !== 'object' || value === null || Object.prototype.toString.call(value) !== '[object Object]') return undefined;
  if (Object.getPrototypeOf(value) !== Object.prototype) return undefined;
  return value as JwtClaims;
}

function numericDateOrAbsent(claims: JwtClaims, name: string): number | undefined | false {
  const value = claims[name];
  if (value === undefined) return undefined;
  return typeof value === 'number' ? value : false;
}

export class Hs256Verifier {
  private readonly key: Buffer;

  constructor(secret: string) {
    if (secret.length === 0) throw new Error('Hs256Verifier: the secret must be non-empty');
    this.key = Buffer.from(secret, 'utf8');
  }

  /** The claims of a valid token at `now_ms`, or undefined for anything else (never throws). */
  verify(token: string, now_ms: number): JwtClaims | undefined {
    const firstDot = token.indexOf('.');
    const lastDot = token.lastIndexOf('.');
    if (firstDot <= 0 || lastDot === firstDot || token.indexOf('.', firstDot + 1) !== lastDot) return undefined;

    const headerBytes = base64url(token.slice(0, firstDot));
    if (headerBytes === undefined) return undefined;
    const header = jsonObject(headerBytes);
    if (header === undefined || header.alg !== 'HS256' || Object.hasOwn(header, 'crit')) return undefined;

    const signature = base64url(token.slice(lastDot + 1));
    if (signature === undefined || signature.length !== SHA256_BYTES) return undefined;
    const expected = createHmac('sha256', this.key).update(token.slice(0, lastDot)).digest();
    if (!timingSafeEqual(expected, signature)) return undefined;

    const payloadBytes = base64url(token.slice(firstDot + 1, lastDot));
    if (payloadBytes === undefined) return undefined;
    const claims = jsonObject(payloadBytes);
    if (claims === undefined || !Object.hasOwn(claims, 'sub')) return undefined;

    const now = Math.floor(now_ms / 1000);
    const iat = numericDateOrAbsent(claims, 'iat');
    const nbf = numericDateOrAbsent(claims, 'nbf');
    const exp = numericDateOrAbsent(claims, 'exp');
    if (iat === false || nbf === false || exp === false) return undefined;
    if (nbf !== undefined && nbf > now) return undefined;
    if (exp !== undefined && exp <= now) return undefined;
    return claims;
  }
}
