// The card-key pools at the end of a run, and which paid orders wait rightly for keys. The contract:
// when a pool runs dry "the order stays paid (shown as awaiting delivery) and is delivered when keys
// are uploaded" — so a paid card-key order is not a failure while its SKU has too few keys for it.
// A pool holds the keys its SKU was given (the latest upload answer's `total`: every key ever added)
// less the keys the engine's delivered orders hold. The engine serves waiting orders first come,
// first served (a later order never overtakes one that needs more), and the run does not know which
// came first: the paid orders of a SKU wait rightly when the keys left are fewer than the largest of
// them needs. When as many keys are left as each needs, none should be waiting.
import type { EngineView, ListedOrder } from './engine-view.ts';
import type { RunFacts } from './run-facts.ts';

export interface CardKeyPool {
  skuId: string;
  /** Keys the SKU was given, as the run's uploads were answered (0 when the run uploaded none). */
  keys: number;
  /** Distinct keys the delivered orders hold. */
  assigned: number;
  /** Paid orders not delivered yet. */
  waiting: ListedOrder[];
  /** The waiting orders wait rightly: fewer keys are left than the largest of them needs. */
  dry: boolean;
}

export function cardKeyPools(facts: RunFacts, view: EngineView): Map<string, CardKeyPool> {
  const pools = new Map<string, CardKeyPool>();
  const assigned = new Map<string, Set<number>>();
  for (const o of view.orders.values()) {
    if (view.skus.get(o.skuId)?.delivery !== 'card_key') continue;
    let pool = pools.get(o.skuId);
    if (!pool) pools.set(o.skuId, (pool = { skuId: o.skuId, keys: facts.cardKeys.get(o.skuId) ?? 0, assigned: 0, waiting: [], dry: false }));
    if (o.status === 'paid') pool.waiting.push(o);
    const d = o.delivery;
    if (o.status === 'delivered' && d && 'cardKeyIds' in d) {
      let ids = assigned.get(o.skuId);
      if (!ids) assigned.set(o.skuId, (ids = new Set()));
      for (const id of d.cardKeyIds) ids.add(id);
    }
  }
  for (const pool of pools.values()) {
    pool.assigned = assigned.get(pool.skuId)?.size ?? 0;
    let need = 0;
    for (const o of pool.waiting) need = Math.max(need, o.qty);
    pool.dry = pool.waiting.length > 0 && pool.keys - pool.assigned < need;
  }
  return pools;
}

/** Keys left in a pool (never below 0). */
export function keysLeft(pool: CardKeyPool): number {
  return Math.max(0, pool.keys - pool.assigned);
}
