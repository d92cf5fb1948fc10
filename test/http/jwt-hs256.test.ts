// Proves the buyer-token verifier (http/jwt-hs256.ts) accepts exactly what jose's jwtVerify accepts
// with the options the engine used before it ({ algorithms: ['HS256'], requiredClaims: ['sub'] }):
// random headers, claims, times, wrong keys, tampered and malformed segments, each verified by both.
// The documented differences: a `crit` header, base64 padding and whitespace, which jose may accept and
// this refuses.
import { createHmac } from 'node:crypto';
import fc from 'fast-check';
import { jwtVerify } from 'jose';
import { describe, expect, it } from 'vitest';
import { Hs256Verifier } from '../../http/jwt-hs256.ts';

const SECRET = 'test-jwt-secret-0123456789abcdef0123';
const OTHER_SECRET = 'another-secret-0123456789abcdef012345';
const NOW_S = 1_800_000_000;
const joseKey = new TextEncoder().encode(SECRET);
const verifier = new Hs256Verifier(SECRET);

const b64 = (bytes: Buffer | string) => Buffer.from(bytes).toString('base64url');

function sign(header: Buffer, payload: Buffer, secret = SECRET): string {
  const input = `${b64(header)}.${b64(payload)}`;
  return `${input}.${createHmac('sha256', secret).update(input).digest('base64url')}`;
}

async function jose(token: string, now_ms: number): Promise<unknown> {
  try {
    return (await jwtVerify(token, joseKey, { algorithms: ['HS256'], requiredClaims: ['sub'], currentDate: new Date(now_ms) })).payload;
  } catch {
    return undefined;
  }
}

const header = fc.oneof(
  fc.constant({ alg: 'HS256' }),
  fc.constant({ alg: 'HS256', typ: 'JWT' }),
  fc.constant({ typ: 'JWT', alg: 'HS256', kid: 'k1' }),
  fc.constantFrom({ alg: 'HS384' }, { alg: 'none' }, { alg: 'hs256' }, { typ: 'JWT' }, { alg: ['HS256'] }),
  fc.constant({ alg: 'HS256', crit: ['exp'] }),
  fc.constant({ alg: 'HS256', crit: ['b64'], b64: true }),
);

/** A time claim: mostly comfortably valid (`safe` seconds from now), often at the edges, sometimes no number. */
const time = (safe: number) =>
  fc.oneof(
    { weight: 4, arbitrary: fc.constant(NOW_S + safe) },
    { weight: 2, arbitrary: fc.integer({ min: NOW_S - 3, max: NOW_S + 3 }) },
    { weight: 1, arbitrary: fc.double({ min: NOW_S - 3, max: NOW_S + 3, noNaN: true }) },
    { weight: 1, arbitrary: fc.constantFrom('1900000000', null, true, [NOW_S + 100]) },
  );
const claims = fc.record(
  {
    sub: fc.oneof({ weight: 6, arbitrary: fc.constantFrom('buyer-1', 'b') }, { weight: 1, arbitrary: fc.oneof(fc.constant(''), fc.integer(), fc.constant(null)) }),
    exp: time(1_000),
    nbf: time(-1_000),
    iat: time(-1_000),
    iss: fc.constant('someone'),
  },
  { requiredKeys: [] },
);

/** Payload bytes: JSON of claims mostly, sometimes something that is no claims object at all. */
const payload = fc.oneof(
  { weight: 6, arbitrary: claims.map((c) => Buffer.from(JSON.stringify(c))) },
  { weight: 1, arbitrary: fc.constantFrom('[1,2]', '42', 'null', '"sub"', '{"sub":"x"', '', '{"sub":"x","__proto__":{"a":1}}').map((t) => Buffer.from(t)) },
  { weight: 1, arbitrary: fc.constant(Buffer.from([0x7b, 0x22, 0x73, 0x75, 0x62, 0x22, 0x3a, 0x22, 0xff, 0x22, 0x7d])) }, // {"sub":"\xff"}
);

/** What happens to a well-signed token on its way. */
const mangle = fc.oneof(
  { weight: 8, arbitrary: fc.constant((t: string) => t) },
  { weight: 1, arbitrary: fc.nat().map((i) => (t: string) => flipChar(t, i)) },
  { weight: 1, arbitrary: fc.constantFrom(
      (t: string) => `${t}.`,
      (t: string) => t.slice(0, t.lastIndexOf('.')),
      (t: string) => `${t}=`,
      (t: string) => t.replace('.', ' .'),
      (t: string) => `${t.slice(0, t.lastIndexOf('.'))}.`,
      (t: string) => `.${t.slice(t.indexOf('.') + 1)}`,
      (t: string) => t.slice(0, -1),
      (t: string) => t.replace(/\.[^.]*\./, '..'),
    ) },
);

function flipChar(token: string, i: number): string {
  const k = i % token.length;
  const c = token[k]!;
  const swapped = c === 'A' ? 'B' : c === '.' ? '_' : 'A';
  return token.slice(0, k) + swapped + token.slice(k + 1);
}

describe('HS256 buyer tokens: node:crypto verifier against jose', () => {
  it('accepts what jose accepts and refuses what it refuses (crit, padding, whitespace aside), with the same claims', async () => {
    const seen = { accepted: 0, refused: 0 };
    await fc.assert(
      fc.asyncProperty(header, payload, fc.boolean(), mangle, fc.integer({ min: -4_000, max: 4_000 }), async (h, p, rightKey, m, skew_ms) => {
        const token = m(sign(Buffer.from(JSON.stringify(h)), p, rightKey ? SECRET : OTHER_SECRET));
        const now_ms = NOW_S * 1000 + skew_ms;
        const ours = verifier.verify(token, now_ms);
        const theirs = await jose(token, now_ms);
        if (ours !== undefined) {
          seen.accepted++;
          expect(theirs, token).toEqual(ours);
        } else {
          seen.refused++;
          // Stricter than jose only where a buyer token never goes: crit, base64 padding, whitespace.
          if (!('crit' in h) && !/[=\s]/.test(token)) expect(theirs, token).toBeUndefined();
        }
      }),
      { numRuns: 3_000 },
    );
    // Both sides of the comparison were exercised.
    expect(seen.accepted).toBeGreaterThan(100);
    expect(seen.refused).toBeGreaterThan(100);
  });

  it('checks exp and nbf at whole seconds as jose does', () => {
    const token = (c: object) => sign(Buffer.from('{"alg":"HS256"}'), Buffer.from(JSON.stringify({ sub: 'b', ...c })));
    expect(verifier.verify(token({ exp: NOW_S + 1 }), NOW_S * 1000 + 999)).toBeDefined();
    expect(verifier.verify(token({ exp: NOW_S + 1 }), (NOW_S + 1) * 1000)).toBeUndefined();
    expect(verifier.verify(token({ nbf: NOW_S }), NOW_S * 1000)).toBeDefined();
    expect(verifier.verify(token({ nbf: NOW_S + 1 }), NOW_S * 1000 + 999)).toBeUndefined();
    expect(verifier.verify(token({}), NOW_S * 1000)).toEqual({ sub: 'b' });
  });

  it('refuses a token signed with another secret, or with its signature cut or padded', () => {
    const good = sign(Buffer.from('{"alg":"HS256"}'), Buffer.from('{"sub":"b"}'));
    expect(verifier.verify(good, NOW_S * 1000)).toEqual({ sub: 'b' });
    expect(verifier.verify(sign(Buffer.from('{"alg":"HS256"}'), Buffer.from('{"sub":"b"}'), OTHER_SECRET), NOW_S * 1000)).toBeUndefined();
    expect(verifier.verify(good.slice(0, -2), NOW_S * 1000)).toBeUndefined();
    expect(verifier.verify(`${good}==`, NOW_S * 1000)).toBeUndefined();
    expect(verifier.verify(`${b64('{"alg":"none"}')}.${b64('{"sub":"b"}')}.`, NOW_S * 1000)).toBeUndefined();
  });
});
