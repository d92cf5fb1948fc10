// Proves the request schemas accept the contract's good inputs and turn each bad one into a 400 invalid_request listing path + message, by posting tables of bodies, path parameters and headers to a real koa app that runs readJson + parse.
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ApiError } from '../../http/api-error.ts';
import type { z } from 'zod';
import { readJson } from '../../http/body.ts';
import {
  cardKeysBody,
  idempotencyKey,
  isCalendarDate,
  orderBody,
  parse,
  parseOrderBody,
  paymentCallbackBody,
  skuDateParams,
  skuUpsertBody,
  stockBody,
} from '../../http/validation.ts';
import { postJson, startApp, type Harness } from './helpers.ts';

const schemas: Record<string, z.ZodType> = {
  sku: skuUpsertBody,
  stock: stockBody,
  order: orderBody,
  cardKeys: cardKeysBody,
  payment: paymentCallbackBody,
};

let h: Harness;
beforeAll(async () => {
  h = await startApp((router) => {
    router.post('/v/:schema', async (ctx) => {
      const { value } = await readJson(ctx);
      ctx.body = { value: parse(schemas[ctx.params.schema!]!, value) };
    });
    router.get('/skus/:skuId/stock/:date', (ctx) => {
      ctx.body = parse(skuDateParams, ctx.params, ['params']);
    });
    router.post('/idem', (ctx) => {
      const raw = ctx.get('Idempotency-Key');
      ctx.body = { key: parse(idempotencyKey, raw === '' ? undefined : raw, ['headers', 'idempotency-key']) ?? null };
    });
  });
});
afterAll(() => h.close());

type Details = { path: (string | number)[]; message: string }[];

async function post(schema: string, body: unknown): Promise<{ status: number; json: { value?: unknown; error?: string; details?: Details } }> {
  const res = await postJson(`${h.url}/v/${schema}`, body);
  return { status: res.status, json: (await res.json()) as { value?: unknown; error?: string; details?: Details } };
}

const sku = { name: 'Summit pass', priceCents: 4999, merchantId: 'm-1', delivery: 'ticket' };

const good: [string, string, unknown, unknown?][] = [
  ['sku minimal', 'sku', sku],
  ['sku free + all fields', 'sku', {
    ...sku, priceCents: 0, attributes: { venue: 'hall.A', 'region:eu': '' },
    visibleAt: null, saleStartsAt: '2026-12-01T10:00:00+01:00', saleEndsAt: '2026-12-01T10:00:01Z',
  }],
  // API.md: attributes are {string: string}; a name is any text of 1..64 characters but control characters.
  ['sku attribute names with spaces and CJK', 'sku', { ...sku, attributes: { 'the venue': 'x', 景区: '西湖', ['名'.repeat(64)]: 'y' } }],
  ['sku max price, 200-char name, 32 attributes', 'sku', {
    ...sku, priceCents: 1e12, name: 'n'.repeat(200),
    attributes: Object.fromEntries(Array.from({ length: 32 }, (_, i) => [`k${i}`, 'v'.repeat(256)])),
  }],
  ['sku with its venue\'s time zone', 'sku', { ...sku, attributes: { venue: 'pier', timeZone: 'America/Los_Angeles' } }],
  ['stock 0', 'stock', { total: 0 }],
  ['stock 10^9', 'stock', { total: 1e9 }],
  ['order dated', 'order', { skuId: 'sku-1', date: '2028-02-29', qty: 1 }],
  ['order open, qty 100', 'order', { skuId: 'A.b:c-9', date: 'open', qty: 100 }],
  ['card keys 1', 'cardKeys', { keys: ['k'] }],
  ['card keys 256 chars', 'cardKeys', { keys: ['x'.repeat(256), 'y'] }],
  ['card keys with a surrogate pair (an emoji)', 'cardKeys', { keys: ['KEY-\ud83c\udfab-1'] }],
  ['payment succeeded', 'payment', { orderId: 'o-1', paymentId: 'pi_3Mtw', amountCents: 0, status: 'succeeded' }],
  ['payment failed', 'payment', { orderId: 'o-1', paymentId: 'p1', amountCents: 12, status: 'failed' }],
];

describe('good inputs pass', () => {
  it.each(good)('%s', async (_name, schema, body) => {
    const r = await post(schema, body);
    expect(r.status).toBe(200);
    expect(r.json.value).toBeDefined();
  });

  it('unknown fields are stripped, timestamps normalised to UTC', async () => {
    const r = await post('sku', { ...sku, extra: 1, saleStartsAt: '2026-12-01T10:00:00+01:00' });
    expect(r.status).toBe(200);
    expect(r.json.value).toEqual({ ...sku, saleStartsAt: '2026-12-01T09:00:00.000Z' });
    const o = await post('order', { skuId: 's', date: 'open', qty: 2, userId: 'someone-else' });
    expect(o.json.value).toEqual({ skuId: 's', date: 'open', qty: 2 });
  });
});

const bad: [string, string, unknown, (string | number)[]][] = [
  ['sku missing name', 'sku', { ...sku, name: undefined }, ['name']],
  ['sku empty name', 'sku', { ...sku, name: '' }, ['name']],
  ['sku blank name', 'sku', { ...sku, name: '   ' }, ['name']],
  ['sku name 201 chars', 'sku', { ...sku, name: 'n'.repeat(201) }, ['name']],
  ['sku negative price', 'sku', { ...sku, priceCents: -1 }, ['priceCents']],
  ['sku fractional price', 'sku', { ...sku, priceCents: 1.5 }, ['priceCents']],
  ['sku price > 10^12', 'sku', { ...sku, priceCents: 1e12 + 1 }, ['priceCents']],
  ['sku price as string', 'sku', { ...sku, priceCents: '100' }, ['priceCents']],
  ['sku bad merchantId', 'sku', { ...sku, merchantId: 'a b' }, ['merchantId']],
  ['sku merchantId 65 chars', 'sku', { ...sku, merchantId: 'm'.repeat(65) }, ['merchantId']],
  ['sku bad delivery', 'sku', { ...sku, delivery: 'email' }, ['delivery']],
  ['sku attribute value not a string', 'sku', { ...sku, attributes: { venue: 1 } }, ['attributes', 'venue']],
  ['sku attribute value 257 chars', 'sku', { ...sku, attributes: { venue: 'v'.repeat(257) } }, ['attributes', 'venue']],
  ['sku attribute key with a control character', 'sku', { ...sku, attributes: { 'the\tvenue': 'x' } }, ['attributes', 'the\tvenue']],
  ['sku attribute key empty', 'sku', { ...sku, attributes: { '': 'x' } }, ['attributes', '']],
  ['sku time zone no IANA name', 'sku', { ...sku, attributes: { timeZone: 'Mars/Olympus' } }, ['attributes', 'timeZone']],
  // Refused, not dropped: zod's record would leave it out and the SKU would be stored without it.
  ['sku attribute key __proto__', 'sku', { ...sku, attributes: JSON.parse('{"venue": "v", "__proto__": "x"}') }, ['attributes', '__proto__']],
  ['sku attribute key 65 chars', 'sku', { ...sku, attributes: { ['k'.repeat(65)]: 'x' } }, ['attributes', 'k'.repeat(65)]],
  ['sku attribute key reserved', 'sku', { ...sku, attributes: { date: 'x' } }, ['attributes', 'date']],
  ['sku 33 attributes', 'sku', { ...sku, attributes: Object.fromEntries(Array.from({ length: 33 }, (_, i) => [`k${i}`, 'v'])) }, ['attributes']],
  ['sku attributes an array', 'sku', { ...sku, attributes: ['a'] }, ['attributes']],
  ['sku timestamp without zone', 'sku', { ...sku, visibleAt: '2026-12-01T10:00:00' }, ['visibleAt']],
  ['sku timestamp date only', 'sku', { ...sku, saleStartsAt: '2026-12-01' }, ['saleStartsAt']],
  ['sku timestamp impossible day', 'sku', { ...sku, saleStartsAt: '2026-02-30T00:00:00Z' }, ['saleStartsAt']],
  // The pattern lets these through and Date cannot parse them: a 400, never a 500 from the next check.
  ['sku timestamp month 13', 'sku', { ...sku, saleStartsAt: '2026-13-01T00:00:00Z' }, ['saleStartsAt']],
  ['sku timestamp second 60', 'sku', { ...sku, visibleAt: '2026-01-01T00:00:60Z' }, ['visibleAt']],
  ['sku timestamp offset +24:00', 'sku', { ...sku, saleEndsAt: '2026-01-01T00:00:00+24:00' }, ['saleEndsAt']],
  ['sku timestamp a word', 'sku', { ...sku, saleStartsAt: 'soon' }, ['saleStartsAt']],
  ['sku timestamp a number', 'sku', { ...sku, saleEndsAt: 1764583200000 }, ['saleEndsAt']],
  ['sku end before start', 'sku', { ...sku, saleStartsAt: '2026-12-02T00:00:00Z', saleEndsAt: '2026-12-01T00:00:00Z' }, ['saleEndsAt']],
  ['sku end equals start', 'sku', { ...sku, saleStartsAt: '2026-12-02T00:00:00Z', saleEndsAt: '2026-12-02T01:00:00+01:00' }, ['saleEndsAt']],
  ['sku body an array', 'sku', [sku], []],
  ['sku body null', 'sku', null, []],
  ['stock negative', 'stock', { total: -1 }, ['total']],
  ['stock > 10^9', 'stock', { total: 1e9 + 1 }, ['total']],
  ['stock fractional', 'stock', { total: 0.5 }, ['total']],
  ['stock missing', 'stock', {}, ['total']],
  ['order qty 0', 'order', { skuId: 's', date: 'open', qty: 0 }, ['qty']],
  ['order qty 101', 'order', { skuId: 's', date: 'open', qty: 101 }, ['qty']],
  ['order qty 1.5', 'order', { skuId: 's', date: 'open', qty: 1.5 }, ['qty']],
  ['order qty string', 'order', { skuId: 's', date: 'open', qty: '1' }, ['qty']],
  ['order bad skuId', 'order', { skuId: 's/1', date: 'open', qty: 1 }, ['skuId']],
  ['order empty skuId', 'order', { skuId: '', date: 'open', qty: 1 }, ['skuId']],
  ['order skuId with unicode', 'order', { skuId: 'skü', date: 'open', qty: 1 }, ['skuId']],
  ['order date 2026-02-30', 'order', { skuId: 's', date: '2026-02-30', qty: 1 }, ['date']],
  ['order date 2027-02-29', 'order', { skuId: 's', date: '2027-02-29', qty: 1 }, ['date']],
  ['order date 2026-13-01', 'order', { skuId: 's', date: '2026-13-01', qty: 1 }, ['date']],
  ['order date 2026-04-31', 'order', { skuId: 's', date: '2026-04-31', qty: 1 }, ['date']],
  ['order date 2026-1-01', 'order', { skuId: 's', date: '2026-1-01', qty: 1 }, ['date']],
  ['order date OPEN', 'order', { skuId: 's', date: 'OPEN', qty: 1 }, ['date']],
  ['order date with time', 'order', { skuId: 's', date: '2026-01-01T00:00:00Z', qty: 1 }, ['date']],
  ['order missing date', 'order', { skuId: 's', qty: 1 }, ['date']],
  ['card keys empty list', 'cardKeys', { keys: [] }, ['keys']],
  ['card keys 10001', 'cardKeys', { keys: Array.from({ length: 10_001 }, () => 'k') }, ['keys']],
  ['card keys empty key', 'cardKeys', { keys: ['a', ''] }, ['keys', 1]],
  ['card keys 257-char key', 'cardKeys', { keys: ['x'.repeat(257)] }, ['keys', 0]],
  ['card keys non-string', 'cardKeys', { keys: [1] }, ['keys', 0]],
  ['card keys not a list', 'cardKeys', { keys: 'abc' }, ['keys']],
  ['card keys lone high surrogate', 'cardKeys', { keys: ['ok', 'KEY-\ud800'] }, ['keys', 1]],
  ['card keys lone low surrogate', 'cardKeys', { keys: ['\udc00-KEY'] }, ['keys', 0]],
  ['payment bad status', 'payment', { orderId: 'o', paymentId: 'p', amountCents: 1, status: 'ok' }, ['status']],
  ['payment negative amount', 'payment', { orderId: 'o', paymentId: 'p', amountCents: -1, status: 'failed' }, ['amountCents']],
  ['payment bad orderId', 'payment', { orderId: 'o o', paymentId: 'p', amountCents: 1, status: 'failed' }, ['orderId']],
  ['payment paymentId with space', 'payment', { orderId: 'o', paymentId: 'p 1', amountCents: 1, status: 'failed' }, ['paymentId']],
  ['payment missing paymentId', 'payment', { orderId: 'o', amountCents: 1, status: 'failed' }, ['paymentId']],
];

describe('bad inputs → 400 invalid_request with details', () => {
  it.each(bad)('%s', async (_name, schema, body, path) => {
    const r = await post(schema, body);
    expect(r.status).toBe(400);
    expect(r.json.error).toBe('invalid_request');
    expect(r.json.details!.length).toBeGreaterThan(0);
    for (const d of r.json.details!) expect(typeof d.message).toBe('string');
    expect(r.json.details!.map((d) => d.path)).toContainEqual(path);
  });

  it('lists every issue, not just the first', async () => {
    const r = await post('order', { skuId: '', date: 'tomorrow', qty: 0 });
    expect(r.json.details!.map((d) => d.path).sort()).toEqual([['date'], ['qty'], ['skuId']]);
  });
});

describe('path parameters and headers', () => {
  it.each([
    ['/skus/sku-1/stock/2026-12-24', 200],
    ['/skus/sku-1/stock/open', 200],
    ['/skus/sku-1/stock/2026-02-30', 400],
    ['/skus/sku%20x/stock/open', 400],
    [`/skus/${'s'.repeat(65)}/stock/open`, 400],
    ['/skus/sku%2Fx/stock/open', 400],
  ])('%s → %i', async (path, status) => {
    const res = await fetch(h.url + path);
    expect(res.status).toBe(status);
    if (status === 400) {
      const body = (await res.json()) as { details: Details };
      expect(body.details[0]!.path[0]).toBe('params');
    }
  });

  it.each([
    ['absent', undefined, 200],
    ['uuid', '3f2b8c1e-9d0a-4c57-8f4e-1b2c3d4e5f60', 200],
    ['64 chars', 'k'.repeat(64), 200],
    ['65 chars', 'k'.repeat(65), 400],
    ['non-ASCII (latin-1 byte)', 'clé', 400],
  ])('Idempotency-Key %s → %i', async (_name, key, status) => {
    const headers: Record<string, string> = {};
    if (key !== undefined) headers['idempotency-key'] = key;
    const res = await fetch(`${h.url}/idem`, { method: 'POST', headers });
    expect(res.status).toBe(status);
    const body = (await res.json()) as { key?: string | null; details?: Details };
    if (status === 200) expect(body.key).toBe(key ?? null);
    else expect(body.details![0]!.path).toEqual(['headers', 'idempotency-key']);
  });
});

describe('the order body checked by hand', () => {
  // isCalendarDate as it was written first: through a Date (proleptic Gregorian).
  const calendarReference = (s: string): boolean => {
    const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(s);
    if (!m) return false;
    const [y, mo, d] = [Number(m[1]), Number(m[2]), Number(m[3])];
    if (y < 1 || mo < 1 || mo > 12 || d < 1) return false;
    const probe = new Date(0);
    probe.setUTCFullYear(y, mo - 1, d);
    return probe.getUTCFullYear() === y && probe.getUTCMonth() === mo - 1 && probe.getUTCDate() === d;
  };

  it('isCalendarDate knows every day of 1600-2400 and refuses the days that do not exist', () => {
    let days = 0;
    for (let y = 1600; y <= 2400; y++) {
      for (let mo = 1; mo <= 12; mo++) {
        for (let d = 0; d <= 32; d++) {
          const s = `${String(y)}-${String(mo).padStart(2, '0')}-${String(d).padStart(2, '0')}`;
          expect(isCalendarDate(s)).toBe(calendarReference(s));
          if (isCalendarDate(s)) days++;
        }
      }
    }
    expect(days).toBe(801 * 365 + 195); // 801 years; 201 multiples of 4, less 1700, 1800, 1900, 2100, 2200, 2300
  });

  it('isCalendarDate agrees with the Date-based check on any string', () => {
    const digit = fc.constantFrom(...'0123456789');
    const nearDate = fc
      .tuple(fc.array(digit, { minLength: 4, maxLength: 4 }), fc.array(digit, { minLength: 2, maxLength: 2 }), fc.array(digit, { minLength: 2, maxLength: 2 }), fc.constantFrom('-', '/', '_'))
      .map(([y, m, d, sep]) => `${y.join('')}${sep}${m.join('')}-${d.join('')}`);
    fc.assert(
      fc.property(fc.oneof(nearDate, fc.string({ maxLength: 12 }), fc.constantFrom('0000-01-01', '9999-12-31', '2026-02-29', '2024-02-29', '１２３４-01-01')), (s) => {
        expect(isCalendarDate(s)).toBe(calendarReference(s));
      }),
      { numRuns: 5000 },
    );
  });

  it('parseOrderBody answers exactly what the schema answers: the same value, or the same error', () => {
    const outcome = (f: () => unknown) => {
      try {
        return { ok: true, value: f() };
      } catch (error) {
        const e = error as ApiError;
        return { ok: false, status: e.status, code: e.code, message: e.message, details: e.details };
      }
    };
    const field = <T>(a: fc.Arbitrary<T>) => fc.oneof(a, fc.constant(undefined), fc.constant(null), fc.integer(), fc.string({ maxLength: 5 }), fc.boolean());
    const body = fc.oneof(
      fc.record(
        {
          skuId: field(fc.oneof(fc.stringMatching(/^[A-Za-z0-9._:-]{1,64}$/), fc.string({ minLength: 60, maxLength: 70 }), fc.constant(''))),
          date: field(fc.oneof(fc.constant('open'), fc.constant('OPEN'), fc.date({ noInvalidDate: true }).map((d) => d.toISOString().slice(0, 10)), fc.constantFrom('2026-02-29', '2026-13-01', '26-01-01'))),
          qty: field(fc.oneof(fc.integer({ min: -2, max: 102 }), fc.double(), fc.constantFrom(1.5, 0, 100, 101))),
          extra: fc.anything(),
        },
        { requiredKeys: [] },
      ),
      fc.anything(),
    );
    fc.assert(
      fc.property(body, (value) => {
        expect(outcome(() => parseOrderBody(value))).toEqual(outcome(() => parse(orderBody, value)));
      }),
      { numRuns: 3000 },
    );
  });
});
