// Proves readJson keeps the exact raw bytes, refuses bodies over 64 KiB (declared or streamed) without reading the rest, and turns bad content types, bad UTF-8 and malformed JSON into 400s, by posting to a real koa app with fetch and raw sockets.
import { connect, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BODY_LIMIT_BYTES, readJson } from '../../http/body.ts';
import { postJson, startApp, type Harness } from './helpers.ts';

let h: Harness;
const serverSockets: Socket[] = [];

beforeAll(async () => {
  h = await startApp((router) => {
    router.post('/small', async (ctx) => {
      ctx.body = { value: (await readJson(ctx, { limitBytes: 100 })).value };
    });
    router.post('/echo', async (ctx) => {
      const first = await readJson(ctx);
      const again = await readJson(ctx); // cached: the body is read once
      ctx.body = { hex: first.raw.toString('hex'), value: first.value, same: first === again };
    });
  });
  h.server.on('connection', (s) => serverSockets.push(s));
});
afterAll(() => h.close());

const echo = (): string => `${h.url}/echo`;

async function expect400(res: Response): Promise<{ error: string; message: string; details?: { path: unknown[]; message: string }[] }> {
  expect(res.status).toBe(400);
  const body = (await res.json()) as { error: string; message: string; details?: { path: unknown[]; message: string }[] };
  expect(body.error).toBe('invalid_request');
  return body;
}

describe('readJson', () => {
  it('names the limit a route set, not the general 64 KiB, when a body exceeds it', async () => {
    const body = await expect400(await postJson(`${h.url}/small`, JSON.stringify({ pad: 'x'.repeat(200) })));
    expect(body.details?.[0]?.message).toBe('the request body must be at most 100 bytes');
    const general = await expect400(await postJson(echo(), JSON.stringify({ pad: 'x'.repeat(BODY_LIMIT_BYTES) })));
    expect(general.details?.[0]?.message).toBe(`the request body must be at most ${BODY_LIMIT_BYTES} bytes (64 KiB)`);
  });

  it('returns the exact raw bytes and the parsed value', async () => {
    const raw = '{ "b":1,\n  "a": "é☃" }';
    const res = await postJson(echo(), raw, { 'content-type': 'application/json; charset=UTF-8' });
    expect(res.status).toBe(200);
    const body = (await res.json()) as { hex: string; value: unknown; same: boolean };
    expect(Buffer.from(body.hex, 'hex').toString('utf8')).toBe(raw);
    expect(body.value).toEqual({ b: 1, a: 'é☃' });
    expect(body.same).toBe(true);
  });

  it('reads JSON nested 64 levels deep and refuses 65 (strings holding brackets do not count)', async () => {
    const nest = (n: number) => `${'['.repeat(n)}"[{"${']'.repeat(n)}`;
    expect((await postJson(echo(), `{"a":${nest(63)}}`)).status).toBe(200);
    const body = await expect400(await postJson(echo(), `{"a":${nest(64)}}`));
    expect(body.message).toContain('64 levels');
    // 8,000 deep is far under 64 KiB: it used to parse, then overflow the stack of whatever walked it.
    await expect400(await postJson(echo(), nest(8_000)));
  });

  it('accepts a body of exactly 64 KiB', async () => {
    const raw = JSON.stringify('x'.repeat(BODY_LIMIT_BYTES - 2));
    expect(Buffer.byteLength(raw)).toBe(BODY_LIMIT_BYTES);
    const res = await postJson(echo(), raw);
    expect(res.status).toBe(200);
  });

  it('a 65 KiB body → 400 with the limit in details, and the connection is closed', async () => {
    const res = await postJson(echo(), JSON.stringify('x'.repeat(65 * 1024)));
    const body = await expect400(res);
    expect(res.headers.get('connection')).toBe('close');
    expect(JSON.stringify(body.details)).toContain('65536');
  });

  it('a declared Content-Length over the limit is refused before any body byte is sent', async () => {
    const reply = await rawExchange(
      `POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${8 * 1024 * 1024}\r\n\r\n`,
      () => undefined, // send no body at all
    );
    expect(reply).toMatch(/^HTTP\/1\.1 400 /);
    expect(reply).toMatch(/\r\nconnection: close\r\n/i);
    expect(reply).toContain('"invalid_request"');
  });

  it('a chunked body growing past 64 KiB: the server answers 400 and stops reading', async () => {
    const before = serverSockets.length;
    const total = 32 * 1024 * 1024;
    let sent = 0;
    const reply = await rawExchange(
      'POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n',
      (sock, done) => {
        const chunk = Buffer.alloc(16 * 1024, 0x61);
        const frame = Buffer.concat([Buffer.from(`${chunk.length.toString(16)}\r\n`), chunk, Buffer.from('\r\n')]);
        const pump = (): void => {
          while (sent < total && !done()) {
            sent += chunk.length;
            if (!sock.write(frame)) return void sock.once('drain', pump);
          }
        };
        pump();
      },
    );
    expect(reply).toMatch(/^HTTP\/1\.1 400 /);
    const server = serverSockets[before];
    expect(server).toBeDefined();
    // It read the limit plus at most a few socket reads, not the 32 MiB the client tried to send.
    expect(server!.bytesRead).toBeLessThan(1024 * 1024);
    expect(sent).toBeLessThan(total);
  });

  it('a body sent with its headers and one sent later in pieces are both read whole, and the connection serves the next request', async () => {
    const { port } = new URL(h.url);
    const sock = connect(Number(port), '127.0.0.1');
    await new Promise((r) => sock.once('connect', r));
    const received: Buffer[] = [];
    sock.on('data', (d: Buffer) => received.push(d));
    const answers = async (n: number): Promise<string[]> => {
      for (let i = 0; i < 100; i++) {
        const text = Buffer.concat(received).toString('utf8');
        const bodies = [...text.matchAll(/\r\n\r\n(\{[^\r]*?\})(?=HTTP\/|$)/g)].map((m) => m[1]!);
        if (bodies.length >= n) return bodies;
        await new Promise((r) => setTimeout(r, 20));
      }
      throw new Error(`no ${n} answers in: ${Buffer.concat(received).toString('utf8')}`);
    };
    const request = (raw: string) => `POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(raw)}\r\n\r\n`;
    try {
      // 1: headers and body in one write.
      sock.write(request('{"n":1}') + '{"n":1}');
      await answers(1);
      // 2: the body 100 ms after the headers, in two pieces.
      sock.write(request('{"n":2,"s":"ab"}'));
      await new Promise((r) => setTimeout(r, 100));
      sock.write('{"n":2,');
      await new Promise((r) => setTimeout(r, 20));
      sock.write('"s":"ab"}');
      await answers(2);
      // 3: once more in one write, on the same connection.
      sock.write(request('{"n":3}') + '{"n":3}');
      const bodies = (await answers(3)).map((b) => JSON.parse(b) as { value: unknown; hex: string });
      expect(bodies.map((b) => b.value)).toEqual([{ n: 1 }, { n: 2, s: 'ab' }, { n: 3 }]);
      expect(Buffer.from(bodies[1]!.hex, 'hex').toString()).toBe('{"n":2,"s":"ab"}');
    } finally {
      sock.destroy();
    }
  });

  it.each([
    ['malformed JSON', '{"a":', 'application/json'],
    ['trailing garbage', '{"a":1} x', 'application/json'],
    ['empty body', '', 'application/json'],
    ['text/plain', '{"a":1}', 'text/plain'],
    ['form content type', 'a=1', 'application/x-www-form-urlencoded'],
    ['json-ish but not json type', '{"a":1}', 'application/jsonp'],
    ['latin-1 charset', '{"a":1}', 'application/json; charset=iso-8859-1'],
  ])('%s → 400', async (_name, raw, type) => {
    const res = await fetch(echo(), { method: 'POST', headers: { 'content-type': type }, body: raw });
    const body = await expect400(res);
    expect(body.details?.length).toBeGreaterThan(0);
  });

  it('a malformed body is never echoed back (it may carry a secret such as a card key)', async () => {
    const res = await fetch(echo(), { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"keys": ["SECRET-KEY-123" "x"]}' });
    const body = await expect400(res);
    expect(JSON.stringify(body)).not.toContain('SECRET');
    expect(body.details?.[0]?.message).toMatch(/^not valid JSON at character \d+$/);
  });

  it('no Content-Type at all → 400', async () => {
    const reply = await rawExchange('POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 7\r\nConnection: close\r\n\r\n{"a":1}', () => undefined);
    expect(reply).toMatch(/^HTTP\/1\.1 400 /);
  });

  it('bad UTF-8 → 400', async () => {
    const raw = Buffer.concat([Buffer.from('{"a":"'), Buffer.from([0xc3, 0x28]), Buffer.from('"}')]);
    const res = await fetch(echo(), { method: 'POST', headers: { 'content-type': 'application/json' }, body: raw });
    const body = await expect400(res);
    expect(body.message).toMatch(/UTF-8/);
    // A body cut inside a multi-byte character, then a good one: each request is decoded on its own.
    const cut = await fetch(echo(), { method: 'POST', headers: { 'content-type': 'application/json' }, body: Buffer.from([0x7b, 0x22, 0x61, 0x22, 0x3a, 0x22, 0xe2, 0x82]) });
    await expect400(cut);
    const good = await postJson(echo(), '{"a":"€ ok"}');
    expect(good.status).toBe(200);
    expect(await good.text()).toContain('€ ok');
  });

  it('Content-Type application/json exactly, any case, or with charset utf-8 is read; with another charset it is not', async () => {
    for (const type of ['application/json', 'Application/JSON', 'application/json; charset=utf-8', 'application/json;charset="UTF8"']) {
      expect((await postJson(echo(), '{"a":1}', { 'content-type': type })).status, type).toBe(200);
    }
    await expect400(await postJson(echo(), '{"a":1}', { 'content-type': 'application/json; charset=latin1' }));
    await expect400(await postJson(echo(), '{"a":1}', { 'content-type': 'application/json', 'content-encoding': 'br' }));
  });

  it('a Content-Encoding → 400', async () => {
    const res = await postJson(echo(), '{"a":1}', { 'content-encoding': 'gzip' });
    await expect400(res);
  });
});

/** Writes `head`, lets `body` write more, and resolves with everything the server sent once it closes or 3 s pass. */
function rawExchange(head: string, body: (sock: Socket, done: () => boolean) => void): Promise<string> {
  const { port } = new URL(h.url);
  return new Promise((resolve, reject) => {
    const sock = connect(Number(port), '127.0.0.1');
    const received: Buffer[] = [];
    let finished = false;
    const finish = (): void => {
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      sock.destroy();
      resolve(Buffer.concat(received).toString('latin1'));
    };
    const timer = setTimeout(finish, 3000);
    sock.on('data', (d: Buffer) => received.push(d));
    sock.on('end', finish);
    sock.on('close', finish);
    sock.on('error', () => finish()); // EPIPE/ECONNRESET once the server hangs up: expected
    sock.once('connect', () => {
      sock.write(head);
      body(sock, () => finished || sock.destroyed);
    });
    sock.once('timeout', () => reject(new Error('timeout')));
  });
}
