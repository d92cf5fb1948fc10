// What the NATS edge needs from a node, as one port: the HTTP routes take the whole StampedeNode,
// but merchant commands and ops queries need only these few calls, so the node hands over exactly
// them (messagingServicesOf in index.ts builds this object from a node) and a test can hand over
// a node's services with a fault injected.

import type { Catalog } from '../actors/catalog.ts';
import type { OrderService, Result } from '../actors/order-service.ts';
import type { OrderBody } from '../engine/index.ts';

/** The engine calls behind the merchant commands and the ops queries. */
export interface MessagingOrders extends Pick<OrderService, 'setStock' | 'addCardKeys' | 'inspect' | 'orderHistory'> {
  /**
   * The merchant's delivery of a paid order of a `manual` SKU (API.md "Delivery"). Declared here
   * rather than picked from OrderService so this edge does not depend on when it lands there.
   */
  deliverManual(orderId: string, payload: unknown): Promise<Result<OrderBody>>;
}

export interface MessagingServices {
  /** In-memory catalog lookups: who owns a SKU, which SKU/date an order id routes to. */
  catalog: Pick<Catalog, 'sku' | 'streamByNo'>;
  orders: MessagingOrders;
  /** This node's name, as in GET /ops/inventory (`node`). */
  nodeId: string;
  /** Messages waiting in a live actor's mailbox (0 when passivated), as in GET /ops/inventory (`mailbox`). */
  mailboxDepth(stream: string): number;
  /**
   * The buyer's live limit state, the body of GET /ops/buyers/{userId} (a buyer never seen has an
   * empty one). Without it, `stampede.ops.buyer.get` answers `not_found`.
   */
  buyer?(userId: string): Promise<Result<Record<string, unknown>>>;
}
