// The NATS edge (the twin of http/): merchant commands and ops queries over request/reply, on one
// connection the node hands over when STAMPEDE_NATS_URL is set. Each subject is one queue-group
// subscription (`stampede`), so the nodes of a cluster share the requests. Every request that asks
// for a reply gets one — a result, a refusal, or, when the handler throws, `unavailable` /
// `overloaded` for a dependency down (as http/engine-errors.ts maps them) and `internal` for a bug —
// and requests in flight are bounded per merchant, then per subject (beyond either: `overloaded` at once).

import type { NatsConnection } from 'nats';
import type { Logger } from 'pino';
import type { StampedeNode } from '../app/node.ts';
import { nats_engine_inbox_prefix } from '../persistence/bus/nats-bus.ts';
import { serveRequests, type RequestAdmission, type RequestService } from '../persistence/bus/request-service.ts';
import { within } from '../persistence/bus/waits.ts';
import { merchant_command_subjects, merchantCommandAdmission, merchantCommandHandlers } from './merchant-commands.ts';
import { opsQueryHandlers } from './ops-queries.ts';
import { apiErrorReply, encodeReply, outcomeOfThrown } from './replies.ts';
import type { MessagingServices } from './services.ts';
import { LogSampler } from '../app/log-sampler.ts';

export type { MessagingOrders, MessagingServices } from './services.ts';
export { merchant_command_limits, merchant_command_subjects } from './merchant-commands.ts';
export { ops_query_subjects } from './ops-queries.ts';

/** The queue group of every engine subscription. */
export const messaging_queue = 'stampede';

export const messaging_limits = {
  /**
   * Merchant commands handled at once per subject, all merchants together: a bound on memory, checked
   * after each merchant's own (merchant_command_limits), and sized so that it takes 16 merchants at
   * their own bound on that subject at once to reach it (16 × 16 stock.set or order.deliver of at
   * most 64 KiB, 16 × 4 card_keys.add of at most 3 MiB: 16 + 16 + 192 MiB of requests at most).
   */
  command_in_flight_max: {
    [merchant_command_subjects.stockSet]: 256,
    [merchant_command_subjects.orderDeliver]: 256,
    [merchant_command_subjects.cardKeysAdd]: 64,
  } as Readonly<Record<string, number>>,
  /** Ops queries handled at once per subject (there are three). */
  query_in_flight_max: 16,
  /** Longest start() waits for the server to confirm the subscriptions, and stop() for the unsubscribes. */
  flush_timeout_ms: 5_000,
  /** Longest stop() waits for requests in flight (each is bounded by the engine's ask timeout). */
  stop_timeout_ms: 10_000,
} as const;

export interface Messaging {
  /** Stops taking requests, answers the ones in flight (bounded), and confirms the unsubscribes with the server. */
  stop(): Promise<void>;
}

/** The services of a started node: what app/node.ts passes to startMessaging. */
export function messagingServicesOf(node: StampedeNode): MessagingServices {
  return {
    catalog: node.catalog,
    orders: node.orders,
    nodeId: node.config.nodeId,
    mailboxDepth: (stream) => node.inventory.mailboxDepth(stream),
    buyer: async (userId) => ({ ok: true, value: { ...(await node.orders.buyer(userId)) } }),
  };
}

/**
 * Subscribes every merchant command and ops query; resolves once the server has the subscriptions
 * (a request sent after that reaches this node). The connection stays the caller's to close.
 */
export async function startMessaging(connection: NatsConnection, services: MessagingServices, log: Logger): Promise<Messaging> {
  // Requests dropped for a reply subject that is no requester's inbox (request-service.ts): a warning
  // a second at most, with how many went unlogged since the last one (a requester could send them in a loop).
  const refusals = new LogSampler(1_000);
  const onRefusedReply = (reply: string, subject: string) => {
    const unlogged = refusals.take('refused');
    if (unlogged !== undefined) log.warn({ subject, reply: reply.slice(0, 200), unloggedSinceLast: unlogged }, "request dropped: its reply subject is not a requester's inbox");
  };
  const serve = (
    handlers: Record<string, (data: Uint8Array, subject: string) => Promise<Uint8Array>>,
    inFlightMax: (subject: string) => number,
    admission?: RequestAdmission,
  ): RequestService[] =>
    Object.entries(handlers).map(([subject, handler]) =>
      serveRequests(connection, subject, messaging_queue, handler, {
        inFlightMax: inFlightMax(subject),
        ...(admission ? { admission } : {}),
        stopTimeout_ms: messaging_limits.stop_timeout_ms,
        errorReply: (error) => encodeReply(apiErrorReply(outcomeOfThrown(error).error)),
        onError: (error, requestSubject) => logThrown(log, error, requestSubject),
        onRefusedReply,
        // Whichever connection this is, a reply aimed at the engine's inboxes (any node's) is refused.
        engineInboxPrefixes: [nats_engine_inbox_prefix],
      }),
    );

  const services_: RequestService[] = [];
  const stopAll = async () => {
    await Promise.all(services_.map((s) => s.stop()));
    // The unsubscribes reach the server before stop() resolves: no request is routed here after it.
    if (!connection.isClosed()) await within(connection.flush(), messaging_limits.flush_timeout_ms, 'NATS flush').catch(() => {});
  };
  try {
    // One admission for the three command subjects: a merchant's bound counts its commands on all three.
    const commandBound = (subject: string) => {
      const bound = messaging_limits.command_in_flight_max[subject];
      if (bound === undefined) throw new Error(`no in-flight bound for ${subject} in messaging_limits`);
      return bound;
    };
    services_.push(...serve(merchantCommandHandlers(services, log), commandBound, merchantCommandAdmission(log)));
    services_.push(...serve(opsQueryHandlers(services), () => messaging_limits.query_in_flight_max));
    await within(connection.flush(), messaging_limits.flush_timeout_ms, 'NATS subscriptions');
  } catch (error) {
    await stopAll();
    throw error;
  }
  log.info({ subjects: services_.length, queue: messaging_queue }, 'merchant commands and ops queries on NATS');
  let stopping: Promise<void> | undefined;
  return { stop: () => (stopping ??= stopAll()) };
}

/** Bad requests quietly, dependency failures as warnings, bugs as errors. Never the request body. */
function logThrown(log: Logger, error: unknown, subject: string): void {
  const { kind, error: reply } = outcomeOfThrown(error);
  if (kind === 'request') log.debug({ subject, code: reply.code }, reply.message);
  else if (kind === 'dependency') log.warn({ subject, code: reply.code, err: error }, 'NATS request failed: a dependency is unavailable');
  else log.error({ subject, err: error }, 'NATS request handler failed');
}
