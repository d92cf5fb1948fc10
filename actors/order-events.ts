// The events merchants and the engine's own consumers receive (API.md "NATS"): one per state change
// that matters outside, with the journal position as its id, so re-projecting after a crash makes
// the same event (the outbox and JetStream drop the repeat). Card keys and ticket codes are never in
// an event.

import { isoTime, type OrderFacts } from '../engine/index.ts';
import type { OutboxEvent } from '../persistence/ports.ts';

export type OrderEventType =
  | 'order.reserved'
  | 'order.paid'
  | 'order.delivered'
  | 'order.cancelled'
  | 'order.expired'
  | 'order.refund_required'
  | 'order.payment_mismatch';

/** The order fields of an event: the contract's order facts and the buyer. */
export type OrderEventFacts = OrderFacts & { userId: string };

/** The id of the event made from the journal event `seq` of `stream`. */
export function eventIdOf(stream: string, seq: number): string {
  return `${stream}:${seq}`;
}

/** Subjects made so far, by merchant and type (few: merchants × event types; bounded all the same). */
const subjects = new Map<string, Map<string, string>>();
const subjects_cached_max = 10_000;

export function eventSubject(merchantId: string, type: string): string {
  let byType = subjects.get(merchantId);
  const known = byType?.get(type);
  if (known !== undefined) return known;
  const subject = `stampede.evt.${merchantSubjectToken(merchantId)}.${type}`;
  if (subjects.size >= subjects_cached_max) subjects.clear();
  if (!byType) subjects.set(merchantId, (byType = new Map()));
  byType.set(type, subject);
  return subject;
}

/**
 * A merchant id as one NATS subject token. Identifiers may contain `.`, which separates tokens in a
 * subject, so it is written `%2E` (`%` is never in an identifier): merchant `shop.eu` has the events
 * `stampede.evt.shop%2Eeu.…` and the commands `stampede.cmd.shop%2Eeu.…`.
 */
export function merchantSubjectToken(merchantId: string): string {
  return merchantId.replaceAll('.', '%2E');
}

/** The merchant id of a subject token (the inverse of merchantSubjectToken). */
export function merchantFromSubjectToken(token: string): string {
  return token.replaceAll('%2E', '.');
}

export function orderOutboxEvent(
  type: OrderEventType,
  stream: string,
  seq: number,
  at: number,
  merchantId: string,
  o: OrderEventFacts,
  extra: { paymentId?: string; paidCents?: number } = {},
): OutboxEvent {
  const eventId = eventIdOf(stream, seq);
  const body = {
    eventId,
    type,
    at: isoTime(at),
    merchantId,
    orderId: o.orderId,
    userId: o.userId,
    skuId: o.skuId,
    date: o.date,
    qty: o.qty,
    amountCents: o.amountCents,
    status: o.status,
    createdAt: isoTime(o.createdAt),
    expiresAt: isoTime(o.expiresAt),
    ...extra,
  };
  return { eventId, subject: eventSubject(merchantId, type), body: JSON.stringify(body), at };
}
