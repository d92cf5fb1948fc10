// Records the traffic a node serves (`STAMPEDE_RECORD=<file>`) in the contract's recorded-traffic
// form (format.ts), so that `stampede sim replay <file>` can play it again without editing. What
// each request becomes is told in docs/simulation-recording.md; in short:
// - requests under /v1/ and /ops/ are recorded, whatever the answer, with `outcome`, in the order they
//   arrived and with `t` their arrival (a line waits for the lines of the requests that arrived before
//   it, so one buyer's concurrent requests replay in the order the engine got them); probes
//   (/metrics, /healthz, /readyz) are not traffic;
// - a buyer is recorded by the `sub` of its token (`user`), the operator as `admin: true`, never a
//   token; card keys become placeholders `<key N>`; payment callbacks name their order by line
//   (`orderRef`) and are never signed in the file: no secret reaches the file;
// - a request naming an order made before the recording started cannot be replayed (the replay
//   will not have that order): it is left out and counted. Which route a request took is the engine
//   router's answer (`POST /V1/Orders/` is an order), never a comparison of path strings.
// The work on the request path is synchronous and small (build one line, hand it to the buffered
// LineWriter); the file is never awaited by a request, and nothing here can fail a request.
import { createHash, createHmac, randomBytes } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { Context, Middleware } from 'koa';
import type { Logger } from 'pino';
import { bearerToken } from '../../http/auth.ts';
import { sentBodyProblem } from '../../http/body.ts';
import { routeLabel } from '../../http/metrics.ts';
import { cardKeysBody, paymentCallbackBody } from '../../http/validation.ts';
import { CARD_KEYS_ROUTE, OPS_ORDER_ROUTE, OPS_ORDERS_ROUTE, ORDER_ROUTE, ORDERS_ROUTE, CANCEL_ROUTE, PAYMENT_ROUTE, REDEEM_ROUTE } from './api-routes.ts';
import { formatLine, ORDER_ID_PLACEHOLDER, type RecordedLine, type RecordedPaymentBody } from './format.ts';
import { LINE_WRITER_DEFAULTS, LineWriter, type DropReason, type LineWriterLimits } from './line-writer.ts';

/** Why a served request has no line. */
export type SkipReason =
  /** It names an order the recording has no line for (made before the recording started). */
  | 'unreferenced'
  /** The format cannot say it: a method other than GET/POST/PUT/DELETE, an over-long path or Idempotency-Key. */
  | 'unrepresentable';

/**
 * Why a request's line was lost: the file's reasons (line-writer.ts), or `overtaken`: the request was
 * still unanswered past `reorder_wait_ms_max` (or `reorder_bytes_max`) while the lines of later
 * requests waited behind it, or when the recording closed.
 */
export type RecorderDropReason = DropReason | 'overtaken';

export interface RecorderObserver {
  written?(lines: number): void;
  dropped?(reason: RecorderDropReason, lines: number): void;
  skipped?(reason: SkipReason): void;
}

/** What the recorder needs of auth.ts to name who sent a request refused as forbidden. */
export interface RecorderCredentials {
  isAdminToken(token: string): boolean;
  buyerIdOf(token: string): Promise<string | undefined>;
}

export interface RecorderLimits extends LineWriterLimits {
  /** Orders remembered for `orderRef` at most (~100 bytes each); later ones cannot be referred to (their requests are counted unreferenced). */
  order_refs_max: number;
  /** Card keys remembered (as 128-bit digests, ~80 bytes each) for stable placeholders at most; past it a repeated key gets a new number. */
  card_key_digests_max: number;
  /** Request body bytes kept per request at most (the card-key route's own limit, plus a read chunk). */
  body_bytes_max: number;
  /**
   * Lines are written in arrival order, so an answered request's line waits for those of the requests
   * that arrived before it. The oldest request in flight holds the lines behind it at most this long
   * after its arrival; then it is given up (its line lost, counted `overtaken`) and they are written.
   */
  reorder_wait_ms_max: number;
  /** Bytes (an estimate: bodies plus 256 a line) of lines waiting behind a request in flight at most; past it, the same. */
  reorder_bytes_max: number;
}

export const RECORDER_DEFAULTS: RecorderLimits = {
  ...LINE_WRITER_DEFAULTS,
  order_refs_max: 2_000_000,
  card_key_digests_max: 1_000_000,
  body_bytes_max: 3 * 1024 * 1024 + 64 * 1024,
  // Past the longest a request may take in the engine (an ask deadline, 10 s by default; the first
  // rule's PUT, three of them): a slow answer is waited for, not lost.
  reorder_wait_ms_max: 60_000,
  reorder_bytes_max: 16 * 1024 * 1024,
};

/** Bytes a waiting line is counted for, besides its body (the line object, its slot). */
const SLOT_BYTES = 256;

/** Paths the recorder sees: the API (any case, as the router matches it). Everything else (/metrics, /healthz, /readyz) is a probe. */
const RECORDED_PATHS = /^\/(?:v1|ops)\//i;
const METHODS = new Set(['GET', 'POST', 'PUT', 'DELETE']);
/** The format's bounds (format.ts): longer does not parse. */
const PATH_CHARS_MAX = 2_048;
const IDEMPOTENCY_KEY_CHARS_MAX = 64;
const PAYMENT_ID_CHARS_MAX = 64;

/** Route templates (as @koa/router names them) whose `:orderId` the recording replaces by `{orderId}`. */
const ORDER_ROUTES = new Set([ORDER_ROUTE, CANCEL_ROUTE, REDEEM_ROUTE, OPS_ORDER_ROUTE]);
/** The listing's query parameter that names an order (the page starts after it). */
const AFTER_PARAM = 'after';
/**
 * Answers to a request on an unknown order that did not depend on the order existing (refused
 * before it was looked up, or it was not found): the path is kept as it was and replays the same.
 */
const ORDER_BLIND_STATUSES = new Set([400, 401, 403, 404, 405]);

/** Stands for a card-key body that was not JSON (it would show the keys) or a value that is not a key. */
const WITHHELD = '<withheld>';

const cardKey = cardKeysBody.shape.keys.element;

interface BodyTap {
  /** The bytes the app read, and stops recording them (the rest, if any, is the server's to discard). */
  take(): Buffer | undefined;
}

/**
 * Keeps a copy of the request body as the app reads it. The app reads the body itself (http/body.ts,
 * raw bytes for the payment signature) and keeps it to itself, so the copy is taken where every
 * reader gets it: the stream's 'data' events. Listening for them would start the stream flowing
 * before the app listens and lose data; wrapping `emit` sees the chunks only as the app takes them.
 */
function tapBody(req: IncomingMessage, bytes_max: number): BodyTap {
  const chunks: Buffer[] = [];
  let size = 0;
  let open = true;
  const emit = req.emit;
  req.emit = function (this: IncomingMessage, event: string | symbol, ...args: unknown[]): boolean {
    if (open && event === 'data' && Buffer.isBuffer(args[0]) && size < bytes_max) {
      const chunk = args[0];
      chunks.push(chunk.length <= bytes_max - size ? chunk : chunk.subarray(0, bytes_max - size));
      size += chunk.length;
    }
    return emit.apply(this, [event, ...args] as Parameters<typeof emit>);
  } as typeof req.emit;
  return {
    take() {
      open = false;
      req.emit = emit;
      return chunks.length === 0 ? undefined : Buffer.concat(chunks);
    },
  };
}

function hasBody(req: IncomingMessage): boolean {
  const length = req.headers['content-length'];
  return (length !== undefined && length !== '0') || req.headers['transfer-encoding'] !== undefined;
}

/** A request body as the format carries it: the JSON value, or the text when it is not JSON. */
type RecordedBody = { body: unknown } | { rawBody: string };

function bodyOf(raw: Buffer): RecordedBody {
  const text = raw.toString('utf8');
  try {
    return { body: JSON.parse(text) as unknown };
  } catch {
    return { rawBody: text };
  }
}

/** A value of a card-key body that is not a key string, made harmless but refused the same way. */
function scrub(value: unknown): unknown {
  if (typeof value === 'string') return WITHHELD;
  if (typeof value === 'number') return 0;
  if (Array.isArray(value)) return [];
  if (value !== null && typeof value === 'object') return {};
  return value;
}

function errorCodeOf(status: number, body: unknown): string | undefined {
  if (status < 400 || body === null || typeof body !== 'object') return undefined;
  const error = (body as { error?: unknown }).error;
  return typeof error === 'string' ? error : undefined;
}

function stringField(body: unknown, field: string): string | undefined {
  if (body === null || typeof body !== 'object') return undefined;
  const value = (body as Record<string, unknown>)[field];
  return typeof value === 'string' ? value : undefined;
}

/**
 * The query string of an ops listing with its `after` cursor, when that is one value, split around
 * it: the value, and the query with `{orderId}` in its place.
 */
function afterCursor(querystring: string): { orderId: string; query: string } | undefined {
  if (querystring === '') return undefined;
  const values = new URLSearchParams(querystring).getAll(AFTER_PARAM);
  if (values.length !== 1 || values[0] === '') return undefined;
  const parts = querystring.split('&');
  const at = parts.findIndex((p) => p.split('=')[0] === AFTER_PARAM);
  if (at < 0) return undefined;
  parts[at] = `${AFTER_PARAM}=${ORDER_ID_PLACEHOLDER}`;
  return { orderId: values[0]!, query: parts.join('&') };
}

/** What the recorder counted over its life, logged when it closes. */
export interface RecorderTotals {
  lines: number;
  dropped: Record<RecorderDropReason, number>;
  skipped: Record<SkipReason, number>;
}

/** A recorded request from its arrival until its line's turn to be written (lines go out in arrival order). */
interface Slot {
  seq: number;
  /** The line's `t`: its arrival, in ms since the first recorded request arrived. */
  t: number;
  arrived_ms: number;
  state: 'in_flight' | 'answered' | 'given_up';
  /** The line, once answered; none when the request is left out. */
  line?: RecordedLine;
  /** The order the line acts on, by id: its `orderRef` is the line that carried it, known when written. */
  refersTo?: string;
  /** The order this line's answer carried (an order line answered 2xx). */
  carries?: string;
  /** Bytes counted for it against reorder_bytes_max. */
  bytes: number;
}

export class Recorder {
  /** performance.now() when the first recorded request arrived. */
  private origin_ms: number | undefined;
  private last_t = 0;
  /** Arrival number of the next request, and of the oldest one whose line is not written yet. */
  private next_seq = 0;
  private next_out = 0;
  /** Requests from their arrival until their line is written (or left out), by arrival number. */
  private readonly slots = new Map<number, Slot>();
  /** Of those, answered ones waiting for an earlier one; and the bytes counted for all of them. */
  private waiting = 0;
  private held_bytes = 0;
  private reorderTimer: NodeJS.Timeout | undefined;
  /** The request the timer waits on (its arrival number). */
  private reorderTimerSeq = -1;
  private closed = false;
  /** Line number the next line taken by the writer gets. */
  private next_line = 0;
  /** Orders made by requests of this recording: the first line written that carries each, or -1 until one is. */
  private readonly orderLines = new Map<string, number>();
  private readonly keyNumbers = new Map<string, number>();
  private keys_numbered = 0;
  /** Keys the placeholder digests (never a plaintext key is kept): random per recording. */
  private readonly digestKey = randomBytes(32);
  private readonly skipped: Record<SkipReason, number> = { unreferenced: 0, unrepresentable: 0 };
  private overtaken = 0;
  private warnedOrderRefsFull = false;
  private warnedKeyDigestsFull = false;
  private warnedFailure = false;
  private warnedOvertaken = false;

  private constructor(
    private readonly writer: LineWriter,
    private readonly limits: RecorderLimits,
    private readonly observer: RecorderObserver,
    private readonly log: Logger,
  ) {}

  /** Starts a fresh recording in `file` (an earlier non-empty one is moved aside). Never throws. */
  static async open(file: string, log: Logger, observer: RecorderObserver = {}, limits: RecorderLimits = RECORDER_DEFAULTS): Promise<Recorder> {
    const writer = await LineWriter.open(file, log, observer, limits);
    log.info({ file }, 'recording traffic');
    return new Recorder(writer, limits, observer, log);
  }

  get file(): string {
    return this.writer.file;
  }

  /**
   * The koa middleware. Mount it first (outside the metrics and error middleware) so that it sees
   * the final status and the error body. `credentials` names who sent a request refused as
   * `forbidden` (a valid token on the wrong route), so the replay sends the same token kind.
   */
  middleware(credentials: RecorderCredentials): Middleware {
    return async (ctx, next) => {
      if (!RECORDED_PATHS.test(ctx.path)) return next();
      const slot = this.arrive();
      const tap = hasBody(ctx.req) ? tapBody(ctx.req, this.limits.body_bytes_max) : undefined;
      let threw = false;
      try {
        await next();
      } catch (error) {
        threw = true;
        throw error;
      } finally {
        const raw = tap?.take();
        try {
          await this.record(ctx, slot, raw, threw, credentials);
        } catch (error) {
          // A bug here must cost a line, never the request.
          slot.line = undefined;
          if (!this.warnedFailure) {
            this.warnedFailure = true;
            this.log.error({ err: error, method: ctx.method, path: ctx.path }, 'recording: a request could not be recorded (logged once)');
          }
        }
        this.answered(slot, raw?.length ?? 0);
      }
    };
  }

  /** Writes every line taken, closes the file and logs what was recorded and what was not. */
  async close(): Promise<RecorderTotals> {
    // The node closes the recording once every request in flight has its answer; one that has none
    // by now will not get a line, and the lines behind it go out.
    this.closed = true;
    for (const slot of this.slots.values()) if (slot.state === 'in_flight') this.giveUp(slot);
    this.writeReady();
    if (this.reorderTimer) clearTimeout(this.reorderTimer);
    const w = await this.writer.close();
    const totals: RecorderTotals = { lines: w.written_lines, dropped: { ...w.dropped_lines, overtaken: this.overtaken }, skipped: { ...this.skipped } };
    this.log.info({ file: this.writer.file, ...totals }, 'recording closed');
    return totals;
  }

  /** A request to record has arrived: its place in the file and its `t`. */
  private arrive(): Slot {
    const arrived_ms = performance.now();
    this.origin_ms ??= arrived_ms;
    const t = Math.max(Math.round((arrived_ms - this.origin_ms) * 10) / 10, this.last_t);
    this.last_t = t;
    const slot: Slot = { seq: this.next_seq++, t, arrived_ms, state: 'in_flight', bytes: SLOT_BYTES };
    if (this.closed) slot.state = 'given_up';
    else {
      this.slots.set(slot.seq, slot);
      this.held_bytes += SLOT_BYTES;
    }
    return slot;
  }

  /** The request's line is built (or it is left out): it goes out once every earlier one has. */
  private answered(slot: Slot, body_bytes: number): void {
    if (slot.state !== 'in_flight') return;
    slot.state = 'answered';
    if (slot.carries !== undefined && !this.orderLines.has(slot.carries)) {
      if (this.orderLines.size < this.limits.order_refs_max) this.orderLines.set(slot.carries, -1);
      else if (!this.warnedOrderRefsFull) {
        this.warnedOrderRefsFull = true;
        this.log.warn({ order_refs_max: this.limits.order_refs_max }, 'recording: too many orders to remember; requests on later orders will be left out');
      }
    }
    slot.bytes += body_bytes;
    this.held_bytes += body_bytes;
    this.waiting++;
    this.writeReady();
  }

  /**
   * Writes the lines whose turn it is, in arrival order. The oldest request still in flight stops
   * them, unless it has kept answered lines waiting past the bounds: then it is given up.
   */
  private writeReady(): void {
    for (;;) {
      const head = this.slots.get(this.next_out);
      if (head === undefined) break;
      if (head.state === 'in_flight') {
        if (this.waiting === 0) break;
        const late = performance.now() - head.arrived_ms >= this.limits.reorder_wait_ms_max || this.held_bytes > this.limits.reorder_bytes_max;
        if (!late) break;
        this.giveUp(head);
      }
      this.slots.delete(head.seq);
      this.next_out++;
      this.held_bytes -= head.bytes;
      if (head.state === 'answered') {
        this.waiting--;
        this.write(head);
      }
    }
    this.armReorderTimer();
  }

  /** While answered lines wait behind a request in flight, wake up when that request passes its bound. */
  private armReorderTimer(): void {
    const head = this.slots.get(this.next_out);
    const needed = head !== undefined && head.state === 'in_flight' && this.waiting > 0 && !this.closed;
    // Most answers leave the same request at the head: its timer stands (no timer churn per request).
    if (needed && this.reorderTimer !== undefined && this.reorderTimerSeq === head.seq) return;
    if (this.reorderTimer !== undefined) {
      clearTimeout(this.reorderTimer);
      this.reorderTimer = undefined;
    }
    if (!needed) return;
    const due_ms = Math.max(0, head.arrived_ms + this.limits.reorder_wait_ms_max - performance.now());
    this.reorderTimerSeq = head.seq;
    this.reorderTimer = setTimeout(() => {
      this.reorderTimer = undefined;
      this.writeReady();
    }, Math.ceil(due_ms) + 1);
    this.reorderTimer.unref();
  }

  private giveUp(slot: Slot): void {
    slot.state = 'given_up';
    slot.line = undefined;
    this.overtaken++;
    this.observer.dropped?.('overtaken', 1);
    if (!this.warnedOvertaken) {
      this.warnedOvertaken = true;
      this.log.warn(
        { reorder_wait_ms_max: this.limits.reorder_wait_ms_max, reorder_bytes_max: this.limits.reorder_bytes_max },
        'recording: a request still in flight held the lines after it past the bound (or when the recording closed); its line is left out (logged once)',
      );
    }
  }

  /** Hands a line to the writer, its reference resolved to the line that carried the order. */
  private write(slot: Slot): void {
    const line = slot.line;
    if (line === undefined) return;
    if (slot.refersTo !== undefined) {
      const ref = this.orderLines.get(slot.refersTo) ?? -1;
      // The order's line was lost (the buffer was full, or it was overtaken): nothing to refer to.
      if (ref < 0) return this.skip('unreferenced');
      if (line.payment) line.body = { ...(line.body as RecordedPaymentBody), orderRef: ref };
      else line.orderRef = ref;
    }
    line.t = slot.t;
    // A body JSON.parse took but JSON.stringify cannot write (nested thousands deep: a request the
    // engine refused, a callback answered 401 before its depth was looked at) is left out, counted: it
    // threw here, in whichever request's answer or timer wrote the line — a 500 for another buyer's
    // committed order, or the process down from the reorder timer.
    let text: string;
    try {
      text = formatLine(line);
    } catch {
      return this.skip('unrepresentable');
    }
    if (!this.writer.append(text)) return;
    const n = this.next_line++;
    if (slot.carries !== undefined && this.orderLines.get(slot.carries) === -1) this.orderLines.set(slot.carries, n);
  }

  /** Builds the request's line into its slot (none when it is left out). */
  private async record(ctx: Context, slot: Slot, raw: Buffer | undefined, threw: boolean, credentials: RecorderCredentials): Promise<void> {
    const method = ctx.method;
    if (!METHODS.has(method)) return this.skip('unrepresentable');
    const route = routeLabel(ctx);
    const status = threw ? 500 : ctx.status;
    const error = threw ? 'internal' : errorCodeOf(status, ctx.body);
    const query = ctx.querystring;
    let path = query === '' ? ctx.path : `${ctx.path}?${query}`;
    const line: RecordedLine = { t: 0, method: method as RecordedLine['method'], path };
    if (ctx.state.userId !== undefined) line.user = String(ctx.state.userId);
    else if (ctx.state.admin === true) line.admin = true;
    else if (status === 403 && error === 'forbidden') {
      // A valid credential on the wrong route: the replay must send the same kind to be refused the same way.
      const token = bearerToken(ctx);
      if (token !== undefined) {
        if (credentials.isAdminToken(token)) line.admin = true;
        else {
          const user = await credentials.buyerIdOf(token);
          if (user !== undefined) line.user = user;
        }
      }
    }
    const key = ctx.get('Idempotency-Key');
    if (key !== '' && key.length <= IDEMPOTENCY_KEY_CHARS_MAX) line.idempotencyKey = key;
    // Too long, or sent empty or blank (Node trims it to ''): refused (400) on the order route, and
    // the format has no such key (a line without it would replay as a keyless 201); ignored
    // elsewhere, where leaving it out changes nothing.
    else if (ctx.req.headers['idempotency-key'] !== undefined && route === ORDERS_ROUTE) return this.skip('unrepresentable');

    if (method === 'POST' && route === PAYMENT_ROUTE) {
      if (!this.paymentLine(slot, line, raw, status)) return;
    } else {
      // An order named in the path, or as the cursor of the ops listing (`after=<orderId>`).
      let named: { orderId: string; path: string } | undefined;
      if (ORDER_ROUTES.has(route) && typeof ctx.params?.orderId === 'string') {
        named = { orderId: ctx.params.orderId, path: route.replace(':orderId', ORDER_ID_PLACEHOLDER) };
      } else if (method === 'GET' && route === OPS_ORDERS_ROUTE) {
        const cursor = afterCursor(query);
        if (cursor) named = { orderId: cursor.orderId, path: `${ctx.path}?${cursor.query}` };
      }
      if (named !== undefined) {
        if (this.orderLines.has(named.orderId)) {
          path = named.path;
          line.path = path;
          slot.refersTo = named.orderId;
        } else if (!ORDER_BLIND_STATUSES.has(status)) {
          return this.skip('unreferenced');
        }
      }
      // Refused for how its body was sent (a text/plain Content-Type, a latin-1 charset, bytes that
      // are not UTF-8): its JSON, replayed as application/json, would be served. Kept as text that is
      // no JSON, so the replay gets the same 400.
      const refusedAsSent = raw !== undefined && status === 400 ? sentBodyProblem(ctx, raw) : undefined;
      if (refusedAsSent !== undefined) line.rawBody = `<refused as sent: ${refusedAsSent}>`;
      else if (raw !== undefined) {
        const b = bodyOf(raw);
        const kept = method === 'POST' && route === CARD_KEYS_ROUTE ? this.withPlaceholders(String(ctx.params?.skuId ?? ''), b) : b;
        if ('body' in kept) line.body = kept.body;
        else line.rawBody = kept.rawBody;
      }
    }
    if (path.length > PATH_CHARS_MAX || (slot.refersTo === undefined && path.includes(ORDER_ID_PLACEHOLDER))) {
      return this.skip('unrepresentable');
    }
    line.outcome = error === undefined ? { status } : { status, error };
    if (method === 'POST' && route === ORDERS_ROUTE && status < 300) {
      const orderId = stringField(ctx.body, 'orderId');
      if (orderId !== undefined) slot.carries = orderId;
    }
    slot.line = line;
  }

  /**
   * Fills in a payment callback's line; false when it is left out. A well-formed callback on an
   * order of this recording becomes a payment line (the replayer signs it, wrongly when it was
   * refused 401). A callback that is refused as unsigned (401) or malformed (400) without one is
   * kept as a plain line with its body as received: nothing in it needs translating, as the engine
   * refuses it before looking at any order. One that reached an order made before the recording is
   * left out.
   */
  private paymentLine(slot: Slot, line: RecordedLine, raw: Buffer | undefined, status: number): boolean {
    const b = raw === undefined ? undefined : bodyOf(raw);
    const parsed = b !== undefined && 'body' in b ? paymentCallbackBody.safeParse(b.body) : undefined;
    const ours = parsed?.success === true && this.orderLines.has(parsed.data.orderId);
    // A 400 was refused before the order: replaying it as a payment of the order would pay it.
    if (parsed?.success && ours && status !== 400) {
      const p = parsed.data;
      slot.refersTo = p.orderId;
      const body: RecordedPaymentBody = {
        // The line that carried the order, filled in when this line is written.
        orderRef: 0,
        status: p.status,
        amountCents: p.amountCents,
        // Only equality matters (a repeated callback repeats it): a longer provider id is shortened stably.
        paymentId: p.paymentId.length <= PAYMENT_ID_CHARS_MAX ? p.paymentId : `sha256:${createHash('sha256').update(p.paymentId).digest('base64url')}`,
      };
      line.payment = true;
      line.body = body;
      if (status === 401) line.badSignature = true;
      return true;
    }
    if (status === 400 || status === 401) {
      if (b !== undefined) {
        if ('body' in b) line.body = b.body;
        else line.rawBody = b.rawBody;
      }
      // A 400 passed the signature check (it comes first): the replayer signs it again.
      if (status === 401) line.badSignature = true;
      return true;
    }
    this.skip('unreferenced');
    return false;
  }

  /**
   * A card-key upload's body with every key replaced by its placeholder `<key N>`: the same key of
   * the same SKU gets the same N, so a repeated upload replays as the same duplicate. Everything
   * else that could hold a key is withheld in a form the engine refuses the same way: a body that
   * is not JSON, a value where a key string should be. Other fields are dropped (the engine ignores
   * them). A string that is not a valid key keeps only its invalid length.
   */
  private withPlaceholders(skuId: string, b: RecordedBody): RecordedBody {
    if (!('body' in b)) return { rawBody: WITHHELD };
    const body = b.body;
    if (body === null || typeof body !== 'object' || Array.isArray(body)) return { body: null };
    if (!('keys' in body)) return { body: {} };
    const keys = (body as { keys: unknown }).keys;
    if (!Array.isArray(keys)) return { body: { keys: scrub(keys) } };
    return {
      body: {
        keys: keys.map((k: unknown) => {
          if (typeof k !== 'string') return scrub(k);
          if (!cardKey.safeParse(k).success) return '#'.repeat(k.length);
          return `<key ${this.keyNumber(skuId, k)}>`;
        }),
      },
    };
  }

  private keyNumber(skuId: string, key: string): number {
    const digest = createHmac('sha256', this.digestKey).update(`${skuId.length}:${skuId}:`).update(key).digest().subarray(0, 16).toString('base64');
    let n = this.keyNumbers.get(digest);
    if (n === undefined) {
      n = ++this.keys_numbered;
      if (this.keyNumbers.size < this.limits.card_key_digests_max) this.keyNumbers.set(digest, n);
      else if (!this.warnedKeyDigestsFull) {
        this.warnedKeyDigestsFull = true;
        this.log.warn({ card_key_digests_max: this.limits.card_key_digests_max }, 'recording: too many card keys to remember; a key uploaded again will get a new placeholder');
      }
    }
    return n;
  }

  private skip(reason: SkipReason): void {
    this.skipped[reason]++;
    this.observer.skipped?.(reason);
  }
}
