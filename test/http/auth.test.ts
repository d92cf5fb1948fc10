// Proves buyer JWTs, the admin token and payment signatures are accepted only when genuine and fresh (per the injected clock), with the contract's 401/403 split, by calling a real koa app with fetch and calling verifyPaymentSignature directly.
import { createHmac } from 'node:crypto';
import fc from 'fast-check';
import { SignJWT } from 'jose';
import type { Context } from 'koa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bearerToken, createAuth } from '../../http/auth.ts';
import { signBuyerToken, signPayment } from '../../http/signing.ts';
import { startApp, type Harness } from './helpers.ts';

const ADMIN = 'admin-token-0123456789';
const JWT_SECRET = 'jwt-secret-for-tests-0123456789abcdef';
const PAY_SECRET = 'payment-secret-0123456789';
const T0 = Date.UTC(2026, 11, 1, 10, 0, 0);
let clock = T0;
const auth = createAuth({ adminToken: ADMIN, userJwtSecret: JWT_SECRET, paymentSecret: PAY_SECRET, now: () => clock });

let h: Harness;
beforeAll(async () => {
  h = await startApp((router) => {
    router.get('/buyer', auth.requireBuyer, (ctx) => {
      ctx.body = { userId: ctx.state.userId };
    });
    router.get('/admin', auth.requireAdmin, (ctx) => {
      ctx.body = { admin: ctx.state.admin };
    });
  });
});
afterAll(() => h.close());

async function call(path: string, authorization?: string): Promise<{ status: number; body: { error?: string; userId?: string; admin?: boolean }; res: Response }> {
  const res = await fetch(h.url + path, authorization === undefined ? {} : { headers: { authorization } });
  return { status: res.status, body: (await res.json()) as { error?: string; userId?: string }, res };
}

const b64url = (v: unknown): string => Buffer.from(JSON.stringify(v)).toString('base64url');

describe('requireBuyer', () => {
  it('a valid token → 200 with ctx.state.userId = sub', async () => {
    clock = T0;
    const token = await signBuyerToken(JWT_SECRET, 'buyer-42', { now: T0 });
    const r = await call('/buyer', `Bearer ${token}`);
    expect(r.status).toBe(200);
    expect(r.body.userId).toBe('buyer-42');
    expect((await call('/buyer', `bearer ${token}`)).status).toBe(200); // scheme is case-insensitive
  });

  it('exp is honoured with the injected clock', async () => {
    const token = await signBuyerToken(JWT_SECRET, 'u1', { now: T0, expiresIn_s: 60 });
    clock = T0 + 59_000;
    expect((await call('/buyer', `Bearer ${token}`)).status).toBe(200);
    clock = T0 + 61_000;
    const r = await call('/buyer', `Bearer ${token}`);
    expect(r.status).toBe(401);
    expect(r.body.error).toBe('unauthorized');
    expect(r.res.headers.get('www-authenticate')).toMatch(/^Bearer/);
    clock = T0;
  });

  it('nbf in the future → 401', async () => {
    const token = await new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject('u1')
      .setNotBefore(T0 / 1000 + 600).setExpirationTime(T0 / 1000 + 3600).sign(new TextEncoder().encode(JWT_SECRET));
    expect((await call('/buyer', `Bearer ${token}`)).status).toBe(401);
  });

  it('without exp is accepted (exp honoured when present, not demanded)', async () => {
    const token = await new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject('u1').sign(new TextEncoder().encode(JWT_SECRET));
    expect((await call('/buyer', `Bearer ${token}`)).status).toBe(200);
  });

  it.each([
    ['wrong secret', async () => signBuyerToken('another-secret-0123456789abcdef', 'u1', { now: T0 })],
    ['alg none', async () => `${b64url({ alg: 'none', typ: 'JWT' })}.${b64url({ sub: 'u1', exp: T0 / 1000 + 3600 })}.`],
    ['HS512 with the right secret', async () =>
      new SignJWT({}).setProtectedHeader({ alg: 'HS512' }).setSubject('u1').setExpirationTime(T0 / 1000 + 3600).sign(new TextEncoder().encode(JWT_SECRET))],
    ['missing sub', async () =>
      new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setExpirationTime(T0 / 1000 + 3600).sign(new TextEncoder().encode(JWT_SECRET))],
    ['sub not an identifier', async () => signBuyerToken(JWT_SECRET, 'bad sub/1', { now: T0 })],
    ['sub of 65 chars', async () => signBuyerToken(JWT_SECRET, 'u'.repeat(65), { now: T0 })],
    ['tampered payload', async () => {
      const [head, , sig] = (await signBuyerToken(JWT_SECRET, 'u1', { now: T0 })).split('.');
      return `${head}.${b64url({ sub: 'u2', exp: T0 / 1000 + 3600 })}.${sig}`;
    }],
    ['garbage', async () => 'not.a.jwt'],
  ])('%s → 401', async (_name, make) => {
    clock = T0;
    const r = await call('/buyer', `Bearer ${await make()}`);
    expect(r.status).toBe(401);
    expect(r.body.error).toBe('unauthorized');
  });

  it.each([
    ['no header', undefined],
    ['empty', ''],
    ['Basic scheme', `Basic ${Buffer.from('a:b').toString('base64')}`],
    ['Bearer without token', 'Bearer '],
  ])('%s → 401', async (_name, header) => {
    expect((await call('/buyer', header)).status).toBe(401);
  });

  it('the admin token on a buyer route → 403 forbidden', async () => {
    const r = await call('/buyer', `Bearer ${ADMIN}`);
    expect(r.status).toBe(403);
    expect(r.body.error).toBe('forbidden');
  });
});

describe('requireAdmin', () => {
  it('the admin token → 200', async () => {
    const r = await call('/admin', `Bearer ${ADMIN}`);
    expect(r.status).toBe(200);
    expect(r.body.admin).toBe(true);
  });

  it.each([
    ['missing', undefined],
    ['wrong token', 'Bearer admin-token-0123456788'],
    ['a prefix of the token', `Bearer ${ADMIN.slice(0, -1)}`],
    ['the token plus a char', `Bearer ${ADMIN}x`],
    ['an expired buyer token', 'EXPIRED'],
  ])('%s → 401', async (_name, header) => {
    clock = T0;
    const value = header === 'EXPIRED' ? `Bearer ${await signBuyerToken(JWT_SECRET, 'u1', { now: T0 - 7200_000 })}` : header;
    const r = await call('/admin', value);
    expect(r.status).toBe(401);
    expect(r.body.error).toBe('unauthorized');
  });

  it('a valid buyer token → 403 forbidden', async () => {
    clock = T0;
    const r = await call('/admin', `Bearer ${await signBuyerToken(JWT_SECRET, 'u1', { now: T0 })}`);
    expect(r.status).toBe(403);
    expect(r.body.error).toBe('forbidden');
  });
});

describe('verifyPaymentSignature', () => {
  const raw = Buffer.from('{"orderId":"o-1","paymentId":"p-1","amountCents":4999,"status":"succeeded"}');
  const t = T0 / 1000;
  const verify = (header: string | undefined, body: Buffer = raw): boolean => {
    clock = T0;
    return auth.verifyPaymentSignature(body, header);
  };
  const hmac = (secret: string, tStr: string, body: Buffer): string =>
    createHmac('sha256', secret).update(`${tStr}.`).update(body).digest('hex');

  it('valid → true', () => {
    expect(verify(signPayment(PAY_SECRET, raw, t))).toBe(true);
  });
  it('300 s old or ahead → still true', () => {
    expect(verify(signPayment(PAY_SECRET, raw, t - 300))).toBe(true);
    expect(verify(signPayment(PAY_SECRET, raw, t + 300))).toBe(true);
  });
  it('300 s in whole seconds, however far into its second the clock is; 301 s → false', () => {
    const at = (ms: number, header: string) => {
      clock = T0 + ms;
      return auth.verifyPaymentSignature(raw, header);
    };
    expect(at(999, signPayment(PAY_SECRET, raw, t - 300))).toBe(true);
    expect(at(999, signPayment(PAY_SECRET, raw, t + 300))).toBe(true);
    expect(at(500, signPayment(PAY_SECRET, raw, t - 301))).toBe(false);
    expect(at(500, signPayment(PAY_SECRET, raw, t + 301))).toBe(false);
  });
  it('wrong secret → false', () => {
    expect(verify(signPayment('other-secret', raw, t))).toBe(false);
  });
  it('tampered body → false', () => {
    const header = signPayment(PAY_SECRET, raw, t);
    expect(verify(header, Buffer.from(raw.toString().replace('4999', '4998')))).toBe(false);
    expect(verify(header, Buffer.concat([raw, Buffer.from(' ')]))).toBe(false);
  });
  it('t 301 s old → false', () => {
    expect(verify(signPayment(PAY_SECRET, raw, t - 301))).toBe(false);
  });
  it('t 301 s in the future → false', () => {
    expect(verify(signPayment(PAY_SECRET, raw, t + 301))).toBe(false);
  });
  it('signature for another t → false', () => {
    const v1 = hmac(PAY_SECRET, String(t - 10), raw);
    expect(verify(`t=${t},v1=${v1}`)).toBe(false);
  });
  it('several v1 entries: any match → true; none → false', () => {
    const good = hmac(PAY_SECRET, String(t), raw);
    const other = hmac('old-secret', String(t), raw);
    expect(verify(`t=${t},v1=${other},v1=${good}`)).toBe(true);
    expect(verify(`t=${t}, v1=${good.toUpperCase()} ,v0=whatever`)).toBe(true);
    expect(verify(`t=${t},v1=${other},v1=${other}`)).toBe(false);
  });
  it.each([
    ['undefined', undefined],
    ['empty', ''],
    ['no t', `v1=${'0'.repeat(64)}`],
    ['no v1', `t=${t}`],
    ['two t', () => `t=${t},t=${t},v1=${hmac(PAY_SECRET, String(t), raw)}`],
    ['t not a number', () => `t=abc,v1=${hmac(PAY_SECRET, 'abc', raw)}`],
    ['t negative', () => `t=-${t},v1=${hmac(PAY_SECRET, `-${t}`, raw)}`],
    ['v1 not hex', () => `t=${t},v1=${'z'.repeat(64)}`],
    ['v1 truncated', () => `t=${t},v1=${hmac(PAY_SECRET, String(t), raw).slice(0, 63)}`],
    ['no = sign', () => `t${t},v1${hmac(PAY_SECRET, String(t), raw)}`],
    ['huge header', () => `t=${t},` + Array.from({ length: 400 }, () => `v1=${hmac(PAY_SECRET, String(t), raw)}`).join(',')],
  ])('malformed (%s) → false', (_name, header) => {
    expect(verify(typeof header === 'function' ? header() : header)).toBe(false);
  });
});

describe('signing helpers', () => {
  it('signPayment is t=<s>,v1=<64 hex>', () => {
    expect(signPayment('s', '{}', 1_700_000_000)).toMatch(/^t=1700000000,v1=[0-9a-f]{64}$/);
  });
  it('signBuyerToken sets sub, iat and exp', async () => {
    const token = await signBuyerToken('s', 'u9', { now: 1_700_000_000_123, expiresIn_s: 10 });
    const payload = JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()) as Record<string, unknown>;
    expect(payload).toEqual({ sub: 'u9', iat: 1_700_000_000, exp: 1_700_000_010 });
  });
});

describe('bearerToken', () => {
  // The rule it implements, as the regular expression it replaced (scheme case-insensitive, spaces
  // only as separators, at most 8,192 characters of token).
  const reference = (header: string): string | undefined => {
    const m = /^Bearer[ ]+([^ ]+)[ ]*$/i.exec(header);
    return m && m[1]!.length <= 8192 ? m[1] : undefined;
  };
  const ctxWith = (header: string) => ({ get: (name: string) => (name === 'Authorization' ? header : '') }) as unknown as Context;

  it('takes the token after "Bearer" and one or more spaces, and nothing else', () => {
    expect(bearerToken(ctxWith('Bearer abc.def'))).toBe('abc.def');
    expect(bearerToken(ctxWith('bEaReR   abc  '))).toBe('abc');
    for (const bad of ['', 'Bearer', 'Bearer ', 'Bearerabc', 'Basic abc', 'Bearer a b', ' Bearer abc', 'Bearer\tabc', `Bearer ${'x'.repeat(8193)}`]) {
      expect(bearerToken(ctxWith(bad)), bad.slice(0, 20)).toBeUndefined();
    }
    expect(bearerToken(ctxWith(`Bearer ${'x'.repeat(8192)}`))).toHaveLength(8192);
  });

  it('agrees with the regular expression on any header', () => {
    const piece = fc.constantFrom('Bearer', 'bearer', 'BEARER', 'Bear', 'Basic', ' ', '  ', '\t', 'x', 'tok.en', 'é', '');
    const header = fc.oneof(fc.array(piece, { maxLength: 6 }).map((p) => p.join('')), fc.string({ maxLength: 40 }), fc.string({ maxLength: 20 }).map((s) => `Bearer ${s}`));
    fc.assert(
      fc.property(header, (h) => {
        expect(bearerToken(ctxWith(h))).toBe(reference(h));
      }),
      { numRuns: 2000 },
    );
  });
});
