// The secrets a replay needs to act as buyers, operators and the payment provider: it mints each
// buyer's JWT (once, renewed before it expires) and signs payment callbacks over their exact bytes.
import { createHmac } from 'node:crypto';
import { signPayment } from '../../http/signing.ts';

export interface SimSecrets {
  adminToken: string;
  userJwtSecret: string;
  paymentSecret: string;
}

/** Lifetime of a minted buyer token; it is minted again when less than half of it is left. */
const TOKEN_LIFETIME_S = 3_600;

export class Credentials {
  private readonly tokens = new Map<string, { token: string; renew_at_ms: number }>();

  constructor(
    readonly secrets: SimSecrets,
    private readonly now: () => number = Date.now,
  ) {}

  buyerToken(user: string): string {
    const now = this.now();
    const cached = this.tokens.get(user);
    if (cached && cached.renew_at_ms > now) return cached.token;
    const token = mintHs256(this.secrets.userJwtSecret, user, Math.floor(now / 1000), TOKEN_LIFETIME_S);
    this.tokens.set(user, { token, renew_at_ms: now + (TOKEN_LIFETIME_S * 1000) / 2 });
    return token;
  }

  /** `Stampede-Signature` for `raw` now; `valid: false` gives a well-formed but wrong one. */
  paymentSignature(raw: string, valid = true): string {
    const t_s = Math.floor(this.now() / 1000);
    return signPayment(valid ? this.secrets.paymentSecret : `${this.secrets.paymentSecret}-wrong`, raw, t_s);
  }
}

const JWT_HEADER = Buffer.from(JSON.stringify({ alg: 'HS256', typ: 'JWT' })).toString('base64url');

/**
 * The same token as http/signing.ts `signBuyerToken` (HS256, sub, iat, exp), made synchronously with
 * node:crypto: a replay mints one per buyer, and jose's WebCrypto path cost ~160 µs a token
 * (measured), a sixth of the replayer's budget per request. test/sim/credentials.test.ts checks
 * the engine's verifier accepts these tokens.
 */
export function mintHs256(secret: string, sub: string, iat_s: number, lifetime_s: number): string {
  const payload = Buffer.from(JSON.stringify({ sub, iat: iat_s, exp: iat_s + lifetime_s })).toString('base64url');
  const signature = createHmac('sha256', secret).update(`${JWT_HEADER}.${payload}`).digest('base64url');
  return `${JWT_HEADER}.${payload}.${signature}`;
}
