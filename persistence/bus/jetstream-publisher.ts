// JetStream publishes with their acks, made on the connection directly: each event is a core NATS
// publish with a reply subject under one inbox of this publisher, and the stream's PubAck (or its
// error) comes back there. nats.js's `js.publish` does the same through a request object per event —
// a timer, a deferred promise, a mux entry, and, once the ack has resolved it, a "cancelled" NatsError
// built with its stack (nats.js 2.29's RequestOne cancels itself after resolving): measured with
// NATS configured, that error alone took 14% of the engine's thread while a flash sale's
// order.reserved events were relayed (docs/performance.md, session 11). Here an event costs its
// headers, its publish, and one JSON parse of its ack; a call's events share one timer.
//
// Every subscriber of an event subject sees the publish's reply subject (merchant m1 subscribes to
// `stampede.evt.m1.>`), so the reply subject is no secret, and something other than the stream may
// answer there: the request service refuses to answer into the engine's inboxes (request-service.ts),
// and here a call's reply subjects are `<inbox>.<call token>.<index>` with a random call token, so
// what one call's publishes show says nothing about the next call's; and a reply that is neither a
// PubAck nor a JetStream error is passed over (the event still waits for its ack), never taken as the
// event's failure or success.

import { randomBytes } from 'node:crypto';
import { createInbox, headers, type Msg, type NatsConnection, type NatsError, type Subscription } from 'nats';
import type { OutgoingEvent } from './ports.ts';
import { eventBytes } from './subjects.ts';

/**
 * Random bytes of a call's token: unguessable (from the OS's CSPRNG, not nats.js's nuid, whose next
 * value follows from the last by a small increment), and made once per call, not per event.
 */
const call_token_bytes = 16;

/** One publish call: its events' acks still expected, the first failure, and how it ends. */
interface Call {
  token: string;
  events: number;
  /** 1 at an event's index once its ack (or error) came: a second reply for it is passed over. */
  answered: Uint8Array;
  waiting: number;
  failure: Error | undefined;
  timer: ReturnType<typeof setTimeout> | undefined;
  resolve: () => void;
  reject: (error: Error) => void;
}

/** What a reply says of its event: stored, failed (and why), or nothing (it is not from JetStream). */
type AckOutcome = 'stored' | 'not_an_ack' | JetStreamPublishError;

export class JetStreamPublishError extends Error {
  override name = 'JetStreamPublishError';
  constructor(
    message: string,
    /** NATS's status code when the server answered with a status instead of an ack (503: nothing took the subject, no such stream). */
    readonly status?: number,
  ) {
    super(message);
  }
}

export class JetStreamPublisher {
  private readonly inbox: string;
  private readonly subscription: Subscription;
  private readonly decoder = new TextDecoder();
  private readonly headers = headers();
  /** Call token → its call, while it waits for acks. */
  private readonly calls = new Map<string, Call>();
  private closed = false;

  /** `inboxPrefix`: the connection's (NatsBus gives the engine's, nats_engine_inbox_prefix). */
  constructor(
    private readonly connection: NatsConnection,
    inboxPrefix?: string,
  ) {
    this.inbox = createInbox(inboxPrefix);
    this.subscription = connection.subscribe(`${this.inbox}.*.*`, { callback: (error, msg) => this.onReply(error, msg) });
  }

  /**
   * Publishes the events in order (back to back on the connection, so the stream stores them in this
   * order) to `stream`, each with `Nats-Msg-Id` = its id (JetStream drops a republished id within
   * its duplicate window). Resolves once every PubAck is in; rejects with the first failure (an
   * error ack, no stream for a subject, or no ack within `timeout_ms`).
   */
  publish(events: readonly OutgoingEvent[], stream: string, timeout_ms: number): Promise<void> {
    if (this.closed) return Promise.reject(new JetStreamPublishError('JetStream publisher is closed'));
    if (events.length === 0) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const token = randomBytes(call_token_bytes).toString('base64url');
      const call: Call = { token, events: events.length, answered: new Uint8Array(events.length), waiting: events.length, failure: undefined, timer: undefined, resolve, reject };
      this.calls.set(token, call);
      const replyBase = `${this.inbox}.${token}.`;
      try {
        for (let i = 0; i < events.length; i++) {
          const event = events[i]!;
          // One headers object for every publish: nats.js encodes it into the outgoing buffer before
          // publish returns.
          const h = this.headers;
          h.set('Nats-Msg-Id', event.id);
          h.set('Nats-Expected-Stream', stream);
          this.connection.publish(event.subject, eventBytes(event.data), { reply: `${replyBase}${i}`, headers: h });
        }
      } catch (error) {
        // The connection refused the publish (closed, or its buffer full while away): what was sent
        // may still be acked, but the call fails now.
        this.end(call, error instanceof Error ? error : new JetStreamPublishError(String(error)));
        return;
      }
      call.timer = setTimeout(() => this.end(call, new JetStreamPublishError(`no PubAck within ${timeout_ms} ms`)), timeout_ms);
    });
  }

  /**
   * Calls still waiting fail, and so does every later one. With `unsubscribe` false the reply
   * subscription is left to the connection's close (a NatsBus closing closes it next): an UNSUB
   * written while the server is away can reach a socket nats.js has already ended ("write after
   * end", thrown from its flush where nothing can catch it).
   */
  close(unsubscribe = true): void {
    if (this.closed) return;
    this.closed = true;
    if (unsubscribe && !this.connection.isClosed()) this.subscription.unsubscribe();
    for (const call of [...this.calls.values()]) this.end(call, new JetStreamPublishError('JetStream publisher is closed'));
  }

  private onReply(error: NatsError | null, msg: Msg): void {
    if (error) return; // the subscription's own failure (closed connection): calls time out or are closed
    // `<inbox>.<call token>.<index>`, the index written as publish() writes it.
    const rest = msg.subject.slice(this.inbox.length + 1);
    const dot = rest.indexOf('.');
    const call = this.calls.get(rest.slice(0, dot));
    if (!call) return; // a call that already ended (timed out), or no call of ours
    const indexText = rest.slice(dot + 1);
    const index = Number(indexText);
    if (!(index >= 0 && index < call.events && String(index) === indexText) || call.answered[index] === 1) return;
    const outcome = this.outcomeOf(msg);
    if (outcome === 'not_an_ack') return; // still waiting for the stream's answer (or the timeout)
    call.answered[index] = 1;
    if (outcome !== 'stored' && !call.failure) call.failure = outcome;
    if (--call.waiting === 0) this.end(call, call.failure);
  }

  /**
   * What a reply says of its event. JetStream answers a publish with a PubAck (`stream` and `seq`),
   * an error (`error.code`), or, from the server, a status such as 503 (no stream takes the subject).
   * Anything else is not JetStream's (a command's answer a requester aimed here, say): passed over,
   * since taking it as a failure would let whoever can aim a reply here fail the engine's publishes.
   */
  private outcomeOf(msg: Msg): AckOutcome {
    const h = msg.headers;
    if (h?.hasError) return new JetStreamPublishError(`NATS ${h.code}${h.description ? ` ${h.description}` : ''}`, h.code);
    let ack: { stream?: unknown; seq?: unknown; error?: unknown } | null;
    try {
      ack = JSON.parse(this.decoder.decode(msg.data)) as typeof ack;
    } catch {
      return 'not_an_ack';
    }
    if (ack === null || typeof ack !== 'object') return 'not_an_ack';
    const e = ack.error as { code?: unknown; err_code?: unknown; description?: unknown } | null | undefined;
    if (e !== null && typeof e === 'object' && typeof e.code === 'number') {
      return new JetStreamPublishError(`JetStream ${e.code} ${e.err_code ?? ''} ${e.description ?? ''}`.replace(/\s+/g, ' ').trim());
    }
    if (typeof ack.stream === 'string' && typeof ack.seq === 'number') return 'stored';
    return 'not_an_ack';
  }

  /** Ends a call (once): forgets it, then resolves or rejects it. */
  private end(call: Call, failure: Error | undefined): void {
    if (call.timer !== undefined) clearTimeout(call.timer);
    call.timer = undefined;
    if (call.waiting < 0) return; // ended already
    call.waiting = -1;
    this.calls.delete(call.token);
    if (failure) call.reject(failure);
    else call.resolve();
  }
}
