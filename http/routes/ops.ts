// Operator routes (admin token): live actor state, orders with history, a SKU/date's orders in pages,
// shards, metrics, health.

import type Router from '@koa/router';
import type { StampedeNode } from '../../app/node.ts';
import { inventoryOpsView, orderListingView } from '../../actors/ops-views.ts';
import type { Auth } from '../auth.ts';
import { unavailable } from '../api-error.ts';
import { failureToApiError } from '../engine-errors.ts';
import { orderPageQuery, orderParams, parse, skuDateParams, userParams } from '../validation.ts';

/**
 * Redis only speeds up recovery; NATS is off the purchase path (events wait in the outbox). Required:
 * the database (`mysql` or `sqlite`: it answers a read), `databaseWrites` (a journal commit in the
 * last 2 s, else a durable write within 2 s: app/write-probe.ts) and, on MySQL, `databaseLock`.
 */
const OPTIONAL_DEPENDENCIES = new Set(['redis', 'nats']);

/**
 * How long one check of the dependencies answers /readyz (real time): the route needs no token, and
 * each check takes a pooled database connection, which the journal's group commits need too; a flood
 * of probes costs one check a second. Concurrent probes share the check in flight.
 */
export const READINESS_CHECK_TTL_MS = 1_000;

function sharedCheck(check: () => Promise<Record<string, boolean>>): () => Promise<Record<string, boolean>> {
  let last: { at: number; result: Promise<Record<string, boolean>>; settled: boolean } | undefined;
  return () => {
    const now = performance.now();
    // A check still running (a silent database: up to its deadlines) is shared however old it is: a new
    // one a second would take one more pooled connection each.
    if (!last || (last.settled && now - last.at >= READINESS_CHECK_TTL_MS)) {
      const entry = { at: now, result: check(), settled: false };
      void entry.result.finally(() => {
        entry.settled = true;
      }).catch(() => undefined);
      last = entry;
    }
    return last.result;
  };
}

export function opsRoutes(router: Router, node: StampedeNode, auth: Auth): void {
  router.get('/ops/inventory/:skuId/:date', auth.requireAdmin, async (ctx) => {
    const { skuId, date } = parse(skuDateParams, ctx.params, ['params']);
    const r = await node.orders.inspect(skuId, date);
    if (!r.ok) throw failureToApiError(r);
    ctx.body = inventoryOpsView(skuId, date, r.value, node.config.nodeId, node.inventory.mailboxDepth(`${skuId}/${date}`));
  });

  // The buyer's live limit state: holds, counted orders, no-shows, and what each rule counts.
  router.get('/ops/buyers/:userId', auth.requireAdmin, async (ctx) => {
    const { userId } = parse(userParams, ctx.params, ['params']);
    ctx.body = await node.orders.buyer(userId);
  });

  // A SKU/date's orders in pages, by order id (the simulator's verdict reads a whole sale this way).
  // Never a card key or a ticket code: key ids and ticket counts only.
  router.get('/ops/orders', auth.requireAdmin, async (ctx) => {
    const q = parse(orderPageQuery, ctx.query, ['query']);
    const r = await node.orders.ordersPage(q.skuId, q.date, q.after, q.limit);
    if (!r.ok) throw failureToApiError(r);
    ctx.body = { orders: r.value.orders.map((o) => orderListingView(o.order, o.deliveries)), next: r.value.next };
  });

  router.get('/ops/orders/:orderId', auth.requireAdmin, async (ctx) => {
    const { orderId } = parse(orderParams, ctx.params, ['params']);
    const r = await node.orders.orderHistory(orderId);
    if (!r.ok) throw failureToApiError(r);
    ctx.body = {
      ...r.value,
      history: r.value.history.map((h) => ({ ...h, at: new Date(h.at).toISOString() })),
    };
  });

  // Reconciliation on demand (`stampede ops reconcile`): the report of one pass.
  router.post('/ops/reconcile', auth.requireAdmin, async (ctx) => {
    ctx.body = await node.reconciler.run();
  });

  // No-shows on demand (also run with reconciliation): delivered ticket orders whose date ended unredeemed.
  router.post('/ops/no-shows', auth.requireAdmin, async (ctx) => {
    ctx.body = await node.noShows.run();
  });

  router.get('/ops/shards', auth.requireAdmin, async (ctx) => {
    const stats = node.runtime.stats();
    ctx.body = { nodeId: stats.nodeId, actors: stats.actors, byKind: stats.byKind, shards: stats.shards };
  });

  router.get('/metrics', auth.requireAdmin, async (ctx) => {
    ctx.set('Content-Type', node.metrics.registry.contentType);
    ctx.body = await node.metrics.text();
  });

  router.get('/healthz', async (ctx) => {
    ctx.body = { status: 'ok' };
  });

  // Ready: actors recovered and every required dependency reachable. Without an optional one
  // (Redis, NATS) the node is ready but `degraded`.
  const dependencies = sharedCheck(async () => {
    const deps: Record<string, boolean> = await node.stores.ping();
    // Only a database that answers reads is asked for a write (a silent one would cost a second deadline).
    deps.databaseWrites = deps[node.config.mysqlUrl ? 'mysql' : 'sqlite'] === true && (await node.writeProbe.check());
    // MySQL: this node's lock on its database, lost with its connection and taken again (app/database-lock.ts).
    if (node.databaseLock) deps.databaseLock = node.databaseLock.held;
    if (node.config.natsUrl) deps.nats = await node.bus.ping();
    return deps;
  });
  router.get('/readyz', async (ctx) => {
    // Starting (its stores may not be open yet) or stopping (they may be closed already).
    if (!node.ready) throw unavailable(1, node.isStopping ? 'not ready: stopping' : 'not ready: recovering');
    const deps = { ...(await dependencies()) };
    const required = Object.entries(deps).filter(([name]) => !OPTIONAL_DEPENDENCIES.has(name));
    const down = required.filter(([, up]) => !up).map(([name]) => name);
    if (!node.ready || down.length > 0) {
      throw unavailable(1, node.ready ? `not ready: ${down.join(', ')} down` : 'not ready: stopping');
    }
    const degraded = Object.entries(deps).filter(([, up]) => !up).map(([name]) => name);
    // Stored purchase rules wait out of force while the orders placed without rules are adopted.
    ctx.body = { status: degraded.length > 0 ? 'degraded' : 'ready', dependencies: deps, purchaseRules: node.rules.state() };
  });
}
