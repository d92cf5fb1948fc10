// A request's route with its ids taken out, so figures group `POST /v1/orders/{orderId}/cancel`
// rather than one line per order. The route is the one the engine's router takes the path to
// (recording/api-routes.ts), so `POST /V1/Orders/` counts as `POST /v1/orders`.
import { routeOf } from '../recording/api-routes.ts';

export function routeName(method: string, path: string): string {
  const route = routeOf(method, path);
  if (route !== undefined) return `${method} ${route.template.replace(/:(\w+)/g, '{$1}')}`;
  return `${method} ${path.split('?')[0]!}`;
}
