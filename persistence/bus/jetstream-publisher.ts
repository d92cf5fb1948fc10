// JetStream publishes with their acks, made on the connection directly: each event is a core NATS
// publish with a reply subject under one inbox of this publisher, and the stream's PubAck (or its
// error) comes back there. nats.js's `js.publish` does the same through a request object per event —
// a timer, a deferred promise, a mux entry, and, once the ack has resolved it, a "cancelled" NatsError
// built with its stack (nats.js 2.29's RequestOne cancels itself after resolving): measured with
// NATS configured, that error alone took 14% of the engine's thread while a flash sale's
// order.reserved events were relayed (docs/performance.md, session 11). Here an event costs its
// headers, its publish, and one JSON parse of its ack; a call's events share one timer.

import { createInbox, headers, type Msg, type NatsConnection, type NatsError, type Subscription } from 'nats';
import type { OutgoingEvent } from './ports.ts';
import { eventBytes } from './subjects.ts';

/** One publish call: its events' acks still expected, the first failure, and how it ends. */
interface Call {
  firstToken: number;
  events: number;
  waiting: number;
  failure: Error | undefined;
  timer: ReturnType<typeof setTimeout> | undefined;
  resolve: () => void;
  reject: (error: Error) => void;
}

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
  private nextToken = 0;
  /** Reply token → its call (a token is the event's place in this publisher's sequence). */
  private readonly calls = new Map<number, Call>();
  private closed = false;

  constructor(private readonly connection: NatsConnection) {
    this.inbox = createInbox();
    this.subscription = connection.subscribe(`${this.inbox}.*`, { callback: (error, msg) => this.onReply(error, msg) });
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
      const call: Call = { firstToken: this.nextToken, events: events.length, waiting: events.length, failure: undefined, timer: undefined, resolve, reject };
      try {
        for (const event of events) {
          const token = this.nextToken++;
          this.calls.set(token, call);
          // One headers object for every publish: nats.js encodes it into the outgoing buffer before
          // publish returns.
          const h = this.headers;
          h.set('Nats-Msg-Id', event.id);
          h.set('Nats-Expected-Stream', stream);
          this.connection.publish(event.subject, eventBytes(event.data), { reply: `${this.inbox}.${token}`, headers: h });
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
    for (const call of new Set(this.calls.values())) this.end(call, new JetStreamPublishError('JetStream publisher is closed'));
  }

  private onReply(error: NatsError | null, msg: Msg): void {
    if (error) return; // the subscription's own failure (closed connection): calls time out or are closed
    const token = Number(msg.subject.slice(this.inbox.length + 1));
    const call = this.calls.get(token);
    if (!call) return; // a call that already ended (timed out)
    this.calls.delete(token);
    const failure = this.failureOf(msg);
    if (failure && !call.failure) call.failure = failure;
    if (--call.waiting === 0) this.end(call, call.failure);
  }

  /** What an ack says went wrong, if anything. */
  private failureOf(msg: Msg): Error | undefined {
    const h = msg.headers;
    // A status message instead of an ack: 503 when nothing takes the subject (no such stream).
    if (h?.hasError) return new JetStreamPublishError(`NATS ${h.code}${h.description ? ` ${h.description}` : ''}`, h.code);
    let ack: { stream?: unknown; seq?: unknown; error?: { code?: number; err_code?: number; description?: string } };
    try {
      ack = JSON.parse(this.decoder.decode(msg.data)) as typeof ack;
    } catch {
      return new JetStreamPublishError('JetStream answered a publish with something that is not JSON');
    }
    if (ack.error) return new JetStreamPublishError(`JetStream ${ack.error.code ?? ''} ${ack.error.err_code ?? ''} ${ack.error.description ?? ''}`.replace(/\s+/g, ' ').trim());
    if (typeof ack.stream !== 'string' || typeof ack.seq !== 'number') return new JetStreamPublishError('JetStream answered a publish without stream and seq');
    return undefined;
  }

  /** Ends a call (once): forgets its tokens still waiting, then resolves or rejects it. */
  private end(call: Call, failure: Error | undefined): void {
    if (call.timer !== undefined) clearTimeout(call.timer);
    call.timer = undefined;
    if (call.waiting < 0) return; // ended already
    call.waiting = -1;
    // Its tokens are consecutive; after a refused publish the later ones may be another call's.
    for (let t = call.firstToken; t < call.firstToken + call.events; t++) if (this.calls.get(t) === call) this.calls.delete(t);
    if (failure) call.reject(failure);
    else call.resolve();
  }
}
