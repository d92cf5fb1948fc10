// Ops queries over NATS request/reply (API.md "NATS"), the twins of the HTTP ops routes:
//
//   stampede.ops.inventory.get  {"skuId","date"}  → the body of GET /ops/inventory/{skuId}/{date}
//   stampede.ops.order.get      {"orderId"}       → the body of GET /ops/orders/{orderId}
//   stampede.ops.buyer.get      {"userId"}        → the body of GET /ops/buyers/{userId}
//
// The contract says "the same bodies as the HTTP ops routes", so a success is exactly that body,
// with no envelope: a tool reads it the same way whichever transport it used. A failure is
// `{"ok": false, "error", "message", ...}` (replies.ts), so a reader tells them apart by `ok === false`
// (no success body has an `ok` field). Who may ask is the broker's business: only the engine and
// ops users may publish to `stampede.ops.>` (docker/nats/nats.conf).

import { inventoryOpsView } from '../actors/ops-views.ts';
import { inventoryStream } from '../engine/index.ts';
import { invalidRequest } from '../http/api-error.ts';
import { BODY_LIMIT_BYTES } from '../http/body.ts';
import { orderParams, parse, skuDateParams, userParams } from '../http/validation.ts';
import { encodeReply, failureReply, readJson, type Reply } from './replies.ts';
import type { MessagingServices } from './services.ts';

export const ops_query_subjects = {
  inventory: 'stampede.ops.inventory.get',
  order: 'stampede.ops.order.get',
  buyer: 'stampede.ops.buyer.get',
} as const;

export const ops_query_limits = {
  /** A query body, at most (the contract's 64 KiB). */
  body_bytes_max: BODY_LIMIT_BYTES,
} as const;

export type QueryHandler = (data: Uint8Array, subject: string) => Promise<Uint8Array>;

/** GET /ops/inventory/{skuId}/{date}'s body, field for field (http/routes/ops.ts). */
export async function inventoryBody(services: MessagingServices, skuId: string, date: string): Promise<Reply> {
  const r = await services.orders.inspect(skuId, date);
  if (!r.ok) return failureReply(r);
  return inventoryOpsView(skuId, date, r.value, services.nodeId, services.mailboxDepth(inventoryStream(skuId, date)));
}

/** GET /ops/orders/{orderId}'s body: the order with its history, times as ISO strings. */
export async function orderHistoryBody(services: MessagingServices, orderId: string): Promise<Reply> {
  const r = await services.orders.orderHistory(orderId);
  if (!r.ok) return failureReply(r);
  return { ...r.value, history: r.value.history.map((h) => ({ ...h, at: new Date(h.at).toISOString() })) };
}

export function opsQueryHandlers(services: MessagingServices): Record<string, QueryHandler> {
  const query =
    (expected: string, run: (value: unknown) => Promise<Reply>): QueryHandler =>
    async (data, subject) => {
      // Only the query's own subject: a JetStream push consumer pointed here delivers events under their own subjects.
      if (subject !== expected) throw invalidRequest(`not ${expected}`, [{ path: ['subject'], message: `must be ${expected}` }]);
      return encodeReply(await run(readJson(data, ops_query_limits.body_bytes_max)));
    };

  return {
    [ops_query_subjects.inventory]: query(ops_query_subjects.inventory, async (value) => {
      const { skuId, date } = parse(skuDateParams, value);
      return inventoryBody(services, skuId, date);
    }),
    [ops_query_subjects.order]: query(ops_query_subjects.order, async (value) => {
      const { orderId } = parse(orderParams, value);
      return orderHistoryBody(services, orderId);
    }),
    [ops_query_subjects.buyer]: query(ops_query_subjects.buyer, async (value) => {
      const { userId } = parse(userParams, value);
      if (!services.buyer) return failureReply({ ok: false, error: 'not_found', message: `buyer ${userId}` });
      const r = await services.buyer(userId);
      return r.ok ? r.value : failureReply(r);
    }),
  };
}
