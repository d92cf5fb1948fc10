// Proves every contract error code leaves the edge with its status, body and Retry-After, that unknown routes, wrong methods and unexpected throws get contract JSON (never a stack), and that shed 5xx answers are logged once a second, not once each, by serving each from a real koa app and fetching it.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ApiError,
  forbidden,
  idempotencyKeyReused,
  invalidRequest,
  invalidState,
  limitExceeded,
  notFound,
  notOnSale,
  overloaded,
  rateLimited,
  soldOut,
  unauthorized,
  unavailable,
} from '../../http/api-error.ts';
import { SERVER_ERROR_LOG_INTERVAL_MS } from '../../http/error-middleware.ts';
import { startApp, type Harness } from './helpers.ts';

class StoreDown extends Error {}

const cases: { name: string; make: () => Error; status: number; body: Record<string, unknown>; retryAfter?: string }[] = [
  {
    name: 'invalid_request',
    make: () => invalidRequest('bad qty', [{ path: ['qty'], message: 'too big' }]),
    status: 400,
    body: { error: 'invalid_request', message: 'bad qty', details: [{ path: ['qty'], message: 'too big' }] },
  },
  { name: 'unauthorized', make: () => unauthorized(), status: 401, body: { error: 'unauthorized' } },
  { name: 'forbidden', make: () => forbidden(), status: 403, body: { error: 'forbidden' } },
  { name: 'limit_exceeded', make: () => limitExceeded('venue-date'), status: 403, body: { error: 'limit_exceeded', rule: 'venue-date' } },
  { name: 'not_found', make: () => notFound('order'), status: 404, body: { error: 'not_found', message: 'order not found' } },
  { name: 'sold_out', make: () => soldOut(), status: 409, body: { error: 'sold_out' } },
  { name: 'not_on_sale', make: () => notOnSale(), status: 409, body: { error: 'not_on_sale' } },
  { name: 'invalid_state', make: () => invalidState('order is paid'), status: 409, body: { error: 'invalid_state', message: 'order is paid' } },
  { name: 'idempotency_key_reused', make: () => idempotencyKeyReused(), status: 422, body: { error: 'idempotency_key_reused' } },
  { name: 'rate_limited', make: () => rateLimited(2.2), status: 429, body: { error: 'rate_limited' }, retryAfter: '3' },
  { name: 'overloaded', make: () => overloaded(1), status: 503, body: { error: 'overloaded' }, retryAfter: '1' },
  { name: 'unavailable', make: () => unavailable(5), status: 503, body: { error: 'unavailable' }, retryAfter: '5' },
  { name: 'rate_limited-zero', make: () => rateLimited(0), status: 429, body: { error: 'rate_limited' }, retryAfter: '1' },
];

let h: Harness;

beforeAll(async () => {
  h = await startApp(
    (router) => {
      router.get('/throw/:name', (ctx) => {
        const c = cases.find((x) => x.name === ctx.params.name);
        if (!c) throw new Error('no case');
        throw c.make();
      });
      router.get('/boom', () => {
        throw new Error('secret internals at /srv/app.ts:12');
      });
      router.get('/boom-async', async () => {
        await new Promise((r) => setTimeout(r, 1));
        throw new TypeError('cannot read x of undefined');
      });
      router.get('/throw-string', () => {
        throw 'a string';
      });
      router.get('/ctx-throw', (ctx) => ctx.throw(400, 'bad thing'));
      router.get('/ctx-throw-413', (ctx) => ctx.throw(413));
      router.get('/store-down', () => {
        throw new StoreDown('mysql gone');
      });
      router.get('/ok', (ctx) => {
        ctx.body = { ok: true };
      });
      router.delete('/ok', (ctx) => {
        ctx.status = 204;
      });
    },
    { mapError: (err) => (err instanceof StoreDown ? unavailable(2) : undefined) },
  );
});
afterAll(() => h.close());

describe('ApiError → response', () => {
  it.each(cases)('$name → $status', async (c) => {
    const res = await fetch(`${h.url}/throw/${c.name}`);
    expect(res.status).toBe(c.status);
    expect(res.headers.get('content-type')).toMatch(/^application\/json/);
    const body = (await res.json()) as Record<string, unknown>;
    expect(body).toMatchObject(c.body);
    expect(typeof body.message).toBe('string');
    expect((body.message as string).length).toBeGreaterThan(0);
    expect(res.headers.get('retry-after')).toBe(c.retryAfter ?? null);
    // Retry-After is a header, not a body field; only the contract's fields are sent.
    expect(Object.keys(body).every((k) => ['error', 'message', 'details', 'rule'].includes(k))).toBe(true);
  });

  it('ApiError carries status, code, details and extra', () => {
    const e = limitExceeded('r1');
    expect(e).toBeInstanceOf(ApiError);
    expect(e).toBeInstanceOf(Error);
    expect([e.status, e.code, e.extra?.rule]).toEqual([403, 'limit_exceeded', 'r1']);
    expect(rateLimited(7).extra?.retryAfter_s).toBe(7);
    expect(invalidRequest('x', [{ path: [], message: 'm' }]).details).toEqual([{ path: [], message: 'm' }]);
  });
});

describe('anything else', () => {
  it.each(['/boom', '/boom-async', '/throw-string'])('%s → 500 internal, no stack in the body, error logged', async (path) => {
    const before = h.logLines.length;
    const res = await fetch(h.url + path);
    expect(res.status).toBe(500);
    const text = await res.text();
    expect(JSON.parse(text)).toEqual({ error: 'internal', message: 'internal error' });
    expect(text).not.toMatch(/secret|at |\.ts|undefined/);
    const logged = h.logLines.slice(before).map((l) => JSON.parse(l) as { level: number; msg: string });
    expect(logged.some((l) => l.level === 50 && l.msg === 'unhandled error')).toBe(true);
  });

  it('ctx.throw(400) is a 400 invalid_request, not a 500', async () => {
    const res = await fetch(`${h.url}/ctx-throw`);
    expect(res.status).toBe(400);
    expect(await res.json()).toEqual({ error: 'invalid_request', message: 'bad thing', details: [{ path: [], message: 'bad thing' }] });
  });

  it('ctx.throw(413) becomes 400 invalid_request (the contract has no 413)', async () => {
    const res = await fetch(`${h.url}/ctx-throw-413`);
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: string }).error).toBe('invalid_request');
  });

  it('mapError turns a domain error into a contract error', async () => {
    const res = await fetch(`${h.url}/store-down`);
    expect(res.status).toBe(503);
    expect(res.headers.get('retry-after')).toBe('2');
    expect(((await res.json()) as { error: string }).error).toBe('unavailable');
  });

  it('unknown route → 404 not_found JSON', async () => {
    const res = await fetch(`${h.url}/no/such/route`);
    expect(res.status).toBe(404);
    expect(((await res.json()) as { error: string }).error).toBe('not_found');
  });

  it('wrong method on a known path → 405 invalid_request with Allow', async () => {
    const res = await fetch(`${h.url}/ok`, { method: 'PUT' });
    expect(res.status).toBe(405);
    expect(res.headers.get('allow')).toMatch(/GET/);
    expect(res.headers.get('allow')).toMatch(/DELETE/);
    expect(((await res.json()) as { error: string }).error).toBe('invalid_request');
  });

  it('successful answers are untouched (200 body, 204 empty)', async () => {
    const ok = await fetch(`${h.url}/ok`);
    expect(ok.status).toBe(200);
    expect(await ok.json()).toEqual({ ok: true });
    const del = await fetch(`${h.url}/ok`, { method: 'DELETE' });
    expect(del.status).toBe(204);
    expect(await del.text()).toBe('');
  });
});

describe('5xx log lines under load shedding', () => {
  it('logs one line a second per code, the next one saying how many went unlogged, while every request is answered', async () => {
    const h = await startApp((router) => {
      router.get('/shed', () => {
        throw overloaded(1);
      });
    });
    try {
      const warned = () => h.logLines.map((l) => JSON.parse(l) as { level: number; code?: string; unloggedSinceLast?: number }).filter((l) => l.level === 40 && l.code === 'overloaded');
      const first = await Promise.all(Array.from({ length: 50 }, () => fetch(`${h.url}/shed`).then((r) => r.status)));
      expect(first).toEqual(Array(50).fill(503));
      expect(warned()).toHaveLength(1);
      await new Promise((r) => setTimeout(r, SERVER_ERROR_LOG_INTERVAL_MS + 50));
      expect((await fetch(`${h.url}/shed`)).status).toBe(503);
      expect(warned().map((l) => l.unloggedSinceLast)).toEqual([undefined, 49]);
    } finally {
      await h.close();
    }
  });

  it('samples a route\'s unhandled errors by its template: a client varying the id in the path gets no log line per request', async () => {
    const h = await startApp((router) => {
      router.get('/bug/:id', () => {
        throw new Error('a bug of this route');
      });
    });
    try {
      const logged = () => h.logLines.map((l) => JSON.parse(l) as { level: number; msg: string }).filter((l) => l.level === 50 && l.msg === 'unhandled error');
      const statuses = await Promise.all(Array.from({ length: 40 }, (_, i) => fetch(`${h.url}/bug/a${i}`).then((r) => r.status)));
      expect(statuses).toEqual(Array(40).fill(500));
      expect(logged()).toHaveLength(1);
    } finally {
      await h.close();
    }
  });
});
