// Admin routes: the catalog, stock per date, card-key uploads (API.md "Catalog (admin)"), and the
// redeeming of a delivered ticket order (API.md "Delivery").

import type Router from '@koa/router';
import type { StampedeNode } from '../../app/node.ts';
import type { Auth } from '../auth.ts';
import { readJson } from '../body.ts';
import { invalidRequest, invalidState } from '../api-error.ts';
import { failureToApiError } from '../engine-errors.ts';
import { cardKeysBody, orderParams, parse, skuDateParams, skuParams, skuUpsertBody, stockBody } from '../validation.ts';

export const CARD_KEYS_BODY_LIMIT_BYTES = 3 * 1024 * 1024;

export function adminRoutes(router: Router, node: StampedeNode, auth: Auth): void {
  // The buyer visited: a delivered ticket order is redeemed (and never becomes a no-show).
  router.post('/v1/orders/:orderId/redeem', auth.requireAdmin, async (ctx) => {
    const { orderId } = parse(orderParams, ctx.params, ['params']);
    const r = await node.orders.redeem(orderId);
    if (!r.ok) throw failureToApiError(r);
    ctx.body = r.value;
  });

  router.put('/v1/skus/:skuId', auth.requireAdmin, async (ctx) => {
    const { skuId } = parse(skuParams, ctx.params, ['params']);
    const { value } = await readJson(ctx);
    const b = parse(skuUpsertBody, value);
    // As for a rule's `id`: a body naming another SKU is a client's mistake, not a field to ignore.
    const named = (value as { skuId?: unknown }).skuId;
    if (named !== undefined && named !== skuId) {
      throw invalidRequest('invalid request body', [{ path: ['skuId'], message: `must equal the path's skuId (${skuId}) or be absent` }]);
    }
    const sku = {
      skuId,
      name: b.name,
      priceCents: b.priceCents,
      merchantId: b.merchantId,
      delivery: b.delivery,
      attributes: b.attributes ?? {},
      visibleAt: b.visibleAt ?? null,
      saleStartsAt: b.saleStartsAt ?? null,
      saleEndsAt: b.saleEndsAt ?? null,
      updatedAt: new Date(node.clock.now()).toISOString(),
    };
    // Who owns a SKU and how it is delivered are fixed once it has stock: its orders' events name its
    // merchant (and are published again under the same ids after a restart), its merchant's commands
    // are checked against it, and its paid orders wait for a delivery of that kind. Checked and
    // written as one change of the SKU (catalog.changeSku), so that no stock date or card key of a
    // merchant's lands between the check and the write.
    await node.catalog.changeSku(skuId, async () => {
      const known = node.catalog.sku(skuId);
      const changing = known && (['merchantId', 'delivery'] as const).find((field) => known[field] !== sku[field]);
      // Card keys stored count as stock (a first upload stores them before it makes the stock's date);
      // the store is asked only when one of the two changes.
      if (known && changing && (node.catalog.dates(skuId).length > 0 || (known.delivery === 'card_key' && (await node.stores.cardKeys.count(skuId)) > 0))) {
        throw invalidState(`${changing} of ${skuId} cannot change once it has stock (it is ${known[changing]})`);
      }
      await node.catalog.upsertSku(sku);
    });
    ctx.body = sku;
  });

  router.put('/v1/skus/:skuId/stock/:date', auth.requireAdmin, async (ctx) => {
    const { skuId, date } = parse(skuDateParams, ctx.params, ['params']);
    const { value } = await readJson(ctx);
    const { total } = parse(stockBody, value);
    const r = await node.orders.setStock(skuId, date, total);
    if (!r.ok) throw failureToApiError(r);
    ctx.body = r.value;
  });

  router.post('/v1/skus/:skuId/card-keys', auth.requireAdmin, async (ctx) => {
    const { skuId } = parse(skuParams, ctx.params, ['params']);
    // The contract allows 10,000 keys of 256 characters per upload, which cannot fit in the
    // general 64 KiB body limit: this one route takes up to CARD_KEYS_BODY_LIMIT_BYTES.
    const { value } = await readJson(ctx, { limitBytes: CARD_KEYS_BODY_LIMIT_BYTES });
    const { keys } = parse(cardKeysBody, value);
    const r = await node.orders.addCardKeys(skuId, keys);
    if (!r.ok) throw failureToApiError(r);
    ctx.body = r.value;
  });
}
