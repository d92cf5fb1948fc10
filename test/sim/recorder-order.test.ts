// Proves a recording lists requests in the order they arrived, each with its arrival as `t`, however
// late each was answered, so one buyer's concurrent requests replay in the order the engine got them:
// the recorder is the outermost middleware of a koa app whose handlers the test holds open, and the
// file is read back with the replayer's parser. A reference to an order names the first line that
// carries it, and a request held open past the recorder's bound is left out (counted) so that the lines
// after it are written, and the requests on its order are counted unreferenced.
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Router from '@koa/router';
import Koa from 'koa';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { readJson } from '../../http/body.ts';
import { parseRecording, Recorder, RECORDER_DEFAULTS, type RecorderLimits } from '../../sim/recording/index.ts';
import { InjectTransport, type SimAnswer } from '../../sim/replay/transport.ts';

interface Held {
  started: Promise<void>;
  release(): void;
}

/** A node-like app: the recorder outermost, the order routes, answers the test decides. */
async function recordingApp(file: string, limits: RecorderLimits = RECORDER_DEFAULTS) {
  const counted: string[] = [];
  const recorder = await Recorder.open(file, pino({ level: 'silent' }), { dropped: (reason, n) => counted.push(`dropped ${reason} ${n}`), skipped: (reason) => counted.push(`skipped ${reason}`) }, limits);
  const holds = new Map<string, { started: () => void; released: Promise<void> }>();
  const app = new Koa();
  const router = new Router();
  const buyer = async (ctx: Koa.Context, next: Koa.Next) => {
    ctx.state.userId = ctx.get('x-user');
    const hold = holds.get(ctx.get('x-hold'));
    if (hold) {
      hold.started();
      await hold.released;
    }
    await next();
  };
  router.post('/v1/orders', buyer, async (ctx) => {
    const { value } = await readJson(ctx);
    ctx.status = 201;
    ctx.body = { orderId: ctx.get('x-order'), status: 'reserved', ...(value as object) };
  });
  router.get('/v1/orders/:orderId', buyer, async (ctx) => {
    ctx.body = { orderId: ctx.params.orderId, status: 'reserved' };
  });
  router.get('/v1/skus/:skuId', async (ctx) => {
    ctx.body = { skuId: ctx.params.skuId };
  });
  app.use(recorder.middleware({ isAdminToken: () => false, buyerIdOf: async () => undefined }));
  app.use(router.routes());
  const transport = new InjectTransport(app.callback());
  const send = (method: string, path: string, headers: Record<string, string> = {}, body?: unknown): Promise<SimAnswer> =>
    transport.send({ method, path, headers: { ...headers, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) }, ...(body !== undefined ? { body: JSON.stringify(body) } : {}) });
  const hold = (name: string): Held => {
    let started!: () => void;
    let release!: () => void;
    const s = new Promise<void>((r) => (started = r));
    holds.set(name, { started, released: new Promise<void>((r) => (release = r)) });
    return { started: s, release };
  };
  return { recorder, send, hold, counted };
}

const ORDER = { skuId: 's', date: 'open', qty: 1 };

describe('the order of a recording', () => {
  it('is the order the requests arrived in, with t their arrival, whatever the order of the answers', async () => {
    const file = join(mkdtempSync(join(tmpdir(), 'stampede-rec-order-')), 'traffic.jsonl');
    const { recorder, send, hold } = await recordingApp(file);
    const first = hold('first');
    // A: u1's order arrives first and is held open; B, the same request again (same key), is answered
    // at once with the same order; C reads the order; then A is answered; D reads it again.
    const a = send('POST', '/v1/orders', { 'x-user': 'u1', 'x-hold': 'first', 'x-order': 'o-1', 'idempotency-key': 'k1' }, ORDER);
    await first.started;
    await new Promise((r) => setTimeout(r, 5));
    expect((await send('POST', '/v1/orders', { 'x-user': 'u1', 'x-order': 'o-1', 'idempotency-key': 'k1' }, ORDER)).status).toBe(201);
    await new Promise((r) => setTimeout(r, 5));
    expect((await send('GET', '/v1/orders/o-1', { 'x-user': 'u1' })).status).toBe(200);
    first.release();
    expect((await a).status).toBe(201);
    expect((await send('GET', '/v1/orders/o-1', { 'x-user': 'u1' })).status).toBe(200);
    await recorder.close();

    const lines = parseRecording(readFileSync(file, 'utf8'));
    expect(lines.map(({ t: _t, ...rest }) => rest)).toEqual([
      { method: 'POST', path: '/v1/orders', user: 'u1', idempotencyKey: 'k1', body: ORDER, outcome: { status: 201 } },
      { method: 'POST', path: '/v1/orders', user: 'u1', idempotencyKey: 'k1', body: ORDER, outcome: { status: 201 } },
      // The first line that carries the order, though the second was answered first.
      { method: 'GET', path: '/v1/orders/{orderId}', user: 'u1', orderRef: 0, outcome: { status: 200 } },
      { method: 'GET', path: '/v1/orders/{orderId}', user: 'u1', orderRef: 0, outcome: { status: 200 } },
    ]);
    // Arrival times: A before B (5 ms apart at least), B before C.
    expect(lines[1]!.t - lines[0]!.t).toBeGreaterThanOrEqual(4);
    expect(lines[2]!.t - lines[1]!.t).toBeGreaterThanOrEqual(4);
    expect(lines[3]!.t).toBeGreaterThan(lines[2]!.t);
  });

  it('leaves out a request held open past its bound, so the lines after it are written, and counts it', async () => {
    const file = join(mkdtempSync(join(tmpdir(), 'stampede-rec-order-')), 'traffic.jsonl');
    const { recorder, send, hold, counted } = await recordingApp(file, { ...RECORDER_DEFAULTS, flush_interval_ms: 10, reorder_wait_ms_max: 400 });
    const stuck = hold('stuck');
    const a = send('POST', '/v1/orders', { 'x-user': 'u1', 'x-hold': 'stuck', 'x-order': 'o-2' }, ORDER);
    await stuck.started;
    expect((await send('GET', '/v1/skus/s')).status).toBe(200);
    // Not written while the earlier request may still come (its line would go before it)...
    await new Promise((r) => setTimeout(r, 50));
    expect(readFileSync(file, 'utf8')).toBe('');
    // ...but once it has been in flight past the bound it is given up, and the line behind it goes out.
    await new Promise((r) => setTimeout(r, 800));
    expect(parseRecording(readFileSync(file, 'utf8')).map((l) => l.path)).toEqual(['/v1/skus/s']);
    stuck.release();
    expect((await a).status).toBe(201);
    // A request on the order of the line left out cannot refer to it.
    expect((await send('GET', '/v1/orders/o-2', { 'x-user': 'u1' })).status).toBe(200);
    const totals = await recorder.close();
    expect(counted).toEqual(['dropped overtaken 1', 'skipped unreferenced']);
    expect(totals.dropped.overtaken).toBe(1);
    expect(parseRecording(readFileSync(file, 'utf8')).map((l) => l.path)).toEqual(['/v1/skus/s']);
  });
});
