// Reads a JSON request body ourselves, keeping the exact raw bytes (payment signatures are over them).
// Limit 64 KiB (contract): a larger declared Content-Length is refused before reading a byte; a body that
// grows past the limit is refused as soon as it does, reading stops there and the connection is closed
// after the 400 (`Connection: close`), so the rest is never read. Everything wrong with the body is a
// 400 invalid_request: wrong or missing Content-Type, a charset other than UTF-8, a Content-Encoding,
// an empty body, bad UTF-8, malformed JSON.
import type { Context } from 'koa';
import { ApiError, invalidRequest } from './api-error.ts';
import { refuseDeepJson } from './json-depth.ts';

export const BODY_LIMIT_BYTES = 64 * 1024;

export interface JsonBody {
  raw: Buffer;
  value: unknown;
}

export interface ReadJsonOptions {
  /** Defaults to BODY_LIMIT_BYTES (the contract's 64 KiB); raising it departs from the contract. */
  limitBytes?: number;
}

// One read per request: a second call (e.g. signature check, then the handler) gets the same result,
// kept on the request's context under a symbol (a WeakMap entry per request costs the GC more).
const BODY = Symbol('stampede.body');
type WithBody = Context & { [BODY]?: Promise<JsonBody> };

export function readJson(ctx: Context, opts: ReadJsonOptions = {}): Promise<JsonBody> {
  const c = ctx as WithBody;
  let p = c[BODY];
  if (p === undefined) {
    p = doRead(ctx, opts.limitBytes ?? BODY_LIMIT_BYTES);
    c[BODY] = p;
  }
  return p;
}

/** Strict UTF-8 (a bad byte throws); one instance, reused: decode() of a whole buffer keeps no state. */
const utf8 = new TextDecoder('utf-8', { fatal: true });

function tooLarge(ctx: Context, limit: number): ApiError {
  // Do not read (or drain) the rest: close the connection once the 400 is written.
  ctx.set('Connection', 'close');
  return invalidRequest(`request body larger than ${limit} bytes`, [
    { path: [], message: `the request body must be at most ${limit} bytes${limit === BODY_LIMIT_BYTES ? ' (64 KiB)' : ''}`, limitBytes: limit },
  ]);
}

function checkContentType(ctx: Context): void {
  const header = ctx.get('Content-Type');
  // The usual header exactly: nothing to parse.
  if (header === 'application/json') return checkContentEncoding(ctx);
  const [mediaType = '', ...params] = header.split(';');
  if (mediaType.trim().toLowerCase() !== 'application/json') {
    throw invalidRequest('Content-Type must be application/json', [
      { path: ['headers', 'content-type'], message: `expected application/json, got ${JSON.stringify(header.slice(0, 100))}` },
    ]);
  }
  for (const param of params) {
    const eq = param.indexOf('=');
    if (eq < 0) continue;
    const name = param.slice(0, eq).trim().toLowerCase();
    const value = param.slice(eq + 1).trim().replace(/^"(.*)"$/, '$1').toLowerCase();
    if (name === 'charset' && value !== 'utf-8' && value !== 'utf8') {
      throw invalidRequest('the body must be UTF-8', [{ path: ['headers', 'content-type'], message: 'charset must be utf-8' }]);
    }
  }
  checkContentEncoding(ctx);
}

/**
 * Why a request's body would be refused for how it was sent (its Content-Type, charset or
 * Content-Encoding, or bytes that are not UTF-8), whatever the JSON in it; undefined when nothing.
 * The recorder keeps such a request so that its replay is refused the same way (sim/recording).
 */
export function sentBodyProblem(ctx: Context, raw: Buffer): string | undefined {
  try {
    checkContentType(ctx);
    utf8.decode(raw);
    return undefined;
  } catch (error) {
    return error instanceof ApiError ? error.message : 'the body is not valid UTF-8';
  }
}

function checkContentEncoding(ctx: Context): void {
  const encoding = ctx.get('Content-Encoding').trim().toLowerCase();
  if (encoding !== '' && encoding !== 'identity') {
    throw invalidRequest('Content-Encoding is not supported', [
      { path: ['headers', 'content-encoding'], message: 'send the body uncompressed' },
    ]);
  }
}

/**
 * Reads a signed JSON body: the raw bytes first (bounded), then `verify(raw)` — which throws the
 * caller's 401 — and only then the Content-Type and JSON checks, so a tampered or unsigned request
 * is refused as unauthorized whatever its body looks like.
 */
export async function readSignedJson(ctx: Context, verify: (raw: Buffer) => void, limit = BODY_LIMIT_BYTES): Promise<JsonBody> {
  const raw = await readBounded(ctx, limit);
  verify(raw);
  checkContentType(ctx);
  return parseJson(raw);
}

async function readBounded(ctx: Context, limit: number): Promise<Buffer> {
  const declared = ctx.get('Content-Length');
  if (declared !== '') {
    const n = Number(declared);
    if (Number.isFinite(n) && n > limit) throw tooLarge(ctx, limit);
  }
  return readRaw(ctx, limit);
}

async function doRead(ctx: Context, limit: number): Promise<JsonBody> {
  checkContentType(ctx);
  return parseJson(await readBounded(ctx, limit));
}

function parseJson(raw: Buffer): JsonBody {
  if (raw.length === 0) {
    throw invalidRequest('request body is empty', [{ path: [], message: 'a JSON body is required' }]);
  }
  let text: string;
  try {
    text = utf8.decode(raw);
  } catch {
    throw invalidRequest('request body is not valid UTF-8', [{ path: [], message: 'invalid UTF-8' }]);
  }
  refuseDeepJson(text);
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    // Only the position: V8's message quotes the text around it, which may be a secret (a card key).
    const position = err instanceof SyntaxError ? /position (\d+)/.exec(err.message)?.[1] : undefined;
    throw invalidRequest('malformed JSON', [{ path: [], message: position === undefined ? 'not valid JSON' : `not valid JSON at character ${position}` }]);
  }
  return { raw, value };
}

function readRaw(ctx: Context, limit: number): Promise<Buffer> {
  const req = ctx.req;
  if (req.readableEnded) return Promise.resolve(Buffer.alloc(0));
  return new Promise<Buffer>((resolve, reject) => new BodyRead(ctx, limit, resolve, reject).start());
}

/**
 * One body being read. Its listeners are methods bound once, not arrow functions assigned to names:
 * the TypeScript loader (tsx, esbuild's keepNames) gives each such function its name at run time, a
 * property definition per function per request that cost ~2.4% of the server thread under
 * bench:http (docs/performance.md, "Session 7").
 */
class BodyRead {
  private readonly chunks: Buffer[] = [];
  private size = 0;
  private readonly req: Context['req'];

  constructor(
    private readonly ctx: Context,
    private readonly limit: number,
    private readonly resolve: (raw: Buffer) => void,
    private readonly reject: (error: unknown) => void,
  ) {
    this.req = ctx.req;
    this.onData = this.onData.bind(this);
    this.onEnd = this.onEnd.bind(this);
    this.onError = this.onError.bind(this);
    this.onClose = this.onClose.bind(this);
  }

  start(): void {
    this.req.on('data', this.onData);
    this.req.on('end', this.onEnd);
    this.req.on('error', this.onError);
    this.req.on('close', this.onClose);
  }

  private cleanup(): void {
    this.req.off('data', this.onData);
    this.req.off('end', this.onEnd);
    this.req.off('error', this.onError);
    this.req.off('close', this.onClose);
  }

  private onData(chunk: Buffer): void {
    this.size += chunk.length;
    if (this.size > this.limit) {
      this.cleanup();
      this.req.pause();
      this.reject(tooLarge(this.ctx, this.limit));
      return;
    }
    this.chunks.push(chunk);
  }

  private onEnd(): void {
    this.cleanup();
    this.resolve(Buffer.concat(this.chunks, this.size));
  }

  private onError(): void {
    this.cleanup();
    this.reject(invalidRequest('request body could not be read'));
  }

  private onClose(): void {
    // 'close' before 'end': the client went away mid-body.
    this.cleanup();
    this.reject(invalidRequest('request body incomplete'));
  }
}
