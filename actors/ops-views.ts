// The bodies operators read, shared by the HTTP ops routes and their NATS twins (API.md "Ops"), so
// the two can never drift apart.
import type { InventoryInspection } from './inventory-actor.ts';

/** GET /ops/inventory/{skuId}/{date} and `stampede.ops.inventory.get`. */
export function inventoryOpsView(skuId: string, date: string, v: InventoryInspection & { shard: number }, nodeId: string, mailbox: number) {
  return {
    skuId,
    date,
    total: v.total,
    reserved: v.reserved,
    sold: v.sold,
    available: v.available,
    shard: v.shard,
    node: nodeId,
    journalSeq: v.journalSeq,
    snapshotSeq: v.snapshotSeq,
    mailbox,
    projectedSeq: v.projectedSeq,
    liveReservations: v.liveReservations,
    pendingEvents: v.pendingEvents,
    writeInFlight: v.writeInFlight,
  };
}
