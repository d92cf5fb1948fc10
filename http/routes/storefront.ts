// Buyer-facing routes: the SKU page, placing, reading and cancelling orders (API.md "Storefront").

import type Router from '@koa/router';
import type { StampedeNode } from '../../app/node.ts';
import type { Auth } from '../auth.ts';
import { readJson } from '../body.ts';
import { failureToApiError } from '../engine-errors.ts';
import { IDEMPOTENCY_BUSY_RETRY_S, requestHash, type IdempotencyGate } from '../idempotency.ts';
import { rateLimited } from '../api-error.ts';
import { rateLimit } from '../rate-limit.ts';
import { idempotencyKey, orderParams, parse, parseOrderBody, skuParams } from '../validation.ts';

export function storefrontRoutes(router: Router, node: StampedeNode, auth: Auth, gate: IdempotencyGate): void {
  // Per-buyer token bucket on the routes that change state (off when STAMPEDE_RATE_LIMIT_PER_S is 0).
  const limit = rateLimit({ ratePerSec: node.config.rate_limit_per_s, burst: node.config.rate_limit_burst, now: () => node.clock.now() });

  router.get('/v1/skus/:skuId', async (ctx) => {
    const { skuId } = parse(skuParams, ctx.params, ['params']);
    const r = await node.orders.skuView(skuId);
    if (!r.ok) throw failureToApiError(r);
    const { sku, onSale, dates } = r.value;
    ctx.body = {
      skuId: sku.skuId,
      name: sku.name,
      priceCents: sku.priceCents,
      // Not in the contract's list, added (allowed): a purchase-rule dimension a client may need to know.
      merchantId: sku.merchantId,
      delivery: sku.delivery,
      attributes: sku.attributes,
      saleStartsAt: sku.saleStartsAt,
      saleEndsAt: sku.saleEndsAt,
      onSale,
      dates,
    };
  });

  router.post('/v1/orders', auth.requireBuyer, limit, async (ctx) => {
    const userId: string = ctx.state.userId;
    // Absent: no key. Present, even empty or blank (Node trims it to ''): a key of 1..64 characters
    // or 400 — a client that meant to send one must not silently lose its idempotency.
    const header = ctx.req.headers['idempotency-key'];
    const key = header === undefined ? undefined : parse(idempotencyKey, String(header), ['headers', 'idempotency-key']);
    const { value } = await readJson(ctx);
    const body = parseOrderBody(value);
    let answer;
    if (key === undefined) {
      answer = await node.orders.placeOrder({ userId, skuId: body.skuId, date: body.date, qty: body.qty });
    } else {
      // Over the body as sent (keys sorted), unknown fields included: a body that differs only by a
      // field the engine ignores is still another body (API.md: same key, other body -> 422).
      const hash = requestHash('POST', '/v1/orders', value);
      const result = await gate.run(
        userId,
        key,
        hash,
        () => node.orders.storedAnswer(userId, key),
        () => node.orders.placeOrder({ userId, skuId: body.skuId, date: body.date, qty: body.qty, idempotency: { key, hash } }),
      );
      // This buyer holds too many keys in memory already (a client minting one per request).
      if (result === 'busy') throw rateLimited(IDEMPOTENCY_BUSY_RETRY_S);
      if (result === 'reused') answer = { status: 422, body: { error: 'idempotency_key_reused', message: 'this Idempotency-Key was used with another request' } };
      else answer = result;
    }
    ctx.status = answer.status;
    ctx.body = answer.body;
    if (answer.status === 503) ctx.set('Retry-After', '1');
  });

  // Counted like the buyer's other requests: a read of an order id the read model lacks asks its
  // SKU/date, whose mailbox the orders share (made-up ids of the hot SKU/date, sent in a flood, would
  // otherwise fill it with no bound but the operator's).
  router.get('/v1/orders/:orderId', auth.requireBuyer, limit, async (ctx) => {
    const { orderId } = parse(orderParams, ctx.params, ['params']);
    const r = await node.orders.getOrder(orderId, ctx.state.userId);
    if (!r.ok) throw failureToApiError(r);
    const { userId: _owner, ...order } = r.value;
    // A delivered card-key order carries its keys in clear: no cache may keep them.
    ctx.set('Cache-Control', 'no-store');
    ctx.body = order;
  });

  router.post('/v1/orders/:orderId/cancel', auth.requireBuyer, limit, async (ctx) => {
    const { orderId } = parse(orderParams, ctx.params, ['params']);
    const r = await node.orders.cancelOrder(orderId, ctx.state.userId);
    if (!r.ok) throw failureToApiError(r);
    ctx.body = r.value;
  });
}
