// A scan of orders by id that spans passes: each pass looks at `budget` orders at most and the next
// goes on after the last one looked at; once a pass reaches the end, the next starts from the first.
// For the background jobs that page through orders (reconciliation's paid orders, the no-show sweep):
// orders they look at and legitimately leave as they are (a manual SKU's paid orders, delivered
// orders of other SKU kinds) could otherwise fill every pass's budget and hide the ones after them.

import type { OrderRow } from '../persistence/ports.ts';

/** Orders per read of a page. */
const PAGE_MAX = 500;

export class ResumingOrderScan {
  /** The last order the previous pass looked at (undefined: start from the first). */
  private cursor: string | undefined;
  /** The order just handed out is to be looked at again: the next pass starts with it (see again). */
  private repeat = false;

  /** The order the pass just handed out could not be handled: the next pass starts with it (end this one now). */
  again(): void {
    this.repeat = true;
  }

  /** The orders of this pass, read `read(limit, afterOrderId)` a page at a time. Where it stops (its end, an exception) is where the next pass goes on. */
  async *pass(budget: number, read: (limit: number, afterOrderId: string | undefined) => Promise<OrderRow[]>): AsyncGenerator<OrderRow> {
    let after = this.cursor;
    /** Where the pass stood before the order handed out last. */
    let before = after;
    let seen = 0;
    this.repeat = false;
    try {
      while (seen < budget) {
        const page = await read(Math.min(PAGE_MAX, budget - seen), after);
        if (page.length === 0) {
          after = undefined; // the end: the next pass starts from the first
          break;
        }
        for (const o of page) {
          before = after;
          after = o.orderId;
          seen++;
          yield o;
          if (this.repeat) return;
        }
      }
    } finally {
      this.cursor = this.repeat ? before : after;
      this.repeat = false;
    }
  }
}
