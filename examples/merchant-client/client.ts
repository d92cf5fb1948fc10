// A merchant's integration with Stampede over NATS, small enough to read in one sitting (see
// README.md here and docs/merchant-guide.md). It
//   - connects as the merchant's NATS user, with the merchant's own inbox prefix (the broker lets a
//     merchant receive replies only there);
//   - sets stock with `stampede.cmd.<merchantId>.stock.set`;
//   - reads the merchant's events from a durable JetStream pull consumer on
//     `stampede.evt.<merchantId>.>` with explicit acks, so nothing is lost while it is down;
//   - skips events it already handled (dedupe by eventId: delivery is at-least-once);
//   - logs every order, and for `order.paid` of its manual SKUs sends
//     `stampede.cmd.<merchantId>.order.deliver` with the payload the buyer will see.
// It imports nothing from the engine: a merchant has only the `nats` package and the contract.

import { AckPolicy, connect, DeliverPolicy, ErrorCode, nanos, NatsError, type ConsumerMessages, type JsMsg, type NatsConnection } from 'nats';

/**
 * A merchant id as one NATS subject token: `.` separates tokens, so it is written `%2E` (as the
 * engine does; docs/merchant-guide.md). Merchant `shop.eu` uses `stampede.cmd.shop%2Eeu.…`.
 */
export function merchantSubjectToken(merchantId: string): string {
  return merchantId.replaceAll('.', '%2E');
}

export interface StockLine {
  skuId: string;
  date: string;
  total: number;
}

/**
 * `sku:date:total,sku:date:total` (the command line's STOCK). Read from the right: a SKU id may hold
 * `:` (API.md's identifiers), a date (`YYYY-MM-DD` or `open`) and a total do not. Throws a RangeError
 * naming the part it cannot read.
 */
export function parseStockLines(text: string | undefined): StockLine[] {
  if (!text) return [];
  return text.split(',').map((part) => {
    const last = part.lastIndexOf(':');
    const middle = last > 0 ? part.lastIndexOf(':', last - 1) : -1;
    const skuId = middle > 0 ? part.slice(0, middle) : '';
    const date = part.slice(middle + 1, last);
    const total = Number(part.slice(last + 1));
    if (!skuId || !date || last === part.length - 1 || !Number.isInteger(total) || total < 0) {
      throw new RangeError(`cannot read ${JSON.stringify(part)}; expected sku:date:total`);
    }
    return { skuId, date, total };
  });
}

/** The fields of an order event the client uses (API.md "NATS"; docs/orders-and-delivery.md). */
export interface OrderEvent {
  eventId: string;
  type: string;
  at: string | number;
  merchantId?: string;
  orderId?: string;
  skuId?: string;
  date?: string;
  qty?: number;
  amountCents?: number;
  status?: string;
  [field: string]: unknown;
}

/** A command's reply: `{ok: true, ...}` or `{ok: false, error, message}`. */
export type CommandReply = ({ ok: true } & Record<string, unknown>) | { ok: false; error: string; message: string; [field: string]: unknown };

export type LogEntry = { what: string } & Record<string, unknown>;

export interface MerchantClientOptions {
  /** NATS server URL(s), e.g. `nats://127.0.0.1:4222`. */
  servers: string | string[];
  merchantId: string;
  /** The merchant's NATS user (default: the merchant id) and password. */
  user?: string;
  pass?: string;
  /** Where replies arrive; the broker config allows `_INBOX_<merchantId>` (the default). */
  inboxPrefix?: string;
  /** The durable consumer; the broker config allows `merchant-<merchantId>` (the default; a `.` in the id written `%2E`). */
  durable?: string;
  /** The engine's event stream (default STAMPEDE_EVENTS). */
  stream?: string;
  /** SKUs this merchant delivers itself (`delivery: "manual"`); their paid orders get an order.deliver. */
  manualSkus?: readonly string[];
  /** What the buyer of a paid manual order receives; the default is a code derived from the order id. */
  deliveryPayload?: (event: OrderEvent) => unknown | Promise<unknown>;
  /** Stock to set when starting. */
  stock?: readonly StockLine[];
  /** Longest wait for one command's reply (default 10 s). */
  requestTimeout_ms?: number;
  /** How long a stock line refused for a passing reason is retried at start (default 60 s). */
  stockRetry_ms?: number;
  /** The first retry's delay, doubling per attempt (default 1 s; also for failed deliveries). */
  retryDelay_ms?: number;
  /** Event ids remembered for dedupe, at most (default 100,000; the oldest are forgotten first). */
  seenEventsMax?: number;
  /** Where log entries go (default: one JSON line each on stdout). */
  log?: (entry: LogEntry) => void;
}

export interface MerchantClient {
  /** Stops taking events, finishes the one in hand, and closes the connection (bounded). */
  stop(): Promise<void>;
  /** Settles when the event loop ends: after stop(), or with the error that ended it. */
  readonly done: Promise<void>;
}

const defaults = {
  stream: 'STAMPEDE_EVENTS',
  requestTimeout_ms: 10_000,
  seenEventsMax: 100_000,
  /** Events handed to the client before it acks, at most. */
  maxAckPending: 256,
  /** Events buffered by consume(), at most. */
  pullBatch: 64,
  /** An event not acked within this is delivered again (the client crashed or hung). */
  ackWait_ms: 30_000,
  /** A failed delivery is retried after this, doubling per attempt, up to the max. */
  retryDelay_ms: 1_000,
  retryDelayMax_ms: 60_000,
  /** How long a stock line refused for a passing reason (unavailable, overloaded) is retried at start. */
  stockRetry_ms: 60_000,
  stop_ms: 10_000,
} as const;

/** Refusals that a retry cannot change: the event is acked after logging them. */
const PERMANENT_ERRORS = new Set(['invalid_request', 'not_found', 'forbidden', 'invalid_state']);

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export async function runMerchantClient(options: MerchantClientOptions): Promise<MerchantClient> {
  const o = { ...defaults, ...options };
  const merchantId = o.merchantId;
  const log = o.log ?? ((entry: LogEntry) => console.log(JSON.stringify({ at: new Date().toISOString(), ...entry })));
  const manual = new Set(o.manualSkus ?? []);
  const payloadOf = o.deliveryPayload ?? ((e: OrderEvent) => ({ code: `${merchantId}-${e.orderId}`, note: 'Show this code at the counter.' }));
  // A durable's name cannot hold a dot: a dotted merchant id (`shop.eu`) is escaped as in its subjects.
  const durable = o.durable ?? `merchant-${merchantSubjectToken(merchantId)}`;

  const nc: NatsConnection = await connect({
    servers: o.servers,
    user: o.user ?? merchantId,
    ...(o.pass !== undefined ? { pass: o.pass } : {}),
    inboxPrefix: o.inboxPrefix ?? `_INBOX_${merchantId}`,
    name: `stampede-merchant-${merchantId}`,
    maxReconnectAttempts: -1,
  });

  /** Sends one command; transport failures come back as `unavailable` (retry) or `forbidden` (the broker refused). */
  const command = async (name: string, body: unknown): Promise<CommandReply> => {
    try {
      const reply = await nc.request(`stampede.cmd.${merchantSubjectToken(merchantId)}.${name}`, encoder.encode(JSON.stringify(body)), { timeout: o.requestTimeout_ms });
      return JSON.parse(decoder.decode(reply.data)) as CommandReply;
    } catch (error) {
      if (error instanceof NatsError && error.code === ErrorCode.PermissionsViolation) return { ok: false, error: 'forbidden', message: error.message };
      if (error instanceof NatsError && error.code === ErrorCode.NoResponders) return { ok: false, error: 'unavailable', message: 'no engine is answering (is it running?)' };
      if (error instanceof NatsError && error.code === ErrorCode.Timeout) return { ok: false, error: 'unavailable', message: `no reply within ${o.requestTimeout_ms} ms` };
      return { ok: false, error: 'unavailable', message: error instanceof Error ? error.message : String(error) };
    }
  };

  let messages: ConsumerMessages | undefined;
  try {
    for (const line of o.stock ?? []) {
      // A refusal a retry can change (the engine not answering yet, overloaded) is retried with
      // backoff for up to stockRetry_ms (merchant-guide.md), then logged as refused.
      let r = await command('stock.set', line);
      const until = Date.now() + o.stockRetry_ms;
      for (let delay: number = o.retryDelay_ms; !r.ok && !PERMANENT_ERRORS.has(r.error) && Date.now() + delay <= until; delay = Math.min(delay * 2, o.retryDelayMax_ms)) {
        log({ what: 'stock.retry', ...line, error: r.error, message: r.message, retry_ms: delay });
        await new Promise((resolve) => setTimeout(resolve, delay));
        r = await command('stock.set', line);
      }
      log(r.ok ? { what: 'stock.set', ...line, available: r.available } : { what: 'stock.refused', ...line, error: r.error, message: r.message });
    }
    // Creating the durable is idempotent; its position survives restarts of this client.
    const jsm = await nc.jetstreamManager({ checkAPI: false });
    await jsm.consumers.add(o.stream, {
      durable_name: durable,
      filter_subject: `stampede.evt.${merchantSubjectToken(merchantId)}.>`,
      ack_policy: AckPolicy.Explicit,
      deliver_policy: DeliverPolicy.All,
      ack_wait: nanos(o.ackWait_ms),
      max_ack_pending: o.maxAckPending,
    });
    const consumer = await nc.jetstream().consumers.get(o.stream, durable);
    messages = await consumer.consume({ max_messages: o.pullBatch });
  } catch (error) {
    await nc.close().catch(() => {});
    throw error;
  }

  // Dedupe by eventId. Kept in memory here, so it covers redeliveries while the client runs; a real
  // integration records handled ids in its own database, in the same transaction as its side effect.
  const seen = new Map<string, true>();
  const remember = (eventId: string) => {
    if (seen.size >= o.seenEventsMax) seen.delete(seen.keys().next().value!);
    seen.set(eventId, true);
  };

  const handle = async (m: JsMsg): Promise<void> => {
    let event: OrderEvent;
    try {
      event = JSON.parse(decoder.decode(m.data)) as OrderEvent;
      if (typeof event?.eventId !== 'string') throw new Error('no eventId');
    } catch {
      log({ what: 'event.unreadable', subject: m.subject, seq: m.seq });
      m.term(); // It will not become readable: stop its redelivery.
      return;
    }
    if (seen.has(event.eventId)) {
      log({ what: 'event.duplicate', eventId: event.eventId });
      m.ack();
      return;
    }
    const { eventId, type, orderId, skuId, date, qty, amountCents, status } = event;
    log({ what: type.startsWith('order.') ? 'order' : 'event', eventId, type, orderId, skuId, date, qty, amountCents, status });

    if (type === 'order.paid' && skuId !== undefined && manual.has(skuId)) {
      const r = await command('order.deliver', { orderId, payload: await payloadOf(event) });
      if (r.ok) {
        log({ what: 'order.delivered', eventId, orderId });
      } else if (PERMANENT_ERRORS.has(r.error)) {
        // e.g. invalid_state when the order was already delivered (a retry after a lost reply).
        log({ what: 'order.deliver_refused', eventId, orderId, error: r.error, message: r.message });
      } else {
        const delay_ms = Math.min(o.retryDelayMax_ms, o.retryDelay_ms * 2 ** Math.min(10, m.info.deliveryCount - 1));
        log({ what: 'order.deliver_retry', eventId, orderId, error: r.error, retryIn_ms: delay_ms });
        m.nak(delay_ms);
        return;
      }
    }
    remember(eventId);
    m.ack();
  };

  const done = (async () => {
    for await (const m of messages) await handle(m);
  })();
  done.catch((error: unknown) => log({ what: 'stopped.error', message: error instanceof Error ? error.message : String(error) }));
  log({ what: 'started', merchantId, durable });

  let stopping: Promise<void> | undefined;
  return {
    done,
    stop: () =>
      (stopping ??= (async () => {
        // One deadline for the whole stop: the event in hand, then the connection.
        const deadline = new Promise((resolve) => setTimeout(resolve, o.stop_ms).unref());
        await Promise.race([messages!.close().catch(() => {}), deadline]);
        await Promise.race([done.catch(() => {}), deadline]);
        // drain() sends the acks still buffered before closing.
        await Promise.race([nc.drain().catch(() => {}), deadline]);
        if (!nc.isClosed()) await nc.close().catch(() => {});
        log({ what: 'stopped', merchantId });
      })()),
  };
}
