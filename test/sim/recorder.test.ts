// Proves that STAMPEDE_RECORD makes a node write the traffic it serves in exactly the contract's
// recorded-traffic form, with no secret in it, and that a recording that cannot be written never
// costs a request: a real node (embedded SQLite) is driven over HTTP through a realistic mix, then
// stopped, and its file is parsed with the replayer's own parser and compared line by line.
import { execFileSync } from 'node:child_process';
import { chmodSync, closeSync, constants, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { signPayment } from '../../http/signing.ts';
import { LineWriter, parseRecording, type RecordedLine } from '../../sim/recording/index.ts';
import { SECRETS, startEngine, type Client } from '../support/engine.ts';
import { sampleValue } from '../support/metrics.ts';

const DATE = '2026-12-05';
const SKU = { name: 'Concert', priceCents: 1999, merchantId: 'm1', delivery: 'ticket' };
const KEY_SKU = { name: 'Game key', priceCents: 500, merchantId: 'm1', delivery: 'card_key' };
const ORDER = { skuId: 'rec-sku', date: DATE, qty: 1 };
const CARD_KEYS = ['KEY-AAAA-1111-secret', 'KEY-BBBB-2222-secret', 'KEY-CCCC-3333-secret'];
const UNPARSEABLE_KEYS = 'KEY-DDDD-4444-secret, not json';

/** Sends a payment callback signed with `secret`, and remembers the signature to look for it later. */
async function pay(c: Client, raw: string, signatures: string[], secret = SECRETS.STAMPEDE_PAYMENT_SECRET): Promise<number> {
  const signature = signPayment(secret, raw, Math.floor(Date.now() / 1000));
  signatures.push(signature);
  return (await c.request('POST', '/v1/payments/callback', { raw, headers: { 'stampede-signature': signature } })).status;
}

const withoutT = ({ t: _t, ...rest }: RecordedLine) => rest;

describe('recording traffic (STAMPEDE_RECORD)', () => {
  it('records a realistic mix in order, with order references, placeholders and outcomes, and no secret', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'stampede-record-'));
    const dataDir = join(dir, 'data');
    const file = join(dir, 'traffic.jsonl');

    // An order made before the recording: requests on it cannot be replayed, so they are left out.
    const before = await startEngine({ kind: 'sqlite', dir: dataDir });
    await before.client.sku('pre-sku', DATE, 5);
    const early = await before.client.buyer('early', 'POST', '/v1/orders', { skuId: 'pre-sku', date: DATE, qty: 1 });
    expect(early.status).toBe(201);
    await before.stop();
    // An earlier recording in the way is moved aside, not appended to.
    writeFileSync(file, '{"old":"recording"}\n');

    const e = await startEngine({ kind: 'sqlite', dir: dataDir }, { STAMPEDE_RECORD: file });
    const c = e.client;
    const signatures: string[] = [];
    try {
      const aside = readdirSync(dir).filter((f) => f.startsWith('traffic.jsonl.'));
      expect(aside).toHaveLength(1);
      expect(aside[0]).toMatch(/^traffic\.jsonl\.\d{8}T\d{6}\.\d{3}Z$/);
      expect(readFileSync(join(dir, aside[0]!), 'utf8')).toBe('{"old":"recording"}\n');

      expect((await c.admin('PUT', '/v1/skus/rec-sku', SKU)).status).toBe(200);
      expect((await c.admin('PUT', `/v1/skus/rec-sku/stock/${DATE}`, { total: 2 })).status).toBe(200);
      expect((await c.admin('PUT', '/v1/skus/rec-keys', KEY_SKU)).status).toBe(200);
      const [k1, k2, k3] = CARD_KEYS as [string, string, string];
      expect((await c.admin('POST', '/v1/skus/rec-keys/card-keys', { keys: [k1, k2, k1] })).body).toEqual({ added: 2, total: 2 });
      expect((await c.admin('POST', '/v1/skus/rec-keys/card-keys', { keys: [k2, k3] })).body).toEqual({ added: 1, total: 3 });
      expect((await c.request('POST', '/v1/skus/rec-keys/card-keys', { raw: UNPARSEABLE_KEYS, auth: SECRETS.STAMPEDE_ADMIN_TOKEN })).status).toBe(400);

      const a = await c.buyer('u1', 'POST', '/v1/orders', ORDER, { 'idempotency-key': 'k-1' });
      expect(a.status).toBe(201);
      const again = await c.buyer('u1', 'POST', '/v1/orders', ORDER, { 'idempotency-key': 'k-1' });
      expect(again.body.orderId).toBe(a.body.orderId);
      const b = await c.buyer('u2', 'POST', '/v1/orders', ORDER);
      expect(b.status).toBe(201);
      expect((await c.buyer('u3', 'POST', '/v1/orders', ORDER)).body.error).toBe('sold_out');
      expect((await c.request('POST', '/v1/orders', { raw: '{"skuId":', auth: await c.token('u3') })).status).toBe(400);
      // A blank key is 400; the format has no such key (a line without it would replay as a 201): left out.
      expect((await c.buyer('u3', 'POST', '/v1/orders', ORDER, { 'idempotency-key': ' ' })).status).toBe(400);
      // Refused for how it was sent (a byte that is not UTF-8, in a field the engine ignores), though read
      // as text its JSON is an order: recorded so that its replay is refused again, not served.
      const notUtf8 = Buffer.concat([Buffer.from(JSON.stringify(ORDER).slice(0, -1) + ',"note":"'), Buffer.from([0xff]), Buffer.from('"}')]);
      const asBytes = await fetch(`${e.url}/v1/orders`, { method: 'POST', body: notUtf8, headers: { 'content-type': 'application/json', authorization: `Bearer ${await c.token('u3')}` } });
      expect(asBytes.status).toBe(400);

      expect((await c.buyer('u1', 'GET', `/v1/orders/${a.body.orderId}`)).status).toBe(200);
      expect((await c.buyer('u2', 'POST', `/v1/orders/${b.body.orderId}/cancel`)).body.status).toBe('cancelled');
      const payment = (paymentId: string) => JSON.stringify({ orderId: a.body.orderId, paymentId, amountCents: 1999, status: 'succeeded' });
      expect(await pay(c, payment('pay-1'), signatures)).toBe(200);
      expect(await pay(c, payment('pay-1'), signatures)).toBe(200);
      expect(await pay(c, payment('pay-2'), signatures, 'not-the-payment-secret-at-all')).toBe(401);
      expect(await pay(c, 'not json', signatures)).toBe(400);
      expect((await c.admin('GET', `/ops/orders/${a.body.orderId}`)).status).toBe(200);

      // On the order made before the recording: left out, counted.
      expect((await c.buyer('early', 'GET', `/v1/orders/${early.body.orderId}`)).status).toBe(200);
      const earlyPayment = JSON.stringify({ orderId: early.body.orderId, paymentId: 'pay-early', amountCents: 1999, status: 'succeeded' });
      expect(await pay(c, earlyPayment, signatures)).toBe(200);

      // An order nobody made: refused without it, so kept as it was.
      expect((await c.buyer('u1', 'GET', '/v1/orders/no-such-order')).status).toBe(404);
      // Valid credentials on the wrong route: the line names them, so the replay is refused the same way.
      expect((await c.admin('GET', `/v1/orders/${a.body.orderId}`)).body.error).toBe('forbidden');
      expect((await c.buyer('u1', 'POST', `/v1/orders/${a.body.orderId}/redeem`)).body.error).toBe('forbidden');
      // No credentials: neither user nor admin.
      expect((await c.request('POST', '/v1/orders', { body: ORDER })).status).toBe(401);
      // Probes are not traffic.
      for (const probe of ['/healthz', '/readyz']) expect((await c.request('GET', probe)).status).toBe(200);
      const metrics = await c.admin('GET', '/metrics');
      expect(sampleValue(metrics.body, 'stampede_record_skipped_total', { reason: 'unreferenced' })).toBe(2);
      expect(sampleValue(metrics.body, 'stampede_record_skipped_total', { reason: 'unrepresentable' })).toBe(1);
      // Answers that end out of arrival order are written in time order all the same.
      const burst = await Promise.all(Array.from({ length: 20 }, () => c.request('GET', '/v1/skus/rec-sku')));
      for (const r of burst) expect(r.status).toBe(200);
    } finally {
      await e.stop();
    }

    const text = readFileSync(file, 'utf8');
    const lines = parseRecording(text);
    const A = 6;
    const B = 8;
    const payOf = (paymentId: string) => ({ orderRef: A, status: 'succeeded', amountCents: 1999, paymentId });
    const expected: Omit<RecordedLine, 't'>[] = [
      { method: 'PUT', path: '/v1/skus/rec-sku', admin: true, body: SKU, outcome: { status: 200 } },
      { method: 'PUT', path: `/v1/skus/rec-sku/stock/${DATE}`, admin: true, body: { total: 2 }, outcome: { status: 200 } },
      { method: 'PUT', path: '/v1/skus/rec-keys', admin: true, body: KEY_SKU, outcome: { status: 200 } },
      { method: 'POST', path: '/v1/skus/rec-keys/card-keys', admin: true, body: { keys: ['<key 1>', '<key 2>', '<key 1>'] }, outcome: { status: 200 } },
      { method: 'POST', path: '/v1/skus/rec-keys/card-keys', admin: true, body: { keys: ['<key 2>', '<key 3>'] }, outcome: { status: 200 } },
      { method: 'POST', path: '/v1/skus/rec-keys/card-keys', admin: true, rawBody: '<withheld>', outcome: { status: 400, error: 'invalid_request' } },
      { method: 'POST', path: '/v1/orders', user: 'u1', idempotencyKey: 'k-1', body: ORDER, outcome: { status: 201 } },
      { method: 'POST', path: '/v1/orders', user: 'u1', idempotencyKey: 'k-1', body: ORDER, outcome: { status: 201 } },
      { method: 'POST', path: '/v1/orders', user: 'u2', body: ORDER, outcome: { status: 201 } },
      { method: 'POST', path: '/v1/orders', user: 'u3', body: ORDER, outcome: { status: 409, error: 'sold_out' } },
      { method: 'POST', path: '/v1/orders', user: 'u3', rawBody: '{"skuId":', outcome: { status: 400, error: 'invalid_request' } },
      { method: 'POST', path: '/v1/orders', user: 'u3', rawBody: '<refused as sent: the body is not valid UTF-8>', outcome: { status: 400, error: 'invalid_request' } },
      { method: 'GET', path: '/v1/orders/{orderId}', user: 'u1', orderRef: A, outcome: { status: 200 } },
      { method: 'POST', path: '/v1/orders/{orderId}/cancel', user: 'u2', orderRef: B, outcome: { status: 200 } },
      { method: 'POST', path: '/v1/payments/callback', payment: true, body: payOf('pay-1'), outcome: { status: 200 } },
      { method: 'POST', path: '/v1/payments/callback', payment: true, body: payOf('pay-1'), outcome: { status: 200 } },
      { method: 'POST', path: '/v1/payments/callback', payment: true, body: payOf('pay-2'), badSignature: true, outcome: { status: 401, error: 'unauthorized' } },
      // A malformed callback names no order to translate: its body as received, as a plain line.
      { method: 'POST', path: '/v1/payments/callback', rawBody: 'not json', outcome: { status: 400, error: 'invalid_request' } },
      { method: 'GET', path: '/ops/orders/{orderId}', admin: true, orderRef: A, outcome: { status: 200 } },
      { method: 'GET', path: '/v1/orders/no-such-order', user: 'u1', outcome: { status: 404, error: 'not_found' } },
      { method: 'GET', path: '/v1/orders/{orderId}', admin: true, orderRef: A, outcome: { status: 403, error: 'forbidden' } },
      { method: 'POST', path: '/v1/orders/{orderId}/redeem', user: 'u1', orderRef: A, outcome: { status: 403, error: 'forbidden' } },
      { method: 'POST', path: '/v1/orders', outcome: { status: 401, error: 'unauthorized' } },
      ...Array.from({ length: 20 }, () => ({ method: 'GET' as const, path: '/v1/skus/rec-sku', outcome: { status: 200 } })),
    ];
    expect(lines.map(withoutT)).toEqual(expected);
    // Every line of the file is one of them (no blank or extra lines), in time order from 0.
    expect(text.split('\n')).toHaveLength(expected.length + 1);
    expect(lines[0]!.t).toBeGreaterThanOrEqual(0);
    for (let i = 1; i < lines.length; i++) expect(lines[i]!.t).toBeGreaterThanOrEqual(lines[i - 1]!.t);
    // Fields in the contract's order, then the extensions.
    expect(text.split('\n')[A]).toMatch(/^\{"t":[\d.]+,"method":"POST","path":"\/v1\/orders","user":"u1","idempotencyKey":"k-1","body":\{.*\},"outcome":\{"status":201\}\}$/);
    expect((await e.node.metrics.recordLines.get()).values[0]!.value).toBe(expected.length);

    const secrets = [
      ...Object.values(SECRETS),
      ...(await Promise.all(['u1', 'u2', 'u3'].map((u) => c.token(u)))),
      await before.client.token('early'),
      await c.token('early'),
      ...CARD_KEYS,
      UNPARSEABLE_KEYS,
      ...signatures,
      ...signatures.map((s) => s.split('v1=')[1]!),
      'Bearer',
    ];
    for (const secret of secrets) expect(text).not.toContain(secret);
    // Buyers' identities and payment ids: the file is readable by its owner only.
    expect(statSync(file).mode & 0o777).toBe(0o600);
    rmSync(dir, { recursive: true, force: true });
  });

  it('serves on when the recording cannot be opened or written (bad path, disk full)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'stampede-record-bad-'));
    const notADirectory = join(dir, 'file');
    writeFileSync(notADirectory, 'x');
    for (const recordFile of [join(notADirectory, 'traffic.jsonl'), '/dev/full']) {
      const e = await startEngine({ kind: 'sqlite' }, { STAMPEDE_RECORD: recordFile });
      try {
        await e.client.sku('bad-rec', DATE, 10);
        for (let i = 0; i < 5; i++) expect((await e.client.buyer(`b${i}`, 'POST', '/v1/orders', { skuId: 'bad-rec', date: DATE, qty: 1 })).status).toBe(201);
        // Past the flush interval: /dev/full has refused its write by now.
        await new Promise((r) => setTimeout(r, 300));
        expect((await e.client.buyer('b9', 'POST', '/v1/orders', { skuId: 'bad-rec', date: DATE, qty: 1 })).status).toBe(201);
        const metrics = (await e.client.admin('GET', '/metrics')).body;
        // sku() made 2 requests, then 6 orders: every one counted as lost, none written.
        expect(sampleValue(metrics, 'stampede_record_dropped_total', { reason: 'write_failed' })).toBe(8);
        expect(sampleValue(metrics, 'stampede_record_lines_total')).toBe(0);
      } finally {
        await e.stop();
      }
    }
    rmSync(dir, { recursive: true, force: true });
  });

  it('leaves out a body nested too deep to write again (a callback answered 401 before its depth was looked at), and answers it as without a recording', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'stampede-record-deep-'));
    const file = join(dir, 'traffic.jsonl');
    const e = await startEngine({ kind: 'sqlite' }, { STAMPEDE_RECORD: file });
    try {
      // 6,000 levels: JSON.parse takes it, JSON.stringify runs out of stack.
      const deep = `${'['.repeat(6_000)}${']'.repeat(6_000)}`;
      const answer = await e.client.request('POST', '/v1/payments/callback', { raw: deep, headers: { 'content-type': 'application/json' } });
      expect(answer.status).toBe(401);
      // The node serves on, and records what comes after.
      await e.client.sku('deep-rec', DATE, 10);
      expect((await e.client.buyer('d1', 'POST', '/v1/orders', { skuId: 'deep-rec', date: DATE, qty: 1 })).status).toBe(201);
      const metrics = (await e.client.admin('GET', '/metrics')).body;
      expect(sampleValue(metrics, 'stampede_record_skipped_total', { reason: 'unrepresentable' })).toBeGreaterThanOrEqual(1);
    } finally {
      await e.stop();
    }
    const lines = parseRecording(readFileSync(file, 'utf8'));
    expect(lines.some((l) => l.path === '/v1/payments/callback')).toBe(false);
    expect(lines.filter((l) => l.path === '/v1/orders')).toHaveLength(1);
    rmSync(dir, { recursive: true, force: true });
  });

  it('does not hold the stop on a disk that takes no more: close gives the unwritten lines up as lost after its deadline', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'stampede-record-stuck-'));
    // A pipe nobody reads from: once its buffer (64 KiB) is full, a write waits for ever, as on a
    // stalled mount.
    const fifo = join(dir, 'traffic.jsonl');
    execFileSync('mkfifo', [fifo]);
    const reader = openSync(fifo, constants.O_RDONLY | constants.O_NONBLOCK);
    const writer = await LineWriter.open(fifo, pino({ level: 'silent' }));
    try {
      const line = `${JSON.stringify({ t: 0, method: 'GET', path: `/healthz?${'x'.repeat(1_000)}` })}\n`;
      for (let i = 0; i < 200; i++) expect(writer.append(line)).toBe(true);
      // Resolves (it waited for ever before): the stop goes on.
      const totals = await writer.close(300);
      // Some lines may have gone into the pipe's buffer; the rest are counted lost, none twice.
      expect(totals.written_lines + totals.dropped_lines.write_failed).toBeLessThanOrEqual(200);
      expect(totals.dropped_lines.write_failed).toBeGreaterThan(0);
    } finally {
      closeSync(reader);
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('makes a recording file that was there already, empty and readable by all, readable by its owner only', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'stampede-rec-mode-'));
    const file = join(dir, 'traffic.jsonl');
    writeFileSync(file, '', { mode: 0o644 });
    chmodSync(file, 0o644);
    const writer = await LineWriter.open(file, pino({ level: 'silent' }));
    try {
      expect(statSync(file).mode & 0o777).toBe(0o600);
    } finally {
      await writer.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('drops lines past the buffer bound, and only those, and writes the rest in order', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'stampede-record-writer-'));
    const file = join(dir, 'lines.jsonl');
    const dropped: number[] = [];
    const writer = await LineWriter.open(file, pino({ level: 'silent' }), { dropped: (_reason, n) => dropped.push(n) }, {
      flush_bytes: 1_000_000,
      flush_interval_ms: 60_000,
      buffered_bytes_max: 100,
      file_bytes_max: 1_000_000,
    });
    const taken = Array.from({ length: 20 }, (_, i) => writer.append(`{"n":${String(i).padStart(3, '0')}}\n`));
    expect(taken).toEqual([...Array(10).fill(true), ...Array(10).fill(false)]);
    expect(dropped).toEqual(Array(10).fill(1));
    const totals = await writer.close();
    expect(totals).toEqual({ written_lines: 10, dropped_lines: { buffer_full: 10, write_failed: 0, file_full: 0 } });
    expect(readFileSync(file, 'utf8')).toBe(Array.from({ length: 10 }, (_, i) => `{"n":${String(i).padStart(3, '0')}}\n`).join(''));
    expect(writer.append('{"late":1}\n')).toBe(false);
    rmSync(dir, { recursive: true, force: true });
  });

  it('ends the recording at the line that would take the file past its size bound: it and every later line dropped, the file whole', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'stampede-record-writer-'));
    const file = join(dir, 'lines.jsonl');
    const reasons: string[] = [];
    const writer = await LineWriter.open(file, pino({ level: 'silent' }), { dropped: (reason) => reasons.push(reason) }, {
      flush_bytes: 20,
      flush_interval_ms: 10,
      buffered_bytes_max: 1_000,
      file_bytes_max: 50,
    });
    // 10 bytes a line: five fit, the sixth would pass 50 bytes, and a short one after it is refused too.
    const taken = Array.from({ length: 6 }, (_, i) => writer.append(`{"n":${i}}00\n`));
    expect(taken).toEqual([true, true, true, true, true, false]);
    expect(writer.append('{}\n')).toBe(false);
    const totals = await writer.close();
    expect(totals).toEqual({ written_lines: 5, dropped_lines: { buffer_full: 0, write_failed: 0, file_full: 2 } });
    expect(reasons).toEqual(['file_full', 'file_full']);
    expect(readFileSync(file, 'utf8')).toBe(Array.from({ length: 5 }, (_, i) => `{"n":${i}}00\n`).join(''));
    rmSync(dir, { recursive: true, force: true });
  });
});
