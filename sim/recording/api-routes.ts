// Which of the engine's routes a recorded request goes to, decided the way the engine's router
// decides it. A recording keeps each path as it was sent, and @koa/router (default options, as in
// http/app.ts) matches paths case-insensitively with one optional trailing slash: `POST /V1/Orders/`
// is the order route, answered 201 like `POST /v1/orders`. So a reader of a recording (the replayer,
// the verdict) and the recorder ask here which route a line is instead of comparing strings. The
// matching is @koa/router's own, on a router holding the same templates with the same options, so it
// agrees with the engine whatever the router's rules are (test/sim/recorded-paths.test.ts sends the
// variants to a real node).
import Router from '@koa/router';

/** The order route: its answer carries the order that later lines refer to. */
export const ORDERS_ROUTE = '/v1/orders';
export const ORDER_ROUTE = '/v1/orders/:orderId';
export const CANCEL_ROUTE = '/v1/orders/:orderId/cancel';
export const REDEEM_ROUTE = '/v1/orders/:orderId/redeem';
export const PAYMENT_ROUTE = '/v1/payments/callback';
export const SKU_ROUTE = '/v1/skus/:skuId';
export const STOCK_ROUTE = '/v1/skus/:skuId/stock/:date';
export const CARD_KEYS_ROUTE = '/v1/skus/:skuId/card-keys';
export const RULES_ROUTE = '/v1/limit-rules';
export const RULE_ROUTE = '/v1/limit-rules/:ruleId';
export const OPS_ORDERS_ROUTE = '/ops/orders';
export const OPS_ORDER_ROUTE = '/ops/orders/:orderId';

/** The contract's routes under /v1/ and /ops/ (http/routes/), by method. */
const ROUTES: readonly (readonly [method: string, template: string])[] = [
  ['GET', SKU_ROUTE],
  ['POST', ORDERS_ROUTE],
  ['GET', ORDER_ROUTE],
  ['POST', CANCEL_ROUTE],
  ['POST', REDEEM_ROUTE],
  ['POST', PAYMENT_ROUTE],
  ['PUT', SKU_ROUTE],
  ['PUT', STOCK_ROUTE],
  ['POST', CARD_KEYS_ROUTE],
  ['GET', RULES_ROUTE],
  ['PUT', RULE_ROUTE],
  ['DELETE', RULE_ROUTE],
  ['GET', '/ops/inventory/:skuId/:date'],
  ['GET', '/ops/buyers/:userId'],
  ['GET', OPS_ORDERS_ROUTE],
  ['GET', OPS_ORDER_ROUTE],
  ['POST', '/ops/reconcile'],
  ['POST', '/ops/no-shows'],
  ['GET', '/ops/shards'],
];

const router = new Router();
for (const [method, template] of ROUTES) router.register(template, [method], async () => undefined);

export interface MatchedRoute {
  /** The route's template, as the engine's router names it (e.g. `/v1/orders/:orderId/cancel`). */
  template: string;
  /** Its parameters, decoded as the router decodes them. */
  params: Record<string, string>;
}

/** The route `method path` goes to (the query string is not part of the match), if any. */
export function routeOf(method: string, path: string): MatchedRoute | undefined {
  const q = path.indexOf('?');
  const bare = q < 0 ? path : path.slice(0, q);
  const layer = router.match(bare, method).pathAndMethod.find((l) => l.methods.length > 0);
  if (layer === undefined) return undefined;
  return { template: String(layer.path), params: layer.params(bare, layer.captures(bare), {}) };
}

/** `method path` goes to the route `template`. */
export function isRoute(method: string, path: string, template: string): boolean {
  // The common case, a path written as the template (no parameters), without asking the router.
  if (path === template) return ROUTES.some(([m, t]) => m === method && t === template);
  return routeOf(method, path)?.template === template;
}
