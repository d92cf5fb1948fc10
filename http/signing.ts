// The client side of auth.ts, for tests, tools and the simulator: mint buyer JWTs, sign payment callbacks.
import { createHmac } from 'node:crypto';
import { SignJWT } from 'jose';

export interface SignBuyerTokenOptions {
  /** Lifetime in seconds; default 3600. */
  expiresIn_s?: number;
  /** Milliseconds since the Unix epoch (the engine's clock). */
  now: number;
}

/** An HS256 JWT with `sub`, `iat` and `exp` (iat + expiresIn_s). */
export async function signBuyerToken(secret: string, sub: string, opts: SignBuyerTokenOptions): Promise<string> {
  const iat = Math.floor(opts.now / 1000);
  return new SignJWT({})
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .setSubject(sub)
    .setIssuedAt(iat)
    .setExpirationTime(iat + (opts.expiresIn_s ?? 3600))
    .sign(new TextEncoder().encode(secret));
}

/** The `Stampede-Signature` header value for `raw` at time `t_s` (unix seconds): `t=<t_s>,v1=<hex>`. */
export function signPayment(secret: string, raw: Buffer | string, t_s: number): string {
  const t = String(Math.floor(t_s));
  const v1 = createHmac('sha256', Buffer.from(secret, 'utf8'))
    .update(`${t}.`)
    .update(typeof raw === 'string' ? Buffer.from(raw, 'utf8') : raw)
    .digest('hex');
  return `t=${t},v1=${v1}`;
}
