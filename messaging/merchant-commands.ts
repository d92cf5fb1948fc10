// Merchant commands over NATS request/reply (API.md "NATS"): the twin of the admin routes for a
// merchant's own integration. The merchant is the subject's third token, which the broker's
// per-merchant permissions vouch for (docker/nats/nats.conf: merchant m1 may publish only
// `stampede.cmd.m1.>`); here a merchant may act only on its own SKUs and their orders.
//
//   stampede.cmd.<merchantId>.stock.set       {"skuId","date","total"}  → {"ok":true, skuId,date,total,reserved,sold,available}
//   stampede.cmd.<merchantId>.card_keys.add   {"skuId","keys"}          → {"ok":true, added,total}
//   stampede.cmd.<merchantId>.order.deliver   {"orderId","payload"}     → {"ok":true, ...the order}
//
// Bodies are validated with the HTTP routes' schemas and limits. Card keys and delivery payloads
// are secrets for the buyer: they are never logged and never in a reply.

import { merchantFromSubjectToken } from '../actors/order-events.ts';
import { LogSampler } from '../app/log-sampler.ts';
import type { Logger } from 'pino';
import { z } from 'zod';
import { parseOrderId } from '../engine/index.ts';
import { forbidden, invalidRequest, notFound, overloaded } from '../http/api-error.ts';
import { BODY_LIMIT_BYTES } from '../http/body.ts';
import { CARD_KEYS_BODY_LIMIT_BYTES } from '../http/routes/admin.ts';
import { cardKeysBody, date, identifier, IDENTIFIER_PATTERN, parse, stockBody } from '../http/validation.ts';
import { apiErrorReply, encodeReply, failureReply, okReply, readJson, type Reply } from './replies.ts';
import type { RequestAdmission } from '../persistence/bus/request-service.ts';
import type { MessagingServices } from './services.ts';

export const merchant_command_subjects = {
  stockSet: 'stampede.cmd.*.stock.set',
  cardKeysAdd: 'stampede.cmd.*.card_keys.add',
  orderDeliver: 'stampede.cmd.*.order.deliver',
} as const;

export const merchant_command_limits = {
  /** A command body, at most: the contract's 64 KiB, as for HTTP bodies. */
  body_bytes_max: BODY_LIMIT_BYTES,
  /**
   * A card_keys.add body, at most: the same exception as the HTTP route (10,000 keys of 256
   * characters do not fit in 64 KiB). The broker's max_payload must allow it (docker/nats/nats.conf
   * sets 4 MB; a server left at NATS's 1 MB default refuses larger uploads before they reach us).
   */
  card_keys_body_bytes_max: CARD_KEYS_BODY_LIMIT_BYTES,
  /** Commands of one merchant in flight at once, across the three subjects; beyond it `overloaded`. */
  merchant_in_flight_max: 16,
  /**
   * Of those, card_keys.add at most: an upload holds up to 3 MiB while it waits its turn (a node
   * seals one upload at a time), so the bound all merchants share on that subject is kept small in
   * memory (messaging_limits) and still takes 16 merchants at their own bound to reach.
   */
  merchant_card_keys_in_flight_max: 4,
} as const;

/** stampede.cmd.<m>.stock.set: the PUT /v1/skus/{skuId}/stock/{date} path parameters and body in one. */
export const stockSetCommand = z.object({ skuId: identifier, date, total: stockBody.shape.total });

/** stampede.cmd.<m>.card_keys.add: the POST /v1/skus/{skuId}/card-keys body plus its skuId. */
export const cardKeysAddCommand = cardKeysBody.extend({ skuId: identifier });

/** stampede.cmd.<m>.order.deliver: what the buyer will see as the order's `delivery.payload`. */
export const orderDeliverCommand = z.object({
  orderId: identifier,
  // Any JSON value but null: a delivery has to carry something. Its size is bounded by the body's.
  payload: z.custom<NonNullable<unknown>>((v) => v !== undefined && v !== null, 'required: any JSON value but null'),
});

/**
 * The merchant id of a command subject `stampede.cmd.<merchantId>.<command>`, checked like any
 * identifier. The whole subject is checked, not just the token: a JetStream push consumer pointed at
 * a command subject delivers events under their own subject (`stampede.evt.…`), never as a command.
 */
export function merchantOf(subject: string, command: string): string {
  const tokens = subject.split('.');
  if (tokens.length !== 5 || tokens[0] !== 'stampede' || tokens[1] !== 'cmd' || `${tokens[3]}.${tokens[4]}` !== command) {
    throw invalidRequest(`not a ${command} command subject`, [{ path: ['subject'], message: `must be stampede.cmd.<merchantId>.${command}` }]);
  }
  const merchantId = merchantFromSubjectToken(tokens[2]!);
  if (!IDENTIFIER_PATTERN.test(merchantId)) {
    throw invalidRequest('invalid merchant id in the subject', [{ path: ['subject', 'merchantId'], message: 'must match ^[A-Za-z0-9._:-]{1,64}$' }]);
  }
  return merchantId;
}

/** The merchant's own SKU, or the refusal: `not_found` for an unknown SKU, `forbidden` for another merchant's. */
function ownSku(services: MessagingServices, merchantId: string, skuId: string): Reply | undefined {
  const sku = services.catalog.sku(skuId);
  if (!sku) return apiErrorReply(notFound(`SKU ${skuId}`));
  // The message does not name the owner.
  if (sku.merchantId !== merchantId) return apiErrorReply(forbidden(`SKU ${skuId} is not a SKU of merchant ${merchantId}`));
  return undefined;
}

/**
 * The order's SKU must be the merchant's. The order id names its SKU/date (engine/ids.ts), so this
 * is decided before the order is looked up: another merchant learns nothing about whether the order
 * exists, only that the id routes to a SKU that is not theirs.
 */
function ownOrder(services: MessagingServices, merchantId: string, orderId: string): Reply | undefined {
  const parsed = parseOrderId(orderId);
  const ref = parsed && services.catalog.streamByNo(parsed.streamNo);
  const sku = ref && services.catalog.sku(ref.skuId);
  if (!sku) return apiErrorReply(notFound(`order ${orderId}`));
  if (sku.merchantId !== merchantId) return apiErrorReply(forbidden(`order ${orderId} is not an order of merchant ${merchantId}`));
  return undefined;
}

/** A count per key with a ceiling; keys leave the map at zero, so it holds only merchants in flight. */
export class InFlightPerKey {
  private readonly counts = new Map<string, number>();
  constructor(readonly max: number) {}

  tryEnter(key: string): boolean {
    const n = this.counts.get(key) ?? 0;
    if (n >= this.max) return false;
    this.counts.set(key, n + 1);
    return true;
  }

  leave(key: string): void {
    const n = (this.counts.get(key) ?? 1) - 1;
    if (n <= 0) this.counts.delete(key);
    else this.counts.set(key, n);
  }
}

export type CommandHandler = (data: Uint8Array, subject: string) => Promise<Uint8Array>;

/**
 * The per-merchant bounds, for the request services of the three command subjects together. They
 * are checked before each subject's bound shared by all merchants (request-service.ts), so the
 * commands a merchant has beyond its own bound are refused without taking a place of that shared
 * bound: one merchant's load, slow commands or a flood, leaves the others theirs. The merchant is
 * the subject's third token as sent (a bad one is refused by the handler, its count kept all the same).
 */
export function merchantCommandAdmission(log: Logger): RequestAdmission {
  const commands = new InFlightPerKey(merchant_command_limits.merchant_in_flight_max);
  const uploads = new InFlightPerKey(merchant_command_limits.merchant_card_keys_in_flight_max);
  const isUpload = (tokens: string[]) => tokens[3] === 'card_keys' && tokens[4] === 'add';
  const refused = encodeReply(apiErrorReply(overloaded(1)));
  // A merchant flooding past its bound: a warning a second per merchant, saying how many went unlogged.
  const warnings = new LogSampler(1_000);
  return {
    enter(subject) {
      const tokens = subject.split('.');
      const merchant = tokens[2] ?? '';
      const upload = isUpload(tokens);
      if (commands.tryEnter(merchant)) {
        if (!upload || uploads.tryEnter(merchant)) return undefined;
        commands.leave(merchant);
      }
      const unlogged = warnings.take(merchant);
      if (unlogged !== undefined) log.warn({ merchantId: merchant, command: tokens.slice(3).join('.'), ...(unlogged > 0 ? { unloggedSinceLast: unlogged } : {}) }, 'merchant command refused: too many of this merchant in flight');
      return refused;
    },
    leave(subject) {
      const tokens = subject.split('.');
      const merchant = tokens[2] ?? '';
      commands.leave(merchant);
      if (isUpload(tokens)) uploads.leave(merchant);
    },
  };
}

/**
 * The three handlers, keyed by subject. Thrown errors (bad bodies, dependencies down) are the request
 * service's to answer; the per-merchant bounds are merchantCommandAdmission's, checked before a handler runs.
 */
export function merchantCommandHandlers(services: MessagingServices, log: Logger): Record<string, CommandHandler> {
  const command =
    (name: string, limitBytes: number, run: (merchantId: string, value: unknown) => Promise<Reply>): CommandHandler =>
    async (data, subject) =>
      encodeReply(await run(merchantOf(subject, name), readJson(data, limitBytes)));

  const { orders } = services;
  return {
    [merchant_command_subjects.stockSet]: command('stock.set', merchant_command_limits.body_bytes_max, async (merchantId, value) => {
      const { skuId, date, total } = parse(stockSetCommand, value);
      const refused = ownSku(services, merchantId, skuId);
      if (refused) return refused;
      // Checked again where the change is made (an admin may give the SKU to another merchant meanwhile).
      const r = await orders.setStock(skuId, date, total, merchantId);
      if (!r.ok) return failureReply(r);
      log.info({ merchantId, command: 'stock.set', skuId, date, total }, 'merchant set stock');
      return okReply(r.value);
    }),

    [merchant_command_subjects.cardKeysAdd]: command('card_keys.add', merchant_command_limits.card_keys_body_bytes_max, async (merchantId, value) => {
      const { skuId, keys } = parse(cardKeysAddCommand, value);
      const refused = ownSku(services, merchantId, skuId);
      if (refused) return refused;
      const r = await orders.addCardKeys(skuId, keys, merchantId);
      if (!r.ok) return failureReply(r);
      // Counts only: the keys are secrets.
      log.info({ merchantId, command: 'card_keys.add', skuId, sent: keys.length, added: r.value.added }, 'merchant added card keys');
      return okReply(r.value);
    }),

    [merchant_command_subjects.orderDeliver]: command('order.deliver', merchant_command_limits.body_bytes_max, async (merchantId, value) => {
      const { orderId, payload } = parse(orderDeliverCommand, value);
      const refused = ownOrder(services, merchantId, orderId);
      if (refused) return refused;
      const r = await orders.deliverManual(orderId, payload);
      if (!r.ok) return failureReply(r);
      // Not the payload: it is what the buyer receives.
      log.info({ merchantId, command: 'order.deliver', orderId }, 'merchant delivered an order');
      return okReply(r.value);
    }),
  };
}
