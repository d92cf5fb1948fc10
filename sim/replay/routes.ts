// A request's route with its ids taken out, so figures group `POST /v1/orders/{orderId}/cancel`
// rather than one line per order.

const PATTERNS: [RegExp, string][] = [
  [/^\/v1\/skus\/[^/]+\/stock\/[^/]+$/, '/v1/skus/{skuId}/stock/{date}'],
  [/^\/v1\/skus\/[^/]+\/card-keys$/, '/v1/skus/{skuId}/card-keys'],
  [/^\/v1\/skus\/[^/]+$/, '/v1/skus/{skuId}'],
  [/^\/v1\/orders\/[^/]+\/(cancel|redeem)$/, '/v1/orders/{orderId}/$1'],
  [/^\/v1\/orders\/[^/]+$/, '/v1/orders/{orderId}'],
  [/^\/v1\/limit-rules\/[^/]+$/, '/v1/limit-rules/{ruleId}'],
  [/^\/ops\/inventory\/[^/]+\/[^/]+$/, '/ops/inventory/{skuId}/{date}'],
  [/^\/ops\/orders\/[^/]+$/, '/ops/orders/{orderId}'],
  [/^\/ops\/buyers\/[^/]+$/, '/ops/buyers/{userId}'],
];

export function routeName(method: string, path: string): string {
  const bare = path.split('?')[0]!;
  for (const [pattern, name] of PATTERNS) {
    if (pattern.test(bare)) return `${method} ${bare.replace(pattern, name)}`;
  }
  return `${method} ${bare}`;
}
