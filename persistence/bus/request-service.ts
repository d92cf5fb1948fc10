// A request/reply service on core NATS (merchant commands, ops queries): one queue-group
// subscription whose handler answers each request. Bounded like everything else: requests handled at
// once have a limit (beyond it the request is answered `overloaded` at once), checked after the
// caller's own bound if it has one (per merchant), and stop() waits for the ones in flight for a
// bounded time. The client re-subscribes by itself after a reconnect.
//
// The reply goes where the request's reply subject says, published with the ENGINE's permissions
// (NATS checks a requester's right to publish its request, not where its reply subject points). So a
// request whose reply subject is not a requester's inbox is dropped unanswered (onRefusedReply): one
// pointing at `$JS.API.STREAM.PURGE.STAMPEDE_EVENTS` would have the engine purge the event stream, one
// at `stampede.evt.<other merchant>.…` would store junk "events" there, and one under the engine's own
// inboxes (engineInboxPrefixes), which a merchant learns from the reply subjects of the event
// publishes it sees on its own event subjects, would land the answer where the engine waits for the
// stream's acks of those publishes: answered at once, it came before the real ack and failed the
// whole publish, again on every retry, so one merchant could stop the events of all.
import type { Msg, NatsConnection, Subscription as NatsSub } from 'nats';
import { within } from './waits.ts';

/** Answers one request: the reply body, as bytes or text (sent as UTF-8). */
export type RequestHandler = (data: Uint8Array, subject: string) => Promise<Uint8Array | string>;

/**
 * A bound of the caller's, checked before the service's own (inFlightMax), so that a request it
 * refuses never holds one of the service's places: per merchant, one merchant's flood or slow
 * commands must not fill the bound all merchants share. `enter` answers undefined to admit the
 * request (`leave` is called once it has been answered, or refused by the service's own bound) or
 * the reply that refuses it.
 */
export interface RequestAdmission {
  enter(subject: string): Uint8Array | string | undefined;
  leave(subject: string): void;
}

export interface RequestServiceOptions {
  /** Requests handled at once, at most (after `admission`). */
  inFlightMax?: number;
  /** The caller's bound, checked first (e.g. per merchant). */
  admission?: RequestAdmission;
  /** Longest stop() waits for requests in flight. */
  stopTimeout_ms?: number;
  /** The reply when the handler throws (a bug or a broken dependency; its message is not sent). */
  errorReply?: (error: unknown) => Uint8Array | string;
  /** Told about each handler failure, e.g. to log it. */
  onError?: (error: unknown, subject: string) => void;
  /** Told about each request dropped for its reply subject (see replySubjectAllowed). */
  onRefusedReply?: (reply: string, subject: string) => void;
  /**
   * Inbox prefixes the engine itself receives replies under (nats_engine_inbox_prefix): a request
   * whose reply subject is under one is dropped unanswered.
   */
  engineInboxPrefixes?: readonly string[];
}

/**
 * Whether the engine may publish a reply to `reply`: not a system or JetStream API subject (`$…`), not
 * the engine's own subjects (`stampede.…`), not under one of the engine's inbox prefixes (whole
 * tokens: `_INBOX.engine` covers `_INBOX.engine.x`, not `_INBOX.engine2.x`), nothing with wildcards
 * or empty tokens.
 */
export function replySubjectAllowed(reply: string, engineInboxPrefixes: readonly string[] = []): boolean {
  if (reply.length === 0 || reply.length > 512) return false;
  if (reply.startsWith('$') || reply.startsWith('stampede.')) return false;
  for (const prefix of engineInboxPrefixes) if (reply === prefix || reply.startsWith(`${prefix}.`)) return false;
  const tokens = reply.split('.');
  return tokens.every((t) => t.length > 0 && t !== '*' && t !== '>' && !/\s/.test(t));
}

export interface RequestService {
  stop(): Promise<void>;
}

export const request_service_defaults = {
  inFlightMax: 256,
  stopTimeout_ms: 5_000,
} as const;

/** The contract's error replies (API.md, "NATS"). */
const unavailable_reply = JSON.stringify({ ok: false, error: 'unavailable', message: 'the request could not be handled now; try again' });
const overloaded_reply = JSON.stringify({ ok: false, error: 'overloaded', message: 'too many requests in flight; try again', retryAfter_s: 1 });
/**
 * A reply the broker would not carry (over its max_payload): the requester hears that instead of
 * nothing. `internal`, not `unavailable` (which says retry): the same request would get the same reply.
 */
const too_large_reply = JSON.stringify({ ok: false, error: 'internal', message: "the reply is larger than the broker's max_payload" });

export function serveRequests(
  connection: NatsConnection,
  subject: string,
  queue: string,
  handler: RequestHandler,
  options: RequestServiceOptions = {},
): RequestService {
  const inFlightMax = options.inFlightMax ?? request_service_defaults.inFlightMax;
  const stopTimeout_ms = options.stopTimeout_ms ?? request_service_defaults.stopTimeout_ms;
  const errorReply = options.errorReply ?? (() => unavailable_reply);
  const engineInboxPrefixes = options.engineInboxPrefixes ?? [];
  const running = new Set<Promise<void>>();
  let stopping: Promise<void> | undefined;

  const respond = (msg: Msg, body: Uint8Array | string) => {
    try {
      msg.respond(body);
    } catch (error) {
      // Over the broker's max_payload (nats.js throws before sending): say so. Else the connection
      // closed meanwhile: the requester times out and may ask again.
      if ((error as { code?: unknown }).code !== 'MAX_PAYLOAD_EXCEEDED') return;
      try {
        msg.respond(too_large_reply);
      } catch {
        // closed meanwhile
      }
    }
  };

  const answer = async (msg: Msg) => {
    let body: Uint8Array | string;
    try {
      body = await handler(msg.data, msg.subject);
    } catch (error) {
      options.onError?.(error, msg.subject);
      body = errorReply(error);
    }
    respond(msg, body);
  };

  const sub: NatsSub = connection.subscribe(subject, {
    queue,
    callback: (error, msg) => {
      if (error || !msg.reply || stopping) return; // a publish without reply asks for nothing
      if (!replySubjectAllowed(msg.reply, engineInboxPrefixes)) {
        options.onRefusedReply?.(msg.reply, msg.subject);
        return;
      }
      const { admission } = options;
      const refusal = admission?.enter(msg.subject);
      if (refusal !== undefined) {
        respond(msg, refusal);
        return;
      }
      if (running.size >= inFlightMax) {
        admission?.leave(msg.subject);
        respond(msg, overloaded_reply);
        return;
      }
      const done: Promise<void> = answer(msg).finally(() => {
        running.delete(done);
        admission?.leave(msg.subject);
      });
      running.add(done);
    },
  });

  return {
    stop() {
      stopping ??= (async () => {
        sub.unsubscribe();
        await within(Promise.allSettled([...running]), stopTimeout_ms, `request service ${subject} stop`).catch(() => {});
      })();
      return stopping;
    },
  };
}
