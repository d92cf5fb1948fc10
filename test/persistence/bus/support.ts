// Helpers shared by the bus tests: a bounded wait, a recorder of deliveries, unique names so parallel
// files never share a stream, subject or durable on the shared NATS, and outbox events to project.
import { randomBytes } from 'node:crypto';
import type { BusEvent, DeliveryMeta } from '../../../persistence/bus/ports.ts';
import type { OutboxEvent, ProjectionBatch } from '../../../persistence/ports.ts';
import { NATS_URL } from '../../support/services.ts';

export const nats_url = NATS_URL;

export function uniqueSuffix(): string {
  return randomBytes(5).toString('hex').toUpperCase();
}

/** Polls `check` until it returns true; fails after `timeout_ms` with `what`. */
export async function waitFor(what: string, check: () => boolean | Promise<boolean>, timeout_ms = 10_000): Promise<void> {
  const deadline_ms = Date.now() + timeout_ms;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline_ms) throw new Error(`timed out after ${timeout_ms} ms waiting for ${what}`);
    await sleep(25);
  }
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export interface Delivery {
  id: string;
  subject: string;
  text: string;
  redelivered: boolean;
  deliveryCount: number;
}

const decoder = new TextDecoder();

/** Records every delivery; `acked` holds the ids whose handler resolved, in order. */
export function recorder(reject: (e: BusEvent, meta: DeliveryMeta) => boolean = () => false) {
  const deliveries: Delivery[] = [];
  const acked: string[] = [];
  return {
    deliveries,
    acked,
    handler: async (e: BusEvent, meta: DeliveryMeta) => {
      deliveries.push({ id: e.id, subject: e.subject, text: decoder.decode(e.data), ...meta });
      if (reject(e, meta)) throw new Error(`handler refuses ${e.id}`);
      acked.push(e.id);
    },
  };
}

/** Outbox events `<prefix>-<name>` on `<subjectPrefix>.<test>.order.paid`, body naming the event. */
export function outboxEvents(subjectPrefix: string, test: string, ...names: string[]): OutboxEvent[] {
  return names.map((name, i) => ({
    eventId: `${test}-${name}`,
    subject: `${subjectPrefix}.${test}.order.paid`,
    body: JSON.stringify({ eventId: `${test}-${name}` }),
    at: 1_000 + i,
  }));
}

/** A projection batch that writes only outbox rows. */
export function outboxBatch(outbox: OutboxEvent[]): ProjectionBatch {
  return { orders: [], history: [], idempotency: [], checkpoints: new Map(), live: new Map(), outbox };
}
